//! Hooks shared by every page.

mod live_events;

pub use live_events::{provide_live_events, use_live_events, Connection, LiveEvents};
