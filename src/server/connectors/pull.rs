//! `http_pull`: GETs a paginated JSON API page by page and upserts each record of an entity by
//! its key, counting what was created, updated, unchanged and (on full pulls) removed.
//!
//! Each page is applied in one transaction together with the checkpoint that names the next
//! page, so a cancelled, preempted or killed run resumes exactly where it stopped. A run is
//! incremental when the type is configured so and a full pull happened within `full_every`;
//! it asks for what changed since the source's own time (its `Date` header, less a second) when
//! the last successful run began, or, from a source without that header, since the newest
//! `updated_at` that run saw. Otherwise it is full, and only a full pull can notice removals.
//! An entity is fed by one source: two pull types on one entity (say an hourly incremental and
//! a nightly full one) must pull the same records, or each full pull removes the other's.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::http::{shown_url, Connection};
use crate::{
    model::{ChangeCounts, LogLevel},
    server::{
        engine::task::{SyncTask, TaskContext, TaskError, TaskOutput},
        store::PulledRecord,
    },
};

/// `task = { kind = "http_pull", … }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpPullConfig {
    /// The `[connections.<name>]` to use.
    pub connection: String,
    /// The path under the connection's base URL, e.g. `/customers`.
    pub path: String,
    /// Where the records are stored: customers, products, … or any name.
    pub entity: String,
    /// The field that identifies a record (a top-level name, or a JSON pointer like `/ids/erp`).
    #[serde(default = "default_key")]
    pub key: String,
    /// JSON pointer to the array of records in a response; empty: the response is the array.
    #[serde(default = "default_records")]
    pub records: String,
    /// JSON pointer to the total number of records, if the API says (for progress).
    #[serde(default = "default_total")]
    pub total: String,
    /// How pages are asked for.
    #[serde(default)]
    pub paging: Paging,
    /// Ask only for what changed since the last successful run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Incremental>,
    /// With `incremental`: pull everything (and so notice removals) at least this often.
    #[serde(default = "default_full_every", with = "humantime_serde")]
    pub full_every: Duration,
    /// Extra query parameters sent with every page.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Report progress after every page (on by default; off only to measure its cost).
    #[serde(default = "yes")]
    pub progress: bool,
    /// A full pull that saw fewer than this share of the records stored for the entity removes
    /// nothing and warns (a source that answered with half its data is more likely broken than
    /// half empty); 0 turns the guard off.
    #[serde(default = "default_removal_guard")]
    pub removal_guard: f64,
}

fn default_removal_guard() -> f64 {
    0.5
}

impl HttpPullConfig {
    /// A full pull of `path` on `connection` into `entity`, with every other key at its default:
    /// key `id`, records at `/data`, total at `/total`, page paging of 500.
    pub fn new(connection: &str, path: &str, entity: &str) -> Self {
        Self {
            connection: connection.into(),
            path: path.into(),
            entity: entity.into(),
            key: default_key(),
            records: default_records(),
            total: default_total(),
            paging: Paging::default(),
            incremental: None,
            full_every: default_full_every(),
            query: BTreeMap::new(),
            progress: true,
            removal_guard: default_removal_guard(),
        }
    }

    /// The same pull, asking only for what changed since the last run (`updated_since`,
    /// `updated_at`).
    pub fn incremental(self) -> Self {
        Self {
            incremental: Some(Incremental {
                param: since_param(),
                field: updated_field(),
            }),
            ..self
        }
    }

