//! feedwatch: bank-feed connection health and error lookup.
//!
//! Each module line below is the codemap; `ARCHITECTURE.md` tells how they fit together.

/// Composition root: database, migrations, HTTP server and shutdown, wired in one place.
pub mod app;
/// API keys: roles, tenant binding, key generation and verification.
pub mod auth;
/// The error-code reference: entries, aliases, lookup, search, revisions.
pub mod catalog;
/// Configuration from flags and `FEEDWATCH_*` environment variables; secrets stay wrapped.
pub mod config;
/// Connections, their accounts and timeline, and the lifecycle: the one owner of their health state.
pub mod connection;
/// Connection pools (on the writable host of a multi-host URL, moved at failover) and embedded migrations.
pub mod database;
/// Demo mode: a tenant with a dozen sandbox connections in varied states.
pub mod demo;
/// A private local PostgreSQL cluster for when no `DATABASE_URL` is given.
pub mod devdb;
/// Durations written as a number and a unit (`30s`, `48h`), for flags, the catalogue and HTTP.
pub mod duration;
/// Transactions stored by FITID and the change feed clients sync from.
pub mod feed;
/// Fleet health: tallies by state, error code, institution and staleness for dashboards.
pub mod health;
/// Retention: one task that calls every module's own `prune`.
pub mod housekeeping;
/// The HTTP surface: router, middleware, problem+json errors, one file per resource.
pub mod http;
/// Idempotency-Key records: a repeated POST gets the first response.
pub mod idempotency;
/// Statement import: files into the feed's store, deduplicated against it, doubtful rows held.
pub mod import;
/// Bank incidents: detection from refresh outcomes, slowed retries, resolution.
pub mod incident;
/// Institutions: banks and how to reach them.
pub mod institution;
/// The job queue in PostgreSQL and its worker pool.
pub mod jobs;
/// OFX 1.x (SGML) and 2.x (XML) reading and writing, shared by Direct Connect, file import and the sandbox bank.
pub mod ofx;
/// Bank-feed providers (OFX Direct Connect) and the classification of their failures into canonical codes.
pub mod provider;
/// Refreshes: asking for one, the job that pulls a connection's feed, and the scheduler.
pub mod refresh;
/// The sandbox bank: an OFX server with magic credentials, growing deterministic data and fault injection.
pub mod sandbox;
/// AES-256-GCM envelopes for secrets at rest (bank credentials, webhook signing secrets), with key rotation.
pub mod seal;
/// Console sessions: an API key exchanged for a cookie-held session id, and its form token.
pub mod session;
/// Statement files people bring (OFX, QFX, QBO, CSV): format recognition and lenient readers.
pub mod statement;
/// Tracing subscriber and the Prometheus metrics registry.
pub mod telemetry;
/// Webhooks: endpoints, events emitted in the caller's transaction, signed deliveries with retries.
pub mod webhook;

// jemalloc, not glibc's malloc, whose per-thread arenas kept memory freed by the pools' threads and
// let RSS climb with each PostgreSQL restart (ARCHITECTURE.md, "Memory"). Its options are compiled
// in (`JEMALLOC_SYS_WITH_MALLOC_CONF` in .cargo/config.toml), so no operator setting is needed.
// Declared here rather than in `main.rs` so that everything linking the library runs on it: the
// benchmarks that drive the service's code in-process measured it on glibc's malloc until
// session 15, which cost the refresher CPU the service does not spend.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
