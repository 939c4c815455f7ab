//! `export`: sends the records of an entity that are ready (new, or changed since they were
//! last exported, and optionally only those with a field set to a value) to the ERP over HTTP,
//! or writes them as CSV files to an outbox directory, in batches. A batch is marked exported
//! only after the ERP accepted it or its file is in place, so a refused or failed batch stays
//! ready. Delivery is at least once: a crash between the ERP's acceptance and the mark sends
//! that batch again, so the receiving side should treat the key as idempotent.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::http::{shown_url, Connection};
use crate::{
    model::LogLevel,
    server::{
        engine::task::{SyncTask, TaskContext, TaskError, TaskOutput},
        store::{ExportRecord, ExportSelection},
    },
};

/// `task = { kind = "export", entity = "orders", only = { field = "status", value = "ready" },
/// target = { kind = "http", connection = "erp", path = "/orders/import" } }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// The entity whose records are exported.
    pub entity: String,
    /// Only records whose top-level `field` is the string `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<OnlyWhen>,
    /// Records per request or file.
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// Where they go.
    pub target: ExportTarget,
}

/// `only = { field = "status", value = "ready" }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlyWhen {
    /// A top-level field name (letters, digits, `_`).
    pub field: String,
    /// The value it must have.
    pub value: String,
}

/// Where exported records go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExportTarget {
    /// POST each batch as a JSON array to `path` on the connection.
    Http { connection: String, path: String },
    /// Write each batch as `<entity>-<time>-<job>-<n>.csv` into `dir` (created if missing),
    /// with the named top-level fields as columns (nested values as JSON). A cell that starts
    /// with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so a spreadsheet
    /// shows it as text instead of running it as a formula; `formulas = true` writes cells as
    /// they are, for a reader that is not a spreadsheet.
    Csv {
        dir: PathBuf,
        columns: Vec<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        formulas: bool,
    },
}

/// A cell as a spreadsheet may read it: one that would start a formula starts with `'`. A plain
/// number (`-5`, `+3.25`) is a number, not a formula, and stays as it is.
pub fn neutralised(cell: String) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') if !plain_number(&cell) => format!("'{cell}"),
        _ => cell,
    }
}

/// An optional sign, digits, and optionally a point and more digits.
fn plain_number(cell: &str) -> bool {
    let unsigned = cell.strip_prefix(['+', '-']).unwrap_or(cell);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() => (whole, fraction),
        Some(_) => return false,
        None => (unsigned, ""),
    };
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// A top-level JSON field name as the `only` filter takes it.
fn valid_field(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl ExportConfig {
    /// Refuses what cannot work, naming the key under `at` (e.g. `sync_types.x.task`).
    pub fn check(&self, at: &str) -> Result<(), String> {
        // The entity names CSV files and rows in the database: a plain name, no path.
        if !crate::server::engine::types::valid_name(&self.entity) {
            return Err(format!(
                "{at}.entity: `{}` must be 1 to 64 letters, digits, `-` or `_`",
                self.entity
            ));
        }
        if let Some(only) = &self.only {
            if !valid_field(&only.field) {
                return Err(format!(
                    "{at}.only.field: `{}` must be a plain field name (letters, digits, `_`)",
                    only.field
                ));
            }
        }
        Ok(())
    }
}

fn default_batch() -> u32 {
    500
}

/// The task.
pub struct ExportTask {
    config: ExportConfig,
    connection: Option<Arc<Connection>>,
}

impl ExportTask {
    /// An export; `connection` is the one an HTTP target names.
    pub fn new(config: ExportConfig, connection: Option<Arc<Connection>>) -> Self {
        Self { config, connection }
    }

    /// The selection of records this export takes, as `target`.
    pub fn selection<'a>(config: &'a ExportConfig, target: &'a str) -> ExportSelection<'a> {
        ExportSelection {
            entity: &config.entity,
            target,
            only: config
                .only
                .as_ref()
                .map(|o| (o.field.as_str(), o.value.as_str())),
        }
    }

    async fn deliver(
        &self,
        ctx: &TaskContext,
        batch: &[ExportRecord],
        number: u64,
    ) -> Result<String, TaskError> {
        match &self.config.target {
            ExportTarget::Http { path, .. } => {
                let connection = self
                    .connection
                    .as_ref()
                    .ok_or_else(|| TaskError::Fatal("the export has no connection".into()))?;
                let url = connection.url(path, &BTreeMap::new())?;
                let body = Value::Array(
                    batch
                        .iter()
                        .map(|r| serde_json::from_str(&r.data).unwrap_or(Value::Null))
                        .collect(),
                );
                connection
                    .send(ctx, Method::POST, &url, Some(&body))
                    .await?;
                Ok(format!("POST {}", shown_url(&url)))
            }
            ExportTarget::Csv {
                dir,
                columns,
                formulas,
            } => {
                let name = format!(
                    "{}-{}-{}-{number:03}.csv",
                    self.config.entity,
                    chrono::Utc::now().format("%Y%m%dT%H%M%S"),
                    &ctx.job_id().simple().to_string()[..12]
                );
                let rows: Vec<Vec<String>> = batch
                    .iter()
                    .map(|r| {
                        let data: Value = serde_json::from_str(&r.data).unwrap_or(Value::Null);
                        columns
                            .iter()
                            .map(|c| match data.get(c) {
                                None | Some(Value::Null) => String::new(),
                                // A JSON number is a number, whatever its sign or exponent.
                                Some(Value::Number(n)) => n.to_string(),
                                Some(Value::String(s)) if *formulas => s.clone(),
                                Some(Value::String(s)) => neutralised(s.clone()),
                                Some(other) if *formulas => other.to_string(),
                                Some(other) => neutralised(other.to_string()),
                            })
                            .collect()
                    })
                    .collect();
                let (dir, columns) = (dir.clone(), columns.clone());
                let path = dir.join(&name);
                let shown = path.display().to_string();
                tokio::task::spawn_blocking(move || write_csv(&dir, &name, &columns, &rows))
                    .await
                    .map_err(|e| TaskError::Retryable(format!("could not write {shown}: {e}")))?
                    .map_err(|e| TaskError::Retryable(format!("could not write {shown}: {e}")))?;
                Ok(format!("wrote {shown}"))
            }
        }
    }
}

/// Writes the file under a temporary name and renames it, so a reader of the outbox never sees
/// half a file.
fn write_csv(
    dir: &std::path::Path,
    name: &str,
    columns: &[String],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{name}.partial"));
    {
        let file = std::fs::File::create(&temporary)?;
        let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(file));
        writer.write_record(columns)?;
        for row in rows {
            writer.write_record(row)?;
        }
        let file = writer
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, dir.join(name))?;
    // The rename itself is durable only once the directory is.
    std::fs::File::open(dir)?.sync_all()
}

