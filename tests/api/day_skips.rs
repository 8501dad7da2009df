//! A repeat refresh leaves out the days it re-reads as they were (issue #17): applying a statement
//! that way must store exactly what applying it in full stores, whatever the bank did in between.
//! Two connections receive the same statements; one forgets its day digests before every apply,
//! so it applies each in full, and after every step both hold the same rows and counted the same
//! changes.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use feedwatch::feed::{Changes, ReportedTransaction, store};
use proptest::prelude::*;
use uuid::Uuid;

use crate::support::TestApp;

/// Midnight (UTC) of the model's day 0.
const DAY_0: i64 = 1_760_054_400;

/// One transaction as the model bank holds it.
#[derive(Debug, Clone)]
struct Held {
    day: i64,
    second: i64,
    cents: i64,
    pending: bool,
    replaces: Option<String>,
}

/// What the bank does before a refresh.
#[derive(Debug, Clone)]
enum Change {
    /// A new day with this many transactions, the last of them pending when the flag says so.
    NewDay(usize, bool),
    /// One held transaction's amount corrected (an index into the held ones).
    Correct(usize, i64),
    /// One held transaction gone.
    Drop(usize),
    /// One held pending transaction posted under a new FITID on the next day.
    Post(usize),
    Nothing,
}

/// One step: the bank's change, then a refresh over a window starting this many days back, at
/// midnight or mid-day, that the bank answers in full or with nothing at all.
#[derive(Debug, Clone)]
struct Step {
    change: Change,
    back: i64,
    midday: bool,
    silent: bool,
}

fn step() -> impl Strategy<Value = Step> {
    let change = prop_oneof![
        4 => (0usize..4, any::<bool>()).prop_map(|(n, pending)| Change::NewDay(n, pending)),
        2 => (0usize..64, -500i64..500).prop_map(|(at, cents)| Change::Correct(at, cents)),
        1 => (0usize..64).prop_map(Change::Drop),
        2 => (0usize..64).prop_map(Change::Post),
        2 => Just(Change::Nothing),
    ];
    (change, 0i64..20, any::<bool>(), prop::bool::weighted(0.1)).prop_map(|(change, back, midday, silent)| Step {
        change,
        back,
        midday,
        silent,
    })
}

#[derive(Debug, Default)]
struct Bank {
    today: i64,
    next_fitid: usize,
    held: BTreeMap<String, Held>,
}

impl Bank {
    fn change(&mut self, change: &Change) {
        let pick = |held: &BTreeMap<String, Held>, at: usize| held.keys().nth(at % held.len().max(1)).cloned();
        match change {
            Change::NewDay(count, pending) => {
                self.today += 1;
                for n in 0..*count {
                    let fitid = self.fitid();
                    let held = Held {
                        day: self.today,
                        second: i64::try_from(n).unwrap() * 3600,
                        cents: -1000 - i64::try_from(self.next_fitid).unwrap(),
                        pending: *pending && n + 1 == *count,
                        replaces: None,
                    };
                    self.held.insert(fitid, held);
                }
            }
            Change::Correct(at, cents) => {
                if let Some(fitid) = pick(&self.held, *at) {
                    self.held.get_mut(&fitid).unwrap().cents += cents;
                }
            }
            Change::Drop(at) => {
                if let Some(fitid) = pick(&self.held, *at) {
                    self.held.remove(&fitid);
                }
            }
            Change::Post(at) => {
                let Some(fitid) = pick(&self.held, *at).filter(|fitid| self.held[fitid].pending) else { return };
                let pending = self.held.remove(&fitid).unwrap();
                let posted = Held { day: pending.day + 1, pending: false, replaces: Some(fitid), ..pending };
                let new_fitid = self.fitid();
                self.held.insert(new_fitid, posted);
            }
            Change::Nothing => {}
        }
    }

    fn fitid(&mut self) -> String {
        self.next_fitid += 1;
        format!("t{:04}", self.next_fitid)
    }

    /// The window's start and what the bank reports over it.
    fn statement(&self, step: &Step) -> (DateTime<Utc>, Vec<ReportedTransaction>) {
        let start = DAY_0 + (self.today - step.back) * 86_400 + if step.midday { 43_200 } else { 0 };
        let window_start = DateTime::from_timestamp(start, 0).unwrap();
        if step.silent {
            return (window_start, Vec::new());
        }
        let reported = self
            .held
            .iter()
            .map(|(fitid, held)| ReportedTransaction {
                fitid: fitid.clone(),
                posted_at: DateTime::from_timestamp(DAY_0 + held.day * 86_400 + held.second, 0).unwrap(),
                amount: rust_decimal::Decimal::new(held.cents, 2),
                currency: "USD".into(),
                name: format!("payee {fitid}"),
                memo: String::new(),
                check_number: String::new(),
                pending: held.pending,
                replaces_fitid: held.replaces.clone(),
            })
            .filter(|t| t.posted_at >= window_start - TimeDelta::days(1))
            .collect();
        (window_start, reported)
    }
}

