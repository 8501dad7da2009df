//! The statements that change `connection.state`. Only `connection::lifecycle` calls them (they
//! are visible to the `connection` module alone), and each applies a row of the transition table
//! (`Rule`: the states it moves from, the state it moves to) instead of naming states itself.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::catalog::Code;
use crate::connection::State;
use crate::connection::lifecycle::transition::Rule;

/// Codes are `int` columns; one that does not fit is refused before the statement runs.
fn stored_code(code: Code) -> Result<i32, sqlx::Error> {
    i32::try_from(code).map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

fn decode_state(text: &str) -> Result<State, sqlx::Error> {
    State::parse(text).ok_or_else(|| sqlx::Error::Decode(format!("unknown connection state `{text}`").into()))
}

/// Creates the connection row in the table's initial state.
pub async fn insert(
    executor: impl PgExecutor<'_>,
    new: &super::NewConnection<'_>,
    initial: State,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"insert into connection (id, tenant_id, institution_id, display_name, refresh_every_seconds,
                                   credentials_sealed, credentials_key_id, state)
           values ($1, $2, $3, $4, $5, $6, $7, $8)"#,
        new.id,
        new.tenant_id,
        new.institution_id,
        new.display_name,
        new.refresh_every_seconds,
        new.credentials_sealed,
        new.credentials_key_id,
        initial.as_str(),
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Clears an error the user fixed by entering new credentials (sign-in, MFA, lockout pause), if
/// the connection still has one of `codes`. Keeps the failure streak: only a successful refresh
/// ends it (and then counts as a repair).
pub async fn clear_user_error(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    codes: &[Code],
    rule: &Rule,
) -> Result<bool, sqlx::Error> {
    let codes = codes.iter().map(|code| stored_code(*code)).collect::<Result<Vec<i32>, _>>()?;
    let result = sqlx::query!(
        r#"update connection set error_code = null, error_raw = null, error_at = null,
                  state = $3, updated_at = now()
           where id = $1 and error_code = any($2) and state = any($4)"#,
        id,
        &codes,
        rule.to.as_str(),
        &rule.from_names() as &[&str],
    )
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Disconnects: refreshes stop, data stays. Returns the new version, or None if the version
/// moved, the rule does not apply (already disconnected) or the connection does not exist.
pub async fn disconnect(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    expected_version: i32,
    rule: &Rule,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"update connection set state = $3, disconnected_at = now(), next_refresh_at = null,
                  stale = false, version = version + 1, updated_at = now()
           where id = $1 and version = $2 and state = any($4)
           returning version"#,
        id,
        expected_version,
        rule.to.as_str(),
        &rule.from_names() as &[&str],
    )
    .fetch_optional(executor)
    .await
}

/// Records a successful refresh and its timeline events in one statement: `refresh.succeeded`
/// with `detail`, then `connection.state_changed` when the state changed. Returns the state and
/// error code the connection had before (`None` when the rule does not apply, e.g. it is
/// disconnected, or it is gone).
pub async fn record_success(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    success: &Success<'_>,
    detail: &serde_json::Value,
    rule: &Rule,
) -> Result<Option<Before>, sqlx::Error> {
    // Time-ordered ids, made in event order, break ties between events of the same instant.
    let (succeeded_id, changed_id) = (Uuid::now_v7(), Uuid::now_v7());
    let (at, data_as_of) = (success.at, success.data_as_of);
    let error_code = success.error.map(|(code, _)| stored_code(code)).transpose()?;
    let error_raw = success.error.map(|(_, raw)| raw);
    let before = sqlx::query!(
        r#"with before as (select state, error_code from connection where id = $1),
           updated as (
               update connection set state = $7, last_attempt_at = $2, last_success_at = $2,
                      data_as_of = greatest(data_as_of, $3), failure_streak = 0, error_code = $9::int,
                      error_raw = $10::text,
                      error_at = case when $9::int is null then null
                                      when error_code is not distinct from $9::int then error_at else $2 end,
                      stale = false, updated_at = now()
               where id = $1 and state = any($8)
               returning id
           ),
           events as (
               insert into connection_event (id, connection_id, kind, detail, actor_role)
               select e.id, $1, e.kind, e.detail, 'system'
               from before b,
                    lateral (values (1, $4::uuid, 'refresh.succeeded', $5::jsonb),
                                    (2, $6::uuid, 'connection.state_changed',
                                     jsonb_build_object('from', b.state, 'to', $7::text))) as e(n, id, kind, detail)
               where e.n = 1 or (b.state <> $7 and exists (select 1 from updated))
               order by e.n
           )
           select (select state from before) as "state!", (select error_code from before) as error_code
           from updated"#,
        id,
        at,
        data_as_of,
        succeeded_id,
        detail,
        changed_id,
        rule.to.as_str(),
        &rule.from_names() as &[&str],
        error_code,
        error_raw,
    )
    .fetch_optional(executor)
    .await?;
    let Some(before) = before else { return Ok(None) };
    let error_code = before
        .error_code
        .map(|code| Code::try_from(code).map_err(|error| sqlx::Error::Decode(Box::new(error))))
        .transpose()?;
    Ok(Some(Before { state: decode_state(&before.state)?, error_code }))
}

/// What a connection was before a successful refresh changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Before {
    pub state: State,
    pub error_code: Option<Code>,
}

