//! The job lifecycle: every move a job can make, as one pure function, and the retry policy
//! ([`retry`]). Pure: no I/O, imports only `model`; the store and the engine both speak its
//! types.
//!
//! [`apply`] takes the lifecycle part of a job, a [`Transition`] and the time, and returns the new
//! lifecycle or the reason the move is refused. It does no I/O: the store writes what it returns,
//! and only if the row is still as it was read (compare-and-set on state, attempt and lease owner).
//! So a worker whose lease was taken over, or whose job was cancelled, cannot write a result: its
//! transition is refused here, and its write would match no row there.
//!
//! ```text
//!            claim                complete
//!  Pending ─────────▶ Running ─────────────▶ Completed
//!     ▲  │              │  │     fail (fatal or last attempt), rescue (the third)
//!     │  │ cancel       │  └────────────────▶ Failed
//!     │  ▼              │ cancelled (after a cancel request)
//!  Cancelled ◀──────────┘
//!     ▲
//!     └ Running goes back to Pending on: fail (retryable, attempts left), yield, rescue
//!
//! A rescue does not use up an attempt (the worker died, hung or lost the database; the task did
//! not fail), so execution is at least once: a task whose worker died after its side effects but
//! before its end was stored runs again. The attempt number still moves on with the next claim,
//! so the old worker can never write as the new one.
//! ```

pub mod retry;
pub mod session;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::model::JobState;

/// The fewest rescues after which a job fails rather than run again (a type that allows more
/// attempts allows as many rescues): a task that kills or hangs every worker that runs it must
/// not do so for ever.
pub const MAX_RESCUES: u32 = 3;

/// The part of a job the lifecycle governs.
#[derive(Clone, Debug, PartialEq)]
pub struct Lifecycle {
    /// Where the job is.
    pub state: JobState,
    /// Attempts started so far (a yield gives one back). Also the fencing token: a new claim
    /// always gets a new number, so a worker that lost its lease can never pass for the holder.
    pub attempt: u32,
    /// Attempts that ended in a rescue (their worker died, hung or lost the database). They do
    /// not count against `max_attempts`: a crash is not the task's failure.
    pub rescues: u32,
    /// Attempts allowed in all.
    pub max_attempts: u32,
    /// Not claimed before this time (backoff after a retryable error).
    pub run_at: DateTime<Utc>,
    /// Who runs it and until when; present exactly while `Running`.
    pub lease: Option<Lease>,
    /// Set when cancellation was asked for while it ran.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// When the current or last attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    /// The last error, kept across retries until a success.
    pub error: Option<String>,
}

/// A worker's claim on a running job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The process holding it (an `instances` id).
    pub owner: Uuid,
    /// After this, the rescuer may take the job back.
    pub expires_at: DateTime<Utc>,
}

/// Which attempt of which worker a transition speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The lease owner the worker believes it is.
    pub owner: Uuid,
    /// The attempt the worker is running.
    pub attempt: u32,
}

/// A move.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// A worker takes a due pending job for `lease_for`.
    Claim { owner: Uuid, lease_for: Duration },
    /// The worker renews its lease (heartbeat).
    Renew { holder: Holder, lease_for: Duration },
    /// The task succeeded.
    Complete { holder: Holder },
    /// The task failed. A retryable error with attempts left goes back to pending after `backoff`.
    Fail {
        holder: Holder,
        error: String,
        retryable: bool,
        backoff: Duration,
    },
    /// The engine asked the task to make way (preemption); it saved its checkpoint and stops.
    /// The job is pending again at once, and the attempt does not count.
    Yield { holder: Holder },
    /// Someone asked to cancel: a pending job ends now; a running one is marked and its task told.
    RequestCancel,
    /// The running task stopped after a cancel request.
    Cancelled { holder: Holder },
    /// The lease ran out (its process died or hung): pending again, or failed if no attempts are left.
    Rescue,
}

/// Why a move was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The job is finished; nothing moves it any more.
    #[error("the job is already {}", .0.as_str())]
    Finished(JobState),
    /// The move needs another state.
    #[error("the job is {}, not {}", .actual.as_str(), .expected.as_str())]
    WrongState {
        /// The state the move needs.
        expected: JobState,
        /// The state the job is in.
        actual: JobState,
    },
    /// The job is not due yet.
    #[error("the job is not due before {0}")]
    NotDue(DateTime<Utc>),
    /// The worker no longer holds this job: another attempt or owner has it.
    #[error("this worker no longer holds the job (its lease was lost or taken over)")]
    NotHolder,
    /// The lease has not run out, so there is nothing to rescue.
    #[error("the lease is still valid until {0}")]
    LeaseValid(DateTime<Utc>),
    /// A cancel was not requested, so the task may not end as cancelled.
    #[error("no cancellation was requested")]
    NoCancelRequested,
}

