//! The Tasks page.

use leptos::prelude::*;

use crate::components::{EmptyState, PageHeader};

/// Route component for the tasks page.
#[component]
pub fn TasksPage() -> impl IntoView {
    view! {
        <PageHeader title="Tasks" purpose="Every sync job: filter, search, read its log, retry, cancel or run one now."/>
        <EmptyState headline="The task list is not available in this version">
            <p>"This Baton build serves the dashboard, its live connection and the server activity below; this page fills in with a later release."</p>
        </EmptyState>
    }
}
