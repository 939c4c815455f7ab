//! Smart customer sync: an open order form (one lease per browser tab) refreshes the customers
//! at once and holds every other exclusive sync until the last tab closes, vanishes (no
//! heartbeat for `smart_sync_grace`) or reaches `smart_sync_timeout`.
//!
//! The hold is part of the claim (`store::Hold`): on every process that shares the database, no
//! exclusive job but the customers refresh is claimed while a lease is live. Opening the first
//! lease asks a running exclusive job of another type to yield (it saves its checkpoint, goes
//! back to pending, and later resumes from it); ending the last one wakes the queue at once.

use chrono::{DateTime, Utc};

use super::{Engine, EngineError, Origin};
use crate::{
    model::{EventKind, JobSource, SmartLease, SmartSyncAnswer, SmartSyncEvent, SmartSyncStatus},
    server::store::{Hold, StoreError},
};

/// A tab id: what the page keeps in `sessionStorage`.
fn valid_tab(tab: &str) -> Result<&str, EngineError> {
    let tab = tab.trim();
    if tab.is_empty()
        || tab.len() > 64
        || !tab
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(EngineError::Invalid(
            "`tab_id` must be 1 to 64 letters, digits, `-` or `_` (the page makes one per tab)"
                .into(),
        ));
    }
    Ok(tab)
}

