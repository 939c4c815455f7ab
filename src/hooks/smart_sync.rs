//! `use_smart_sync()`: the order form's hold on the queue, for as long as this tab shows it.
//!
//! On mount the page opens its tab's lease (`smart_open`): the customers refresh, other
//! exclusive syncs wait. While the tab is visible it sends a heartbeat every 20 s (and at once
//! when it becomes visible again); on unmount it closes the lease, and on `pagehide` (the tab
//! closes, the browser navigates away) it sends the close with `navigator.sendBeacon`, which the
//! browser delivers even as the page goes. The tab's id lives in `sessionStorage`, so a reload of
//! the same tab keeps its one lease. On the server it is inert.

use leptos::prelude::*;

use crate::model::SmartSyncAnswer;

/// What the page knows of its smart sync.
#[derive(Clone, Copy)]
pub struct SmartSync {
    /// The last answer, or why there is none (the form works on cached customers either way).
    pub answer: ReadSignal<Option<Result<SmartSyncAnswer, String>>>,
}

/// Starts this tab's smart sync for as long as the calling component lives.
pub fn use_smart_sync() -> SmartSync {
    let (answer, set_answer) = signal(None::<Result<SmartSyncAnswer, String>>);
    #[cfg(feature = "hydrate")]
    browser::start(answer, set_answer);
    #[cfg(not(feature = "hydrate"))]
    let _ = set_answer;
    SmartSync { answer }
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::{
        cell::{Cell, RefCell},
        rc::Rc,
    };

    use gloo_timers::callback::Interval;
    use leptos::{prelude::*, task::spawn_local};
    use wasm_bindgen::{closure::Closure, JsCast};

    use crate::{
        api::orders::{smart_close, smart_heartbeat, smart_open},
        model::SmartSyncAnswer,
    };

    type Sink = WriteSignal<Option<Result<SmartSyncAnswer, String>>>;

    const KEY: &str = "baton-tab-id";
    /// A heartbeat every third of the server's grace, at most every 20 s.
    fn beat_every_ms(grace_seconds: u64) -> f64 {
        ((grace_seconds * 1000 / 3).clamp(1000, 20_000)) as f64
    }

    /// This tab's id: kept in `sessionStorage` (one per tab, kept across reloads).
    fn tab_id() -> String {
        let storage = web_sys::window().and_then(|w| w.session_storage().ok().flatten());
        if let Some(id) = storage
            .as_ref()
            .and_then(|s| s.get_item(KEY).ok().flatten())
        {
            return id;
        }
        let id: String = (0..4)
            .map(|_| {
                format!(
                    "{:08x}",
                    (js_sys::Math::random() * f64::from(u32::MAX)) as u32
                )
            })
            .collect();
        if let Some(storage) = storage {
            let _ = storage.set_item(KEY, &id);
        }
        id
    }

    fn visible() -> bool {
        web_sys::window()
            .and_then(|w| w.document())
            .is_none_or(|d| d.visibility_state() == web_sys::VisibilityState::Visible)
    }

    fn open(tab: String, sink: Sink) {
        spawn_local(async move {
            let answer = smart_open(tab).await.map_err(|e| e.to_string());
            sink.set(Some(answer));
        });
    }

    fn beat(tab: String, sink: Sink, last: Rc<Cell<f64>>) {
        last.set(js_sys::Date::now());
        spawn_local(async move {
            // A failed heartbeat changes nothing on the page: the next one tries again.
            if let Ok(answer) = smart_heartbeat(tab).await {
                sink.set(Some(Ok(answer)));
            }
        });
    }

    pub fn start(answer: ReadSignal<Option<Result<SmartSyncAnswer, String>>>, sink: Sink) {
        let tab = tab_id();
        open(tab.clone(), sink);
        let last = Rc::new(Cell::new(js_sys::Date::now()));
        // Checked every second; beats as often as the server's grace asks.
        let interval = {
            let (tab, last) = (tab.clone(), last.clone());
            Interval::new(1_000, move || {
                let every = answer
                    .with_untracked(|a| {
                        a.as_ref()
                            .and_then(|a| a.as_ref().ok())
                            .map(|a| a.grace_seconds)
                    })
                    .map(beat_every_ms)
                    .unwrap_or(20_000.0);
                if visible() && js_sys::Date::now() - last.get() >= every {
                    beat(tab.clone(), sink, last.clone());
                }
            })
        };
        let Some(window) = web_sys::window() else {
            return;
        };
        let on_visible = {
            let (tab, last) = (tab.clone(), last.clone());
            Closure::<dyn Fn()>::new(move || {
                if visible() {
                    beat(tab.clone(), sink, last.clone());
                }
            })
        };
        let on_hide = {
            let tab = tab.clone();
            Closure::<dyn Fn()>::new(move || {
                let url = format!("/api/customers/resume-syncs?tab_id={tab}");
                let _ = web_sys::window().map(|w| w.navigator().send_beacon(&url));
            })
        };
        // Back from the browser's page cache: the form shows again, so it holds again.
        let on_show = {
            let tab = tab.clone();
            Closure::<dyn Fn(web_sys::Event)>::new(move |event: web_sys::Event| {
                let persisted = js_sys::Reflect::get(&event, &"persisted".into())
                    .ok()
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                if persisted {
                    open(tab.clone(), sink);
                }
            })
        };
        let document = window.document();
        if let Some(document) = &document {
            let _ = document.add_event_listener_with_callback(
                "visibilitychange",
                on_visible.as_ref().unchecked_ref(),
            );
        }
        let _ =
            window.add_event_listener_with_callback("pagehide", on_hide.as_ref().unchecked_ref());
        let _ =
            window.add_event_listener_with_callback("pageshow", on_show.as_ref().unchecked_ref());
        let held = send_wrapper::SendWrapper::new(Rc::new(RefCell::new(Some((
            interval, on_visible, on_hide, on_show,
        )))));
        let document = send_wrapper::SendWrapper::new(document);
        on_cleanup(move || {
            if let Some((interval, on_visible, on_hide, on_show)) = held.borrow_mut().take() {
                interval.cancel();
                if let Some(document) = (*document).as_ref() {
                    let _ = document.remove_event_listener_with_callback(
                        "visibilitychange",
                        on_visible.as_ref().unchecked_ref(),
                    );
                }
                if let Some(window) = web_sys::window() {
                    let _ = window.remove_event_listener_with_callback(
                        "pagehide",
                        on_hide.as_ref().unchecked_ref(),
                    );
                    let _ = window.remove_event_listener_with_callback(
                        "pageshow",
                        on_show.as_ref().unchecked_ref(),
                    );
                }
            }
            // Leaving the form inside the app: close at once.
            spawn_local(async move {
                let _ = smart_close(tab).await;
            });
        });
    }
}
