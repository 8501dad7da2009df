//! The sandbox's accounts and their transaction history, generated from a seed.
//!
//! Each account has a stream of planned transactions per day from [`epoch`] on. What the bank
//! shows at an instant follows from the plan and that instant alone, so history grows as the
//! clock moves and stays the same when asked twice: a pending card payment posts a few days
//! later under a new FITID that names the pending one; now and then a posted transaction is
//! corrected (same FITID, new amount) or removed (no longer returned).

use chrono::{DateTime, Datelike, Utc};
use rust_decimal::Decimal;

use super::dice::Dice;
use crate::ofx::{self, BankAccount};

/// 2025-01-01T00:00:00Z: the first day of every sandbox account's history.
const EPOCH_SECONDS: i64 = 1_735_689_600;
const SECONDS_PER_DAY: i64 = 24 * 60 * 60;

/// Room on the sandbox credit card; its available balance is what is left of it.
const CREDIT_LIMIT_CENTS: i64 = 500_000;

pub fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(EPOCH_SECONDS, 0).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Checking,
    Savings,
    CreditCard,
}

/// One account of one user at one institution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxAccount {
    pub kind: Kind,
    pub id: String,
    pub description: &'static str,
    opening_cents: i64,
}

impl SandboxAccount {
    pub fn ofx_account(&self, bank_id: &str) -> ofx::Account {
        let bank = |account_type: &str| {
            ofx::Account::Bank(BankAccount {
                bank_id: bank_id.to_owned(),
                branch_id: None,
                account_id: self.id.clone(),
                account_type: account_type.to_owned(),
            })
        };
        match self.kind {
            Kind::Checking => bank("CHECKING"),
            Kind::Savings => bank("SAVINGS"),
            Kind::CreditCard => ofx::Account::CreditCard { account_id: self.id.clone() },
        }
    }
}

/// Every user has a checking, a savings and a credit-card account; numbers and opening
/// balances depend on the institution and the user.
pub fn accounts(seed: u64, institution: &str, user: &str) -> Vec<SandboxAccount> {
    let mut dice = Dice::new(seed, &["accounts", institution, user]);
    vec![
        SandboxAccount {
            kind: Kind::Checking,
            id: format!("1{:09}", dice.below(1_000_000_000)),
            description: "Everyday Checking",
            opening_cents: 150_000 + dice.below(500_000) as i64,
        },
        SandboxAccount {
            kind: Kind::Savings,
            id: format!("2{:09}", dice.below(1_000_000_000)),
            description: "Rainy Day Savings",
            opening_cents: 1_000_000 + dice.below(1_000_000) as i64,
        },
        SandboxAccount {
            kind: Kind::CreditCard,
            id: format!("4{:015}", dice.below(1_000_000_000_000_000)),
            description: "Cashback Card",
            opening_cents: 0,
        },
    ]
}

/// A transaction as the bank shows it at some instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub fitid: String,
    pub posted: DateTime<Utc>,
    pub amount: Decimal,
    pub trntype: &'static str,
    pub name: &'static str,
    pub check_number: Option<String>,
    pub pending: bool,
    pub replaces: Option<String>,
}

/// An account's transactions and balances at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Book {
    pub transactions: Vec<Shown>,
    pub ledger: Decimal,
    pub available: Decimal,
}

/// What the bank shows for `account` at `now`.
pub fn book(seed: u64, institution: &str, user: &str, account: &SandboxAccount, now: DateTime<Utc>) -> Book {
    book_between(seed, institution, user, account, now, epoch(), now)
}

