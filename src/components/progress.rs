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
    view! {
        <div class="progress">
            <div
                class="progress-track"
                role="progressbar"
                aria-valuemin="0"
                aria-valuemax="100"
                aria-valuenow=move || percent.get().to_string()
            >
                <div class="progress-fill" style:width=move || format!("{}%", percent.get())></div>
            </div>
            <span class="progress-label" title=move || label.get()>{move || format!("{}% {}", percent.get(), label.get())}</span>
        </div>
    }
}
