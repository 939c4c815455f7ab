//! Reusable widgets.

mod activity;
mod can;
mod live_status;
mod page;
mod progress;
mod run_chart;

pub use activity::ActivityPanel;
pub use can::Can;
pub use live_status::LiveStatus;
pub use page::{EmptyState, PageHeader};
pub use progress::ProgressBar;
pub use run_chart::{duration_text, RunChart};

use chrono::{DateTime, Utc};

/// A time of day for people: the browser's local time, or UTC when rendered on the server.
pub fn time_of_day(at: DateTime<Utc>) -> String {
    #[cfg(feature = "hydrate")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
            at.timestamp_millis() as f64
        ));
        String::from(date.to_locale_time_string("en-GB"))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        at.format("%H:%M:%S UTC").to_string()
    }
}
