//! The only code that touches the connection, account and connection_event tables.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::{Account, AccountKind, AccountState, Actor, Connection, Event, ListFilter, OpenIncident, State};

struct ConnectionRow {
    id: Uuid,
    tenant_id: Uuid,
    institution_id: Uuid,
    institution_name: String,
    display_name: String,
    state: String,
    paused: bool,
    refresh_every_seconds: i32,
    credentials_updated_at: DateTime<Utc>,
    last_attempt_at: Option<DateTime<Utc>>,
    last_success_at: Option<DateTime<Utc>>,
    data_as_of: Option<DateTime<Utc>>,
    failure_streak: i32,
    error_code: Option<i32>,
    error_raw: Option<String>,
    error_at: Option<DateTime<Utc>>,
    next_refresh_at: Option<DateTime<Utc>>,
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    disconnected_at: Option<DateTime<Utc>>,
    retry_at: Option<DateTime<Utc>>,
    incident_id: Option<Uuid>,
    incident_title: Option<String>,
    incident_wait_until: Option<DateTime<Utc>>,
}

impl ConnectionRow {
    fn into_connection(self) -> Result<Connection, sqlx::Error> {
        let state = State::parse(&self.state)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown connection state `{}`", self.state).into()))?;
        Ok(Connection {
            id: self.id,
            tenant_id: self.tenant_id,
            institution_id: self.institution_id,
            institution_name: self.institution_name,
            display_name: self.display_name,
            state,
            paused: self.paused,
            refresh_every_seconds: self.refresh_every_seconds,
            credentials_updated_at: self.credentials_updated_at,
            last_attempt_at: self.last_attempt_at,
            last_success_at: self.last_success_at,
            data_as_of: self.data_as_of,
            failure_streak: self.failure_streak,
            error_code: self.error_code,
            error_raw: self.error_raw,
            error_at: self.error_at,
            next_refresh_at: self.next_refresh_at,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            disconnected_at: self.disconnected_at,
            retry_at: self.retry_at,
            incident: match (self.incident_id, self.incident_title, self.incident_wait_until) {
                (Some(id), Some(title), Some(wait_until)) => Some(OpenIncident { id, title, wait_until }),
                _ => None,
            },
        })
    }
}

/// A connection to create; its credentials arrive sealed.
#[derive(Debug)]
pub struct NewConnection<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub institution_id: Uuid,
    pub display_name: &'a str,
    pub refresh_every_seconds: i32,
    pub credentials_sealed: &'a [u8],
    pub credentials_key_id: &'a str,
}

