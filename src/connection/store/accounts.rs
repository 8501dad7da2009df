//! A connection's accounts: as the bank reports them, as the user renames, hides or remaps them.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::catalog::Code;
use crate::connection::*;

/// Codes are `int` columns; one that does not fit is refused before the statement runs.
fn stored_code(code: Option<Code>) -> Result<Option<i32>, sqlx::Error> {
    code.map(i32::try_from).transpose().map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

pub(super) struct AccountRow {
    pub(super) id: Uuid,
    pub(super) connection_id: Uuid,
    pub(super) bank_account_id: String,
    pub(super) kind: String,
    pub(super) masked_number: String,
    pub(super) bank_name: String,
    pub(super) display_name: String,
    pub(super) state: String,
    pub(super) currency: String,
    pub(super) balance: Option<Decimal>,
    pub(super) available: Option<Decimal>,
    pub(super) balance_as_of: Option<DateTime<Utc>>,
    pub(super) error_code: Option<i32>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

impl TryFrom<AccountRow> for Account {
    type Error = sqlx::Error;

    /// An account kind or state this code does not know is an error, not a default.
    fn try_from(row: AccountRow) -> Result<Self, sqlx::Error> {
        let unknown = |what: &str, text: &str| sqlx::Error::Decode(format!("unknown account {what} `{text}`").into());
        Ok(Self {
            id: row.id,
            connection_id: row.connection_id,
            bank_account_id: row.bank_account_id,
            kind: AccountKind::parse(&row.kind).ok_or_else(|| unknown("kind", &row.kind))?,
            masked_number: row.masked_number,
            bank_name: row.bank_name,
            display_name: row.display_name,
            state: AccountState::parse(&row.state).ok_or_else(|| unknown("state", &row.state))?,
            currency: row.currency,
            balance: row.balance,
            available: row.available,
            balance_as_of: row.balance_as_of,
            error_code: row
                .error_code
                .map(Code::try_from)
                .transpose()
                .map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub async fn accounts(executor: impl PgExecutor<'_>, connection_id: Uuid) -> Result<Vec<Account>, sqlx::Error> {
    sqlx::query_as!(
        AccountRow,
        r#"select id, connection_id, bank_account_id, kind, masked_number, bank_name, display_name, state, currency,
                  balance, available, balance_as_of, error_code, created_at, updated_at
           from account where connection_id = $1 order by created_at, id"#,
        connection_id
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(Account::try_from)
    .collect()
}

/// An account as a bank reports it, for refreshes to upsert.
#[derive(Debug, Clone)]
pub struct ReportedAccount<'a> {
    pub bank_account_id: &'a str,
    pub kind: AccountKind,
    pub masked_number: &'a str,
    pub bank_name: &'a str,
    pub currency: &'a str,
    pub balance: Option<Decimal>,
    pub available: Option<Decimal>,
    pub balance_as_of: Option<DateTime<Utc>>,
    pub error_code: Option<Code>,
}

/// A new account's display name: the bank's name, or its id when the bank gives none.
fn initial_display_name<'a>(reported: &ReportedAccount<'a>) -> &'a str {
    if reported.bank_name.trim().is_empty() { reported.bank_account_id } else { reported.bank_name }
}

fn reported_state(reported: &ReportedAccount<'_>) -> &'static str {
    AccountState::reported(reported.error_code).as_str()
}

/// Inserts or updates one account by the bank's id, leaving the connection's other accounts
/// alone (tests and tools that add accounts one by one): [`store_listed_accounts`] without its
/// "unlisted accounts vanished" step.
pub async fn upsert_account(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    reported: &ReportedAccount<'_>,
) -> Result<Uuid, sqlx::Error> {
    let listed = [ListedAccount { reported: reported.clone(), provider_ref: None }];
    let ids = upsert_listed(executor, &[(connection_id, &listed[..])], false).await?;
    ids.into_iter().next().ok_or(sqlx::Error::RowNotFound)
}

/// An account the bank listed in a refresh, with how the provider addresses it next time.
#[derive(Debug)]
pub struct ListedAccount<'a> {
    pub reported: ReportedAccount<'a>,
    pub provider_ref: Option<&'a serde_json::Value>,
}

/// Everything a batch of refreshes learnt about their connections' accounts, in one statement:
/// upserts the listed ones by the bank's id (a new account takes the bank's name as its display
/// name; an existing one keeps the name and state the user gave it, unless it had gone missing
/// and is back; provider references are kept), and marks the ones the bank no longer lists as
/// not found (QuickBooks 324), forgetting their references so the next refresh does not ask for
/// them. A connection appears once, and the caller holds its lock. An account listed as it is
/// stored is not rewritten. Returns each connection's listed accounts' ids, in order.
pub async fn store_listed_accounts(
    executor: impl PgExecutor<'_>,
    connections: &[(Uuid, &[ListedAccount<'_>])],
) -> Result<Vec<Vec<Uuid>>, sqlx::Error> {
    let mut ids = upsert_listed(executor, connections, true).await?.into_iter();
    Ok(connections.iter().map(|(_, listed)| ids.by_ref().take(listed.len()).collect()).collect())
}

/// The upsert of [`store_listed_accounts`]; the ids of every connection's listed accounts, in
/// order, one connection after another.
async fn upsert_listed(
    executor: impl PgExecutor<'_>,
    connections: &[(Uuid, &[ListedAccount<'_>])],
    unlisted_vanished: bool,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let listed =
        || connections.iter().flat_map(|(connection_id, listed)| listed.iter().map(move |a| (*connection_id, a)));
    let column = |field: fn(&ReportedAccount<'_>) -> String| listed().map(|(_, a)| field(&a.reported)).collect();
    let owners: Vec<Uuid> = listed().map(|(connection_id, _)| connection_id).collect();
    let ids: Vec<Uuid> = listed().map(|_| Uuid::new_v4()).collect();
    let bank_ids: Vec<String> = column(|a| a.bank_account_id.to_owned());
    let kinds: Vec<String> = column(|a| a.kind.as_str().to_owned());
    let masked: Vec<String> = column(|a| a.masked_number.to_owned());
    let bank_names: Vec<String> = column(|a| a.bank_name.to_owned());
    let display_names: Vec<String> = column(|a| initial_display_name(a).to_owned());
    let states: Vec<String> = column(|a| reported_state(a).to_owned());
    let currencies: Vec<String> = column(|a| a.currency.to_owned());
    let balances: Vec<Option<Decimal>> = listed().map(|(_, a)| a.reported.balance).collect();
    let available: Vec<Option<Decimal>> = listed().map(|(_, a)| a.reported.available).collect();
    let as_of: Vec<Option<DateTime<Utc>>> = listed().map(|(_, a)| a.reported.balance_as_of).collect();
    let error_codes = listed().map(|(_, a)| stored_code(a.reported.error_code)).collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<Option<serde_json::Value>> = listed().map(|(_, a)| a.provider_ref.cloned()).collect();
    let vanishing: Vec<Uuid> = if unlisted_vanished {
        connections.iter().map(|(connection_id, _)| *connection_id).collect()
    } else {
        Vec::new()
    };
    let rows = sqlx::query!(
        r#"with listed as (
               select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                    $8::text[], $9::text[], $10::numeric[], $11::numeric[], $12::timestamptz[],
                                    $13::int[], $14::jsonb[])
                   with ordinality
                   as l(connection_id, id, bank_account_id, kind, masked_number, bank_name, display_name, state,
                        currency, balance, available, balance_as_of, error_code, provider_ref, position)
           ),
           -- Each listed account beside its stored row, if any, and whether the listing changes
           -- it. Most refreshes list the accounts as they are stored: those rows are not touched
           -- at all (an upsert's conflict path would lock, and so write, each one even when its
           -- `where` leaves it as it is; issue #17). `offset 0` keeps each listed account a probe
           -- of the (connection, bank id) key: as a join, a generic plan made while the table was
           -- small hashed a scan of all of it, and kept doing so as the table grew (session 36).
           compared as (
               select l.*, a.id as stored_id,
                      (a.kind, a.masked_number, a.bank_name, a.currency, a.balance, a.available,
                       a.balance_as_of, a.error_code, a.state, a.provider_ref)
                      is distinct from
                      (l.kind, l.masked_number, l.bank_name, l.currency, coalesce(l.balance, a.balance),
                       coalesce(l.available, a.available), coalesce(l.balance_as_of, a.balance_as_of), l.error_code,
                       case when a.state = 'hidden' then 'hidden' else l.state end,
                       coalesce(l.provider_ref, a.provider_ref)) as differs
               from listed l
               left join lateral (select * from account a
                                  where a.connection_id = l.connection_id and a.bank_account_id = l.bank_account_id
                                  offset 0) a on true
           ),
           -- A conflict here means another writer added the account meanwhile: nothing is
           -- inserted, no id comes back, and the caller reports the missing lock.
           inserted as (
               insert into account (id, connection_id, bank_account_id, kind, masked_number, bank_name,
                                    display_name, state, currency, balance, available, balance_as_of, error_code,
                                    provider_ref)
               select id, connection_id, bank_account_id, kind, masked_number, bank_name, display_name, state,
                      currency, balance, available, balance_as_of, error_code, provider_ref
               from compared where stored_id is null
               on conflict (connection_id, bank_account_id) do nothing
               returning id, connection_id, bank_account_id
           ),
           -- A changed account keeps the name the user gave it and a state they hid it in. The rows
           -- to write are named by primary key, as the queue's batches name their jobs.
           updated as (
               update account a set
                   kind = c.kind, masked_number = c.masked_number, bank_name = c.bank_name, currency = c.currency,
                   balance = coalesce(c.balance, a.balance),
                   available = coalesce(c.available, a.available),
                   balance_as_of = coalesce(c.balance_as_of, a.balance_as_of),
                   error_code = c.error_code,
                   state = case when a.state = 'hidden' then 'hidden' else c.state end,
                   provider_ref = coalesce(c.provider_ref, a.provider_ref),
                   updated_at = now()
               from compared c
               where a.id = any(array(select stored_id from compared where differs)) and a.id = c.stored_id
           ),
           -- Disjoint from the listed rows: one statement never touches a row twice. Each
           -- connection's accounts are a probe by connection, never a scan of the table.
           vanished as (
               update account a set
                   state = case when a.state = 'active' then 'not_found' else a.state end,
                   error_code = case when a.state = 'active' then $15 else a.error_code end,
                   provider_ref = null,
                   updated_at = now()
               where a.id = any(array(
                   select s.id from unnest($16::uuid[]) as v(connection_id),
                        lateral (select s.id from account s
                                 where s.connection_id = v.connection_id
                                   and (s.state = 'active' or s.provider_ref is not null)
                                   and not exists (select 1 from listed l
                                                   where l.connection_id = s.connection_id
                                                     and l.bank_account_id = s.bank_account_id)
                                 offset 0) s))
           )
           -- A stored account's id comes from the statement's snapshot, a new one's from the insert.
           select coalesce(c.stored_id, i.id) as "id?" from compared c
                  left join inserted i using (connection_id, bank_account_id)
           order by c.position"#,
        &owners,
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
        stored_code(Some(Code::ACCOUNT_NOT_FOUND))?,
        &vanishing,
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter()
        .map(|row| {
            row.id.ok_or_else(|| {
                sqlx::Error::Protocol(
                    "a listed account was added by another writer: the connection was not locked".into(),
                )
            })
        })
        .collect()
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
        Ok(Some(row)) => Ok(AccountUpdate::Updated(Box::new(row.try_into()?))),
        Ok(None) => Ok(AccountUpdate::NotFound),
        // 23505 unique_violation on (connection_id, bank_account_id).
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("23505") => Ok(AccountUpdate::BankIdTaken),
        Err(error) => Err(error),
    }
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
