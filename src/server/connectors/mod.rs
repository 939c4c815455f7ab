//! Connectors: the task kinds that do a sync's real work against other systems.
//!
//! - [`pull`]: `http_pull`, a paginated JSON API into local storage with change detection;
//! - [`call`]: `http_call`, a POST to a worker endpoint that reports counts and warnings;
//! - [`command`]: `command`, a program whose output becomes the job's log and progress;
//! - [`export`]: `export`, ready records to the ERP (HTTP) or to CSV files in an outbox;
//! - [`validate`]: `validate`, checks across the synced entities (the daily sync's step 4).
//!
//! HTTP connectors share named connections ([`http`]) from `[connections.<name>]`, with TLS
//! settings and certificate errors in words ([`tls`]).

pub mod call;
pub mod command;
pub mod export;
pub mod http;
pub mod pull;
pub mod tls;
pub mod validate;