pub async fn insert(executor: impl PgExecutor<'_>, new: &NewConnection<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"insert into connection (id, tenant_id, institution_id, display_name, refresh_every_seconds,
                                   credentials_sealed, credentials_key_id)
           values ($1, $2, $3, $4, $5, $6, $7)"#,
        new.id,
        new.tenant_id,
        new.institution_id,
        new.display_name,
        new.refresh_every_seconds,
        new.credentials_sealed,
        new.credentials_key_id,
    )
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn get(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Connection>, sqlx::Error> {
    sqlx::query_as!(
        ConnectionRow,
        r#"select c.id, c.tenant_id, c.institution_id, i.name as institution_name, c.display_name, c.state, c.paused,
                  c.refresh_every_seconds, c.credentials_updated_at, c.last_attempt_at, c.last_success_at,
                  c.data_as_of, c.failure_streak, c.error_code, c.error_raw, c.error_at, c.next_refresh_at,
                  c.version, c.created_at, c.updated_at, c.disconnected_at,
                  (select j.run_at from job j
                   where j.unique_key = 'refresh:' || c.id::text and j.state = 'available') as retry_at,
                  oi.id as "incident_id?", oi.title as "incident_title?", oi.wait_until as "incident_wait_until?"
           from connection c join institution i on i.id = c.institution_id
                left join incident oi on oi.institution_id = c.institution_id and oi.state = 'open'
           where c.id = $1"#,
        id
    )
    .fetch_optional(executor)
    .await?
    .map(ConnectionRow::into_connection)
    .transpose()
}

/// One page of connections in creation order.
pub async fn list(
    executor: impl PgExecutor<'_>,
    filter: &ListFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Connection>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    let pattern = filter.q.as_deref().map(|q| format!("%{}%", crate::institution::store::escape_like(q)));
    sqlx::query_as!(
        ConnectionRow,
        r#"select c.id, c.tenant_id, c.institution_id, i.name as institution_name, c.display_name, c.state, c.paused,
                  c.refresh_every_seconds, c.credentials_updated_at, c.last_attempt_at, c.last_success_at,
                  c.data_as_of, c.failure_streak, c.error_code, c.error_raw, c.error_at, c.next_refresh_at,
                  c.version, c.created_at, c.updated_at, c.disconnected_at,
                  (select j.run_at from job j
                   where j.unique_key = 'refresh:' || c.id::text and j.state = 'available') as retry_at,
                  oi.id as "incident_id?", oi.title as "incident_title?", oi.wait_until as "incident_wait_until?"
           from connection c join institution i on i.id = c.institution_id
                left join incident oi on oi.institution_id = c.institution_id and oi.state = 'open'
           where ($1::timestamptz is null or (c.created_at, c.id) > ($1, $2::uuid))
             and ($3::uuid is null or c.tenant_id = $3)
             and ($4::text is null or c.state = $4)
             and ($5::uuid is null or c.institution_id = $5)
             and ($6::int is null or c.error_code = $6)
             and ($7::timestamptz is null
                  or (c.state <> 'disconnected' and coalesce(c.last_success_at, c.created_at) < $7))
             and ($8::text is null or c.display_name ilike $8 or i.name ilike $8)
           order by c.created_at, c.id
           limit $9"#,
        after_time,
        after_id,
        filter.tenant_id,
        filter.state.map(State::as_str),
        filter.institution_id,
        filter.error_code,
        filter.stale_before,
        pattern,
        limit,
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(ConnectionRow::into_connection)
    .collect()
}

/// Changes to apply to a connection; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct Changes<'a> {
    pub display_name: Option<&'a str>,
    pub paused: Option<bool>,
    pub refresh_every_seconds: Option<i32>,
    pub credentials: Option<(&'a [u8], &'a str)>,
}

/// Applies changes if the connection is still at `expected_version`; returns the new version,
/// or None when someone else changed it first (or it does not exist).
pub async fn update(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    expected_version: i32,
    changes: &Changes<'_>,
) -> Result<Option<i32>, sqlx::Error> {
    let (sealed, key_id) = changes.credentials.unzip();
    sqlx::query_scalar!(
        r#"update connection set
               display_name = coalesce($3, display_name),
               paused = coalesce($4, paused),
               refresh_every_seconds = coalesce($5, refresh_every_seconds),
               credentials_sealed = coalesce($6, credentials_sealed),
               credentials_key_id = coalesce($7, credentials_key_id),
               credentials_updated_at = case when $6::bytea is null then credentials_updated_at else now() end,
               version = version + 1,
               updated_at = now()
           where id = $1 and version = $2
           returning version"#,
        id,
        expected_version,
        changes.display_name,
        changes.paused,
        changes.refresh_every_seconds,
        sealed,
        key_id,
    )
    .fetch_optional(executor)
    .await
}

/// Clears an error the user fixed by entering new credentials (sign-in, MFA, lockout pause).
/// Keeps the failure streak: only a successful refresh ends it (and then counts as a repair).
pub async fn clear_user_error(executor: impl PgExecutor<'_>, id: Uuid, codes: &[i32]) -> Result<bool, sqlx::Error> {
    let result = sqlx::query!(
        r#"update connection set error_code = null, error_raw = null, error_at = null,
                  state = 'syncing', updated_at = now()
           where id = $1 and error_code = any($2)"#,
        id,
        codes,
    )
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Disconnects: refreshes stop, data stays. Returns the new version, or None if the version
/// moved (or the connection does not exist).
pub async fn disconnect(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    expected_version: i32,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"update connection set state = 'disconnected', disconnected_at = now(), next_refresh_at = null,
                  stale = false, version = version + 1, updated_at = now()
           where id = $1 and version = $2 and state <> 'disconnected'
           returning version"#,
        id,
        expected_version,
    )
    .fetch_optional(executor)
    .await
}

/// Deletes a connection and everything of it (accounts, timeline, transactions cascade).
pub async fn purge(executor: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query!("delete from connection where id = $1", id).execute(executor).await?.rows_affected() == 1)
}

