//! Writing the sandbox bank's OFX replies.

use chrono::{DateTime, Utc};

use super::Institution;
use super::ledger::{self, Kind, SandboxAccount};
use super::magic;
use crate::ofx::{
    self, AccountInfo, AccountListResponse, Balance, FinancialInstitution, OfxDocument, OfxError, OfxRequest,
    OfxVersion, RequestMessage, Severity, SignonResponse, Statement, StatementKind, Status, Transaction,
};

/// How the transactions of a signed-on request are answered.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Everything as asked; the savings statement fails with this code when set.
    Normal { savings_status: Option<u32> },
    /// The account list is empty.
    NoAccounts,
    /// Every statement succeeds and holds no transactions (a bank that stopped sending data).
    Empty,
    /// Every transaction fails with this code (a bank-side failure behind a good sign-on).
    AllFail(u32),
}

/// One request to answer: who asks, at which institution, when.
#[derive(Debug)]
pub(crate) struct Session<'a> {
    request: &'a OfxRequest,
    institution: &'a Institution,
    seed: u64,
    now: DateTime<Utc>,
    accounts: Vec<SandboxAccount>,
}

impl<'a> Session<'a> {
    pub(crate) fn new(request: &'a OfxRequest, institution: &'a Institution, seed: u64, now: DateTime<Utc>) -> Self {
        let accounts = ledger::accounts(seed, institution.slug, &request.signon.user_id);
        Self { request, institution, seed, now, accounts }
    }

    pub(crate) fn full(&self, savings_status: Option<u32>) -> String {
        self.write(Plan::Normal { savings_status })
    }

    pub(crate) fn no_accounts(&self) -> String {
        self.write(Plan::NoAccounts)
    }

    pub(crate) fn empty_statements(&self) -> String {
        self.write(Plan::Empty)
    }

    pub(crate) fn every_transaction_fails(&self, code: u32) -> String {
        self.write(Plan::AllFail(code))
    }

    /// A refused sign-on: real servers send no other message with it.
    pub(crate) fn signon_failure(&self, code: u32) -> String {
        let mut document = OfxDocument::new(self.request.version);
        document.signon = Some(self.signon(failure(code)));
        ofx::write_response(&document)
    }

    fn write(&self, plan: Plan) -> String {
        let mut document = OfxDocument::new(self.request.version);
        document.signon = Some(self.signon(Status::ok()));
        for message in &self.request.messages {
            match message {
                RequestMessage::AccountList { trnuid, .. } => {
                    document.account_list = Some(self.account_list(trnuid, plan))
                }
                statement => document.statements.push(self.statement(statement, plan)),
            }
        }
        ofx::write_response(&document)
    }

    fn signon(&self, status: Status) -> SignonResponse {
        SignonResponse {
            status,
            server_date: Some(self.now.fixed_offset()),
            language: Some("ENG".to_owned()),
            fi: Some(FinancialInstitution {
                org: Some(self.institution.org.to_owned()),
                fid: Some(self.institution.fid.to_owned()),
            }),
            intu_bid: None,
        }
    }

    fn account_list(&self, trnuid: &str, plan: Plan) -> AccountListResponse {
        let (status, accounts) = match plan {
            Plan::AllFail(code) => (failure(code), Vec::new()),
            Plan::NoAccounts => (Status::ok(), Vec::new()),
            Plan::Normal { .. } | Plan::Empty => {
                (Status::ok(), self.accounts.iter().map(|account| self.account_info(account)).collect())
            }
        };
        AccountListResponse {
            trnuid: Some(trnuid.to_owned()),
            status: Some(status),
            updated: Some(self.now.fixed_offset()),
            accounts,
        }
    }

    fn account_info(&self, account: &SandboxAccount) -> AccountInfo {
        AccountInfo {
            description: Some(account.description.to_owned()),
            phone: None,
            account: account.ofx_account(self.institution.bank_id),
            service_status: Some("ACTIVE".to_owned()),
        }
    }

