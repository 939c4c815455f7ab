//! `use_live_events()`: the page's one connection to the server's live events.
//!
//! In the browser it opens an `EventSource` on `/api/events`. The browser reconnects by itself and
//! sends `Last-Event-ID`, so the server replays what was missed. When SSE keeps failing (three
//! errors without a successful open, or the server refuses the stream) the hook closes it and polls
//! `/api/events/poll` every 3 s instead, and tries SSE again every 30 s. Events are deduplicated by
//! id, so a switch between the two never shows one twice. A stream or a poll that starts without a
//! resume point (the first, or a reconnect before any event came) cannot replay what happened
//! since the page read its state, so it counts as a resync and the pages read again. On the server
//! it is inert: the page is rendered with `Connecting` and no events, and hydration takes over.

use leptos::prelude::*;

use crate::model::{EventKind, JobProgress, LiveEvent};

/// How the page is receiving live events right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    /// Not connected yet (also how the server renders it).
    Connecting,
    /// Server-sent events are flowing.
    Live,
    /// SSE is unavailable; the page asks every few seconds.
    Polling,
    /// Neither works: the server is unreachable.
    Offline,
}

impl Connection {
    /// Lowercase name, for CSS classes and data attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::Connecting => "connecting",
            Connection::Live => "live",
            Connection::Polling => "polling",
            Connection::Offline => "offline",
        }
    }
}

/// What the hook gives a component. Copy: signals are handles.
#[derive(Clone, Copy)]
pub struct LiveEvents {
    /// How events arrive right now.
    pub connection: ReadSignal<Connection>,
    /// The newest events, newest first (at most 50).
    pub recent: ReadSignal<Vec<LiveEvent>>,
    /// Counts the times this page's view may be stale (the server said so, or a stream opened
    /// with nothing to resume from); pages that hold server state track it and refetch.
    pub resyncs: ReadSignal<u32>,
}

impl LiveEvents {
    /// The id of the newest event that changes which jobs exist or what state they are in
    /// (started, ended, queue changed; not progress or heartbeats). Pages that list jobs refetch
    /// when it changes.
    pub fn job_changes(self) -> Memo<Option<u64>> {
        Memo::new(move |_| {
            self.recent.with(|recent| {
                recent
                    .iter()
                    .find(|e| {
                        matches!(
                            e.kind,
                            EventKind::SyncStarted(_)
                                | EventKind::SyncCompleted(_)
                                | EventKind::SyncError(_)
                                | EventKind::SyncCancelled(_)
                                | EventKind::QueueUpdated(_)
                        )
                    })
                    .map(|e| e.id)
            })
        })
    }

    /// The id of the newest `session-updated` event: a workflow session changed.
    pub fn session_changes(self) -> Memo<Option<u64>> {
        Memo::new(move |_| {
            self.recent.with(|recent| {
                recent
                    .iter()
                    .find(|e| matches!(e.kind, EventKind::SessionUpdated(_)))
                    .map(|e| e.id)
            })
        })
    }

    /// The id of the newest `schedule-updated` event: a schedule was edited or fired.
    pub fn schedule_changes(self) -> Memo<Option<u64>> {
        Memo::new(move |_| {
            self.recent.with(|recent| {
                recent
                    .iter()
                    .find(|e| matches!(e.kind, EventKind::ScheduleUpdated(_)))
                    .map(|e| e.id)
            })
        })
    }

    /// The log lines of `job_id` among the recent events, oldest first.
    pub fn log_lines_of(self, job_id: &str) -> Vec<crate::model::JobLogLine> {
        self.recent.with(|recent| {
            let mut lines: Vec<_> = recent
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::JobLog(line) if line.job_id == job_id => Some(line.clone()),
                    _ => None,
                })
                .collect();
            lines.reverse();
            lines
        })
    }

    /// The latest progress report of `job_id` among the recent events.
    pub fn progress_of(self, job_id: &str) -> Option<JobProgress> {
        self.recent.with(|recent| {
            recent.iter().find_map(|e| match &e.kind {
                EventKind::JobProgress(p) if p.job_id == job_id => Some(p.clone()),
                _ => None,
            })
        })
    }
}

