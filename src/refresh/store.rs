//! The refresh rules that are statements over the queue's `job` table: its refresh jobs are
//! refresh's to reschedule, the table's mechanics stay `jobs::store`'s.

use sqlx::PgExecutor;
use uuid::Uuid;

/// The bank is back: brings the pending refreshes of an institution's connections that wait out
/// a bank incident forward to now; returns how many moved.
pub async fn run_now_for_institution(executor: impl PgExecutor<'_>, institution_id: Uuid) -> Result<u64, sqlx::Error> {
    let outcome = sqlx::query!(
        r#"update job set run_at = now(), updated_at = now()
           where state = 'available' and kind = 'refresh' and run_at > now()
             and connection_id in (select id from connection where institution_id = $1 and state = 'bank_issue')"#,
        institution_id,
    )
    .execute(executor)
    .await?;
    Ok(outcome.rows_affected())
}