fn delta(d: std::time::Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

impl Engine {
    /// The hold on the queue at `now`, when order forms may hold it.
    pub(super) fn hold(&self, now: DateTime<Utc>) -> Option<Hold> {
        self.inner.smart_type.map(|exempt| Hold {
            exempt,
            live_after: self.live_after(now),
        })
    }

    fn live_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - delta(self.inner.settings.smart_sync_grace)
    }

    fn smart_type(&self) -> Result<&'static str, EngineError> {
        self.inner.smart_type.ok_or_else(|| {
            EngineError::Invalid(
                "smart customer sync is off in this configuration (smart_sync_type)".into(),
            )
        })
    }

    /// The order form opened in tab `tab` (or opened again): its lease begins (or is renewed).
    /// The first live lease requests the customers refresh, ahead of everything, and asks a
    /// running exclusive sync of another type to make way.
    pub async fn smart_open(&self, tab: &str, who: &str) -> Result<SmartSyncAnswer, EngineError> {
        let smart_type = self.smart_type()?;
        let tab = valid_tab(tab)?;
        let store = &self.inner.store;
        let now = Utc::now();
        let (lease, created, replaced) = store
            .open_lease(
                tab,
                who,
                now,
                self.live_after(now),
                now + delta(self.inner.settings.smart_sync_timeout),
            )
            .await?;
        if let Some(stale) = replaced {
            self.announce_end(&stale, now).await?;
        }
        let live = store.live_leases(now, self.live_after(now)).await?;
        let mut customers_job_id = None;
        if created {
            if live.len() == 1 {
                // The first tab: refresh now, and make the running exclusive sync step aside.
                let origin = Origin {
                    source: JobSource::Smart,
                    triggered_by: Some(who.to_string()),
                    note: None,
                    session_id: None,
                };
                let (job, _) = self.request_sync(smart_type, origin).await?;
                customers_job_id = Some(job.id);
                let (current, _) = store.queue(0).await?;
                if let Some(running) = current.filter(|j| j.sync_type != smart_type) {
                    if self.preempt(running.id).await? {
                        tracing::info!(job = %running.id, sync_type = %running.sync_type,
                            "an order form opened: the running sync yields to the customers refresh");
                    }
                }
            }
            self.inner
                .events
                .publish(EventKind::SmartSyncStarted(SmartSyncEvent {
                    tab_id: tab.to_string(),
                    active_tabs: live.len() as u32,
                    reason: None,
                    customers_job_id: customers_job_id.clone(),
                }));
        }
        self.answer(lease, live.len() as u32, customers_job_id)
            .await
    }

    /// A heartbeat of tab `tab`'s form: renews its lease while it is live; an ended lease (the
    /// tab vanished, or the safety timeout came) stays ended, and the answer says so.
    pub async fn smart_heartbeat(&self, tab: &str) -> Result<SmartSyncAnswer, EngineError> {
        self.smart_type()?;
        let tab = valid_tab(tab)?;
        let store = &self.inner.store;
        let now = Utc::now();
        let lease = match store
            .heartbeat_lease(tab, now, self.live_after(now))
            .await?
        {
            Some(lease) => lease,
            None => {
                // Not live: end it properly if nobody has yet, and say how it ended.
                if let Some(ended) = store.close_lease(tab, now, self.live_after(now)).await? {
                    self.announce_end(&ended, now).await?;
                    ended
                } else {
                    store.latest_lease(tab).await?.ok_or_else(|| {
                        EngineError::Conflict(format!(
                            "tab `{tab}` has no order form open; open it first \
                             (POST /api/customers/smart-sync without `heartbeat`)"
                        ))
                    })?
                }
            }
        };
        let live = store.live_leases(now, self.live_after(now)).await?.len() as u32;
        self.answer(lease, live, None).await
    }

    /// The order form in tab `tab` closed: its lease ends; after the last one, the syncs that
    /// waited run at once. `None` when the tab had no lease open.
    pub async fn smart_close(&self, tab: &str) -> Result<Option<SmartSyncEvent>, EngineError> {
        self.smart_type()?;
        let tab = valid_tab(tab)?;
        let now = Utc::now();
        let ended = self
            .inner
            .store
            .close_lease(tab, now, self.live_after(now))
            .await?;
        match ended {
            Some(lease) => Ok(Some(self.announce_end(&lease, now).await?)),
            None => Ok(None),
        }
    }

    /// Ends the leases that stopped being live (vanished tabs, timeouts) and tells everyone; run
    /// every second by the engine. Returns how many ended.
    pub async fn smart_reap(&self) -> Result<usize, StoreError> {
        if self.inner.smart_type.is_none() {
            return Ok(0);
        }
        let now = Utc::now();
        let ended = self
            .inner
            .store
            .end_stale_leases(now, self.live_after(now))
            .await?;
        for lease in &ended {
            self.announce_end(lease, now).await?;
        }
        Ok(ended.len())
    }

    /// Publishes the end of `lease`, and wakes the queue when no lease is live any more.
    async fn announce_end(
        &self,
        lease: &SmartLease,
        now: DateTime<Utc>,
    ) -> Result<SmartSyncEvent, StoreError> {
        let live = self
            .inner
            .store
            .live_leases(now, self.live_after(now))
            .await?
            .len() as u32;
        let event = SmartSyncEvent {
            tab_id: lease.tab_id.clone(),
            active_tabs: live,
            reason: lease.end_reason.clone(),
            customers_job_id: None,
        };
        let kind = if lease.end_reason.as_deref() == Some("timeout") {
            tracing::info!(tab = %lease.tab_id, who = %lease.who,
                "an order form stayed open past smart_sync_timeout: the other syncs resume");
            EventKind::SmartSyncTimeout(event.clone())
        } else {
            EventKind::SmartSyncEnded(event.clone())
        };
        self.inner.events.publish(kind);
        if live == 0 {
            self.notify_queued();
        }
        Ok(event)
    }

    async fn answer(
        &self,
        lease: SmartLease,
        active_tabs: u32,
        started: Option<String>,
    ) -> Result<SmartSyncAnswer, EngineError> {
        let smart_type = self.smart_type()?;
        let store = &self.inner.store;
        let facts = store.type_facts(smart_type).await?;
        let customers_job_id = started.or_else(|| {
            facts
                .running
                .as_ref()
                .map(|j| j.id.to_string())
                .or(facts.pending.map(|id| id.to_string()))
        });
        Ok(SmartSyncAnswer {
            lease,
            customers_job_id,
            customers_fresh_as_of: store.last_completed_start(smart_type).await?,
            active_tabs,
            grace_seconds: self.inner.settings.smart_sync_grace.as_secs().max(1),
        })
    }

    /// How many order forms hold a live lease now (0 when smart sync is off).
    pub async fn smart_live(&self) -> Result<usize, StoreError> {
        Ok(self.smart_status().await?.active_tabs as usize)
    }

    /// The open order forms, for `GET /api/sync/status`.
    pub(super) async fn smart_status(&self) -> Result<SmartSyncStatus, StoreError> {
        let Some(smart_type) = self.inner.smart_type else {
            return Ok(SmartSyncStatus::default());
        };
        let now = Utc::now();
        let leases = self
            .inner
            .store
            .live_leases(now, self.live_after(now))
            .await?;
        let holding = (!leases.is_empty()).then(|| {
            format!(
                "{} order form(s) open: exclusive syncs other than {smart_type} wait until they \
                 close",
                leases.len()
            )
        });
        Ok(SmartSyncStatus {
            active_tabs: leases.len() as u32,
            leases,
            holding,
        })
    }
}