    /// Refuses what cannot work, naming the key under `at` (e.g. `sync_types.x.task`).
    pub fn check(&self, at: &str) -> Result<(), String> {
        for (key, pointer) in [("records", &self.records), ("total", &self.total)] {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return Err(format!(
                    "{at}.{key}: `{pointer}` must be a JSON pointer such as \"/{pointer}\" (or \"\" \
                     for the whole response)"
                ));
            }
        }
        let size = match &self.paging {
            Paging::Page { size, .. }
            | Paging::Offset { size, .. }
            | Paging::Cursor { size, .. } => *size,
            Paging::None => 1,
        };
        if size == 0 {
            return Err(format!("{at}.paging.size: must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.removal_guard) {
            return Err(format!(
                "{at}.removal_guard: must be between 0 and 1 (a share of the stored records), e.g. 0.5"
            ));
        }
        if !crate::server::engine::types::valid_name(&self.entity) {
            return Err(format!(
                "{at}.entity: `{}` must be 1 to 64 letters, digits, `-` or `_`",
                self.entity
            ));
        }
        Ok(())
    }

    /// The same pull, `size` records per page (page paging).
    pub fn pages_of(self, size: u32) -> Self {
        Self {
            paging: Paging::Page {
                param: page_param(),
                size_param: per_page_param(),
                size,
                first: 1,
            },
            ..self
        }
    }
}

/// How pages are asked for and how the last one is recognised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Paging {
    /// `?page=1&per_page=500`, `page=2`, …; a short page is the last.
    Page {
        #[serde(default = "page_param")]
        param: String,
        #[serde(default = "per_page_param")]
        size_param: String,
        #[serde(default = "default_size")]
        size: u32,
        #[serde(default = "one")]
        first: u64,
    },
    /// `?offset=0&limit=500`, `offset=500`, …; a short page is the last.
    Offset {
        #[serde(default = "offset_param")]
        param: String,
        #[serde(default = "limit_param")]
        size_param: String,
        #[serde(default = "default_size")]
        size: u32,
    },
    /// `?limit=500`, then `?cursor=<next>` from each response until there is none.
    Cursor {
        #[serde(default = "cursor_param")]
        param: String,
        #[serde(default = "limit_param")]
        size_param: String,
        #[serde(default = "default_size")]
        size: u32,
        /// JSON pointer to the next cursor in a response.
        #[serde(default = "next_pointer")]
        next: String,
    },
    /// One request returns everything.
    None,
}

impl Default for Paging {
    fn default() -> Self {
        Paging::Page {
            param: page_param(),
            size_param: per_page_param(),
            size: default_size(),
            first: 1,
        }
    }
}

/// `incremental = { param = "updated_since", field = "updated_at" }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// The query parameter that takes the time.
    #[serde(default = "since_param")]
    pub param: String,
    /// The record field holding when it last changed (RFC 3339); the newest one seen is sent
    /// next time, so the two systems' clocks never need to agree.
    #[serde(default = "updated_field")]
    pub field: String,
}

fn default_key() -> String {
    "id".into()
}
fn default_records() -> String {
    "/data".into()
}
fn default_total() -> String {
    "/total".into()
}
fn default_full_every() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn yes() -> bool {
    true
}
fn one() -> u64 {
    1
}
fn default_size() -> u32 {
    500
}
fn page_param() -> String {
    "page".into()
}
fn per_page_param() -> String {
    "per_page".into()
}
fn offset_param() -> String {
    "offset".into()
}
fn limit_param() -> String {
    "limit".into()
}
fn cursor_param() -> String {
    "cursor".into()
}
fn next_pointer() -> String {
    "/next_cursor".into()
}
fn since_param() -> String {
    "updated_since".into()
}
fn updated_field() -> String {
    "updated_at".into()
}

/// Where a run is; saved with every page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Checkpoint {
    /// `full` or `incremental`.
    mode: String,
    /// The `updated_since` sent (incremental runs).
    since: Option<String>,
    /// The next page number or offset, or the next cursor; `None` before the first page.
    next: Option<Value>,
    /// Pages applied.
    pages: u64,
    /// Records seen.
    seen: u64,
    counts: ChangeCounts,
    /// Where the next incremental run starts: the source's own time (its `Date` header) when
    /// this run's first page was answered, less a second; without that header, the newest
    /// `updated_at` seen.
    high_water: Option<String>,
    /// The source's time at the first page, once known.
    #[serde(default)]
    source_time: Option<String>,
    /// When the last full pull (this one, if full) started.
    last_full_at: Option<DateTime<Utc>>,
    /// Every page is applied.
    pages_done: bool,
    /// Every page is applied and, if full, removals are swept.
    done: bool,
    /// The newest cursors asked for (cursor paging), to stop a source that sends one again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    cursors: Vec<String>,
    /// The keys of the last page, hashed (page and offset paging), to stop a source that
    /// ignores the page it is asked for and answers the same page again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page_keys: Option<u64>,
}

