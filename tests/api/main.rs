#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location
//! The one integration-test binary: every test gets a fresh, migrated database and a server on
//! a free port.

mod support;

mod account_names;
mod api_keys;
mod authz;
mod connections;
mod console;
mod conventions;
mod credentials;
mod credentials_canary;
mod day_skips;
mod errors;
mod errors_encoding;
mod failover;
mod health;
mod import_streaming;
mod imports;
mod incidents;
mod institutions;
mod jobs;
mod kill_anywhere;
mod nested_objects;
mod operations;
mod providers;
mod purge;
mod reads;
mod refresh_at_scale;
mod refresh_triggers;
mod refresh_writes;
mod refreshes;
mod refused_accounts;
mod reliability;
mod sandbox_listener;
mod security;
mod stall;
mod trace_context;
mod transaction_accounts;
mod webhook_endpoints;
mod webhook_signatures;
mod webhooks;