/// [`book`] with only the transactions posted in `from..=to`; the balances still count all.
/// A statement asks for a window, and writing out every transaction since the epoch only to
/// drop most of them was most of the sandbox's work per request.
pub fn book_between(
    seed: u64,
    institution: &str,
    user: &str,
    account: &SandboxAccount,
    now: DateTime<Utc>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Book {
    let dice = Dice::new(seed, &["transactions", institution, user, &account.id]);
    let days = (now - epoch()).num_days();
    // Whole seconds: every planned instant is one, so a window's start rounds up and its end down.
    let from = from.timestamp() + i64::from(from.timestamp_subsec_nanos() > 0);
    let (now, to) = (now.timestamp(), to.timestamp());
    let (mut posted_cents, mut pending_cents) = (account.opening_cents, 0);
    let mut transactions = Vec::new();
    // Every day since the epoch counts towards the balances, so this loop is the sandbox's main
    // work per statement: it plans in whole seconds and builds dates only for what it shows.
    let mut planned = Vec::new();
    let mut date = epoch().date_naive();
    for day in 0..=days {
        planned.clear();
        plan_day(account, day, date.day(), &mut dice.derive(day as u64), &mut planned);
        date = date.succ_opt().unwrap_or(date);
        for planned in &planned {
            let Some(state) = planned.state(now) else { continue };
            if state.pending {
                pending_cents += state.cents;
            } else {
                posted_cents += state.cents;
            }
            if from <= state.posted && state.posted <= to {
                transactions.push(planned.shown(&account.id, &state));
            }
        }
    }
    let headroom = if account.kind == Kind::CreditCard { CREDIT_LIMIT_CENTS } else { 0 };
    Book {
        available: Decimal::new(headroom + posted_cents + pending_cents, 2),
        ledger: Decimal::new(posted_cents, 2),
        transactions,
    }
}

/// One transaction as planned, with what will happen to it later.
#[derive(Debug, Clone)]
struct Planned {
    day: i64,
    index: u64,
    /// When it happens, in seconds since 1970.
    at: i64,
    cents: i64,
    trntype: &'static str,
    name: &'static str,
    check_number: Option<u64>,
    /// Shown pending for this many days, then posted under a new FITID.
    pending_days: Option<i64>,
    /// After this many days the amount changes by the given cents (same FITID).
    correction: Option<(i64, i64)>,
    /// After this many days the bank stops returning it.
    removed_after: Option<i64>,
}

const SHOPS: [&str; 10] = [
    "CITY GROCERS",
    "COFFEE CORNER",
    "FUEL STOP 42",
    "ONLINE BOOKS",
    "PHONE CO",
    "OFFICE SUPPLY CO",
    "TAXI RIDE",
    "HARDWARE DEPOT",
    "LUNCH PLACE",
    "AT&T MOBILITY",
];

fn plan_day(account: &SandboxAccount, day: i64, day_of_month: u32, dice: &mut Dice, planned: &mut Vec<Planned>) {
    let scheduled = match (account.kind, day_of_month) {
        (Kind::Checking, 1 | 15) => Some((245_000, "DIRECTDEP", "ACME PAYROLL")),
        (Kind::Savings, 1) => Some((100 + dice.below(900) as i64, "INT", "INTEREST PAID")),
        (Kind::CreditCard, 20) => Some((150_000, "PAYMENT", "PAYMENT - THANK YOU")),
        _ => None,
    };
    if let Some((cents, trntype, name)) = scheduled {
        planned.push(Planned::new(day, 9, dice, cents, trntype, name));
    }
    let count = match account.kind {
        Kind::Checking => dice.below(4),
        Kind::Savings => u64::from(dice.chance(0.05)),
        Kind::CreditCard => dice.below(3),
    };
    for index in 0..count {
        planned.push(random_transaction(account.kind, day, index, dice));
    }
}

fn random_transaction(kind: Kind, day: i64, index: u64, dice: &mut Dice) -> Planned {
    if kind == Kind::Savings {
        return Planned::new(day, index, dice, 10_000, "XFER", "TRANSFER FROM CHECKING");
    }
    let name = SHOPS[dice.below(SHOPS.len() as u64) as usize];
    let cents = -(300 + dice.below(12_000) as i64);
    let mut planned = Planned::new(day, index, dice, cents, "POS", name);
    if kind == Kind::Checking && dice.chance(0.1) {
        planned.trntype = "CHECK";
        planned.name = "CHECK";
        planned.check_number = Some(1000 + day as u64);
        return planned;
    }
    let pending_rate = if kind == Kind::CreditCard { 0.35 } else { 0.25 };
    if dice.chance(pending_rate) {
        planned.pending_days = Some(1 + dice.below(3) as i64);
        return planned;
    }
    match dice.below(100) {
        0..=2 => planned.correction = Some((1 + dice.below(4) as i64, dice.below(600) as i64 - 300)),
        3..=4 => planned.removed_after = Some(1 + dice.below(3) as i64),
        _ => {}
    }
    planned
}

impl Planned {
    fn new(day: i64, index: u64, dice: &mut Dice, cents: i64, trntype: &'static str, name: &'static str) -> Self {
        let at = EPOCH_SECONDS + day * SECONDS_PER_DAY + (8 * 60 + dice.below(12 * 60) as i64) * 60;
        Self {
            day,
            index,
            at,
            cents,
            trntype,
            name,
            check_number: None,
            pending_days: None,
            correction: None,
            removed_after: None,
        }
    }

    /// Where the transaction stands at `now`, without building its text: `None` before it
    /// happens and once removed.
    fn state(&self, now: i64) -> Option<State> {
        let passed = |days: i64| now >= self.at + days * SECONDS_PER_DAY;
        if self.at > now || self.removed_after.is_some_and(passed) {
            return None;
        }
        let correction = self.correction.filter(|(after, _)| passed(*after)).map_or(0, |(_, cents)| cents);
        let (posted, pending, replaces_pending) = match self.pending_days {
            Some(days) if passed(days) => (self.at + days * SECONDS_PER_DAY, false, true),
            Some(_) => (self.at, true, false),
            None => (self.at, false, false),
        };
        Some(State { posted, cents: self.cents + correction, pending, replaces_pending })
    }

    fn shown(&self, account_id: &str, state: &State) -> Shown {
        let fitid = |prefix: char| format!("{prefix}{account_id}-{}-{}", self.day, self.index);
        Shown {
            fitid: fitid(if state.pending { 'P' } else { 'T' }),
            posted: DateTime::from_timestamp(state.posted, 0).unwrap_or_default(),
            amount: Decimal::new(state.cents, 2),
            trntype: self.trntype,
            name: self.name,
            check_number: self.check_number.map(|number| number.to_string()),
            pending: state.pending,
            replaces: state.replaces_pending.then(|| fitid('P')),
        }
    }
}

/// A planned transaction at some instant.
struct State {
    /// Seconds since 1970.
    posted: i64,
    cents: i64,
    pending: bool,
    /// Posted after being pending under another FITID.
    replaces_pending: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn at(days: i64) -> DateTime<Utc> {
        epoch() + TimeDelta::days(days) + TimeDelta::hours(23)
    }

    #[test]
    fn history_is_deterministic_and_grows() {
        let checking = &accounts(1, "healthy", "user_good")[0];
        let earlier = book(1, "healthy", "user_good", checking, at(100));
        assert_eq!(earlier, book(1, "healthy", "user_good", checking, at(100)));
        let later = book(1, "healthy", "user_good", checking, at(130));
        assert!(later.transactions.len() > earlier.transactions.len());
        assert_ne!(earlier, book(1, "healthy", "someone_else", &accounts(1, "healthy", "someone_else")[0], at(100)));
    }

    #[test]
    fn pending_transactions_post_under_a_new_fitid_that_names_them() {
        let card = &accounts(1, "healthy", "user_good")[2];
        let before = book(1, "healthy", "user_good", card, at(200));
        let after = book(1, "healthy", "user_good", card, at(205));
        let pending: Vec<&Shown> = before.transactions.iter().filter(|t| t.pending).collect();
        assert!(!pending.is_empty());
        for trn in pending {
            assert!(!after.transactions.iter().any(|t| t.fitid == trn.fitid));
            let posted = after
                .transactions
                .iter()
                .find(|t| t.replaces.as_ref() == Some(&trn.fitid))
                .unwrap_or_else(|| panic!("{} never posted", trn.fitid));
            assert!(!posted.pending && posted.amount == trn.amount && posted.posted > trn.posted);
        }
    }

    #[test]
    fn some_transactions_are_corrected_and_some_removed() {
        let checking = &accounts(1, "healthy", "user_good")[0];
        let (mut corrected, mut removed) = (0, 0);
        for day in (10..300).step_by(7) {
            let early = book(1, "healthy", "user_good", checking, at(day));
            let late = book(1, "healthy", "user_good", checking, at(day + 7));
            for trn in early.transactions.iter().filter(|t| !t.pending) {
                match late.transactions.iter().find(|t| t.fitid == trn.fitid) {
                    Some(same) if same.amount != trn.amount => corrected += 1,
                    Some(_) => {}
                    None => removed += 1,
                }
            }
        }
        assert!(corrected > 0 && removed > 0, "corrected {corrected}, removed {removed}");
    }

    #[test]
    fn balances_follow_the_transactions() {
        for account in accounts(3, "flaky", "user_good") {
            let book = book(3, "flaky", "user_good", &account, at(60));
            let posted: Decimal = book.transactions.iter().filter(|t| !t.pending).map(|t| t.amount).sum();
            let pending: Decimal = book.transactions.iter().filter(|t| t.pending).map(|t| t.amount).sum();
            assert_eq!(book.ledger, Decimal::new(account.opening_cents, 2) + posted);
            let headroom = book.available - book.ledger - pending;
            let expected =
                if account.kind == Kind::CreditCard { Decimal::new(CREDIT_LIMIT_CENTS, 2) } else { Decimal::ZERO };
            assert_eq!(headroom, expected);
        }
    }

    #[test]
    fn a_window_holds_the_same_transactions_and_the_same_balances() {
        for account in accounts(5, "healthy", "user_good") {
            let whole = book(5, "healthy", "user_good", &account, at(400));
            let (from, to) = (at(360) - TimeDelta::hours(5), at(375));
            let window = book_between(5, "healthy", "user_good", &account, at(400), from, to);
            let expected: Vec<&Shown> =
                whole.transactions.iter().filter(|t| from <= t.posted && t.posted <= to).collect();
            assert_eq!(window.transactions.iter().collect::<Vec<_>>(), expected);
            assert!(!expected.is_empty());
            assert_eq!((window.ledger, window.available), (whole.ledger, whole.available));
        }
    }

    #[test]
    fn nothing_before_the_epoch() {
        let checking = &accounts(1, "healthy", "user_good")[0];
        assert!(book(1, "healthy", "user_good", checking, epoch() - TimeDelta::days(3)).transactions.is_empty());
    }
}
