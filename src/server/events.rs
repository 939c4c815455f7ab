//! The event bus: every live event is published here once and fans out to SSE streams and pollers.
//!
//! Publishing assigns the id, appends to a bounded history and broadcasts, all under one lock;
//! subscribing snapshots the history and joins the broadcast under the same lock. So a client that
//! reconnects with `Last-Event-ID` gets exactly the events it missed, then the live ones, with no gap
//! and no duplicate. When what it missed is no longer held, it is told to resync instead.
//!
//! The bus is in-process. Its interface (publish a kind, subscribe after an id) is what a Postgres
//! LISTEN/NOTIFY relay between instances would feed, so callers do not change when that arrives.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use chrono::Utc;
use tokio::sync::broadcast;

use crate::model::{EventKind, EventPage, LiveEvent};

/// Cheap-to-clone handle to the process's event bus.
#[derive(Clone)]
pub struct EventBus {
    shared: Arc<Shared>,
}

struct Shared {
    /// Held while publishing and while subscribing, so the two never interleave.
    inner: Mutex<Inner>,
    /// Live fan-out; each SSE stream holds a receiver.
    sender: broadcast::Sender<Arc<LiveEvent>>,
}

struct Inner {
    /// The id the next event gets.
    next_id: u64,
    /// The newest `capacity` events, oldest first.
    history: VecDeque<Arc<LiveEvent>>,
    capacity: usize,
}

/// Where a subscriber starts: what it missed, then a receiver for what comes next.
pub struct Subscription {
    /// Events after the subscriber's last id that are still held, oldest first.
    pub missed: Vec<Arc<LiveEvent>>,
    /// True when some events after the subscriber's last id are gone: it must reload its state.
    pub resync: bool,
    /// Every event published after `missed`.
    pub live: broadcast::Receiver<Arc<LiveEvent>>,
}

impl EventBus {
    /// A bus that remembers the newest `capacity` events. Ids start at the current time in
    /// microseconds, so they keep increasing across restarts of the process.
    pub fn new(capacity: usize) -> Self {
        let first_id = u64::try_from(Utc::now().timestamp_micros())
            .unwrap_or(1)
            .max(1);
        Self::starting_at(capacity, first_id)
    }

