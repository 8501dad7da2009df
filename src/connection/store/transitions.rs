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

/// One successful refresh to record: the connection, the success, the `refresh.succeeded`
/// event's detail and the rule it applies.
pub struct Recorded<'a> {
    pub id: Uuid,
    pub success: Success<'a>,
    pub detail: &'a serde_json::Value,
    pub rule: Rule,
}

/// Records successful refreshes (a connection appears once) and their timeline events in one
/// statement: for each, `refresh.succeeded` with its detail, then `connection.state_changed`
/// when the state changed. Returns, in order, the state and error code each connection had
/// before (`None` when its rule does not apply, e.g. it is disconnected, or it is gone).
pub async fn record_successes(
    executor: impl PgExecutor<'_>,
    recorded: &[Recorded<'_>],
) -> Result<Vec<Option<Before>>, sqlx::Error> {
    let ids: Vec<Uuid> = recorded.iter().map(|r| r.id).collect();
    let at: Vec<DateTime<Utc>> = recorded.iter().map(|r| r.success.at).collect();
    let data_as_of: Vec<Option<DateTime<Utc>>> = recorded.iter().map(|r| r.success.data_as_of).collect();
    // Time-ordered ids, made in event order, break ties between events of the same instant.
    let (succeeded_ids, changed_ids): (Vec<Uuid>, Vec<Uuid>) =
        recorded.iter().map(|_| (Uuid::now_v7(), Uuid::now_v7())).unzip();
    let details: Vec<&serde_json::Value> = recorded.iter().map(|r| r.detail).collect();
    let to: Vec<&str> = recorded.iter().map(|r| r.rule.to.as_str()).collect();
    // One text per row (an array of arrays cannot be unnested row by row): state names have no comma.
    let from: Vec<String> = recorded.iter().map(|r| r.rule.from_names().join(",")).collect();
    let error_codes = recorded
        .iter()
        .map(|r| r.success.error.map(|(code, _)| stored_code(code)).transpose())
        .collect::<Result<Vec<Option<i32>>, _>>()?;
    let error_raws: Vec<Option<&str>> = recorded.iter().map(|r| r.success.error.map(|(_, raw)| raw)).collect();
    let rows = sqlx::query!(
        r#"with input as (
               select * from unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::uuid[], $5::jsonb[],
                                    $6::uuid[], $7::text[], $8::text[], $9::int[], $10::text[])
                   with ordinality
                   as i(id, at, data_as_of, succeeded_id, detail, changed_id, to_state, from_states, error_code,
                        error_raw, n)
           ),
           before as (select c.id, c.state, c.error_code from connection c where c.id = any($1)),
           updated as (
               update connection c set state = i.to_state, last_attempt_at = i.at, last_success_at = i.at,
                      data_as_of = greatest(c.data_as_of, i.data_as_of), failure_streak = 0, error_code = i.error_code,
                      error_raw = i.error_raw,
                      error_at = case when i.error_code is null then null
                                      when c.error_code is not distinct from i.error_code then c.error_at else i.at end,
                      stale = false, updated_at = now()
               from input i
               where c.id = any($1) and c.id = i.id and c.state = any(string_to_array(i.from_states, ','))
               returning c.id
           ),
           events as (
               insert into connection_event (id, connection_id, kind, detail, actor_role)
               select e.id, i.id, e.kind, e.detail, 'system'
               from input i join before b on b.id = i.id,
                    lateral (values (1, i.succeeded_id, 'refresh.succeeded', i.detail),
                                    (2, i.changed_id, 'connection.state_changed',
                                     jsonb_build_object('from', b.state, 'to', i.to_state))) as e(n, id, kind, detail)
               where e.n = 1 or (b.state <> i.to_state and exists (select 1 from updated u where u.id = i.id))
               order by i.n, e.n
           )
           select b.state as "state?", b.error_code, (u.id is not null) as "updated!"
           from input i left join before b on b.id = i.id left join updated u on u.id = i.id
           order by i.n"#,
        &ids,
        &at,
        &data_as_of as &[Option<DateTime<Utc>>],
        &succeeded_ids,
        &details as &[&serde_json::Value],
        &changed_ids,
        &to as &[&str],
        &from,
        &error_codes as &[Option<i32>],
        &error_raws as &[Option<&str>],
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter()
        .map(|row| {
            let Some(state) = row.state.filter(|_| row.updated) else { return Ok(None) };
            let error_code = row
                .error_code
                .map(|code| Code::try_from(code).map_err(|error| sqlx::Error::Decode(Box::new(error))))
                .transpose()?;
            Ok(Some(Before { state: decode_state(&state)?, error_code }))
        })
        .collect()
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
