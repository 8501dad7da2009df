//! Statement import: a file a person brings (OFX, QFX, QBO, CSV) goes into the same store as
//! the feed, each account's rows classified against what it holds (`dedup`), in one
//! transaction per file. Rows that only resemble a stored transaction are held for a person
//! to confirm; nothing is merged silently.

pub mod dedup;
pub mod store;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::connection::{self, Account};
use crate::feed;
use crate::statement::{self, AccountStatement, ReadOptions, ReadWarning, Refusal, SkippedRow, StatementFile};

pub use crate::statement::Format;

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ofx => "ofx",
            Self::Csv => "csv",
            Self::Unknown => "unknown",
        }
    }
}

/// What became of a file.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub import_id: Uuid,
    #[schema(value_type = String, example = "ofx")]
    pub format: Format,
    /// What the reader found: `OFX 102 (SGML), Web Connect (QFX/QBO)`, `CSV, semicolon separated…`.
    pub dialect: String,
    pub accounts: Vec<AccountReport>,
    /// Defects the reader tolerated, each with its line.
    #[schema(value_type = Vec<Object>)]
    pub warnings: Vec<ReadWarning>,
    /// First and last day the file covers, over every account.
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AccountReport {
    pub account_id: Uuid,
    pub added: u64,
    pub already_present: u64,
    /// Rows held for a person to confirm (`POST /v1/imports/{id}/duplicates/{duplicate_id}`).
    pub probable_duplicates: Vec<HeldDuplicate>,
    /// Rows left out, with their line and why.
    #[schema(value_type = Vec<Object>)]
    pub skipped: Vec<SkippedRow>,
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HeldDuplicate {
    pub duplicate_id: Uuid,
    pub line: usize,
    pub posted_on: NaiveDate,
    #[schema(value_type = String, example = "-3.50")]
    pub amount: Decimal,
    pub payee: String,
    /// The stored transaction it resembles.
    pub resembles: Uuid,
}

/// A person's word on a held row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateState {
    Held,
    /// Confirmed as a transaction of its own: added to the feed.
    Imported,
    /// Confirmed as the stored one: dropped.
    Discarded,
}

impl DuplicateState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Imported => "imported",
            Self::Discarded => "discarded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Held, Self::Imported, Self::Discarded].into_iter().find(|state| state.as_str() == text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Unreadable(Refusal),
    /// The file's accounts cannot be matched to the connection's; the message says which.
    #[error("{0}")]
    NoAccount(String),
    #[error("the duplicate was decided already")]
    AlreadyDecided,
    #[error("unknown stored value {0:?}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Where a file goes: a connection, and optionally one of its accounts.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub connection_id: Uuid,
    pub account_id: Option<Uuid>,
}

/// Reads and imports `bytes` in the caller's transaction (one per file).
pub async fn import(
    conn: &mut PgConnection,
    target: Target,
    bytes: &[u8],
    options: &ReadOptions,
) -> Result<ImportReport, ImportError> {
    let file = statement::read(bytes, options).map_err(ImportError::Unreadable)?;
    let accounts = connection::store::accounts(&mut *conn, target.connection_id).await?;
    let matched = match_accounts(&file, &accounts, target.account_id)?;
    feed::store::lock_connection(&mut *conn, target.connection_id).await?;
    let import_id = Uuid::now_v7();
    let mut plan = Plan::default();
    let mut reports = Vec::new();
    for (statement, account) in &matched {
        reports.push(plan_account(conn, import_id, statement, account, &mut plan).await?);
    }
    let (start, end) = period(&file);
    let report = ImportReport {
        import_id,
        format: file.format,
        dialect: file.dialect.clone(),
        accounts: reports,
        warnings: file.warnings.clone(),
        start,
        end,
    };
    let stored_report = serde_json::to_value(&report).map_err(|error| ImportError::Corrupt(error.to_string()))?;
    let digest = Sha256::digest(bytes);
    store::insert_import(&mut *conn, import_id, target.connection_id, &digest, file.format, &stored_report).await?;
    // In batches: one statement's parameter arrays for a whole large file would be held in
    // memory beside the rows; a batch's are small and the statements are as fast.
    for batch in plan.added.chunks(INSERT_BATCH) {
        feed::store::insert_imported(&mut *conn, target.connection_id, import_id, batch).await?;
    }
    store::insert_held(conn, &plan.held).await?;
    Ok(report)
}

