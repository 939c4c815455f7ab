//! Hooks shared by every page.

mod live_events;
mod me;
mod smart_sync;

pub use live_events::{provide_live_events, use_live_events, Connection, LiveEvents};
pub use me::{can, load_page, provide_me, safe_next, use_me, SignedIn};
pub use smart_sync::{use_smart_sync, SmartSync};
