//! Baton: a self-hosted sync orchestrator with a live admin dashboard.
//!
//! One crate, two builds. `ssr` is the server binary (axum, sqlx, tokio); `hydrate` is the browser
//! bundle (Leptos + wasm-bindgen). Modules shared by both depend on neither; the server-only tree is
//! gated once, where it is declared, so the browser build never compiles tokio, sqlx or axum.

pub mod api;
pub mod app;
pub mod components;
pub mod hooks;
pub mod model;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod server;

/// Browser entry point: attaches the server-rendered HTML to the reactive app.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
