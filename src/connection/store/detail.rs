//! One connection as a single-connection page shows it: the row, its accounts and the display
//! names its accounts share with other accounts of the tenant, in one statement. The web front end
//! and the helpdesk read this on every page view; three round trips (and the tenant-wide grouping
//! of every account name) made it slower than a list of twenty. The shared names are counted on
//! write (`account_name_use`), so this reads only the connection's own rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::postgres::types::{Oid, PgRecordDecoder};
use sqlx::postgres::{PgHasArrayType, PgTypeInfo, PgValueRef};
use sqlx::{PgExecutor, Postgres};
use uuid::Uuid;

use super::accounts::AccountRow;
use super::connections::ConnectionRow;
use crate::connection::{Account, Connection};

/// A connection with everything its own page shows.
#[derive(Debug)]
pub struct ConnectionDetail {
    pub connection: Connection,
    /// In creation order.
    pub accounts: Vec<Account>,
    /// Display names (case-insensitively) that one of this connection's accounts shares with
    /// another visible account of the tenant, a known cause of QuickBooks 324, each spelt as
    /// this connection's accounts spell it (the least spelling when they differ), ordered
    /// case-insensitively.
    pub duplicate_account_names: Vec<String>,
}

/// The connection `id` with its accounts and shared account names, or None if it does not exist.
/// Its own statement rather than [`super::get`]'s list filter: a primary-key probe whose plan
/// does not depend on which filters are null, so PostgreSQL can keep one generic plan for it.
pub async fn detail(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<ConnectionDetail>, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"select c.id, c.tenant_id, c.institution_id, i.name as institution_name, c.display_name, c.state, c.paused,
                  c.refresh_every_seconds, c.credentials_updated_at, c.last_attempt_at, c.last_success_at,
                  c.data_as_of, c.failure_streak, c.error_code, c.error_raw, c.error_at, c.next_refresh_at,
                  c.version, c.created_at, c.updated_at, c.disconnected_at,
                  (select j.run_at from job j
                   where j.unique_key = 'refresh:' || c.id::text and j.state = 'available') as retry_at,
                  oi.id as "incident_id?", oi.title as "incident_title?", oi.wait_until as "incident_wait_until?",
                  acc.rows as "accounts!: Vec<AccountRecord>"
           from connection c join institution i on i.id = c.institution_id
                left join incident oi on oi.institution_id = c.institution_id and oi.state = 'open'
                -- One sorted pass over the accounts, as one array of records: sqlx decodes it in
                -- one walk, where 14 arrays (one per column) cost it 14 (bench/README.md, #17
                -- session 11). Each record ends with its name's key when the tenant's counts
                -- (`account_name_use`, kept on write by migration 0022, one row per connection
                -- since 0027) count the name more than once: two rows, or one counting two (a
                -- row counts one at least). One probe per account of this connection that reads
                -- at most two rows, whatever the size of the tenant, and no second pass to group
                -- them (bench/README.md, sessions 14 and 27).
                -- Unordered: a connection has a handful of accounts, and sorting them here costs
                -- PostgreSQL a sort node on every read (2.5-3 µs of a 48 µs statement, session
                -- 23); `detail` orders them.
                cross join lateral (
                    select coalesce(array_agg(row(a.id, a.bank_account_id, a.kind, a.masked_number, a.bank_name,
                                                  a.display_name, a.state, a.currency, a.balance, a.available,
                                                  a.balance_as_of, a.error_code, a.created_at, a.updated_at,
                                                  (select min(u.name_key) from (
                                                       select u.name_key, u.accounts from account_name_use u
                                                       where u.tenant_id = c.tenant_id
                                                         and u.name_key = lower(a.display_name)
                                                       limit 2) u
                                                   having sum(u.accounts) > 1))),
                                    '{}') as rows
                    from account a where a.connection_id = c.id
                ) acc
           where c.id = $1"#,
        id
    )
    .fetch_optional(executor)
    .await?
    else {
        return Ok(None);
    };
    let mut records = row.accounts;
    records.sort_unstable_by_key(|account| (account.created_at, account.id));
    let duplicate_account_names = shared_names(&records);
    let accounts = records
        .into_iter()
        .map(|account| Account::try_from(account.into_row(row.id)))
        .collect::<Result<Vec<_>, _>>()?;
    let connection = ConnectionRow {
        id: row.id,
        tenant_id: row.tenant_id,
        institution_id: row.institution_id,
        institution_name: row.institution_name,
        display_name: row.display_name,
        state: row.state,
        paused: row.paused,
        refresh_every_seconds: row.refresh_every_seconds,
        credentials_updated_at: row.credentials_updated_at,
        last_attempt_at: row.last_attempt_at,
        last_success_at: row.last_success_at,
        data_as_of: row.data_as_of,
        failure_streak: row.failure_streak,
        error_code: row.error_code,
        error_raw: row.error_raw,
        error_at: row.error_at,
        next_refresh_at: row.next_refresh_at,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        disconnected_at: row.disconnected_at,
        retry_at: row.retry_at,
        incident_id: row.incident_id,
        incident_title: row.incident_title,
        incident_wait_until: row.incident_wait_until,
    }
    .into_connection()?;
    Ok(Some(ConnectionDetail { connection, accounts, duplicate_account_names }))
}

