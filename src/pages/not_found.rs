//! What an unknown address shows (the server also answers 404).

use leptos::prelude::*;
use leptos_router::components::A;

use crate::components::{EmptyState, PageHeader};

/// Route fallback.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    view! {
        <PageHeader title="Page not found" purpose="There is no page at this address."/>
        <EmptyState headline="Nothing here">
            <p>"Check the address, or go to the "<A href="/">"daily sync"</A>"."</p>
        </EmptyState>
    }
}
