//! A progress bar for running jobs.

use leptos::prelude::*;

/// A thin bar with the percentage and a label beside it.
#[component]
pub fn ProgressBar(
    /// 0–100.
    percent: Signal<u8>,
    /// What is being done.
    label: Signal<String>,
) -> impl IntoView {
    // A native <progress>: no inline style, so the page's Content-Security-Policy can refuse
    // every inline style.
    view! {
        <div class="progress">
            <progress
                class="progress-track"
                max="100"
                value=move || percent.get().to_string()
            ></progress>
            <span class="progress-label" title=move || label.get()>{move || format!("{}% {}", percent.get(), label.get())}</span>
        </div>
    }
}
