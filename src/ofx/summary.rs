//! A compact view of a document for health checks and `inspect`.

use serde::Serialize;

use super::date::OfxDateTime;
use super::model::{Balance, OfxDocument, OfxVersion, Statement, StatementKind, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusScope {
    Signon,
    AccountList,
    Statement,
}

/// One STATUS found in the file and where it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusEntry {
    pub scope: StatusScope,
    pub trnuid: Option<String>,
    pub account_id: Option<String>,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountSummary {
    pub kind: StatementKind,
    pub account_id: Option<String>,
    pub currency: Option<String>,
    pub status: Option<Status>,
    pub ledger_balance: Option<Balance>,
    pub available_balance: Option<Balance>,
    pub transaction_count: usize,
    pub start: Option<OfxDateTime>,
    pub end: Option<OfxDateTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub version: OfxVersion,
    /// Every status in document order: signon, account list, statements.
    pub statuses: Vec<StatusEntry>,
    pub accounts: Vec<AccountSummary>,
    /// Account ids offered by an account-list response.
    pub listed_accounts: Vec<String>,
    pub transaction_count: usize,
    pub first_posted: Option<OfxDateTime>,
    pub last_posted: Option<OfxDateTime>,
}

impl OfxDocument {
    pub fn summary(&self) -> Summary {
        let posted = || self.statements.iter().flat_map(|s| &s.transactions).map(|t| t.posted);
        Summary {
            version: self.version,
            statuses: self.statuses(),
            accounts: self.statements.iter().map(account_summary).collect(),
            listed_accounts: self
                .account_list
                .iter()
                .flat_map(|list| &list.accounts)
                .map(|info| info.account.account_id().to_owned())
                .collect(),
            transaction_count: posted().count(),
            first_posted: posted().min(),
            last_posted: posted().max(),
        }
    }

    /// Every status code in the file, signon first.
    pub fn status_codes(&self) -> Vec<u32> {
        self.statuses().iter().map(|entry| entry.status.code).collect()
    }

    fn statuses(&self) -> Vec<StatusEntry> {
        let signon = self.signon.iter().map(|signon| StatusEntry {
            scope: StatusScope::Signon,
            trnuid: None,
            account_id: None,
            status: signon.status.clone(),
        });
        let list = self.account_list.iter().filter_map(|list| {
            Some(StatusEntry {
                scope: StatusScope::AccountList,
                trnuid: list.trnuid.clone(),
                account_id: None,
                status: list.status.clone()?,
            })
        });
        let statements = self.statements.iter().filter_map(|statement| {
            Some(StatusEntry {
                scope: StatusScope::Statement,
                trnuid: statement.trnuid.clone(),
                account_id: account_id(statement),
                status: statement.status.clone()?,
            })
        });
        signon.chain(list).chain(statements).collect()
    }
}

fn account_id(statement: &Statement) -> Option<String> {
    statement.account.as_ref().map(|account| account.account_id().to_owned())
}

fn account_summary(statement: &Statement) -> AccountSummary {
    AccountSummary {
        kind: statement.kind,
        account_id: account_id(statement),
        currency: statement.currency.clone(),
        status: statement.status.clone(),
        ledger_balance: statement.ledger_balance.clone(),
        available_balance: statement.available_balance.clone(),
        transaction_count: statement.transactions.len(),
        start: statement.start,
        end: statement.end,
    }
}
