//! Which of the connection's accounts each statement of a file goes into, decided as the
//! statements arrive. Files name their accounts by the bank's id; CSV names none, so it needs
//! the account named by the caller, or a connection with one account. A caller who names the
//! account gets the one statement for it, or the file's only statement whatever it names
//! (Web Connect files often carry a masked account number).

use uuid::Uuid;

use super::ImportError;
use crate::connection::Account;
use crate::statement::AccountRef;

#[derive(Debug)]
pub(super) struct Matcher {
    accounts: Vec<Account>,
    named: Option<Uuid>,
    /// Statements seen (with an account).
    seen: usize,
    /// The statement going into the named account, and whether it names that account.
    chosen: Option<(usize, bool)>,
}

/// Where a statement goes.
#[derive(Debug)]
pub(super) enum Place {
    Into(Account),
    /// Into the named account unless another statement follows: a savepoint comes first.
    Tentatively(Account),
    /// The tentative statement is undone (back to the savepoint); this one goes into `found`,
    /// if anywhere.
    Instead {
        dropped: usize,
        found: Option<Account>,
    },
    Nowhere,
}

impl Matcher {
    pub fn new(accounts: Vec<Account>, named: Option<Uuid>) -> Self {
        Self { accounts, named, seen: 0, chosen: None }
    }

    pub fn place(&mut self, key: usize, statement: &AccountRef) -> Result<Place, ImportError> {
        self.seen += 1;
        let Some(named) = self.named else {
            return self.by_id(statement).map(Place::Into);
        };
        let account = self.named_account(named)?;
        let fits = statement.account_id().is_none_or(|id| id == account.bank_account_id);
        Ok(match (self.chosen, fits) {
            (Some((_, true)), true) => return Err(self.several(&account)),
            (Some((_, true)), false) => Place::Nowhere,
            (Some((dropped, false)), true) => {
                self.chosen = Some((key, true));
                Place::Instead { dropped, found: Some(account) }
            }
            (Some((dropped, false)), false) => {
                self.chosen = None;
                Place::Instead { dropped, found: None }
            }
            (None, true) => {
                self.chosen = Some((key, true));
                Place::Into(account)
            }
            (None, false) if self.seen == 1 => {
                self.chosen = Some((key, false));
                Place::Tentatively(account)
            }
            (None, false) => Place::Nowhere,
        })
    }

    /// Whether the file held a statement for the named account.
    pub fn finish(self) -> Result<(), ImportError> {
        let Some(named) = self.named else { return Ok(()) };
        let account = self.named_account(named)?;
        match self.chosen {
            Some((_, true)) => Ok(()),
            Some((_, false)) if self.seen == 1 => Ok(()),
            _ => Err(self.several(&account)),
        }
    }

    fn named_account(&self, named: Uuid) -> Result<Account, ImportError> {
        self.accounts
            .iter()
            .find(|a| a.id == named)
            .cloned()
            .ok_or_else(|| ImportError::NoAccount("the connection has no account with that id".to_owned()))
    }

    fn several(&self, account: &Account) -> ImportError {
        ImportError::NoAccount(format!(
            "the file holds {} statements and none (or several) is for account {}",
            self.seen, account.bank_account_id
        ))
    }

    fn by_id(&self, statement: &AccountRef) -> Result<Account, ImportError> {
        let found = match statement.account_id() {
            Some(id) => self.accounts.iter().find(|a| a.bank_account_id == id),
            None if self.accounts.len() == 1 => self.accounts.first(),
            None => None,
        };
        found.cloned().ok_or_else(|| {
            ImportError::NoAccount(match statement.account_id() {
                Some(id) => format!("no account of this connection has the bank id {id:?}; name the account"),
                None => "the file names no account and the connection has several; name the account".to_owned(),
            })
        })
    }
}