/// The sealed credentials and the key id they were sealed under.
pub async fn sealed_credentials(
    executor: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<(Vec<u8>, String)>, sqlx::Error> {
    Ok(sqlx::query!("select credentials_sealed, credentials_key_id from connection where id = $1", id)
        .fetch_optional(executor)
        .await?
        .map(|row| (row.credentials_sealed, row.credentials_key_id)))
}

/// Connections whose credentials are sealed under a key other than `current`, a batch at a time.
pub async fn sealed_under_other_keys(
    executor: impl PgExecutor<'_>,
    current: &str,
    limit: i64,
) -> Result<Vec<(Uuid, Vec<u8>, String)>, sqlx::Error> {
    Ok(sqlx::query!(
        r#"select id, credentials_sealed, credentials_key_id from connection
           where credentials_key_id <> $1 order by id limit $2 for update skip locked"#,
        current,
        limit,
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(|row| (row.id, row.credentials_sealed, row.credentials_key_id))
    .collect())
}

/// Replaces sealed credentials without counting as a user change (key rotation).
pub async fn reseal(executor: impl PgExecutor<'_>, id: Uuid, sealed: &[u8], key_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update connection set credentials_sealed = $2, credentials_key_id = $3 where id = $1",
        id,
        sealed,
        key_id
    )
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn insert_event(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    kind: &str,
    detail: &serde_json::Value,
    actor: Actor,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"insert into connection_event (id, connection_id, kind, detail, actor_key_id, actor_role)
           values ($1, $2, $3, $4, $5, $6)"#,
        // Time-ordered ids break ties between events of the same instant.
        Uuid::now_v7(),
        connection_id,
        kind,
        detail,
        actor.key_id,
        actor.role,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// One page of a connection's timeline, oldest first.
pub async fn events(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as!(
        Event,
        r#"select id, connection_id, kind, detail, actor_key_id, actor_role, occurred_at
           from connection_event
           where connection_id = $1 and ($2::timestamptz is null or (occurred_at, id) > ($2, $3::uuid))
           order by occurred_at, id
           limit $4"#,
        connection_id,
        after_time,
        after_id,
        limit,
    )
    .fetch_all(executor)
    .await
}

struct AccountRow {
    id: Uuid,
    connection_id: Uuid,
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
}

impl From<AccountRow> for Account {
    fn from(row: AccountRow) -> Self {
        Self {
            id: row.id,
            connection_id: row.connection_id,
            bank_account_id: row.bank_account_id,
            kind: AccountKind::parse(&row.kind),
            masked_number: row.masked_number,
            bank_name: row.bank_name,
            display_name: row.display_name,
            state: AccountState::parse(&row.state),
            currency: row.currency,
            balance: row.balance,
            available: row.available,
            balance_as_of: row.balance_as_of,
            error_code: row.error_code,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

pub async fn accounts(executor: impl PgExecutor<'_>, connection_id: Uuid) -> Result<Vec<Account>, sqlx::Error> {
    Ok(sqlx::query_as!(
        AccountRow,
        r#"select id, connection_id, bank_account_id, kind, masked_number, bank_name, display_name, state, currency,
                  balance, available, balance_as_of, error_code, created_at, updated_at
           from account where connection_id = $1 order by created_at, id"#,
        connection_id
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(Account::from)
    .collect())
}

/// An account as a bank reports it, for refreshes to upsert.
#[derive(Debug)]
pub struct ReportedAccount<'a> {
    pub bank_account_id: &'a str,
    pub kind: AccountKind,
    pub masked_number: &'a str,
    pub bank_name: &'a str,
    pub currency: &'a str,
    pub balance: Option<Decimal>,
    pub available: Option<Decimal>,
    pub balance_as_of: Option<DateTime<Utc>>,
    pub error_code: Option<i32>,
}

/// A new account's display name: the bank's name, or its id when the bank gives none.
fn initial_display_name<'a>(reported: &ReportedAccount<'a>) -> &'a str {
    if reported.bank_name.trim().is_empty() { reported.bank_account_id } else { reported.bank_name }
}

fn reported_state(reported: &ReportedAccount<'_>) -> &'static str {
    match reported.error_code {
        Some(324) => "not_found",
        Some(708) => "closed",
        _ => "active",
    }
}

/// Inserts or updates an account by the bank's id. A new account takes the bank's name as its
/// display name; an existing one keeps the name and state the user gave it, unless it had gone
/// missing and is back.
pub async fn upsert_account(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    reported: &ReportedAccount<'_>,
) -> Result<Uuid, sqlx::Error> {
    let display_name = initial_display_name(reported);
    let state = reported_state(reported);
    sqlx::query_scalar!(
        r#"insert into account (id, connection_id, bank_account_id, kind, masked_number, bank_name, display_name,
                                state, currency, balance, available, balance_as_of, error_code)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           on conflict (connection_id, bank_account_id) do update set
               kind = excluded.kind, masked_number = excluded.masked_number, bank_name = excluded.bank_name,
               currency = excluded.currency,
               balance = coalesce(excluded.balance, account.balance),
               available = coalesce(excluded.available, account.available),
               balance_as_of = coalesce(excluded.balance_as_of, account.balance_as_of),
               error_code = excluded.error_code,
               state = case
                   when account.state = 'hidden' then 'hidden'
                   else excluded.state
               end,
               updated_at = now()
           returning id"#,
        Uuid::new_v4(),
        connection_id,
        reported.bank_account_id,
        reported.kind.as_str(),
        reported.masked_number,
        reported.bank_name,
        display_name,
        state,
        reported.currency,
        reported.balance,
        reported.available,
        reported.balance_as_of,
        reported.error_code,
    )
    .fetch_one(executor)
    .await
}

/// An account the bank listed in a refresh, with how the provider addresses it next time.
#[derive(Debug)]
pub struct ListedAccount<'a> {
    pub reported: ReportedAccount<'a>,
    pub provider_ref: Option<&'a serde_json::Value>,
}

/// Everything a refresh learnt about a connection's accounts, in one statement: upserts the
/// listed ones as [`upsert_account`] does (and keeps their provider references), and marks the
/// ones the bank no longer lists as not found (QuickBooks 324), forgetting their references so
/// the next refresh does not ask for them. Returns each listed account's id, in `listed` order.
pub async fn store_listed_accounts(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    listed: &[ListedAccount<'_>],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let column = |field: fn(&ReportedAccount<'_>) -> String| listed.iter().map(|a| field(&a.reported)).collect();
    let ids: Vec<Uuid> = listed.iter().map(|_| Uuid::new_v4()).collect();
    let bank_ids: Vec<String> = column(|a| a.bank_account_id.to_owned());
    let kinds: Vec<String> = column(|a| a.kind.as_str().to_owned());
    let masked: Vec<String> = column(|a| a.masked_number.to_owned());
    let bank_names: Vec<String> = column(|a| a.bank_name.to_owned());
    let display_names: Vec<String> = column(|a| initial_display_name(a).to_owned());
    let states: Vec<String> = column(|a| reported_state(a).to_owned());
    let currencies: Vec<String> = column(|a| a.currency.to_owned());
    let balances: Vec<Option<Decimal>> = listed.iter().map(|a| a.reported.balance).collect();
    let available: Vec<Option<Decimal>> = listed.iter().map(|a| a.reported.available).collect();
    let as_of: Vec<Option<DateTime<Utc>>> = listed.iter().map(|a| a.reported.balance_as_of).collect();
    let error_codes: Vec<Option<i32>> = listed.iter().map(|a| a.reported.error_code).collect();
    let refs: Vec<Option<serde_json::Value>> = listed.iter().map(|a| a.provider_ref.cloned()).collect();
    let rows = sqlx::query!(
        r#"with listed as (
               select * from unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                    $8::text[], $9::text[], $10::numeric[], $11::numeric[], $12::timestamptz[],
                                    $13::int[], $14::jsonb[])
                   with ordinality
                   as l(id, bank_account_id, kind, masked_number, bank_name, display_name, state, currency, balance,
                        available, balance_as_of, error_code, provider_ref, position)
           ),
           upserted as (
               insert into account (id, connection_id, bank_account_id, kind, masked_number, bank_name,
                                    display_name, state, currency, balance, available, balance_as_of, error_code,
                                    provider_ref)
               select id, $1, bank_account_id, kind, masked_number, bank_name, display_name, state, currency,
                      balance, available, balance_as_of, error_code, provider_ref
               from listed
               on conflict (connection_id, bank_account_id) do update set
                   kind = excluded.kind, masked_number = excluded.masked_number, bank_name = excluded.bank_name,
                   currency = excluded.currency,
                   balance = coalesce(excluded.balance, account.balance),
                   available = coalesce(excluded.available, account.available),
                   balance_as_of = coalesce(excluded.balance_as_of, account.balance_as_of),
                   error_code = excluded.error_code,
                   state = case when account.state = 'hidden' then 'hidden' else excluded.state end,
                   provider_ref = coalesce(excluded.provider_ref, account.provider_ref),
                   updated_at = now()
               returning id, bank_account_id
           ),
           -- Disjoint from the upserted rows: one statement never touches a row twice.
           vanished as (
               update account set
                   state = case when state = 'active' then 'not_found' else state end,
                   error_code = case when state = 'active' then 324 else error_code end,
                   provider_ref = null,
                   updated_at = now()
               where connection_id = $1 and not (bank_account_id = any($3))
                 and (state = 'active' or provider_ref is not null)
           )
           select u.id as "id!" from upserted u join listed l using (bank_account_id) order by l.position"#,
        connection_id,
        &ids,
        &bank_ids,
        &kinds,
        &masked,
        &bank_names,
        &display_names,
        &states,
        &currencies,
        &balances as &[Option<Decimal>],
        &available as &[Option<Decimal>],
        &as_of as &[Option<DateTime<Utc>>],
        &error_codes as &[Option<i32>],
        &refs as &[Option<serde_json::Value>],
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// Changes a user makes to an account.
#[derive(Debug, Default)]
pub struct AccountChanges<'a> {
    pub display_name: Option<&'a str>,
    pub hidden: Option<bool>,
    pub bank_account_id: Option<&'a str>,
}

#[derive(Debug)]
pub enum AccountUpdate {
    Updated(Box<Account>),
    NotFound,
    /// Another account of the connection already has that bank id.
    BankIdTaken,
}

pub async fn update_account(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    account_id: Uuid,
    changes: &AccountChanges<'_>,
) -> Result<AccountUpdate, sqlx::Error> {
    let result = sqlx::query_as!(
        AccountRow,
        r#"update account set
               display_name = coalesce($3, display_name),
               state = case
                   when $4::bool is true then 'hidden'
                   when $4::bool is false and state = 'hidden' then 'active'
                   when $5::text is not null then 'active'
                   else state
               end,
               bank_account_id = coalesce($5, bank_account_id),
               error_code = case when $5::text is not null then null else error_code end,
               updated_at = now()
           where id = $2 and connection_id = $1
           returning id, connection_id, bank_account_id, kind, masked_number, bank_name, display_name, state, currency,
                     balance, available, balance_as_of, error_code, created_at, updated_at"#,
        connection_id,
        account_id,
        changes.display_name,
        changes.hidden,
        changes.bank_account_id,
    )
    .fetch_optional(executor)
    .await;
    match result {
        Ok(Some(row)) => Ok(AccountUpdate::Updated(Box::new(row.into()))),
        Ok(None) => Ok(AccountUpdate::NotFound),
        // 23505 unique_violation on (connection_id, bank_account_id).
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("23505") => Ok(AccountUpdate::BankIdTaken),
        Err(error) => Err(error),
    }
}

/// Display names that more than one visible account of the tenant uses: a known cause of
/// QuickBooks 324, because a bank feed cannot tell such accounts apart.
pub async fn duplicate_account_names(
    executor: impl PgExecutor<'_>,
    tenant_id: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select min(a.display_name) as "name!"
           from account a join connection c on c.id = a.connection_id
           where c.tenant_id = $1 and a.state <> 'hidden' and c.state <> 'disconnected'
           group by lower(a.display_name)
           having count(*) > 1
           order by 1"#,
        tenant_id
    )
    .fetch_all(executor)
    .await
}

/// Records a successful refresh and its timeline events in one statement: `refresh.succeeded`
/// with `detail`, then `connection.state_changed` when the connection was not healthy before.
/// Returns the state the connection had before (`None` when it is disconnected or gone).
pub async fn record_success(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    at: DateTime<Utc>,
    data_as_of: Option<DateTime<Utc>>,
    detail: &serde_json::Value,
) -> Result<Option<String>, sqlx::Error> {
    // Time-ordered ids, made in event order, break ties between events of the same instant.
    let (succeeded_id, changed_id) = (Uuid::now_v7(), Uuid::now_v7());
    sqlx::query_scalar!(
        r#"with before as (select state from connection where id = $1),
           updated as (
               update connection set state = 'healthy', last_attempt_at = $2, last_success_at = $2,
                      data_as_of = greatest(data_as_of, $3), failure_streak = 0, error_code = null,
                      error_raw = null, error_at = null, stale = false, updated_at = now()
               where id = $1 and state <> 'disconnected'
               returning id
           ),
           events as (
               insert into connection_event (id, connection_id, kind, detail, actor_role)
               select e.id, $1, e.kind, e.detail, 'system'
               from before b,
                    lateral (values (1, $4::uuid, 'refresh.succeeded', $5::jsonb),
                                    (2, $6::uuid, 'connection.state_changed',
                                     jsonb_build_object('from', b.state, 'to', 'healthy'))) as e(n, id, kind, detail)
               where e.n = 1 or (b.state <> 'healthy' and exists (select 1 from updated))
               order by e.n
           )
           select (select state from before) as "before!" from updated"#,
        id,
        at,
        data_as_of,
        succeeded_id,
        detail,
        changed_id,
    )
    .fetch_optional(executor)
    .await
}

/// Records a failed refresh with its catalogue code and the state that code implies. Returns
/// the state the connection had before.
pub async fn record_failure(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    at: DateTime<Utc>,
    state: State,
    code: i32,
    raw: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"with before as (select state from connection where id = $1)
           update connection set state = $3, last_attempt_at = $2, failure_streak = failure_streak + 1,
                  error_at = case when error_code is distinct from $4 then $2 else error_at end,
                  error_code = $4, error_raw = $5, updated_at = now()
           where id = $1 and state <> 'disconnected'
           returning (select state from before) as "before!""#,
        id,
        at,
        state.as_str(),
        code,
        raw,
    )
    .fetch_optional(executor)
    .await
}

