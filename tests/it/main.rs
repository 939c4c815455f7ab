//! Baton's integration tests, in one binary (linking the server once, not once per file): real
//! SQLite files and Postgres databases, real HTTP servers on 127.0.0.1, the real `baton` binary.
//!
//! `TEST_LOG=1` (or a filter such as `TEST_LOG=baton=debug`) shows the server's logs.

#[macro_use]
mod helpers;

mod auth;
mod cli;
mod compat;
mod connectors;
mod crash;
mod engine;
mod fencing;
mod http;
mod instances;
mod jobs_api;
mod limits;
mod metrics;
mod openapi;
mod orders;
mod remote;
mod schedules;
mod sessions_api;
mod status;
mod store;
mod tls;
mod workflows;