/// Starts the connection (in the browser) and makes it available to every page below.
pub fn provide_live_events() -> LiveEvents {
    let (connection, set_connection) = signal(Connection::Connecting);
    let (recent, set_recent) = signal(Vec::<LiveEvent>::new());
    let (resyncs, set_resyncs) = signal(0u32);
    #[cfg(feature = "hydrate")]
    browser::Client::start(browser::Sinks {
        connection: set_connection,
        recent: set_recent,
        resyncs: set_resyncs,
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (set_connection, set_recent, set_resyncs);
    let live = LiveEvents {
        connection,
        recent,
        resyncs,
    };
    provide_context(live);
    live
}

/// The live events of this page. Panics outside `App`, which provides them.
pub fn use_live_events() -> LiveEvents {
    expect_context::<LiveEvents>()
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::{
        cell::{Cell, RefCell},
        rc::Rc,
    };

    use gloo_timers::callback::Interval;
    use leptos::prelude::*;
    use wasm_bindgen::{closure::Closure, JsCast};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{EventSource, MessageEvent, Response};

    use super::Connection;
    use crate::model::{EventKind, EventPage, LiveEvent};

    /// How many recent events pages can show.
    const RECENT_MAX: usize = 50;
    /// Consecutive SSE errors without an open before the hook falls back to polling.
    const SSE_FAILURES_BEFORE_POLLING: u32 = 3;
    /// Polling period.
    const POLL_MS: u32 = 3_000;
    /// While polling, try SSE again every this many polls.
    const RETRY_SSE_EVERY_POLLS: u32 = 10;

    pub struct Sinks {
        pub connection: WriteSignal<Connection>,
        pub recent: WriteSignal<Vec<LiveEvent>>,
        pub resyncs: WriteSignal<u32>,
    }

    type Listener = Closure<dyn FnMut(MessageEvent)>;

    pub struct Client {
        sinks: Sinks,
        /// The id of the newest event shown; the resume point for SSE and polling.
        last_id: Cell<Option<u64>>,
        failures: Cell<u32>,
        source: RefCell<Option<(EventSource, Vec<Listener>)>>,
        poller: RefCell<Option<Interval>>,
        polls: Cell<u32>,
        poll_in_flight: Cell<bool>,
    }

    impl Client {
        pub fn start(sinks: Sinks) {
            let client = Rc::new(Client {
                sinks,
                last_id: Cell::new(None),
                failures: Cell::new(0),
                source: RefCell::new(None),
                poller: RefCell::new(None),
                polls: Cell::new(0),
                poll_in_flight: Cell::new(false),
            });
            Client::connect_sse(&client);
        }

        fn connect_sse(this: &Rc<Self>) {
            this.close_sse();
            let Ok(source) = EventSource::new(&resume_url("/api/events", this.last_id.get()))
            else {
                // No EventSource in this browser: polling is all there is.
                Client::start_polling(this);
                return;
            };
            let mut listeners = Vec::new();

            let client = Rc::clone(this);
            let on_open: Listener = Closure::new(move |_: MessageEvent| {
                client.failures.set(0);
                client.stop_polling();
                client.sinks.connection.set(Connection::Live);
                // Opened with nothing to resume from: whatever changed between the page's read
                // and this subscription is not coming, so the page reads again.
                if client.last_id.get().is_none() {
                    client.resync();
                }
            });
            let _ =
                source.add_event_listener_with_callback("open", on_open.as_ref().unchecked_ref());
            listeners.push(on_open);

            let client = Rc::clone(this);
            let on_error: Listener = Closure::new(move |_: MessageEvent| client.sse_failed());
            let _ =
                source.add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref());
            listeners.push(on_error);

            for name in EventKind::NAMES {
                let client = Rc::clone(this);
                let on_event: Listener = Closure::new(move |message: MessageEvent| {
                    let Some(data) = message.data().as_string() else {
                        return;
                    };
                    match serde_json::from_str::<LiveEvent>(&data) {
                        Ok(event) => client.receive(event),
                        Err(err) => leptos::logging::warn!("unreadable live event: {err}"),
                    }
                });
                let _ = source
                    .add_event_listener_with_callback(name, on_event.as_ref().unchecked_ref());
                listeners.push(on_event);
            }

            let client = Rc::clone(this);
            let on_resync: Listener = Closure::new(move |_: MessageEvent| client.resync());
            let _ = source
                .add_event_listener_with_callback("resync", on_resync.as_ref().unchecked_ref());
            listeners.push(on_resync);

            *this.source.borrow_mut() = Some((source, listeners));
        }

        fn sse_failed(self: &Rc<Self>) {
            let polling = self.poller.borrow().is_some();
            let closed = self
                .source
                .borrow()
                .as_ref()
                .is_some_and(|(s, _)| s.ready_state() == EventSource::CLOSED);
            let failures = self.failures.get() + 1;
            self.failures.set(failures);
            if polling {
                // A retry from polling mode failed: keep polling, quietly.
                self.close_sse();
            } else if closed || failures >= SSE_FAILURES_BEFORE_POLLING {
                self.close_sse();
                Client::start_polling(self);
            } else {
                // The browser retries by itself and resumes with Last-Event-ID.
                self.sinks.connection.set(Connection::Connecting);
            }
        }

        fn close_sse(&self) {
            if let Some((source, _listeners)) = self.source.borrow_mut().take() {
                source.close();
            }
        }

        fn start_polling(this: &Rc<Self>) {
            if this.poller.borrow().is_some() {
                return;
            }
            this.sinks.connection.set(Connection::Polling);
            Client::poll(this);
            let client = Rc::clone(this);
            let interval = Interval::new(POLL_MS, move || {
                let polls = client.polls.get() + 1;
                client.polls.set(polls);
                if polls.is_multiple_of(RETRY_SSE_EVERY_POLLS) {
                    Client::connect_sse(&client);
                }
                Client::poll(&client);
            });
            *this.poller.borrow_mut() = Some(interval);
        }

        fn stop_polling(&self) {
            // Dropping the Interval cancels it.
            self.poller.borrow_mut().take();
        }

        fn poll(this: &Rc<Self>) {
            if this.poll_in_flight.replace(true) {
                return;
            }
            let client = Rc::clone(this);
            leptos::task::spawn_local(async move {
                let after = client.last_id.get();
                let result = fetch_page(after).await;
                client.poll_in_flight.set(false);
                if client.poller.borrow().is_none() {
                    return; // SSE came back while this poll was in flight
                }
                match result {
                    Ok(page) => {
                        client.sinks.connection.set(Connection::Polling);
                        // Without a resume point, as for a stream that opens without one.
                        if page.resync || after.is_none() {
                            client.resync();
                        }
                        if page.events.is_empty()
                            && client.last_id.get().is_none_or(|id| id < page.last_id)
                        {
                            client.last_id.set(Some(page.last_id));
                        }
                        for event in page.events {
                            client.receive(event);
                        }
                    }
                    Err(err) => {
                        leptos::logging::warn!("polling live events failed: {err}");
                        client.sinks.connection.set(Connection::Offline);
                    }
                }
            });
        }

        fn receive(&self, event: LiveEvent) {
            if self.last_id.get().is_some_and(|last| event.id <= last) {
                return;
            }
            self.last_id.set(Some(event.id));
            self.sinks.recent.update(|recent| {
                recent.insert(0, event);
                recent.truncate(RECENT_MAX);
            });
        }

        fn resync(&self) {
            self.sinks.resyncs.update(|n| *n += 1);
        }
    }

    /// `path`, resuming after the event `after` when there is one (both event routes take `?after=`).
    fn resume_url(path: &str, after: Option<u64>) -> String {
        match after {
            Some(id) => format!("{path}?after={id}"),
            None => path.to_string(),
        }
    }

    /// `GET /api/events/poll?after=<id>` with the browser's fetch.
    async fn fetch_page(after: Option<u64>) -> Result<EventPage, String> {
        let window = web_sys::window().ok_or("no window")?;
        let url = resume_url("/api/events/poll", after);
        let response: Response = JsFuture::from(window.fetch_with_str(&url))
            .await
            .map_err(|_| "the server cannot be reached".to_string())?
            .dyn_into()
            .map_err(|_| "fetch returned something other than a response".to_string())?;
        if !response.ok() {
            return Err(format!("the server answered {}", response.status()));
        }
        let body = response
            .text()
            .map_err(|_| "the response has no body".to_string())?;
        let text = JsFuture::from(body)
            .await
            .map_err(|_| "the response body could not be read".to_string())?
            .as_string()
            .unwrap_or_default();
        serde_json::from_str(&text).map_err(|err| format!("unreadable events page: {err}"))
    }
}