/// One element of the statement's array of accounts: an anonymous record of the columns in the
/// order the statement lists them.
#[derive(Debug)]
struct AccountRecord {
    id: Uuid,
    bank_account_id: String,
    kind: String,
    masked_number: String,
    bank_name: String,
    display_name: String,
    state: String,
    currency: String,
    balance: Option<Decimal>,
    available: Option<Decimal>,
    balance_as_of: Option<DateTime<Utc>>,
    error_code: Option<i32>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The name's case-folded key when another visible account of the tenant has it too.
    shared_name_key: Option<String>,
}

/// The names this connection's accounts share with other accounts of the tenant, one per key
/// (case-insensitively the same name), spelt as the least of this connection's spellings, in
/// the order of their case-folded keys. Ordered here rather than by the database's collation, so
/// the answer is the same on every server.
fn shared_names(accounts: &[AccountRecord]) -> Vec<String> {
    let mut least_by_key: BTreeMap<&str, &str> = BTreeMap::new();
    for account in accounts {
        if let Some(key) = &account.shared_name_key {
            let least = least_by_key.entry(key).or_insert(&account.display_name);
            *least = (*least).min(account.display_name.as_str());
        }
    }
    least_by_key.into_values().map(str::to_owned).collect()
}

impl AccountRecord {
    fn into_row(self, connection_id: Uuid) -> AccountRow {
        AccountRow {
            id: self.id,
            connection_id,
            bank_account_id: self.bank_account_id,
            kind: self.kind,
            masked_number: self.masked_number,
            bank_name: self.bank_name,
            display_name: self.display_name,
            state: self.state,
            currency: self.currency,
            balance: self.balance,
            available: self.available,
            balance_as_of: self.balance_as_of,
            error_code: self.error_code,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// PostgreSQL's `record` and `record[]` (fixed OIDs): what `row(…)` and its `array_agg` are.
impl sqlx::Type<Postgres> for AccountRecord {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(2249))
    }
}

impl PgHasArrayType for AccountRecord {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(2287))
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for AccountRecord {
    /// Each field checks the type PostgreSQL names for it: a column of another type in its place
    /// is a decode error, not a wrong value.
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let mut record = PgRecordDecoder::new(value)?;
        Ok(Self {
            id: record.try_decode()?,
            bank_account_id: record.try_decode()?,
            kind: record.try_decode()?,
            masked_number: record.try_decode()?,
            bank_name: record.try_decode()?,
            display_name: record.try_decode()?,
            state: record.try_decode()?,
            currency: record.try_decode()?,
            balance: record.try_decode()?,
            available: record.try_decode()?,
            balance_as_of: record.try_decode()?,
            error_code: record.try_decode()?,
            created_at: record.try_decode()?,
            updated_at: record.try_decode()?,
            shared_name_key: record.try_decode()?,
        })
    }
}
