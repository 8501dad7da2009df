//! The floor `bench/api/run.sh` measures feedwatch's reads against (issue #17): a minimal axum +
//! sqlx service that reads one `connection` row by primary key and serialises it as JSON, with
//! nothing else on the path (no authentication, no middleware, no catalogue, no accounts).
//!
//! `api_baseline --url URL [--listen ADDR] [--max-connections N]` serves
//! `GET /connections/{id}` and prints `api_baseline listening on http://ADDR` once it accepts.
//! It uses the same runtime (tokio, multi-threaded) and the same pool size as feedwatch's API
//! (`FEEDWATCH_DB_MAX_CONNECTIONS`, 20), so the difference measured is feedwatch's own work.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use clap::Parser;
use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, env = "DATABASE_URL")]
    url: String,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 20)]
    max_connections: u32,
}

/// The connection row as stored, less its sealed credentials.
#[derive(Debug, Serialize, sqlx::FromRow)]
struct ConnectionRow {
    id: Uuid,
    tenant_id: Uuid,
    institution_id: Uuid,
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
}

async fn connection(State(pool): State<PgPool>, Path(id): Path<Uuid>) -> Response {
    let row = sqlx::query_as::<_, ConnectionRow>(
        "select id, tenant_id, institution_id, display_name, state, paused, refresh_every_seconds,
                credentials_updated_at, last_attempt_at, last_success_at, data_as_of, failure_streak, error_code,
                error_raw, error_at, next_refresh_at, version, created_at, updated_at, disconnected_at
         from connection where id = $1",
    )
    .bind(id)
    .fetch_optional(&pool)
    .await;
    match row {
        Ok(Some(row)) => axum::Json(row).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pool = PgPoolOptions::new().max_connections(args.max_connections).connect(&args.url).await?;
    let app = Router::new().route("/connections/{id}", get(connection)).with_state(pool);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("api_baseline listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
