//! `baton bench --suite tasks`: the tasks view's list with 1,000,000 jobs stored, on SQLite and
//! Postgres. The jobs are spread over eight types and five sources, 80 % completed, 10 % failed,
//! 5 % cancelled, 5 % pending; then each page the view asks for is read 100 times (p50, p99):
//! the first page, a page 20 pages deep (cursor), state = failed, one type, one source, who
//! asked, and a text search.
//!
//! One database per backend per run (the insert takes a while); figures are medians over `--runs`.

use std::time::Instant;

use chrono::Utc;
use uuid::Uuid;

use super::{
    engine::BenchDb,
    measure::{median_f64, percentile, BenchArgs},
};
use crate::{
    model::{JobSource, JobState},
    server::store::{JobFilter, NewJob, Store},
};

const JOBS: usize = 1_000_000;
const TYPES: [&str; 8] = [
    "orders",
    "customers",
    "ddt",
    "invoices",
    "prices",
    "products",
    "employee-changes",
    "records",
];

/// Fills `store` with `JOBS` jobs and gives them their states.
async fn fill(store: &Store) -> anyhow::Result<()> {
    let now = Utc::now();
    let mut batch = Vec::with_capacity(50_000);
    for i in 0..JOBS {
        batch.push(NewJob {
            sync_type: TYPES[i % TYPES.len()].to_string(),
            priority: 1,
            exclusive: false,
            max_attempts: 3,
            run_at: now,
            source: JobSource::ALL[i % JobSource::ALL.len()],
            triggered_by: Some(format!("user-{}", i % 40)),
            note: None,
            session_id: None,
            retry_of: None,
            input: None,
        });
        if batch.len() == batch.capacity() {
            store.insert_jobs(&batch).await?;
            batch.clear();
        }
    }
    store.insert_jobs(&batch).await?;
    store.bench_spread_states().await?;
    Ok(())
}

/// p50 and p99 (ms) of 100 reads of the page `filter` names.
async fn page(store: &Store, filter: &JobFilter) -> anyhow::Result<(f64, f64)> {
    let mut samples = Vec::with_capacity(100);
    for _ in 0..100 {
        let started = Instant::now();
        let jobs = store.list_jobs(filter).await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(!jobs.is_empty(), "the page {filter:?} is empty");
    }
    let p50 = percentile(&mut samples, 50);
    Ok((p50, percentile(&mut samples, 99)))
}

/// Runs the suite and prints its figures.
pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    for backend in ["sqlite", "postgres"] {
        let mut figures: Vec<(&str, Vec<f64>, Vec<f64>)> = Vec::new();
        for _ in 0..args.runs {
            let (db, store) = BenchDb::open(backend, args).await?;
            let started = Instant::now();
            fill(&store).await?;
            let fill_s = started.elapsed().as_secs_f64();
            // The 21st page: the cursor is the last id of the 20th.
            let mut before: Option<Uuid> = None;
            for _ in 0..20 {
                let page = store
                    .list_jobs(&JobFilter {
                        limit: 50,
                        before,
                        ..Default::default()
                    })
                    .await?;
                before = page.last().map(|j| j.id);
            }
            let base = JobFilter {
                limit: 50,
                ..Default::default()
            };
            let cases: Vec<(&str, JobFilter)> = vec![
                ("first_page", base.clone()),
                (
                    "page_21",
                    JobFilter {
                        before,
                        ..base.clone()
                    },
                ),
                (
                    "state_failed",
                    JobFilter {
                        state: Some(JobState::Failed),
                        ..base.clone()
                    },
                ),
                (
                    "type_prices",
                    JobFilter {
                        sync_type: Some("prices".into()),
                        ..base.clone()
                    },
                ),
                (
                    "source_scheduler",
                    JobFilter {
                        source: Some(JobSource::Scheduler),
                        ..base.clone()
                    },
                ),
                (
                    "who_user-7",
                    JobFilter {
                        who: Some("user-7".into()),
                        ..base.clone()
                    },
                ),
                (
                    "search_employee",
                    JobFilter {
                        q: Some("employee".into()),
                        ..base.clone()
                    },
                ),
                (
                    "failed_prices",
                    JobFilter {
                        state: Some(JobState::Failed),
                        sync_type: Some("prices".into()),
                        ..base.clone()
                    },
                ),
            ];
            for (i, (name, filter)) in cases.iter().enumerate() {
                let (p50, p99) = page(&store, filter).await?;
                if figures.len() <= i {
                    figures.push((name, Vec::new(), Vec::new()));
                }
                figures[i].1.push(p50);
                figures[i].2.push(p99);
            }
            println!("tasks.{backend}.fill_s {fill_s:>7.1}  ({JOBS} jobs inserted and spread over states)");
            db.drop_now(store).await;
        }
        for (name, mut p50s, p99s) in figures {
            println!(
                "tasks.{backend}.{name:<18} p50 {:>7.2}  p99 {:>7.2} ms  ({JOBS} jobs, 50 a page, medians of {} runs; runs p99 {:?})",
                median_f64(&mut p50s),
                median_f64(&mut p99s.clone()),
                args.runs,
                p99s.iter().map(|v| (v * 100.0).round() / 100.0).collect::<Vec<_>>()
            );
        }
    }
    Ok(())
}