/// Cursors a checkpoint remembers to notice a loop.
const CURSORS_KEPT: usize = 16;

/// The task.
pub struct HttpPullTask {
    config: HttpPullConfig,
    connection: Arc<Connection>,
}

impl HttpPullTask {
    /// A pull over `connection` (the one `config.connection` names).
    pub fn new(config: HttpPullConfig, connection: Arc<Connection>) -> Self {
        Self { config, connection }
    }

    /// Full or incremental, from the last successful run's result.
    async fn start(&self, ctx: &TaskContext) -> Result<Checkpoint, TaskError> {
        let now = Utc::now();
        let full = Checkpoint {
            mode: "full".into(),
            last_full_at: Some(now),
            ..Checkpoint::default()
        };
        if self.config.incremental.is_none() {
            return Ok(full);
        }
        let last = ctx
            .store()
            .last_result(ctx.sync_type())
            .await
            .map_err(|e| TaskError::database("could not read the last run", e))?
            .and_then(|r| serde_json::from_str::<Value>(&r).ok());
        let Some(last) = last else { return Ok(full) };
        let high_water = last.get("high_water").and_then(Value::as_str);
        let last_full_at = last
            .get("last_full_at")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let full_every =
            chrono::Duration::from_std(self.config.full_every).unwrap_or(chrono::Duration::MAX);
        match (high_water, last_full_at) {
            (Some(since), Some(at)) if now - at < full_every => Ok(Checkpoint {
                mode: "incremental".into(),
                since: Some(since.to_string()),
                high_water: Some(since.to_string()),
                last_full_at: Some(at),
                ..Checkpoint::default()
            }),
            _ => Ok(full),
        }
    }

    fn page_query(&self, at: &Checkpoint) -> BTreeMap<String, String> {
        let mut query = self.config.query.clone();
        if let (Some(since), Some(incremental)) = (&at.since, &self.config.incremental) {
            query.insert(incremental.param.clone(), since.clone());
        }
        match &self.config.paging {
            Paging::Page {
                param,
                size_param,
                size,
                first,
            } => {
                let page = at.next.as_ref().and_then(Value::as_u64).unwrap_or(*first);
                query.insert(param.clone(), page.to_string());
                query.insert(size_param.clone(), size.to_string());
            }
            Paging::Offset {
                param,
                size_param,
                size,
            } => {
                let offset = at.next.as_ref().and_then(Value::as_u64).unwrap_or(0);
                query.insert(param.clone(), offset.to_string());
                query.insert(size_param.clone(), size.to_string());
            }
            Paging::Cursor {
                param,
                size_param,
                size,
                ..
            } => {
                if let Some(cursor) = at.next.as_ref().and_then(Value::as_str) {
                    query.insert(param.clone(), cursor.to_string());
                }
                query.insert(size_param.clone(), size.to_string());
            }
            Paging::None => {}
        }
        query
    }

    /// The next position after a page of `n` records, or `None` when it was the last page: a
    /// short page, or (page and offset paging) one that reaches the `total` the API reports.
    fn next(&self, at: &Checkpoint, n: usize, total: Option<u64>, body: &Value) -> Option<Value> {
        // With a total, pages continue until it is reached (an API may cap the page size below
        // what was asked); without one, a short page is the last.
        let more = |size: u32| match total {
            Some(total) => n > 0 && at.seen + (n as u64) < total,
            None => n > 0 && n >= size as usize,
        };
        match &self.config.paging {
            Paging::Page { size, first, .. } => {
                let page = at.next.as_ref().and_then(Value::as_u64).unwrap_or(*first);
                more(*size).then(|| json!(page + 1))
            }
            Paging::Offset { size, .. } => {
                let offset = at.next.as_ref().and_then(Value::as_u64).unwrap_or(0);
                more(*size).then(|| json!(offset + n as u64))
            }
            Paging::Cursor { next, .. } => body
                .pointer(next)
                .and_then(|c| match c {
                    Value::String(s) if !s.is_empty() => Some(json!(s)),
                    Value::Number(n) => Some(json!(n.to_string())),
                    _ => None,
                })
                .filter(|_| n > 0),
            Paging::None => None,
        }
    }
}

