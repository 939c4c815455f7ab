//! The HTML shell, the layout every page shares, and the routes.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet};
use leptos_router::{
    components::{Route, Router, Routes, A},
    path,
};

use crate::{
    components::{ActivityPanel, LiveStatus},
    hooks::provide_live_events,
    pages::{DailySyncPage, NotFoundPage, OrderFormPage, SyncsPage, TasksPage},
};

/// The document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The app: layout, navigation, live connection, routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_live_events();
    view! {
        <Stylesheet id="baton" href="/pkg/baton.css"/>
        <Link rel="icon" href="/favicon.svg" type_="image/svg+xml"/>
        <Router>
            <div class="layout">
                <header class="topbar">
                    <a class="brand" href="/">
                        <span class="brand-mark" aria-hidden="true"></span>
                        "Baton"
                    </a>
                    <nav class="nav" aria-label="Main">
                        <A href="/" exact=true>"Daily sync"</A>
                        <A href="/orders/new">"Order form"</A>
                        <A href="/tasks">"Tasks"</A>
                        <A href="/syncs">"Syncs"</A>
                    </nav>
                    <LiveStatus/>
                </header>
                <DemoBanner/>
                <main class="content">
                    <Routes fallback=NotFoundPage>
                        <Route path=path!("/") view=DailySyncPage/>
                        <Route path=path!("/orders/new") view=OrderFormPage/>
                        <Route path=path!("/tasks") view=TasksPage/>
                        <Route path=path!("/syncs") view=SyncsPage/>
                    </Routes>
                </main>
                <footer class="footer">
                    <ActivityPanel/>
                </footer>
            </div>
        </Router>
    }
}

/// Says so, plainly, when the syncs run against the built-in demo ERP.
#[component]
fn DemoBanner() -> impl IntoView {
    let info = Resource::new(|| (), |_| crate::api::get_server_info());
    view! {
        <Suspense fallback=|| ()>
            {move || {
                info.get().and_then(Result::ok).and_then(|i| i.demo_erp).map(|url| view! {
                    <div class="demo-banner" role="note" data-testid="demo-banner">
                        <strong>"Demo mode"</strong>
                        " · The syncs run against Baton's built-in demo ERP at "
                        <code>{url}</code>
                        ", whose generated data changes over time. Add "
                        <code>"[connections.erp]"</code>
                        " to baton.toml to sync your own systems."
                    </div>
                })
            }}
        </Suspense>
    }
}
