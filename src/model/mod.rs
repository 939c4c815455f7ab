//! Wire types shared by the browser and the server: serde only, no database or runtime types.

mod event;

pub use event::{DatabaseHealth, EventKind, EventPage, Heartbeat, LiveEvent};