/// What a refresh needs to reach the bank.
#[derive(Debug)]
pub struct RefreshTarget {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub institution_id: Uuid,
    /// Failed refreshes since the last success: a success after any is a repair.
    pub failure_streak: i32,
    pub state: State,
    pub last_success_at: Option<DateTime<Utc>>,
    pub sealed: Vec<u8>,
    pub key_id: String,
    /// The provider references of the accounts the bank listed last time.
    pub known_accounts: Vec<serde_json::Value>,
}

/// One query, not the connection's full view: this runs once per refresh.
pub async fn refresh_target(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<RefreshTarget>, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"select c.id, c.tenant_id, c.institution_id, c.failure_streak, c.state, c.last_success_at,
                  c.credentials_sealed, c.credentials_key_id,
                  array(select a.provider_ref from account a
                        where a.connection_id = c.id and a.provider_ref is not null
                        order by a.created_at, a.id) as "known_accounts!"
           from connection c where c.id = $1"#,
        id
    )
    .fetch_optional(executor)
    .await?
    else {
        return Ok(None);
    };
    let state = State::parse(&row.state)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown connection state `{}`", row.state).into()))?;
    Ok(Some(RefreshTarget {
        id: row.id,
        tenant_id: row.tenant_id,
        institution_id: row.institution_id,
        failure_streak: row.failure_streak,
        state,
        last_success_at: row.last_success_at,
        sealed: row.credentials_sealed,
        key_id: row.credentials_key_id,
        known_accounts: row.known_accounts,
    }))
}

