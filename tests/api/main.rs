#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location
//! The one integration-test binary: every test gets a fresh, migrated database and a server on
//! a free port.

mod support;

mod api_keys;
mod connections;
mod console;
mod conventions;
mod errors;
mod health;
mod incidents;
mod jobs;
mod operations;
mod providers;
mod refreshes;
mod trace_context;
mod webhooks;