/// A stored transaction as both connections must agree on it.
type StoredRow = (String, DateTime<Utc>, String, bool, Option<String>, bool);

async fn stored(app: &TestApp, account: Uuid) -> Vec<StoredRow> {
    sqlx::query_as(
        "select fitid, posted_at, amount::text, pending, replaces_fitid, removed from feed_transaction
         where account_id = $1 order by fitid",
    )
    .bind(account)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Applies the statement as the refresh writer does, in full when asked (its day digests
/// forgotten first); returns its changes.
async fn apply(
    app: &TestApp,
    connection: Uuid,
    account: Uuid,
    window_start: DateTime<Utc>,
    reported: &[ReportedTransaction],
    in_full: bool,
) -> Changes {
    if in_full {
        sqlx::query("update feed_digest set days = null where connection_id = $1")
            .bind(connection)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    let mut tx = feedwatch::database::begin(&app.pool).await.unwrap();
    store::lock_connection(&mut *tx, connection).await.unwrap();
    let changes = crate::support::apply_statement(&mut tx, connection, &[(account, reported)], window_start).await;
    tx.commit().await.unwrap();
    changes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_out_the_days_read_again_stores_what_applying_in_full_stores() {
    use proptest::test_runner::{Config, TestRunner};

    let app = TestApp::spawn().await;
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24);
    let mut runner = TestRunner::new(Config { cases, ..Config::default() });
    let handle = tokio::runtime::Handle::current();
    let result = runner.run(&proptest::collection::vec(step(), 1..24), |steps| {
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let (skipping, in_full) = (app.fed_account().await, app.fed_account().await);
                let mut bank = Bank::default();
                for (n, step) in steps.iter().enumerate() {
                    bank.change(&step.change);
                    let (window_start, reported) = bank.statement(step);
                    let a = apply(&app, skipping.connection, skipping.account, window_start, &reported, false).await;
                    let b = apply(&app, in_full.connection, in_full.account, window_start, &reported, true).await;
                    assert_eq!(a, b, "step {n} ({step:?}) counted other changes");
                    let (kept, full) = (stored(&app, skipping.account).await, stored(&app, in_full.account).await);
                    assert_eq!(kept, full, "step {n} ({step:?}) stored other rows");
                }
            })
        });
        Ok(())
    });
    result.unwrap();
}

/// The skip is real: a row edited behind the digests' back (no change recorded, which no writer
/// of feedwatch does) stays as it is on a day the statement re-reads unchanged, and is put back on
/// a day that changed, and by an apply in full once the digests are forgotten.
#[tokio::test]
async fn a_day_read_again_as_it_was_is_not_written_and_a_changed_day_is() {
    let app = TestApp::spawn().await;
    let fed = app.fed_account().await;
    let mut bank = Bank::default();
    let quiet = Step { change: Change::Nothing, back: 10, midday: false, silent: false };
    for _ in 0..5 {
        bank.change(&Change::NewDay(2, false));
    }
    let (window_start, reported) = bank.statement(&quiet);
    apply(&app, fed.connection, fed.account, window_start, &reported, false).await;
    let edit_behind_the_back = |fitid: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query("update feed_transaction set amount = 0 where fitid = $1")
                .bind(fitid)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    let amount = |fitid: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("select amount::text from feed_transaction where fitid = $1")
                .bind(fitid)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    // t0001 is on day 1, t0009 on day 5; the bank's new day 6 is the first that differs.
    edit_behind_the_back("t0001").await;
    edit_behind_the_back("t0009").await;
    bank.change(&Change::NewDay(1, false));
    bank.change(&Change::Correct(8, -1));
    let (window_start, reported) = bank.statement(&quiet);
    let changes = apply(&app, fed.connection, fed.account, window_start, &reported, false).await;
    assert_eq!((changes.added, changes.modified), (1, 1), "day 6's row added, day 5's corrected row written");
    assert_eq!(amount("t0001").await, "0.0000", "day 1 was read again as it was: left out");
    assert_eq!(amount("t0009").await, "-10.1000", "day 5 changed: written again");
    // Forgotten digests (the whole statement's too, which would skip it all): applied in full.
    sqlx::query("delete from feed_digest where connection_id = $1")
        .bind(fed.connection)
        .execute(&app.pool)
        .await
        .unwrap();
    apply(&app, fed.connection, fed.account, window_start, &reported, false).await;
    assert_eq!(amount("t0001").await, "-10.0100", "an apply in full puts it back");
}
