//! Baton: a self-hosted sync orchestrator with a live admin dashboard.
//!
//! One crate, two builds. `ssr` is the server binary (axum, sqlx, tokio); `hydrate` is the browser
//! bundle (Leptos + wasm-bindgen). Modules shared by both depend on neither; the server-only tree is
//! gated once, where it is declared, so the browser build never compiles tokio, sqlx or axum.
// Leptos views are deeply nested types; release builds without `--cfg erase_components`
// (README command 1) need more than the default 128 levels to lay them out.
#![recursion_limit = "256"]

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