/// Claims connections whose scheduled refresh is due and moves their next refresh one interval
/// on, in the caller's transaction (which also enqueues their jobs): on many replicas each due
/// refresh is taken exactly once, and a crash before commit loses none.
pub async fn take_due(executor: impl PgExecutor<'_>, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"update connection c set next_refresh_at = $1 + make_interval(secs => c.refresh_every_seconds)
           from (select id from connection
                 where next_refresh_at <= $1 and not paused
                   and state not in ('disconnected', 'needs_user_action')
                 order by next_refresh_at limit $2 for update skip locked) due
           where c.id = due.id
           returning c.id"#,
        now,
        limit,
    )
    .fetch_all(executor)
    .await
}

/// Gives a connection its first scheduled refresh somewhere within one interval, so a fleet
/// created at once does not refresh at once.
pub async fn schedule_first_refresh(executor: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"update connection set next_refresh_at = now() + make_interval(secs => refresh_every_seconds * random())
           where id = $1 and next_refresh_at is null"#,
        id
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// The tenant an account belongs to, for access checks.
pub async fn account_tenant(executor: impl PgExecutor<'_>, account_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "select c.tenant_id from account a join connection c on c.id = a.connection_id where a.id = $1",
        account_id
    )
    .fetch_optional(executor)
    .await
}

/// Marks connections that have not succeeded for longer than `stale_after` as stale, and
/// degrades the ones that still looked fine, so nothing stays green while silently stale.
/// Returns the connections whose state changed, with the state they had.
pub async fn mark_stale(
    executor: impl PgExecutor<'_>,
    now: DateTime<Utc>,
    stale_after: chrono::TimeDelta,
) -> Result<Vec<Degraded>, sqlx::Error> {
    Ok(sqlx::query!(
        r#"with stale as (
               select id, state from connection
               where not stale and state <> 'disconnected' and coalesce(last_success_at, created_at) < $1
               for update skip locked
           )
           update connection c
           set stale = true,
               state = case when stale.state in ('healthy', 'syncing') then 'degraded' else c.state end,
               updated_at = now()
           from stale where c.id = stale.id
           returning c.id, c.tenant_id, c.institution_id, stale.state as "before!", c.state as "after!""#,
        now - stale_after,
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .filter(|row| row.before != row.after)
    .map(|row| Degraded {
        id: row.id,
        tenant_id: row.tenant_id,
        institution_id: row.institution_id,
        before: row.before,
    })
    .collect())
}

/// A connection the staleness sweep degraded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degraded {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub institution_id: Uuid,
    pub before: String,
}