impl Lifecycle {
    /// A new job, due at `run_at`, allowed `max_attempts` attempts (at least one).
    pub fn new(run_at: DateTime<Utc>, max_attempts: u32) -> Self {
        Self {
            state: JobState::Pending,
            attempt: 0,
            rescues: 0,
            max_attempts: max_attempts.max(1),
            run_at,
            lease: None,
            cancel_requested_at: None,
            started_at: None,
            finished_at: None,
            error: None,
        }
    }

    /// Attempts that count against `max_attempts`: those started, less the rescued ones.
    pub fn attempts_used(&self) -> u32 {
        self.attempt.saturating_sub(self.rescues)
    }

    /// Who holds the job right now, if it runs.
    pub fn holder(&self) -> Option<Holder> {
        self.lease.map(|lease| Holder {
            owner: lease.owner,
            attempt: self.attempt,
        })
    }
}

/// The one place a job changes state.
pub fn apply(
    job: &Lifecycle,
    transition: Transition,
    now: DateTime<Utc>,
) -> Result<Lifecycle, Refused> {
    if job.state.is_terminal() {
        return Err(Refused::Finished(job.state));
    }
    let mut next = job.clone();
    match transition {
        Transition::Claim { owner, lease_for } => {
            expect(job, JobState::Pending)?;
            if job.run_at > now {
                return Err(Refused::NotDue(job.run_at));
            }
            next.state = JobState::Running;
            next.attempt += 1;
            next.lease = Some(Lease {
                owner,
                expires_at: now + lease_for,
            });
            next.started_at = Some(now);
        }
        Transition::Renew { holder, lease_for } => {
            held_by(job, holder)?;
            next.lease = Some(Lease {
                owner: holder.owner,
                expires_at: now + lease_for,
            });
        }
        Transition::Complete { holder } => {
            held_by(job, holder)?;
            finish(&mut next, JobState::Completed, now);
            next.error = None;
        }
        Transition::Fail {
            holder,
            error,
            retryable,
            backoff,
        } => {
            held_by(job, holder)?;
            next.error = Some(error);
            if job.cancel_requested_at.is_some() {
                // It failed while stopping: what was asked for was a stop, and that is what it is.
                finish(&mut next, JobState::Cancelled, now);
            } else if retryable && job.attempts_used() < job.max_attempts {
                back_to_pending(&mut next, now + backoff);
            } else {
                finish(&mut next, JobState::Failed, now);
            }
        }
        Transition::Yield { holder } => {
            held_by(job, holder)?;
            if job.cancel_requested_at.is_some() {
                finish(&mut next, JobState::Cancelled, now);
            } else {
                back_to_pending(&mut next, now);
                next.attempt -= 1;
            }
        }
        Transition::RequestCancel => match job.state {
            JobState::Pending => {
                next.cancel_requested_at = Some(now);
                finish(&mut next, JobState::Cancelled, now);
            }
            JobState::Running => {
                // Asking twice keeps the first time.
                next.cancel_requested_at.get_or_insert(now);
            }
            _ => unreachable!("terminal states were refused above"),
        },
        Transition::Cancelled { holder } => {
            held_by(job, holder)?;
            if job.cancel_requested_at.is_none() {
                return Err(Refused::NoCancelRequested);
            }
            finish(&mut next, JobState::Cancelled, now);
        }
        Transition::Rescue => {
            expect(job, JobState::Running)?;
            let lease = job.lease.expect("a running job holds a lease");
            if lease.expires_at > now {
                return Err(Refused::LeaseValid(lease.expires_at));
            }
            next.rescues += 1;
            next.error = Some(format!(
                "lease lost: the worker of attempt {} stopped renewing its lease (its process died, \
                 hung or lost the database)",
                job.attempt
            ));
            if job.cancel_requested_at.is_some() {
                finish(&mut next, JobState::Cancelled, now);
            } else if next.rescues >= job.max_attempts.max(MAX_RESCUES) {
                next.error = Some(format!(
                    "lease lost {} times: its task seems to crash or hang its workers",
                    next.rescues
                ));
                finish(&mut next, JobState::Failed, now);
            } else {
                // Pending again, the attempt not counted; the next claim takes a new number.
                back_to_pending(&mut next, now);
            }
        }
    }
    Ok(next)
}

