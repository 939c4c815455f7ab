//! Everything that only runs in the server process. Gated once, in `lib.rs`.

pub mod api;
pub mod bench;
pub mod config;
pub mod connectors;
pub mod demo_erp;
pub mod engine;
pub mod error;
pub mod events;
pub mod guard;
pub mod instance;
pub mod routes;
pub mod sessions_api;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod workflows;
