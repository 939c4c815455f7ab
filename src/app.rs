//! The HTML shell, the layout every page shares, and the routes.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes, A},
    path, SsrMode,
};

use crate::{
    api::auth::Logout,
    components::{ActivityPanel, Can, LiveStatus},
    hooks::{load_page, provide_live_events, provide_me, use_me},
    model::Role,
    pages::{
        AccountPage, AdminPage, AuditPage, DailySyncPage, DraftsPage, LoginPage, NotFoundPage,
        OrderFormPage, SetupPage, SyncsPage, TasksPage,
    },
};

/// The document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    page_policy(&options);
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

/// The page's Content-Security-Policy, naming the nonce Leptos gives this render's inline
/// scripts (hydration, streamed resources).
#[cfg(feature = "ssr")]
fn page_policy(options: &LeptosOptions) {
    use axum::http::{header, HeaderValue};
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let reload = (options.env == leptos::config::Env::DEV).then_some(options.reload_port as u16);
    let policy = crate::server::http::perimeter::page_csp(&nonce, reload);
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The app: the sign-in pages on their own, every other page in the signed-in layout.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="baton" href="/pkg/baton.css"/>
        <Link rel="icon" href="/favicon.svg" type_="image/svg+xml"/>
        <Router>
            <Routes fallback=NotFoundPage>
                <Route path=path!("/login") view=LoginPage/>
                <Route path=path!("/setup") view=SetupPage/>
                // In-order streaming: the server sends each page's data in the HTML itself (it
                // waits at each Suspense, in order), so a page is readable before its
                // WebAssembly has loaded, and read-only with JavaScript off.
                <ParentRoute path=path!("") view=Layout ssr=SsrMode::InOrder>
                    <Route path=path!("/") view=DailySyncPage/>
                    <Route path=path!("/orders/new") view=OrderFormPage/>
                    <Route path=path!("/orders/:id") view=OrderFormPage/>
                    <Route path=path!("/orders") view=DraftsPage/>
                    <Route path=path!("/tasks") view=TasksPage/>
                    <Route path=path!("/syncs") view=SyncsPage/>
                    <Route path=path!("/admin") view=AdminPage/>
                    <Route path=path!("/admin/audit") view=AuditPage/>
                    <Route path=path!("/account") view=AccountPage/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// Navigation, who is signed in, the live connection, the page, the activity panel.
#[component]
fn Layout() -> impl IntoView {
    provide_me();
    provide_live_events();
    view! {
        <div class="layout">
            <header class="topbar">
                <a class="brand" href="/">
                    <span class="brand-mark" aria-hidden="true"></span>
                    "Baton"
                </a>
                <nav class="nav" aria-label="Main">
                    <A href="/" exact=true>"Daily sync"</A>
                    <Can role=Role::Staff><A href="/orders/new">"Order form"</A></Can>
                    <A href="/orders" exact=true>"Drafts"</A>
                    <A href="/tasks">"Tasks"</A>
                    <A href="/syncs">"Syncs"</A>
                    <Can role=Role::Admin><A href="/admin" exact=true>"Admin"</A></Can>
                    <Can role=Role::Admin><A href="/admin/audit">"Audit log"</A></Can>
                </nav>
                <LiveStatus/>
                <SignedInAs/>
            </header>
            <DemoBanner/>
            <main class="content">
                <leptos_router::components::Outlet/>
            </main>
            <footer class="footer">
                <ActivityPanel/>
            </footer>
        </div>
    }
}

/// The signed-in person, their role, and Sign out.
#[component]
fn SignedInAs() -> impl IntoView {
    let me = use_me();
    let logout = ServerAction::<Logout>::new();
    Effect::new(move |_| {
        if logout.value().get().is_some() {
            load_page("/login");
        }
    });
    view! {
        <Suspense fallback=|| ()>
            {move || me.me().map(|m| view! {
                <div class="signed-in" data-testid="signed-in">
                    <a href="/account" class="who" title="Your account">{m.name.clone()}</a>
                    <span class="role-badge" data-testid="role">{m.role.as_str()}</span>
                    <button class="button button-quiet" data-testid="sign-out" on:click=move |_| { logout.dispatch(Logout {}); }>
                        "Sign out"
                    </button>
                </div>
            })}
        </Suspense>
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