/// Rows inserted per statement.
const INSERT_BATCH: usize = 5_000;

#[derive(Debug, Default)]
struct Plan {
    added: Vec<feed::store::Imported>,
    held: Vec<store::Held>,
}

/// Files name their accounts by the bank's id; CSV names none, so it needs the account named
/// by the caller, or a connection with one account.
fn match_accounts<'f>(
    file: &'f StatementFile,
    accounts: &[Account],
    named: Option<Uuid>,
) -> Result<Vec<(&'f AccountStatement, Account)>, ImportError> {
    if let Some(named) = named {
        let account = accounts
            .iter()
            .find(|a| a.id == named)
            .ok_or_else(|| ImportError::NoAccount("the connection has no account with that id".to_owned()))?;
        let fitting: Vec<&AccountStatement> = file
            .accounts
            .iter()
            .filter(|s| s.account.account_id().is_none_or(|id| id == account.bank_account_id))
            .collect();
        return match (fitting.as_slice(), file.accounts.as_slice()) {
            ([one], _) => Ok(vec![(*one, account.clone())]),
            ([], [only]) => Ok(vec![(only, account.clone())]),
            _ => Err(ImportError::NoAccount(format!(
                "the file holds {} statements and none (or several) is for account {}",
                file.accounts.len(),
                account.bank_account_id
            ))),
        };
    }
    file.accounts
        .iter()
        .map(|statement| {
            let found = match statement.account.account_id() {
                Some(id) => accounts.iter().find(|a| a.bank_account_id == id),
                None if accounts.len() == 1 => accounts.first(),
                None => None,
            };
            found.map(|account| (statement, account.clone())).ok_or_else(|| {
                ImportError::NoAccount(match statement.account.account_id() {
                    Some(id) => format!("no account of this connection has the bank id {id:?}; name the account"),
                    None => "the file names no account and the connection has several; name the account".to_owned(),
                })
            })
        })
        .collect()
}

/// Imported rows are stored at noon UTC of their posting day (the day in the file's own offset):
/// identity and dedup work on the day, CSV exports and many OFX files give no time, so none is
/// kept, and noon keeps the day the same wherever it is shown from UTC−11 to UTC+11.
fn noon(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default()).and_utc()
}

