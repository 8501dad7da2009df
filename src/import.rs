//! Statement import: a file a person brings (OFX, QFX, QBO, CSV) goes into the same store as
//! the feed, each account's rows classified against what it holds (`dedup`), in one
//! transaction per file. Rows that only resemble a stored transaction are held for a person
//! to confirm; nothing is merged silently.

mod account;
pub mod dedup;
mod matching;
pub mod store;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use std::collections::HashMap;
use std::io::{Read, Seek};

use crate::connection;
use crate::feed;
use crate::statement::{self, Event, ReadOptions, ReadWarning, Refusal, SkippedRow, StatementStream};
use account::AccountImport;

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
    /// Defects the reader tolerated, each with its line (the first thousand).
    #[schema(value_type = Vec<Object>)]
    pub warnings: Vec<ReadWarning>,
    /// Warnings past those listed in `warnings`.
    pub omitted_warnings: u64,
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
    /// Rows left out, with their line and why (the first thousand).
    #[schema(value_type = Vec<Object>)]
    pub skipped: Vec<SkippedRow>,
    /// Rows left out past those listed in `skipped`.
    pub omitted_skipped: u64,
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
    let digest = Sha256::digest(bytes);
    import_from(conn, target, std::io::Cursor::new(bytes.to_vec()), &digest, options).await
}

/// Reads and imports a file (a spooled upload) in the caller's transaction (one per file),
/// a batch of rows at a time: the file is read on a blocking thread, a batch ahead of the
/// statements that classify and insert the one before. `sha256` is the file's digest.
pub async fn import_from<R: Read + Seek + Send + 'static>(
    conn: &mut PgConnection,
    target: Target,
    source: R,
    sha256: &[u8],
    options: &ReadOptions,
) -> Result<ImportReport, ImportError> {
    let options = options.clone();
    let stream = blocking(move || statement::open(source, &options)).await?.map_err(ImportError::Unreadable)?;
    let accounts = connection::store::accounts(&mut *conn, target.connection_id).await?;
    feed::store::lock_connection(&mut *conn, target.connection_id).await?;
    let import_id = Uuid::now_v7();
    let mut matcher = matching::Matcher::new(accounts, target.account_id);
    let mut importing: HashMap<usize, AccountImport> = HashMap::new();
    let mut next = Some(tokio::task::spawn_blocking(move || read_batch(stream)));
    while let Some(reading) = next.take() {
        let (stream, batch, done) = reading.await.map_err(|error| ImportError::Corrupt(error.to_string()))?;
        let batch = batch.map_err(ImportError::Unreadable)?;
        if done {
            apply(conn, target, import_id, &mut matcher, &mut importing, batch).await?;
            let ending = blocking(move || stream.finish()).await?.map_err(ImportError::Unreadable)?;
            return finish(conn, target, import_id, sha256, matcher, importing, ending).await;
        }
        next = Some(tokio::task::spawn_blocking(move || read_batch(stream)));
        apply(conn, target, import_id, &mut matcher, &mut importing, batch).await?;
    }
    Err(ImportError::Corrupt("the file's reading stopped".to_owned()))
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ImportError> {
    tokio::task::spawn_blocking(work).await.map_err(|error| ImportError::Corrupt(error.to_string()))
}

/// A batch read, and whether the file is read to its end.
type Batch<R> = (StatementStream<R>, Result<Vec<Event>, Refusal>, bool);

fn read_batch<R: Read + Seek>(mut stream: StatementStream<R>) -> Batch<R> {
    let mut batch = Vec::with_capacity(account::BATCH);
    while batch.len() < account::BATCH {
        match stream.next_event() {
            Ok(Some(event)) => batch.push(event),
            Ok(None) => return (stream, Ok(batch), true),
            Err(refusal) => return (stream, Err(refusal), true),
        }
    }
    (stream, Ok(batch), false)
}

/// A batch of events: accounts matched, rows classified and inserted.
async fn apply(
    conn: &mut PgConnection,
    target: Target,
    import_id: Uuid,
    matcher: &mut matching::Matcher,
    importing: &mut HashMap<usize, AccountImport>,
    batch: Vec<Event>,
) -> Result<(), ImportError> {
    for event in batch {
        match event {
            Event::Account { key, account, currency } => match matcher.place(key, &account)? {
                matching::Place::Into(found) => {
                    importing.insert(key, AccountImport::new(found, currency));
                }
                matching::Place::Tentatively(found) => {
                    store::savepoint(&mut *conn).await?;
                    importing.insert(key, AccountImport::new(found, currency));
                }
                matching::Place::Instead { dropped, found } => {
                    store::rollback_to_savepoint(&mut *conn).await?;
                    importing.remove(&dropped);
                    if let Some(found) = found {
                        importing.insert(key, AccountImport::new(found, currency));
                    }
                }
                matching::Place::Nowhere => {}
            },
            Event::Row { key, row } => {
                if let Some(account) = importing.get_mut(&key)
                    && account.push(row)
                {
                    account.flush(conn, target.connection_id, import_id).await?;
                }
            }
            Event::Skipped { key, skipped } => {
                if let Some(account) = importing.get_mut(&key) {
                    account.skip(skipped);
                }
            }
        }
    }
    for account in importing.values_mut() {
        account.flush(conn, target.connection_id, import_id).await?;
    }
    Ok(())
}

/// The report, coverage and held rows, once every row is in.
async fn finish(
    conn: &mut PgConnection,
    target: Target,
    import_id: Uuid,
    sha256: &[u8],
    matcher: matching::Matcher,
    mut importing: HashMap<usize, AccountImport>,
    ending: statement::Ending,
) -> Result<ImportReport, ImportError> {
    matcher.finish()?;
    let mut reports = Vec::new();
    let mut held = Vec::new();
    for (key, statement) in &ending.accounts {
        let Some(mut account) = importing.remove(key) else { continue };
        account.report.start = statement.start;
        account.report.end = statement.end;
        if account.days().is_some()
            && let (Some(start), Some(end)) = (statement.start, statement.end)
        {
            let source = feed::coverage::Source::Import;
            feed::store::record_coverage(&mut *conn, account.account.id, source, start, end).await?;
        }
        held.append(&mut account.held);
        reports.push(account.report);
    }
    let start = ending.accounts.iter().filter_map(|(_, a)| a.start).min();
    let end = ending.accounts.iter().filter_map(|(_, a)| a.end).max();
    let report = ImportReport {
        import_id,
        format: ending.format,
        dialect: ending.dialect,
        accounts: reports,
        warnings: ending.warnings,
        omitted_warnings: ending.omitted_warnings as u64,
        start,
        end,
    };
    let stored_report = serde_json::to_value(&report).map_err(|error| ImportError::Corrupt(error.to_string()))?;
    store::insert_import(&mut *conn, import_id, target.connection_id, sha256, report.format, &stored_report).await?;
    store::insert_held(conn, &held).await?;
    Ok(report)
}

/// Imported rows are stored at noon UTC of their posting day (the day in the file's own offset):
/// identity and dedup work on the day, CSV exports and many OFX files give no time, so none is
/// kept, and noon keeps the day the same wherever it is shown from UTC−11 to UTC+11.
pub(crate) fn noon(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default()).and_utc()
}

/// Rows without the bank's id are stored under one derived from their identity, so the same
/// row imported twice lands on the same key.
pub(crate) fn synthetic_fitid(key: &str) -> String {
    format!("import:{}", &hex::encode(Sha256::digest(key.as_bytes()))[..40])
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
