//! The sign-in page, and the first-start page that creates the first admin. Both post JSON to
//! `/api/auth/…` and, on success, load the page asked for as a new page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::auth::{Login, Setup},
    hooks::{load_page, safe_next},
};

/// `true` once the page runs in the browser: until then the forms cannot be sent (a form sent
/// before hydration would put the password in the URL).
fn hydrated() -> ReadSignal<bool> {
    let (ready, set_ready) = signal(false);
    Effect::new(move |_| set_ready.set(true));
    ready
}

/// Route component for `/login`.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || safe_next(query.read_untracked().get("next"));
    let login = ServerAction::<Login>::new();
    let ready = hydrated();
    let (name, set_name) = signal(String::new());
    let (password, set_password) = signal(String::new());
    Effect::new(move |_| {
        if let Some(Ok(_)) = login.value().get() {
            load_page(&next());
        }
    });
    let error = move || {
        login
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    };
    view! {
        <Title text="Sign in · Baton"/>
        <main class="auth-page">
            <section class="auth-card" aria-labelledby="auth-title">
                <p class="brand"><span class="brand-mark" aria-hidden="true"></span>"Baton"</p>
                <h1 id="auth-title">"Sign in"</h1>
                <form
                    method="post"
                    on:submit=move |ev| {
                        ev.prevent_default();
                        login.dispatch(Login {
                            username: name.get_untracked(),
                            password: password.get_untracked(),
                        });
                    }
                >
                    <label>
                        "User name"
                        <input
                            name="username"
                            autocomplete="username"
                            required
                            autofocus
                            on:input=move |ev| set_name.set(event_target_value(&ev))
                            prop:value=move || name.get()
                        />
                    </label>
                    <label>
                        "Password"
                        <input
                            type="password"
                            name="password"
                            autocomplete="current-password"
                            required
                            on:input=move |ev| set_password.set(event_target_value(&ev))
                            prop:value=move || password.get()
                        />
                    </label>
                    <Show when=move || error().is_some()>
                        <p class="notice notice-error" role="alert" data-testid="login-error">
                            {move || error().unwrap_or_default()}
                        </p>
                    </Show>
                    <button
                        class="button"
                        type="submit"
                        disabled=move || !ready.get() || login.pending().get()
                    >
                        {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </form>
                <p class="muted small">
                    "No account? An admin of this Baton adds people on its Admin page, or with "
                    <code>"baton user add"</code>" on its server."
                </p>
            </section>
        </main>
    }
}

/// Route component for `/setup?token=…`: the link a fresh Baton prints creates its first admin.
#[component]
pub fn SetupPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read_untracked().get("token").unwrap_or_default();
    let setup = ServerAction::<Setup>::new();
    let ready = hydrated();
    let (name, set_name) = signal(String::new());
    let (password, set_password) = signal(String::new());
    let (again, set_again) = signal(String::new());
    let mismatch = move || !again.get().is_empty() && again.get() != password.get();
    Effect::new(move |_| {
        if let Some(Ok(_)) = setup.value().get() {
            load_page("/");
        }
    });
    let error = move || {
        setup
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    };
    view! {
        <Title text="Set up · Baton"/>
        <main class="auth-page">
            <section class="auth-card" aria-labelledby="auth-title">
                <p class="brand"><span class="brand-mark" aria-hidden="true"></span>"Baton"</p>
                <h1 id="auth-title">"Create the first admin"</h1>
                <p class="muted">
                    "This Baton has no users yet. The admin you create here can add everyone else."
                </p>
                <form
                    method="post"
                    on:submit=move |ev| {
                        ev.prevent_default();
                        if mismatch() {
                            return;
                        }
                        setup.dispatch(Setup {
                            token: token(),
                            username: name.get_untracked(),
                            password: password.get_untracked(),
                        });
                    }
                >
                    <label>
                        "User name"
                        <input
                            name="username"
                            autocomplete="username"
                            required
                            autofocus
                            on:input=move |ev| set_name.set(event_target_value(&ev))
                            prop:value=move || name.get()
                        />
                    </label>
                    <label>
                        "Password (at least 8 characters)"
                        <input
                            type="password"
                            name="password"
                            autocomplete="new-password"
                            minlength="8"
                            required
                            on:input=move |ev| set_password.set(event_target_value(&ev))
                            prop:value=move || password.get()
                        />
                    </label>
                    <label>
                        "The password again"
                        <input
                            type="password"
                            name="again"
                            autocomplete="new-password"
                            required
                            on:input=move |ev| set_again.set(event_target_value(&ev))
                            prop:value=move || again.get()
                        />
                    </label>
                    <Show when=mismatch>
                        <p class="notice notice-error" role="alert">"The two passwords differ."</p>
                    </Show>
                    <Show when=move || error().is_some()>
                        <p class="notice notice-error" role="alert" data-testid="setup-error">
                            {move || error().unwrap_or_default()}
                        </p>
                    </Show>
                    <button
                        class="button"
                        type="submit"
                        disabled=move || !ready.get() || setup.pending().get() || mismatch()
                    >
                        "Create admin and sign in"
                    </button>
                </form>
            </section>
        </main>
    }
}