    fn statement(&self, message: &RequestMessage, plan: Plan) -> Statement {
        let (kind, trnuid, account_id, start, end) = match message {
            RequestMessage::BankStatement { trnuid, account, start, end, .. } => {
                (StatementKind::Bank, trnuid, &account.account_id, start, end)
            }
            RequestMessage::CreditCardStatement { trnuid, account_id, start, end, .. } => {
                (StatementKind::CreditCard, trnuid, account_id, start, end)
            }
            RequestMessage::AccountList { trnuid, .. } => (StatementKind::Bank, trnuid, trnuid, &None, &None),
        };
        let found = self.accounts.iter().find(|account| {
            account.id == *account_id && (account.kind == Kind::CreditCard) == (kind == StatementKind::CreditCard)
        });
        let Some(account) = found else {
            return Statement::failed(kind, trnuid.as_str(), failure(2003));
        };
        match plan {
            Plan::AllFail(code) => Statement::failed(kind, trnuid.as_str(), failure(code)),
            Plan::Normal { savings_status: Some(code) } if account.kind == Kind::Savings => {
                Statement::failed(kind, trnuid.as_str(), failure(code))
            }
            Plan::Empty => {
                let mut statement = self.statement_body(kind, trnuid, account, [start.as_ref(), end.as_ref()]);
                statement.transactions.clear();
                statement
            }
            _ => self.statement_body(kind, trnuid, account, [start.as_ref(), end.as_ref()]),
        }
    }

    fn statement_body(
        &self,
        kind: StatementKind,
        trnuid: &str,
        account: &SandboxAccount,
        [start, end]: [Option<&ofx::OfxDateTime>; 2],
    ) -> Statement {
        let start = start.map_or(ledger::epoch(), |start| start.with_timezone(&Utc));
        let end = end.map_or(self.now, |end| end.with_timezone(&Utc)).min(self.now);
        let user = &self.request.signon.user_id;
        let book = ledger::book_between(self.seed, self.institution.slug, user, account, self.now, start, end);
        let as_of = self.now.fixed_offset();
        Statement {
            kind,
            trnuid: Some(trnuid.to_owned()),
            status: Some(Status::ok()),
            currency: Some("USD".to_owned()),
            account: Some(account.ofx_account(self.institution.bank_id)),
            start: Some(start.fixed_offset()),
            end: Some(end.fixed_offset()),
            transactions: book.transactions.iter().map(transaction).collect(),
            ledger_balance: Some(Balance { amount: book.ledger, as_of }),
            available_balance: Some(Balance { amount: book.available, as_of }),
        }
    }
}

fn transaction(shown: &ledger::Shown) -> Transaction {
    Transaction {
        fitid: shown.fitid.clone(),
        trntype: shown.trntype.to_owned(),
        posted: shown.posted.fixed_offset(),
        user_date: None,
        amount: shown.amount,
        name: Some(shown.name.to_owned()),
        payee_name: None,
        memo: None,
        check_number: shown.check_number.clone(),
        currency: None,
        orig_currency: None,
        pending: shown.pending,
        replaces_fitid: shown.replaces.clone(),
    }
}

fn failure(code: u32) -> Status {
    let severity = if magic::is_informational(code) { Severity::Info } else { Severity::Error };
    Status { code, severity, message: Some(status_message(code).to_owned()) }
}

/// What the sandbox says with each status, in the spirit of real banks' messages.
fn status_message(code: u32) -> &'static str {
    match code {
        2000 => "General error; please try again later",
        2003 => "Account not found",
        2004 => "Account closed",
        2005 => "Account not authorized for online access",
        3000 => "Multi-factor authentication required",
        3001 => "Multi-factor authentication answer invalid",
        13504 => "FI information missing or invalid",
        15000 => "You must change your password",
        15500 => "Invalid user ID or password",
        15501 => "Customer account already in use",
        15502 => "Password locked out; call your bank",
        15505 => "Country not supported",
        15510 => "Client UID not registered",
        _ => "Unexpected error",
    }
}

/// The answer to a request the sandbox cannot read. Only the line is quoted back: the
/// request carries a password, so none of its text may return in the reply.
pub(crate) fn unreadable(error: &OfxError, now: DateTime<Utc>) -> String {
    let mut document = OfxDocument::new(OfxVersion::V102);
    let where_ = error.line().map_or(String::new(), |line| format!(" (line {line})"));
    let status = Status::error(2000, format!("The request is not valid OFX{where_}"));
    document.signon = Some(SignonResponse {
        status,
        server_date: Some(now.fixed_offset()),
        language: None,
        fi: None,
        intu_bid: None,
    });
    ofx::write_response(&document)
}

/// Cuts a reply two thirds in, inside a tag, as a dropped connection behind a proxy would.
pub(crate) fn garble(body: &str) -> String {
    let around = (0..=body.len() * 2 / 3).rev().find(|at| body.is_char_boundary(*at)).unwrap_or(0);
    let tag = body[..around].rfind('<').unwrap_or(around);
    let cut = body.char_indices().map(|(at, _)| at).find(|at| *at >= tag + 3).unwrap_or(body.len());
    body[..cut].to_owned()
}