/// A successful refresh as stored: when, the newest data, and the code (with the raw code) of
/// an account the bank refused, which the connection keeps as its error.
#[derive(Debug, Clone, Copy)]
pub struct Success<'a> {
    pub at: DateTime<Utc>,
    pub data_as_of: Option<DateTime<Utc>>,
    pub error: Option<(Code, &'a str)>,
}

/// Records a failed refresh with its catalogue code and the state the rule gives it. Returns
/// the state the connection had before (`None` when the rule does not apply, or it is gone).
pub async fn record_failure(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    at: DateTime<Utc>,
    rule: &Rule,
    code: Code,
    raw: &str,
) -> Result<Option<State>, sqlx::Error> {
    let code = stored_code(code)?;
    let before = sqlx::query_scalar!(
        r#"with before as (select state from connection where id = $1)
           update connection set state = $3, last_attempt_at = $2, failure_streak = failure_streak + 1,
                  error_at = case when error_code is distinct from $4 then $2 else error_at end,
                  error_code = $4, error_raw = $5, updated_at = now()
           where id = $1 and state = any($6)
           returning (select state from before) as "before!""#,
        id,
        at,
        rule.to.as_str(),
        code,
        raw,
        &rule.from_names() as &[&str],
    )
    .fetch_optional(executor)
    .await?;
    before.as_deref().map(decode_state).transpose()
}

/// Marks connections that are not disconnected and have not succeeded for longer than
/// `stale_after` as stale, and applies the staleness rule to their state, so nothing stays green
/// while silently stale. Returns the connections whose state changed.
pub async fn mark_stale(
    executor: impl PgExecutor<'_>,
    now: DateTime<Utc>,
    stale_after: chrono::TimeDelta,
    rule: &Rule,
) -> Result<Vec<Degraded>, sqlx::Error> {
    // The candidates' predicate is spelled as the partial index `connection_stale_candidates_idx`
    // spells it (every live state, i.e. not disconnected), so the sweep reads the index. The index
    // holds the last success the sweep has seen, which a refresh leaves alone (its success stays a
    // HOT update): a candidate that succeeded since has it moved on instead of being marked.
    let rows = sqlx::query!(
        r#"with candidates as (
               select id, state, coalesce(last_success_at, created_at) as succeeded_at from connection
               where not stale and state <> 'disconnected' and swept_success_at < $1
               for update skip locked
           ), seen as (
               update connection c set swept_success_at = candidates.succeeded_at
               from candidates where c.id = candidates.id and candidates.succeeded_at >= $1
           )
           update connection c
           set stale = true,
               state = case when candidates.state = any($2) then $3 else c.state end,
               swept_success_at = candidates.succeeded_at,
               updated_at = now()
           from candidates where c.id = candidates.id and candidates.succeeded_at < $1
           returning c.id, c.tenant_id, c.institution_id, candidates.state as "before!", c.state as "after!""#,
        now - stale_after,
        &rule.from_names() as &[&str],
        rule.to.as_str(),
    )
    .fetch_all(executor)
    .await?;
    let mut changed = Vec::new();
    for row in rows.into_iter().filter(|row| row.before != row.after) {
        changed.push(Degraded {
            id: row.id,
            tenant_id: row.tenant_id,
            institution_id: row.institution_id,
            before: decode_state(&row.before)?,
            after: decode_state(&row.after)?,
        });
    }
    Ok(changed)
}

/// A connection the staleness sweep moved to another state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degraded {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub institution_id: Uuid,
    pub before: State,
    pub after: State,
}