/// The source's clock from a response's `Date` header, less a second (the header has whole
/// seconds), as RFC 3339.
fn source_time(response: &reqwest::Response) -> Option<String> {
    let date = response
        .headers()
        .get(reqwest::header::DATE)?
        .to_str()
        .ok()?;
    let at = DateTime::parse_from_rfc2822(date).ok()?.with_timezone(&Utc);
    Some((at - chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// A record's key: a string or an integer at `key` (a field name or a JSON pointer).
fn key_of(record: &Value, key: &str) -> Option<String> {
    let value = if key.starts_with('/') {
        record.pointer(key)
    } else {
        record.get(key)
    }?;
    match value {
        // A key is stored as text, which cannot hold NUL in Postgres.
        Value::String(s) if !s.is_empty() && !s.contains('\0') => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads one page: every record with its key and hash, or a message naming the record and field.
fn read_page(
    body: &Value,
    pointer: &str,
    key: &str,
    high_water: &mut Option<String>,
    updated_field: Option<&str>,
) -> Result<Vec<PulledRecord>, String> {
    let records = if pointer.is_empty() {
        body
    } else {
        body.pointer(pointer).ok_or_else(|| {
            format!("the response has no `{pointer}` (where the records were expected)")
        })?
    };
    let Value::Array(records) = records else {
        return Err(format!(
            "`{}` must be an array of records, found {}",
            if pointer.is_empty() {
                "the response"
            } else {
                pointer
            },
            kind_of(records)
        ));
    };
    let mut page = Vec::with_capacity(records.len());
    let mut newest = high_water.clone();
    for (i, record) in records.iter().enumerate() {
        if !record.is_object() {
            return Err(format!(
                "record {i} must be an object, found {}",
                kind_of(record)
            ));
        }
        let key = key_of(record, key).ok_or_else(|| {
            format!(
                "record {i} has no usable `{key}` (a non-empty string without NUL, or an integer)"
            )
        })?;
        if let Some(field) = updated_field {
            if let Some(Value::String(at)) = record.get(field) {
                if newest.as_deref().is_none_or(|n| later(at, n)) {
                    newest = Some(at.clone());
                }
            }
        }
        // serde_json's map keeps keys sorted, so equal records serialise equally.
        let data = record.to_string();
        let hash = xxhash_rust::xxh3::xxh3_64(data.as_bytes()) as i64;
        page.push(PulledRecord { key, data, hash });
    }
    *high_water = newest;
    Ok(page)
}

/// Whether time `a` is after `b` (RFC 3339 compared as instants, anything else as text).
fn later(a: &str, b: &str) -> bool {
    match (
        DateTime::parse_from_rfc3339(a),
        DateTime::parse_from_rfc3339(b),
    ) {
        (Ok(a), Ok(b)) => a > b,
        _ => a > b,
    }
}

#[async_trait]
impl SyncTask for HttpPullTask {
    async fn run(&self, ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        let saved = ctx
            .checkpoint()
            .map(|saved| serde_json::from_value::<Checkpoint>(saved.clone()));
        let mut at: Checkpoint = match saved {
            Some(Ok(saved)) => saved,
            Some(Err(err)) => {
                // Another task's checkpoint (the type's task changed while the job waited).
                ctx.log(
                    LogLevel::Warn,
                    format!("the saved checkpoint is not a pull's ({err}); starting over"),
                );
                self.start(ctx).await?
            }
            None => self.start(ctx).await?,
        };
        let writer = ctx.writer();
        let entity = self.config.entity.as_str();
        let full = at.mode == "full";
        if at.pages == 0 && !at.done {
            ctx.log(
                LogLevel::Info,
                match &at.since {
                    Some(since) => format!("incremental pull of {entity} changed since {since}"),
                    None => format!("full pull of {entity}"),
                },
            );
        }
        let updated_field = self.config.incremental.as_ref().map(|i| i.field.as_str());
        while !at.done {
            if ctx.stop().is_cancelled() {
                return Err(TaskError::Interrupted);
            }
            if at.pages_done {
                // A full pull's pages are all in: what it did not see was removed. A source that
                // answered with nothing at all is more likely broken than empty: nothing is
                // marked removed then.
                let mut swept = at.clone();
                swept.done = true;
                if at.seen == 0 {
                    ctx.warn(format!(
                        "the source returned no {entity} at all; nothing was marked removed"
                    ));
                    at = swept;
                    continue;
                }
                let stored =
                    ctx.store().count_live(entity).await.map_err(|e| {
                        TaskError::database(&format!("could not count {entity}"), e)
                    })?;
                if (at.seen as f64) < self.config.removal_guard * stored as f64 {
                    ctx.warn(format!(
                        "the source returned {} {entity} of the {stored} stored (less than {:.0} %, \
                         removal_guard); nothing was marked removed",
                        at.seen,
                        self.config.removal_guard * 100.0
                    ));
                    at = swept;
                    continue;
                }
                let saved = |removed: u64| {
                    let mut saved = swept.clone();
                    saved.counts.removed += removed;
                    serde_json::to_string(&saved).unwrap_or_default()
                };
                let removed = ctx
                    .store()
                    .sweep_removed(writer, entity, saved)
                    .await
                    .map_err(|e| {
                        TaskError::database(&format!("could not mark removed {entity}"), e)
                    })?
                    .ok_or_else(|| {
                        TaskError::Fatal("this worker no longer holds the job".into())
                    })?;
                swept.counts.removed += removed;
                if removed > 0 {
                    ctx.log(
                        LogLevel::Info,
                        format!("{removed} {entity} no longer in the source: marked removed"),
                    );
                }
                at = swept;
                continue;
            }
            let page_no = at.pages + 1;
            let url = self
                .connection
                .url(&self.config.path, &self.page_query(&at))?;
            let started = std::time::Instant::now();
            let response = self.connection.send(ctx, Method::GET, &url, None).await?;
            let source_time = at.source_time.clone().or_else(|| source_time(&response));
            let where_ = format!("page {page_no} (GET {})", shown_url(&url));
            let bytes = self.connection.read_body(ctx, response, &where_).await?;
            let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
                TaskError::Fatal(format!("{where_}: the response is not JSON ({e})"))
            })?;
            let mut high_water = at.high_water.clone();
            let records = read_page(
                &body,
                &self.config.records,
                &self.config.key,
                &mut high_water,
                updated_field,
            )
            .map_err(|e| TaskError::Fatal(format!("{where_}: {e}")))?;
            let total = body.pointer(&self.config.total).and_then(Value::as_u64);

            let mut next = at.clone();
            next.pages = page_no;
            next.seen += records.len() as u64;
            next.high_water = high_water;
            next.source_time = source_time;
            next.next = self.next(&at, records.len(), total, &body);
            if let (Paging::Cursor { .. }, Some(cursor)) = (
                &self.config.paging,
                next.next.as_ref().and_then(Value::as_str),
            ) {
                if at.cursors.iter().any(|c| c == cursor) {
                    return Err(TaskError::Fatal(format!(
                        "{where_}: the source sent the cursor `{cursor}` again, which it gave \
                         {} pages ago; the pull stops rather than go round in circles",
                        at.cursors.len()
                            - at.cursors.iter().rposition(|c| c == cursor).unwrap_or(0)
                    )));
                }
                next.cursors.push(cursor.to_string());
                if next.cursors.len() > CURSORS_KEPT {
                    next.cursors.remove(0);
                }
            }
            if matches!(
                self.config.paging,
                Paging::Page { .. } | Paging::Offset { .. }
            ) && !records.is_empty()
            {
                let mut keys = xxhash_rust::xxh3::Xxh3::new();
                for record in &records {
                    keys.update(record.key.as_bytes());
                    keys.update(b"\0");
                }
                let keys = keys.digest();
                if at.page_keys == Some(keys) && next.next.is_some() {
                    let param = match &self.config.paging {
                        Paging::Page { param, .. } | Paging::Offset { param, .. } => param.as_str(),
                        _ => "",
                    };
                    return Err(TaskError::Fatal(format!(
                        "{where_}: the source answered the same records as page {}; it seems to \
                         ignore the `{param}` parameter, and the pull stops rather than read the \
                         same page for ever",
                        at.pages
                    )));
                }
                next.page_keys = Some(keys);
            }
            next.pages_done = next.next.is_none();
            next.done = next.pages_done && !full;
            // The checkpoint is stored with the page, counts included.
            let checkpoint = |counts: ChangeCounts| {
                let mut saved = next.clone();
                saved.counts.add(counts);
                serde_json::to_string(&saved).unwrap_or_default()
            };
            let counts = ctx
                .store()
                .apply_page(writer, entity, &records, checkpoint, full)
                .await
                .map_err(|e| TaskError::database(&format!("{where_}: could not store"), e))?
                .ok_or_else(|| {
                    TaskError::Fatal(
                        "this worker no longer holds the job; the page was not stored".into(),
                    )
                })?;
            next.counts.add(counts);
            ctx.log(
                LogLevel::Info,
                format!(
                    "{where_}: {} records ({} created, {} updated, {} unchanged) in {} ms",
                    records.len(),
                    counts.created,
                    counts.updated,
                    counts.unchanged,
                    started.elapsed().as_millis()
                ),
            );
            if self.config.progress {
                let shown_total = if next.pages_done {
                    Some(next.seen)
                } else {
                    total.map(|t| t.max(next.seen))
                };
                ctx.progress(
                    next.seen,
                    shown_total,
                    format!("page {page_no}: {} {entity}", next.seen),
                );
            }
            at = next;
        }
        let c = at.counts;
        // Changes made while this run paged may sit on pages it had already read: the next run
        // starts from the source's time when this one began (re-reading a few records is free,
        // they compare unchanged).
        let next_since = at.source_time.clone().or(at.high_water.clone());
        ctx.progress(
            at.seen,
            Some(at.seen),
            format!(
                "{} {entity}: {} created, {} updated, {} removed",
                at.seen, c.created, c.updated, c.removed
            ),
        );
        Ok(TaskOutput {
            result: Some(json!({
                "entity": entity,
                "mode": at.mode,
                "since": at.since,
                "pages": at.pages,
                "records": at.seen,
                "processed": at.seen,
                "created": c.created,
                "updated": c.updated,
                "unchanged": c.unchanged,
                "removed": c.removed,
                "changes": c.changes(),
                "high_water": next_since,
                "last_full_at": at.last_full_at,
            })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_names_the_record_and_field_that_are_wrong() {
        let mut hw = None;
        let body = json!({"data": [{"id": 1}, {"name": "x"}]});
        let err = read_page(&body, "/data", "id", &mut hw, None).unwrap_err();
        assert!(err.contains("record 1") && err.contains("`id`"), "{err}");
        let err = read_page(&json!({"items": []}), "/data", "id", &mut hw, None).unwrap_err();
        assert!(err.contains("/data"), "{err}");
        let err = read_page(&json!({"data": {"id": 1}}), "/data", "id", &mut hw, None).unwrap_err();
        assert!(err.contains("an object"), "{err}");
        let err = read_page(&json!({"data": [3]}), "/data", "id", &mut hw, None).unwrap_err();
        assert!(err.contains("record 0 must be an object"), "{err}");
    }

    #[test]
    fn equal_records_hash_equally_whatever_the_key_order_and_the_newest_time_wins() {
        let mut hw = Some("2026-01-01T00:00:00Z".to_string());
        let a: Value = serde_json::from_str(
            r#"{"id": "a", "x": 1, "updated_at": "2026-02-01T00:00:00+01:00"}"#,
        )
        .unwrap();
        let b: Value = serde_json::from_str(
            r#"{"updated_at": "2026-02-01T00:00:00+01:00", "x": 1, "id": "a"}"#,
        )
        .unwrap();
        let page = read_page(&json!([a, b]), "", "id", &mut hw, Some("updated_at")).unwrap();
        assert_eq!(page[0].hash, page[1].hash);
        assert_eq!(page[0].data, page[1].data);
        assert_eq!(hw.as_deref(), Some("2026-02-01T00:00:00+01:00"));
        assert_eq!(
            key_of(&json!({"ids": {"erp": 7}}), "/ids/erp").as_deref(),
            Some("7")
        );
        assert_eq!(key_of(&json!({"id": 1.5}), "id"), None);
    }
}
