//! The frame of every page: a heading with a one-line purpose, and the empty state.

use leptos::prelude::*;
use leptos_meta::Title;

/// Heading and purpose line; also sets the document title.
#[component]
pub fn PageHeader(
    /// The page's name.
    title: &'static str,
    /// One sentence on what the page is for.
    purpose: &'static str,
) -> impl IntoView {
    view! {
        <Title text=format!("{title} · Baton")/>
        <header class="page-header">
            <h1>{title}</h1>
            <p class="purpose">{purpose}</p>
        </header>
    }
}

/// What a page shows when it has nothing to show.
#[component]
pub fn EmptyState(
    /// The short headline.
    headline: &'static str,
    /// What it means and what to do.
    children: Children,
) -> impl IntoView {
    view! {
        <section class="empty-state">
            <h2>{headline}</h2>
            <div class="empty-body">{children()}</div>
        </section>
    }
}
