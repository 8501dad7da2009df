//! The floor `bench/catalog/run.sh` puts beside its lookup ratio (issue #14): a minimal axum
//! server answering two static bodies from memory, one of `/healthz`'s size and one of the
//! lookup's. Its ratio (large ÷ small requests/s, same run) is what the size of the lookup's body
//! alone costs on these two cores, where wrk reads every byte too; the lookup cannot be nearer to
//! `/healthz` than that without sending less.
//!
//! `body_floor --small BYTES --large BYTES [--listen ADDR]` serves `GET /small` and `GET /large`
//! and prints `body_floor listening on http://ADDR` once it accepts.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long)]
    small: usize,
    #[arg(long)]
    large: usize,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

/// A JSON string of exactly `bytes` bytes (at least 2), built once: the handlers only clone it.
fn body(bytes: usize) -> Bytes {
    let filler = "x".repeat(bytes.saturating_sub(2));
    Bytes::from(format!("\"{filler}\""))
}

fn json(body: Bytes) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], body)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (small, large) = (body(args.small), body(args.large));
    let app = Router::new()
        .route("/small", get(move || std::future::ready(json(small.clone()))))
        .route("/large", get(move || std::future::ready(json(large.clone()))));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("body_floor listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