fn expect(job: &Lifecycle, expected: JobState) -> Result<(), Refused> {
    if job.state == expected {
        Ok(())
    } else {
        Err(Refused::WrongState {
            expected,
            actual: job.state,
        })
    }
}

fn held_by(job: &Lifecycle, holder: Holder) -> Result<(), Refused> {
    expect(job, JobState::Running)?;
    if job.holder() == Some(holder) {
        Ok(())
    } else {
        Err(Refused::NotHolder)
    }
}

fn finish(next: &mut Lifecycle, state: JobState, now: DateTime<Utc>) {
    next.state = state;
    next.lease = None;
    next.finished_at = Some(now);
}

fn back_to_pending(next: &mut Lifecycle, run_at: DateTime<Utc>) {
    next.state = JobState::Pending;
    next.lease = None;
    next.run_at = run_at;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .into()
    }

    fn owner() -> Uuid {
        Uuid::from_u128(1)
    }

    fn secs(s: i64) -> Duration {
        Duration::seconds(s)
    }

    /// A job in `state`, on its first of three attempts when it has started.
    fn job_in(state: JobState) -> Lifecycle {
        let mut job = Lifecycle::new(t0(), 3);
        if state != JobState::Pending {
            job = apply(
                &job,
                Transition::Claim {
                    owner: owner(),
                    lease_for: secs(30),
                },
                t0(),
            )
            .unwrap();
        }
        match state {
            JobState::Pending | JobState::Running => {}
            JobState::Completed => finish(&mut job, JobState::Completed, t0()),
            JobState::Failed => finish(&mut job, JobState::Failed, t0()),
            JobState::Cancelled => finish(&mut job, JobState::Cancelled, t0()),
        }
        job
    }

    fn me() -> Holder {
        Holder {
            owner: owner(),
            attempt: 1,
        }
    }

    /// Every transition, as the worker holding attempt 1 would send it.
    fn every_transition() -> Vec<(&'static str, Transition)> {
        vec![
            (
                "claim",
                Transition::Claim {
                    owner: owner(),
                    lease_for: secs(30),
                },
            ),
            (
                "renew",
                Transition::Renew {
                    holder: me(),
                    lease_for: secs(30),
                },
            ),
            ("complete", Transition::Complete { holder: me() }),
            (
                "fail",
                Transition::Fail {
                    holder: me(),
                    error: "boom".into(),
                    retryable: true,
                    backoff: secs(5),
                },
            ),
            ("yield", Transition::Yield { holder: me() }),
            ("request-cancel", Transition::RequestCancel),
            ("cancelled", Transition::Cancelled { holder: me() }),
            ("rescue", Transition::Rescue),
        ]
    }

    #[test]
    fn every_state_and_transition_has_the_outcome_of_the_table() {
        use JobState::*;
        // The state each (state, transition) pair leads to; None: refused. Rescue and cancelled are
        // checked at a time when they are allowed (lease expired; cancel requested) below.
        let expected = |state: JobState, name: &str| -> Option<JobState> {
            match (state, name) {
                (Completed | Failed | Cancelled, _) => None,
                (Pending, "claim") => Some(Running),
                (Pending, "request-cancel") => Some(Cancelled),
                (Pending, _) => None,
                (Running, "claim") => None,
                (Running, "renew") => Some(Running),
                (Running, "complete") => Some(Completed),
                (Running, "fail") => Some(Pending), // retryable, attempts left
                (Running, "yield") => Some(Pending),
                (Running, "request-cancel") => Some(Running),
                (Running, "cancelled") => None, // nobody asked
                (Running, "rescue") => None,    // the lease is still valid at t0
                (s, n) => panic!("no row for {s:?} × {n}"),
            }
        };
        for state in JobState::ALL {
            for (name, transition) in every_transition() {
                let outcome = apply(&job_in(state), transition, t0());
                assert_eq!(
                    outcome.as_ref().ok().map(|j| j.state),
                    expected(state, name),
                    "{state:?} × {name}: {outcome:?}"
                );
                if let Ok(next) = outcome {
                    assert_eq!(
                        next.lease.is_some(),
                        next.state == Running,
                        "{state:?} × {name}: lease iff running"
                    );
                    assert_eq!(
                        next.finished_at.is_some(),
                        next.state.is_terminal(),
                        "{state:?} × {name}"
                    );
                }
            }
        }
    }

    #[test]
    fn finished_jobs_refuse_everything_with_their_state() {
        for state in [JobState::Completed, JobState::Failed, JobState::Cancelled] {
            for (_, transition) in every_transition() {
                assert_eq!(
                    apply(&job_in(state), transition, t0()),
                    Err(Refused::Finished(state))
                );
            }
        }
    }

    #[test]
    fn a_claim_counts_an_attempt_and_takes_a_lease() {
        let job = apply(
            &job_in(JobState::Pending),
            Transition::Claim {
                owner: owner(),
                lease_for: secs(30),
            },
            t0(),
        )
        .unwrap();
        assert_eq!(job.attempt, 1);
        assert_eq!(
            job.lease,
            Some(Lease {
                owner: owner(),
                expires_at: t0() + secs(30)
            })
        );
        assert_eq!(job.started_at, Some(t0()));
    }

    #[test]
    fn a_job_is_not_claimed_before_its_run_at() {
        let job = Lifecycle::new(t0() + secs(10), 3);
        let claim = Transition::Claim {
            owner: owner(),
            lease_for: secs(30),
        };
        assert_eq!(
            apply(&job, claim.clone(), t0()),
            Err(Refused::NotDue(t0() + secs(10)))
        );
        assert!(apply(&job, claim, t0() + secs(10)).is_ok());
    }

    #[test]
    fn a_late_worker_cannot_write_a_result_after_losing_its_job() {
        let running = job_in(JobState::Running);
        // Another owner, or a stale attempt of the same owner, is not the holder.
        let other = Holder {
            owner: Uuid::from_u128(2),
            attempt: 1,
        };
        let stale = Holder {
            owner: owner(),
            attempt: 0,
        };
        for holder in [other, stale] {
            assert_eq!(
                apply(&running, Transition::Complete { holder }, t0()),
                Err(Refused::NotHolder)
            );
            assert_eq!(
                apply(
                    &running,
                    Transition::Renew {
                        holder,
                        lease_for: secs(30)
                    },
                    t0()
                ),
                Err(Refused::NotHolder)
            );
        }
        // Rescued and claimed again: the first worker's attempt 1 is over.
        let later = t0() + secs(31);
        let rescued = apply(&running, Transition::Rescue, later).unwrap();
        let reclaimed = apply(
            &rescued,
            Transition::Claim {
                owner: owner(),
                lease_for: secs(30),
            },
            later,
        )
        .unwrap();
        assert_eq!(reclaimed.attempt, 2);
        assert_eq!(
            apply(&reclaimed, Transition::Complete { holder: me() }, later),
            Err(Refused::NotHolder)
        );
    }

    #[test]
    fn a_retryable_error_backs_off_until_the_last_attempt_then_fails() {
        let mut job = Lifecycle::new(t0(), 2);
        let mut now = t0();
        for attempt in 1..=2 {
            job = apply(
                &job,
                Transition::Claim {
                    owner: owner(),
                    lease_for: secs(30),
                },
                now,
            )
            .unwrap();
            let holder = Holder {
                owner: owner(),
                attempt,
            };
            let fail = Transition::Fail {
                holder,
                error: format!("try {attempt}"),
                retryable: true,
                backoff: secs(7),
            };
            job = apply(&job, fail, now).unwrap();
            now += secs(7);
        }
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.error.as_deref(), Some("try 2"));
        assert_eq!(job.attempt, 2);
    }

    #[test]
    fn a_retry_waits_for_its_backoff() {
        let fail = Transition::Fail {
            holder: me(),
            error: "503".into(),
            retryable: true,
            backoff: secs(5),
        };
        let job = apply(&job_in(JobState::Running), fail, t0()).unwrap();
        assert_eq!((job.state, job.run_at), (JobState::Pending, t0() + secs(5)));
        assert_eq!(job.error.as_deref(), Some("503"));
        let claim = Transition::Claim {
            owner: owner(),
            lease_for: secs(30),
        };
        assert_eq!(
            apply(&job, claim, t0()),
            Err(Refused::NotDue(t0() + secs(5)))
        );
    }

    #[test]
    fn a_fatal_error_fails_at_once_whatever_attempts_remain() {
        let fail = Transition::Fail {
            holder: me(),
            error: "401".into(),
            retryable: false,
            backoff: secs(5),
        };
        let job = apply(&job_in(JobState::Running), fail, t0()).unwrap();
        assert_eq!(job.state, JobState::Failed);
    }

    #[test]
    fn success_clears_the_error_of_earlier_attempts() {
        let fail = Transition::Fail {
            holder: me(),
            error: "503".into(),
            retryable: true,
            backoff: secs(0),
        };
        let job = apply(&job_in(JobState::Running), fail, t0()).unwrap();
        let job = apply(
            &job,
            Transition::Claim {
                owner: owner(),
                lease_for: secs(30),
            },
            t0(),
        )
        .unwrap();
        let holder = Holder {
            owner: owner(),
            attempt: 2,
        };
        let job = apply(&job, Transition::Complete { holder }, t0()).unwrap();
        assert_eq!((job.state, job.error), (JobState::Completed, None));
    }

    #[test]
    fn cancelling_a_running_job_marks_it_and_its_task_ends_it() {
        let asked = apply(&job_in(JobState::Running), Transition::RequestCancel, t0()).unwrap();
        assert_eq!(asked.state, JobState::Running);
        assert_eq!(asked.cancel_requested_at, Some(t0()));
        let again = apply(&asked, Transition::RequestCancel, t0() + secs(1)).unwrap();
        assert_eq!(
            again.cancel_requested_at,
            Some(t0()),
            "the first request's time stays"
        );
        let ended = apply(&asked, Transition::Cancelled { holder: me() }, t0()).unwrap();
        assert_eq!(ended.state, JobState::Cancelled);
    }

    #[test]
    fn a_task_that_fails_or_yields_while_being_cancelled_ends_cancelled_not_retried() {
        let asked = apply(&job_in(JobState::Running), Transition::RequestCancel, t0()).unwrap();
        let fail = Transition::Fail {
            holder: me(),
            error: "interrupted".into(),
            retryable: true,
            backoff: secs(1),
        };
        assert_eq!(
            apply(&asked, fail, t0()).unwrap().state,
            JobState::Cancelled
        );
        assert_eq!(
            apply(&asked, Transition::Yield { holder: me() }, t0())
                .unwrap()
                .state,
            JobState::Cancelled
        );
    }

    #[test]
    fn a_yield_is_pending_again_at_once_and_does_not_use_up_an_attempt() {
        let job = apply(
            &job_in(JobState::Running),
            Transition::Yield { holder: me() },
            t0() + secs(3),
        )
        .unwrap();
        assert_eq!(
            (job.state, job.attempt, job.run_at),
            (JobState::Pending, 0, t0() + secs(3))
        );
    }

    #[test]
    fn a_rescue_waits_for_the_lease_then_requeues_without_using_an_attempt() {
        let running = job_in(JobState::Running);
        assert_eq!(
            apply(&running, Transition::Rescue, t0() + secs(29)),
            Err(Refused::LeaseValid(t0() + secs(30)))
        );
        let rescued = apply(&running, Transition::Rescue, t0() + secs(30)).unwrap();
        assert_eq!(rescued.state, JobState::Pending);
        assert!(rescued.error.unwrap().contains("lease"));

        // On its last attempt too: the task did not fail, its worker did.
        let mut last = running.clone();
        last.max_attempts = 1;
        let again = apply(&last, Transition::Rescue, t0() + secs(30)).unwrap();
        assert_eq!((again.state, again.attempts_used()), (JobState::Pending, 0));
        // The next claim gets a new attempt number, whatever was given back.
        let reclaimed = apply(
            &again,
            Transition::Claim {
                owner: owner(),
                lease_for: secs(30),
            },
            t0() + secs(31),
        )
        .unwrap();
        assert_eq!(reclaimed.attempt, 2);
        // A task that takes its worker down every time fails at the third rescue.
        let mut doomed = running.clone();
        doomed.rescues = MAX_RESCUES - 1;
        let ended = apply(&doomed, Transition::Rescue, t0() + secs(30)).unwrap();
        assert_eq!(ended.state, JobState::Failed);
        assert!(ended.error.unwrap().contains("3 times"));
    }

    #[test]
    fn renewing_moves_the_lease_forward() {
        let renewed = apply(
            &job_in(JobState::Running),
            Transition::Renew {
                holder: me(),
                lease_for: secs(30),
            },
            t0() + secs(10),
        )
        .unwrap();
        assert_eq!(renewed.lease.unwrap().expires_at, t0() + secs(40));
    }
}
