//! The Daily sync page.

use leptos::prelude::*;

use crate::components::{EmptyState, PageHeader};

/// Route component for the daily sync page.
#[component]
pub fn DailySyncPage() -> impl IntoView {
    view! {
        <PageHeader title="Daily sync" purpose="Import web data, export orders to the ERP, import from the ERP, validate, and publish to the web shop, one step at a time."/>
        <EmptyState headline="The daily sync is not available in this version">
            <p>"This Baton build serves the dashboard, its live connection and the server activity below; this page fills in with a later release."</p>
        </EmptyState>
    }
}
