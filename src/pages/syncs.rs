//! The Syncs page.

use leptos::prelude::*;

use crate::components::{EmptyState, PageHeader};

/// Route component for the syncs page.
#[component]
pub fn SyncsPage() -> impl IntoView {
    view! {
        <PageHeader title="Syncs" purpose="The sync types Baton runs, their schedules and how their last runs went."/>
        <EmptyState headline="Sync types are not available in this version">
            <p>"This Baton build serves the dashboard, its live connection and the server activity below; this page fills in with a later release."</p>
        </EmptyState>
    }
}
