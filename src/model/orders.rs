//! The order form on the wire: smart customer sync (one lease per open tab), the customers and
//! products the form picks from, and drafts of orders.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One tab's smart-sync lease as status and answers show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SmartLease {
    /// The tab (a random id the page keeps for as long as the tab lives).
    pub tab_id: String,
    /// Who has the tab open.
    pub who: String,
    /// When the tab opened the form.
    pub created_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
    /// When it ends whatever happens (`smart_sync_timeout` after it began).
    pub expires_at: DateTime<Utc>,
    /// When it ended, if it has.
    pub ended_at: Option<DateTime<Utc>>,
    /// `closed`, `vanished` (no heartbeat for the grace) or `timeout`.
    pub end_reason: Option<String>,
}

/// Smart customer sync in `GET /api/sync/status`: how many tabs hold the queue, and whose.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SmartSyncStatus {
    /// Tabs with a live lease.
    pub active_tabs: u32,
    /// Their leases.
    pub leases: Vec<SmartLease>,
    /// Why the queue is held, while it is: other exclusive syncs wait for the order forms.
    pub holding: Option<String>,
}

/// The answer to opening (or keeping open) the order form in a tab.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SmartSyncAnswer {
    /// This tab's lease; ended when it timed out (the tab works on, the queue no longer waits).
    pub lease: SmartLease,
    /// The customers refresh this tab is waiting for (the one it started or joined), if any.
    pub customers_job_id: Option<String>,
    /// When the last successful customers sync began: the customers are at least this fresh.
    pub customers_fresh_as_of: Option<DateTime<Utc>>,
    /// Tabs with a live lease, this one included.
    pub active_tabs: u32,
    /// A tab that sends no heartbeat for this many seconds lets go: beat well within it.
    pub grace_seconds: u64,
}

/// `smart-sync-started`, `smart-sync-ended` and `smart-sync-timeout`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SmartSyncEvent {
    /// The tab whose lease began or ended.
    pub tab_id: String,
    /// Tabs with a live lease after this change.
    pub active_tabs: u32,
    /// Why it ended: `closed`, `vanished` or `timeout`.
    pub reason: Option<String>,
    /// The customers refresh, when one was started.
    pub customers_job_id: Option<String>,
}

/// A customer the form can pick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CustomerHit {
    /// Its key in the ERP.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its city, to tell namesakes apart.
    pub city: Option<String>,
}

/// A product the form can add, with its synced price.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProductHit {
    /// Its key in the ERP.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its unit (`pcs`).
    pub unit: Option<String>,
    /// Its price in cents, from the synced prices; `None` when it has none.
    pub price_cents: Option<i64>,
}

/// One line of a draft.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DraftLine {
    /// The product.
    pub product_id: String,
    /// Its name when the draft was saved.
    pub name: String,
    /// How many.
    pub quantity: u32,
    /// The unit price when the draft was saved, in cents.
    pub price_cents: i64,
}

/// What the form sends to save a draft.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DraftInput {
    /// The customer's id.
    pub customer_id: String,
    /// The lines: product and quantity; names and prices come from the synced data.
    pub lines: Vec<DraftLineInput>,
    /// A note for the order.
    #[serde(default)]
    pub note: Option<String>,
}

/// A line as the form sends it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DraftLineInput {
    /// The product's id.
    pub product_id: String,
    /// How many (at least 1).
    pub quantity: i64,
}

/// Where a draft is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DraftStatus {
    /// Being worked on.
    Draft,
    /// Marked ready: the daily sync's export step sends it.
    Ready,
    /// Sent to the ERP; it can no longer change.
    Exported,
}

impl DraftStatus {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DraftStatus::Draft => "draft",
            DraftStatus::Ready => "ready",
            DraftStatus::Exported => "exported",
        }
    }
}

/// A saved draft.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Draft {
    /// Its number.
    pub id: i64,
    /// The customer's id.
    pub customer_id: String,
    /// The customer's name when it was saved.
    pub customer_name: String,
    /// Its lines.
    pub lines: Vec<DraftLine>,
    /// The sum of the lines, in cents.
    pub total_cents: i64,
    /// A note.
    pub note: Option<String>,
    /// Where it is.
    pub status: DraftStatus,
    /// Who saved it first, and when.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Who changed it last, and when.
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
    /// When the export step sent it to the ERP.
    pub exported_at: Option<DateTime<Utc>>,
}

/// Cents as money: `12.34`.
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cents_read_as_money() {
        assert_eq!(super::money(123456), "1234.56");
        assert_eq!(super::money(5), "0.05");
        assert_eq!(super::money(-250), "-2.50");
    }
}
