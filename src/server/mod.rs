//! Everything that only runs in the server process. Gated once, in `lib.rs`.

pub mod auth;
pub mod bench;
pub mod catalog;
pub mod config;
pub mod connectors;
pub mod demo_erp;
pub mod engine;
pub mod events;
pub mod http;
pub mod instance;
#[cfg(test)]
mod layers;
pub mod lifecycle;
pub mod limit;
pub mod metrics;
pub mod orders;
pub mod remote;
pub mod schedules;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod workflows;