async fn plan_account(
    conn: &mut PgConnection,
    import_id: Uuid,
    statement: &AccountStatement,
    account: &Account,
    plan: &mut Plan,
) -> Result<AccountReport, ImportError> {
    let mut report = AccountReport {
        account_id: account.id,
        added: 0,
        already_present: 0,
        probable_duplicates: Vec::new(),
        skipped: statement.skipped.clone(),
        start: statement.start,
        end: statement.end,
    };
    let (Some(first), Some(last)) =
        (statement.rows.iter().map(|r| r.posted).min(), statement.rows.iter().map(|r| r.posted).max())
    else {
        return Ok(report);
    };
    let from = first.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let to = last.succ_opt().unwrap_or(last).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let stored = feed::store::stored_between(&mut *conn, account.id, from, to).await?;
    if let (Some(start), Some(end)) = (statement.start, statement.end) {
        feed::store::record_coverage(&mut *conn, account.id, feed::coverage::Source::Import, start, end).await?;
    }
    // A FITID a bank repeats within one file cannot name two rows: later ones go by identity.
    let mut seen = std::collections::HashSet::new();
    let fitids: Vec<Option<&str>> =
        statement.rows.iter().map(|r| r.fitid.as_deref().filter(|fitid| seen.insert(*fitid))).collect();
    let candidates: Vec<dedup::Candidate<'_>> = statement
        .rows
        .iter()
        .zip(&fitids)
        .map(|(r, fitid)| dedup::Candidate { fitid: *fitid, day: r.posted, amount: r.amount, payee: &r.payee })
        .collect();
    let (verdicts, keys) = dedup::classify(&candidates, &stored);
    let currency = statement.currency.clone().filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()));
    let currency = currency.unwrap_or_else(|| account.currency.clone());
    for (((row, verdict), key), fitid) in statement.rows.iter().zip(verdicts).zip(keys).zip(&fitids) {
        let fitid = fitid.map_or_else(|| synthetic_fitid(&key), str::to_owned);
        match verdict {
            dedup::Verdict::Present(_) => report.already_present += 1,
            dedup::Verdict::Add => {
                report.added += 1;
                plan.added.push(feed::store::Imported {
                    account_id: account.id,
                    fitid,
                    synthetic_key: key,
                    posted_at: noon(row.posted),
                    amount: row.amount,
                    currency: currency.clone(),
                    name: row.payee.clone(),
                    memo: row.memo.clone().unwrap_or_default(),
                    check_number: row.reference.clone().unwrap_or_default(),
                });
            }
            dedup::Verdict::Held(resembles) => {
                let id = Uuid::now_v7();
                report.probable_duplicates.push(HeldDuplicate {
                    duplicate_id: id,
                    line: row.line,
                    posted_on: row.posted,
                    amount: row.amount,
                    payee: row.payee.clone(),
                    resembles,
                });
                plan.held.push(store::Held {
                    id,
                    import_id,
                    account_id: account.id,
                    line: i32::try_from(row.line).unwrap_or(i32::MAX),
                    fitid: Some(fitid),
                    synthetic_key: key,
                    posted_at: noon(row.posted),
                    amount: row.amount,
                    currency: currency.clone(),
                    name: row.payee.clone(),
                    memo: row.memo.clone().unwrap_or_default(),
                    check_number: row.reference.clone().unwrap_or_default(),
                    resembles,
                    state: DuplicateState::Held.as_str().to_owned(),
                });
            }
        }
    }
    Ok(report)
}

/// Rows without the bank's id are stored under one derived from their identity, so the same
/// row imported twice lands on the same key.
fn synthetic_fitid(key: &str) -> String {
    format!("import:{}", &hex::encode(Sha256::digest(key.as_bytes()))[..40])
}

fn period(file: &StatementFile) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let start = file.accounts.iter().filter_map(|a| a.start).min();
    let end = file.accounts.iter().filter_map(|a| a.end).max();
    (start, end)
}

/// A person's decision on a held row: `Imported` adds it to the feed as a transaction of its
/// own, `Discarded` drops it. Returns the connection it belongs to and the row after.
pub async fn decide(
    conn: &mut PgConnection,
    import_id: Uuid,
    duplicate_id: Uuid,
    decision: DuplicateState,
) -> Result<Option<(Uuid, store::Held)>, ImportError> {
    let Some((connection_id, _)) = store::report(&mut *conn, import_id).await? else {
        return Ok(None);
    };
    let Some(mut held) = store::held_for_update(conn, import_id, duplicate_id).await? else {
        return Ok(None);
    };
    let state = DuplicateState::parse(&held.state).ok_or_else(|| ImportError::Corrupt(held.state.clone()))?;
    if state != DuplicateState::Held {
        return Err(ImportError::AlreadyDecided);
    }
    if decision == DuplicateState::Imported {
        feed::store::lock_connection(&mut *conn, connection_id).await?;
        // Its own identity: the stored one it resembled keeps its key.
        let key = format!("{}|confirmed:{}", held.synthetic_key, held.id);
        let row = feed::store::Imported {
            account_id: held.account_id,
            fitid: held.fitid.clone().filter(|f| !f.starts_with("import:")).unwrap_or_else(|| synthetic_fitid(&key)),
            synthetic_key: key,
            posted_at: held.posted_at,
            amount: held.amount,
            currency: held.currency.clone(),
            name: held.name.clone(),
            memo: held.memo.clone(),
            check_number: held.check_number.clone(),
        };
        feed::store::insert_imported(conn, connection_id, import_id, &[row]).await?;
    }
    store::decide(&mut *conn, duplicate_id, decision).await?;
    held.state = decision.as_str().to_owned();
    Ok(Some((connection_id, held)))
}
