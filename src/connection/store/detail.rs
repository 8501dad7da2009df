//! One connection as a single-connection page shows it: the row, its accounts and the display
//! names its accounts share with other accounts of the tenant, in one statement. The web front end
//! and the helpdesk read this on every page view; three round trips (and the tenant-wide grouping
//! of every account name) made it slower than a list of twenty.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgExecutor;
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
    /// another visible account of the tenant: a known cause of QuickBooks 324.
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
                  acc.ids as "account_ids!: Vec<Uuid>", acc.bank_ids as "account_bank_ids!: Vec<String>",
                  acc.kinds as "account_kinds!: Vec<String>", acc.masked as "account_masked!: Vec<String>",
                  acc.bank_names as "account_bank_names!: Vec<String>",
                  acc.display_names as "account_display_names!: Vec<String>",
                  acc.states as "account_states!: Vec<String>", acc.currencies as "account_currencies!: Vec<String>",
                  acc.balances as "account_balances!: Vec<Option<Decimal>>",
                  acc.available as "account_available!: Vec<Option<Decimal>>",
                  acc.balances_as_of as "account_balances_as_of!: Vec<Option<DateTime<Utc>>>",
                  acc.error_codes as "account_error_codes!: Vec<Option<i32>>",
                  acc.created as "account_created!: Vec<DateTime<Utc>>",
                  acc.updated as "account_updated!: Vec<DateTime<Utc>>",
                  dup.names as "duplicate_names!: Vec<String>"
           from connection c join institution i on i.id = c.institution_id
                left join incident oi on oi.institution_id = c.institution_id and oi.state = 'open'
                -- One sorted pass over the accounts feeds every array alike (14 ordered
                -- aggregates sorted the same rows 14 times: about a sixth of the statement's time).
                cross join lateral (
                    select coalesce(array_agg(a.id), '{}') as ids,
                           coalesce(array_agg(a.bank_account_id), '{}') as bank_ids,
                           coalesce(array_agg(a.kind), '{}') as kinds,
                           coalesce(array_agg(a.masked_number), '{}') as masked,
                           coalesce(array_agg(a.bank_name), '{}') as bank_names,
                           coalesce(array_agg(a.display_name), '{}') as display_names,
                           coalesce(array_agg(a.state), '{}') as states,
                           coalesce(array_agg(a.currency), '{}') as currencies,
                           coalesce(array_agg(a.balance), '{}') as balances,
                           coalesce(array_agg(a.available), '{}') as available,
                           coalesce(array_agg(a.balance_as_of), '{}') as balances_as_of,
                           coalesce(array_agg(a.error_code), '{}') as error_codes,
                           coalesce(array_agg(a.created_at), '{}') as created,
                           coalesce(array_agg(a.updated_at), '{}') as updated,
                           coalesce(array_agg(lower(a.display_name)), '{}') as lower_names
                    from (select * from account where connection_id = c.id order by created_at, id) a
                ) acc
                -- Only the names this connection's accounts use are grouped, not every account
                -- name of the tenant. The names come from the pass above: a semi-join probing
                -- lower(display_name) once per tenant account cost a fifth of the statement.
                cross join lateral (
                    select coalesce(array_agg(shared.name order by shared.name), '{}') as names
                    from (select min(o.display_name) as name
                          from account o join connection oc on oc.id = o.connection_id
                          where lower(o.display_name) = any(acc.lower_names)
                            and oc.tenant_id = c.tenant_id and o.state <> 'hidden' and oc.state <> 'disconnected'
                          group by lower(o.display_name)
                          having count(*) > 1) shared
                ) dup
           where c.id = $1"#,
        id
    )
    .fetch_optional(executor)
    .await?
    else {
        return Ok(None);
    };
    let accounts = (0..row.account_ids.len())
        .map(|n| {
            let at = |column: &[String]| column.get(n).cloned().unwrap_or_default();
            Account::try_from(AccountRow {
                id: row.account_ids[n],
                connection_id: row.id,
                bank_account_id: at(&row.account_bank_ids),
                kind: at(&row.account_kinds),
                masked_number: at(&row.account_masked),
                bank_name: at(&row.account_bank_names),
                display_name: at(&row.account_display_names),
                state: at(&row.account_states),
                currency: at(&row.account_currencies),
                balance: row.account_balances.get(n).copied().flatten(),
                available: row.account_available.get(n).copied().flatten(),
                balance_as_of: row.account_balances_as_of.get(n).copied().flatten(),
                error_code: row.account_error_codes.get(n).copied().flatten(),
                created_at: row.account_created.get(n).copied().unwrap_or(row.created_at),
                updated_at: row.account_updated.get(n).copied().unwrap_or(row.updated_at),
            })
        })
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
    Ok(Some(ConnectionDetail { connection, accounts, duplicate_account_names: row.duplicate_names }))
}
