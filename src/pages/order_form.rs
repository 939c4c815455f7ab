//! The Order form page.

use leptos::prelude::*;

use crate::components::{EmptyState, PageHeader};

/// Route component for the order form page.
#[component]
pub fn OrderFormPage() -> impl IntoView {
    view! {
        <PageHeader title="Order form" purpose="Enter an order with customer data refreshed from the ERP while you type."/>
        <EmptyState headline="The order form is not available in this version">
            <p>"This Baton build serves the dashboard, its live connection and the server activity below; this page fills in with a later release."</p>
        </EmptyState>
    }
}