    /// A bus whose first event gets `first_id` (tests use small numbers).
    pub fn starting_at(capacity: usize, first_id: u64) -> Self {
        let capacity = capacity.max(1);
        let (sender, _) = broadcast::channel(capacity);
        Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    next_id: first_id,
                    history: VecDeque::with_capacity(capacity),
                    capacity,
                }),
                sender,
            }),
        }
    }

    /// Publishes one event to every subscriber and to the history; returns it.
    pub fn publish(&self, kind: EventKind) -> Arc<LiveEvent> {
        let mut inner = self.lock();
        let event = Arc::new(LiveEvent {
            id: inner.next_id,
            at: Utc::now(),
            kind,
        });
        inner.next_id += 1;
        if inner.history.len() == inner.capacity {
            inner.history.pop_front();
        }
        inner.history.push_back(event.clone());
        // No receivers is fine: nobody is watching right now.
        let _ = self.shared.sender.send(event.clone());
        event
    }

    /// Joins the live stream after `last_seen` (`None`: only new events from now on).
    pub fn subscribe(&self, last_seen: Option<u64>) -> Subscription {
        self.subscribe_replaying(last_seen, usize::MAX)
    }

    /// [`EventBus::subscribe`], replaying at most `limit` missed events: a longer gap is a
    /// resync (the client reloads its state, so replaying more would be work for nothing, and a
    /// reconnect storm with `Last-Event-ID: 0` cannot make every stream copy the whole history).
    pub fn subscribe_replaying(&self, last_seen: Option<u64>, limit: usize) -> Subscription {
        let inner = self.lock();
        let live = self.shared.sender.subscribe();
        let (missed, resync) = match last_seen {
            None => (Vec::new(), false),
            Some(last) if inner.missed_since(last) > limit => (Vec::new(), true),
            Some(last) => inner.after(last, limit),
        };
        Subscription {
            missed,
            resync,
            live,
        }
    }

    /// What a poller gets: at most `limit` events after `after` (`None`: none, just the last id).
    pub fn page_after(&self, after: Option<u64>, limit: usize) -> EventPage {
        let inner = self.lock();
        let last_id = inner.next_id - 1;
        let (events, resync) = match after {
            None => (Vec::new(), false),
            Some(after) => inner.after(after, limit),
        };
        EventPage {
            events: events.iter().map(|e| LiveEvent::clone(e)).collect(),
            last_id,
            resync,
        }
    }

    /// The id of the newest event published (the first id minus one before any).
    pub fn last_id(&self) -> u64 {
        self.lock().next_id - 1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave `Inner` half-updated in a way that matters
        // (each field is written once per publish), so a poisoned lock is still usable.
        self.shared.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// How many events were published after `last` (held or not).
    fn missed_since(&self, last: u64) -> usize {
        usize::try_from((self.next_id - 1).saturating_sub(last)).unwrap_or(usize::MAX)
    }

    /// The held events after `last`, and whether any event after `last` is no longer held.
    fn after(&self, last: u64, limit: usize) -> (Vec<Arc<LiveEvent>>, bool) {
        let newest = self.next_id - 1;
        if last >= newest {
            // Up to date, or an id from the future (another process's numbering): nothing to
            // replay, but a future id means the client's state is from elsewhere.
            return (Vec::new(), last > newest);
        }
        let oldest_held = self.history.front().map(|e| e.id).unwrap_or(self.next_id);
        let resync = last + 1 < oldest_held;
        let events = self
            .history
            .iter()
            .filter(|e| e.id > last)
            .take(limit)
            .cloned()
            .collect();
        (events, resync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DatabaseHealth, Heartbeat};

    fn beat() -> EventKind {
        EventKind::Heartbeat(Heartbeat {
            instance_id: "test".into(),
            started_at: Utc::now(),
            database: DatabaseHealth::Ok,
        })
    }

    #[test]
    fn ids_increase_by_one_from_the_first() {
        let bus = EventBus::starting_at(8, 100);
        assert_eq!(bus.last_id(), 99);
        assert_eq!(bus.publish(beat()).id, 100);
        assert_eq!(bus.publish(beat()).id, 101);
        assert_eq!(bus.last_id(), 101);
    }

    #[test]
    fn a_reconnecting_subscriber_gets_exactly_what_it_missed_then_live_events() {
        let bus = EventBus::starting_at(8, 1);
        for _ in 0..5 {
            bus.publish(beat());
        }
        let mut sub = bus.subscribe(Some(3));
        assert!(!sub.resync);
        assert_eq!(
            sub.missed.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![4, 5]
        );
        bus.publish(beat());
        assert_eq!(sub.live.try_recv().unwrap().id, 6);
        assert!(sub.live.try_recv().is_err(), "nothing twice");
    }

    #[test]
    fn a_gap_larger_than_the_history_asks_for_a_resync() {
        let bus = EventBus::starting_at(3, 1);
        for _ in 0..10 {
            bus.publish(beat());
        }
        let sub = bus.subscribe(Some(2));
        assert!(sub.resync);
        assert_eq!(
            sub.missed.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![8, 9, 10]
        );
        // Exactly at the edge of the history nothing is lost.
        assert!(!bus.subscribe(Some(7)).resync);
    }

    #[test]
    fn an_id_from_the_future_asks_for_a_resync_and_replays_nothing() {
        let bus = EventBus::starting_at(3, 1);
        bus.publish(beat());
        let sub = bus.subscribe(Some(1_000));
        assert!(sub.resync);
        assert!(sub.missed.is_empty());
    }

    #[test]
    fn a_new_subscriber_without_an_id_gets_only_new_events() {
        let bus = EventBus::starting_at(3, 1);
        bus.publish(beat());
        let sub = bus.subscribe(None);
        assert!(sub.missed.is_empty() && !sub.resync);
    }

    #[test]
    fn pages_are_bounded_and_carry_the_newest_id() {
        let bus = EventBus::starting_at(16, 1);
        for _ in 0..10 {
            bus.publish(beat());
        }
        let page = bus.page_after(Some(2), 3);
        assert_eq!(
            page.events.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(page.last_id, 10);
        assert!(!page.resync);
        let first = bus.page_after(None, 3);
        assert!(first.events.is_empty());
        assert_eq!(first.last_id, 10);
    }
}