/// How old an unfinished file must be before an export removes it: older than any export of
/// one batch takes, so another export of the entity that is writing now keeps its file.
const STALE_PARTIAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes `.<entity>-….partial` files older than [`STALE_PARTIAL`] from `dir` (what a killed
/// export left); returns how many.
fn remove_stale_partials(dir: &std::path::Path, entity: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let prefix = format!(".{entity}-");
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".partial")
        })
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_PARTIAL)
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

#[async_trait]
impl SyncTask for ExportTask {
    async fn outlook(
        &self,
        store: &crate::server::store::Store,
        sync_type: &str,
    ) -> Option<String> {
        let selection = Self::selection(&self.config, sync_type);
        match store.count_ready(&selection).await {
            Ok(n) => Some(format!("{n} {} ready to export", self.config.entity)),
            Err(err) => {
                tracing::warn!(error = %err, sync_type, "could not count the records to export");
                None
            }
        }
    }

    async fn run(&self, ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        let selection = Self::selection(&self.config, ctx.sync_type());
        let saved = ctx.checkpoint().cloned().unwrap_or(json!({}));
        let mut exported = saved.get("exported").and_then(Value::as_u64).unwrap_or(0);
        let mut batches = saved.get("batches").and_then(Value::as_u64).unwrap_or(0);
        let store_error = |e: crate::server::store::StoreError| {
            TaskError::database("could not read the records to export", e)
        };
        let ready = ctx
            .store()
            .count_ready(&selection)
            .await
            .map_err(store_error)?;
        let total = exported + ready;
        let entity = &self.config.entity;
        if let ExportTarget::Csv { dir, .. } = &self.config.target {
            let (dir, entity) = (dir.clone(), entity.clone());
            let removed = tokio::task::spawn_blocking(move || remove_stale_partials(&dir, &entity))
                .await
                .unwrap_or(0);
            if removed > 0 {
                ctx.log(
                    crate::model::LogLevel::Info,
                    format!(
                        "removed {removed} unfinished file(s) an earlier, interrupted export left"
                    ),
                );
            }
        }
        if self.config.only.is_some() {
            let unreadable = ctx
                .store()
                .unreadable_records(entity)
                .await
                .map_err(store_error)?;
            if unreadable > 0 {
                ctx.warn(format!(
                    "{unreadable} {entity} hold a NUL character (\\u0000), which Postgres cannot \
                     read as JSON; they were not considered for this export"
                ));
            }
        }
        ctx.progress(
            exported,
            Some(total),
            format!("{ready} {entity} ready to export"),
        );
        let mut after: Option<String> = None;
        loop {
            if ctx.stop().is_cancelled() {
                return Err(TaskError::Interrupted);
            }
            let batch = ctx
                .store()
                .ready_for_export(&selection, after.as_deref(), self.config.batch.max(1))
                .await
                .map_err(store_error)?;
            let Some(last) = batch.last() else { break };
            after = Some(last.key.clone());
            let done = self.deliver(ctx, &batch, batches + 1).await?;
            batches += 1;
            exported += batch.len() as u64;
            let checkpoint = json!({ "exported": exported, "batches": batches }).to_string();
            let held = ctx
                .store()
                .mark_exported(ctx.writer(), entity, ctx.sync_type(), &batch, &checkpoint)
                .await
                .map_err(|e| {
                    TaskError::database(
                        &format!(
                            "{done}, but could not mark the batch exported (it will be sent again)"
                        ),
                        e,
                    )
                })?;
            if !held {
                return Err(TaskError::Fatal(
                    "this worker no longer holds the job; the batch was not marked exported".into(),
                ));
            }
            ctx.log(
                LogLevel::Info,
                format!("{done}: {} {entity} exported", batch.len()),
            );
            ctx.progress(
                exported,
                Some(total.max(exported)),
                format!("{exported} of {total} {entity} exported"),
            );
        }
        if exported == 0 {
            ctx.log(LogLevel::Info, format!("no {entity} ready to export"));
        }
        ctx.progress(
            exported,
            Some(exported),
            format!("{exported} {entity} exported"),
        );
        Ok(TaskOutput {
            result: Some(json!({
                "entity": entity,
                "exported": exported,
                "processed": exported,
                "batches": batches,
            })),
        })
    }
}
