//! Pulled records, their change sets, exports and job logs.
//!
//! Every write a connector makes for a page happens in one transaction together with the job's
//! checkpoint, guarded by the job's lease: either the page and the position after it are both
//! stored, or neither is. A run that is cancelled, preempted or killed resumes from the
//! checkpoint and never applies a page twice, so its counts and change set are exact.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::model::{ChangeCounts, ChangeKind, EntityChange, JobLogLine, LogLevel};
use crate::on_pool;

/// One record a connector pulled: its key, its data as canonical JSON (keys sorted) and that
/// text's hash.
#[derive(Clone, Debug)]
pub struct PulledRecord {
    /// The value of the configured key field.
    pub key: String,
    /// The record, serialised with its keys sorted.
    pub data: String,
    /// xxh3 of `data`.
    pub hash: i64,
}

/// The job writing, for the lease check that guards every connector write.
#[derive(Clone, Copy, Debug)]
pub struct Writer {
    /// The job.
    pub job_id: Uuid,
    /// The process that must still hold its lease.
    pub owner: Uuid,
    /// The attempt that must still be running.
    pub attempt: u32,
}

/// A record ready to export.
#[derive(Clone, Debug)]
pub struct ExportRecord {
    /// Its key.
    pub key: String,
    /// Its data (JSON).
    pub data: String,
    /// The hash stored with the export, so a later change makes it ready again.
    pub hash: i64,
}

/// Which records an export takes: those of `entity` not yet sent to `target` as they are now,
/// optionally only those whose top-level `field` equals `value`.
#[derive(Clone, Debug)]
pub struct ExportSelection<'a> {
    /// The entity (e.g. `orders`).
    pub entity: &'a str,
    /// Who exports (the sync type's name).
    pub target: &'a str,
    /// `(field, value)`: only records whose field has this (string) value.
    pub only: Option<(&'a str, &'a str)>,
}

/// The top-level fields whose values differ between two JSON objects (all of them when either
/// is not an object).
pub fn changed_fields(old: &str, new: &str) -> Vec<String> {
    type Object = serde_json::Map<String, serde_json::Value>;
    match (
        serde_json::from_str::<Object>(old),
        serde_json::from_str::<Object>(new),
    ) {
        (Ok(old), Ok(new)) => {
            let mut fields: Vec<String> = new
                .iter()
                .filter(|(k, v)| old.get(*k) != Some(*v))
                .map(|(k, _)| k.clone())
                .chain(old.keys().filter(|k| !new.contains_key(*k)).cloned())
                .collect();
            fields.sort();
            fields
        }
        _ => Vec::new(),
    }
}

impl Store {
    /// Applies one pulled page of `entity` and stores the checkpoint made from its counts with
    /// it, in one transaction.
    /// `mark_seen` (full pulls) also records unchanged rows as seen by this job, for
    /// [`Store::sweep_removed`]. `None` when `writer` no longer holds the job: nothing was written.
    pub async fn apply_page(
        &self,
        writer: Writer,
        entity: &str,
        records: &[PulledRecord],
        checkpoint: impl FnOnce(ChangeCounts) -> String + Send,
        mark_seen: bool,
    ) -> Result<Option<ChangeCounts>, StoreError> {
        let now = Utc::now();
        // A page may name a key twice (paging over data that moves): the last one counts.
        let mut latest: HashMap<&str, &PulledRecord> = HashMap::with_capacity(records.len());
        for record in records {
            latest.insert(record.key.as_str(), record);
        }
        let mut keys: Vec<&str> = latest.keys().copied().collect();
        keys.sort_unstable();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut stored: HashMap<String, (i64, String, bool)> = HashMap::new();
            for chunk in keys.chunks(500) {
                let mut query = sqlx::QueryBuilder::new(
                    "select key, hash, data, removed_at is not null as removed \
                     from entity_records where entity = ",
                );
                query.push_bind(entity).push(" and ");
                push_key_in(&mut query, chunk);
                for row in query.build().fetch_all(&mut *tx).await? {
                    stored.insert(row.try_get("key")?, (row.try_get("hash")?, row.try_get("data")?, row.try_get("removed")?));
                }
            }
            let mut counts = ChangeCounts::default();
            let mut changed: Vec<&PulledRecord> = Vec::new();
            let mut unchanged: Vec<&str> = Vec::new();
            let mut changes: Vec<(&str, ChangeKind, Option<String>)> = Vec::new();
            for &key in &keys {
                let record = latest[&key];
                match stored.get(key) {
                    None => {
                        counts.created += 1;
                        changes.push((key, ChangeKind::Created, None));
                        changed.push(record);
                    }
                    Some((_, _, true)) => {
                        counts.created += 1;
                        changes.push((key, ChangeKind::Created, None));
                        changed.push(record);
                    }
                    Some((hash, data, false)) if *hash != record.hash || *data != record.data => {
                        counts.updated += 1;
                        let fields = serde_json::to_string(&changed_fields(data, &record.data))
                            .unwrap_or_else(|_| "[]".into());
                        changes.push((key, ChangeKind::Updated, Some(fields)));
                        changed.push(record);
                    }
                    Some(_) => {
                        counts.unchanged += 1;
                        unchanged.push(key);
                    }
                }
            }
            for chunk in changed.chunks(500) {
                let mut query = sqlx::QueryBuilder::new(
                    "insert into entity_records \
                     (entity, key, data, hash, created_at, updated_at, removed_at, seen_by) ",
                );
                query.push_values(chunk, |mut b, r| {
                    b.push_bind(entity)
                        .push_bind(r.key.as_str())
                        .push_bind(r.data.as_str())
                        .push_bind(r.hash)
                        .push_bind(now)
                        .push_bind(now)
                        .push_bind(None::<DateTime<Utc>>)
                        .push_bind(writer.job_id);
                });
                query.push(
                    " on conflict (entity, key) do update set data = excluded.data, \
                     hash = excluded.hash, updated_at = excluded.updated_at, removed_at = null, \
                     seen_by = excluded.seen_by",
                );
                query.build().execute(&mut *tx).await?;
            }
            if mark_seen {
                for chunk in unchanged.chunks(500) {
                    let mut query = sqlx::QueryBuilder::new("update entity_records set seen_by = ");
                    query.push_bind(writer.job_id).push(" where entity = ").push_bind(entity).push(" and ");
                    push_key_in(&mut query, chunk);
                    query.build().execute(&mut *tx).await?;
                }
            }
            for chunk in changes.chunks(500) {
                let mut query = sqlx::QueryBuilder::new(
                    "insert into entity_changes (job_id, entity, key, change, fields, at) ",
                );
                query.push_values(chunk, |mut b, (key, kind, fields)| {
                    b.push_bind(writer.job_id)
                        .push_bind(entity)
                        .push_bind(*key)
                        .push_bind(kind.as_str())
                        .push_bind(fields.clone())
                        .push_bind(now);
                });
                query.build().execute(&mut *tx).await?;
            }
            // Last, so the checkpoint carries the counts: if the job moved on, all of it rolls back.
            if !hold_lease!(&mut *tx, writer, checkpoint(counts)) {
                return Ok(None);
            }
            tx.commit().await?;
            Ok(Some(counts))
        })
    }

    /// Ends a full pull: marks the live records of `entity` that this job did not see as removed,
    /// records them in the change set and stores the checkpoint made from their count, in one
    /// transaction. Returns how many were removed, or `None` when `writer` no longer holds the
    /// job (nothing written).
    pub async fn sweep_removed(
        &self,
        writer: Writer,
        entity: &str,
        checkpoint: impl FnOnce(u64) -> String + Send,
    ) -> Result<Option<u64>, StoreError> {
        let now = Utc::now();
        let sweep = "update entity_records set removed_at = $1 \
                     where entity = $2 and removed_at is null and seen_by <> $3 returning key";
        let record = "insert into entity_changes (job_id, entity, key, change, fields, at) \
                      values ($1, $2, $3, 'removed', null, $4)";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let removed: Vec<String> = sqlx::query_scalar(sweep)
                .bind(now)
                .bind(entity)
                .bind(writer.job_id)
                .fetch_all(&mut *tx)
                .await?;
            for key in &removed {
                sqlx::query(record)
                    .bind(writer.job_id)
                    .bind(entity)
                    .bind(key)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            if !hold_lease!(&mut *tx, writer, checkpoint(removed.len() as u64)) {
                return Ok(None);
            }
            tx.commit().await?;
            Ok(Some(removed.len() as u64))
        })
    }

    /// The live records of `entity` (not removed), or of every entity with `None`, per entity.
    pub async fn count_entities(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let sql = "select entity, count(*) from entity_records where removed_at is null \
                   group by entity order by entity";
        let rows: Vec<(String, i64)> =
            on_pool!(read self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|(e, n)| (e, n.max(0) as u64))
            .collect())
    }

    /// Live records of `entity` that Postgres cannot read as JSON (they hold `\u0000`), which an
    /// export filtered by a field skips; always 0 on SQLite, which reads them.
    pub async fn unreadable_records(&self, entity: &str) -> Result<u64, StoreError> {
        let Store::Postgres(pools) = self else {
            return Ok(0);
        };
        let n: i64 = sqlx::query_scalar(
            "select count(*) from entity_records where entity = $1 and removed_at is null \
             and data ~ $2",
        )
        .bind(entity)
        .bind(ESCAPED_NUL)
        .fetch_one(&pools.main)
        .await?;
        Ok(n.max(0) as u64)
    }

    /// How many live records `entity` has.
    pub async fn count_live(&self, entity: &str) -> Result<u64, StoreError> {
        let sql = "select count(*) from entity_records where entity = $1 and removed_at is null";
        let n: i64 = on_pool!(read self, pool => {
            sqlx::query_scalar(sql).bind(entity).fetch_one(pool).await?
        });
        Ok(n.max(0) as u64)
    }

    /// Every live record of `entity` as `(key, data)`, in key order.
    pub async fn live_records(&self, entity: &str) -> Result<Vec<(String, String)>, StoreError> {
        let sql = "select key, data from entity_records where entity = $1 \
                   and removed_at is null order by key";
        Ok(on_pool!(read self, pool => {
            sqlx::query_as(sql).bind(entity).fetch_all(pool).await?
        }))
    }

    /// One stored record's data, if it is live.
    pub async fn entity_record(
        &self,
        entity: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let sql = "select data from entity_records where entity = $1 and key = $2 \
                   and removed_at is null";
        Ok(on_pool!(read self, pool => {
            sqlx::query_scalar(sql).bind(entity).bind(key).fetch_optional(pool).await?
        }))
    }

    /// The newest changes, newest first: of one entity and/or one job if given, older than
    /// `before` (an id) if given.
    pub async fn list_changes(
        &self,
        entity: Option<&str>,
        job_id: Option<Uuid>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<EntityChange>, StoreError> {
        type ChangeRow = (
            i64,
            Uuid,
            String,
            String,
            String,
            Option<String>,
            DateTime<Utc>,
        );
        let rows: Vec<ChangeRow> = on_pool!(read self, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "select id, job_id, entity, key, change, fields, at from entity_changes where 1 = 1",
            );
            if let Some(entity) = entity {
                query.push(" and entity = ").push_bind(entity);
            }
            if let Some(job_id) = job_id {
                query.push(" and job_id = ").push_bind(job_id);
            }
            if let Some(before) = before {
                query.push(" and id < ").push_bind(before);
            }
            query.push(" order by id desc limit ").push_bind(i64::from(limit));
            query.build_query_as().fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(id, job_id, entity, key, change, fields, at)| EntityChange {
                    id,
                    job_id: job_id.to_string(),
                    entity,
                    key,
                    change: ChangeKind::parse(&change).unwrap_or(ChangeKind::Updated),
                    fields: fields
                        .and_then(|f| serde_json::from_str(&f).ok())
                        .unwrap_or_default(),
                    at,
                },
            )
            .collect())
    }

    /// Up to `limit` records ready to export, in key order after `after`.
    pub async fn ready_for_export(
        &self,
        selection: &ExportSelection<'_>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ExportRecord>, StoreError> {
        let backend = self.backend();
        let rows: Vec<(String, String, i64)> = on_pool!(read self, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "select r.key, r.data, r.hash from entity_records r \
                 left join entity_exports e on e.entity = r.entity and e.key = r.key and e.target = ",
            );
            query.push_bind(selection.target);
            query.push(" where r.entity = ").push_bind(selection.entity);
            query.push(" and r.removed_at is null and (e.hash is null or e.hash <> r.hash)");
            push_only(&mut query, backend, selection.only);
            if let Some(after) = after {
                query.push(" and r.key > ").push_bind(after);
            }
            query.push(" order by r.key limit ").push_bind(i64::from(limit));
            query.build_query_as().fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(key, data, hash)| ExportRecord { key, data, hash })
            .collect())
    }

    /// How many records are ready to export.
    pub async fn count_ready(&self, selection: &ExportSelection<'_>) -> Result<u64, StoreError> {
        let backend = self.backend();
        let n: i64 = on_pool!(read self, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "select count(*) from entity_records r \
                 left join entity_exports e on e.entity = r.entity and e.key = r.key and e.target = ",
            );
            query.push_bind(selection.target);
            query.push(" where r.entity = ").push_bind(selection.entity);
            query.push(" and r.removed_at is null and (e.hash is null or e.hash <> r.hash)");
            push_only(&mut query, backend, selection.only);
            query.build_query_scalar().fetch_one(pool).await?
        });
        Ok(n.max(0) as u64)
    }

    /// Records `records` as exported by `writer`'s job to `target`, with `checkpoint`, in one
    /// transaction; `false` when `writer` no longer holds the job (nothing written).
    pub async fn mark_exported(
        &self,
        writer: Writer,
        entity: &str,
        target: &str,
        records: &[ExportRecord],
        checkpoint: &str,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if !hold_lease!(&mut *tx, writer, checkpoint) {
                return Ok(false);
            }
            for chunk in records.chunks(500) {
                let mut query = sqlx::QueryBuilder::new(
                    "insert into entity_exports (entity, key, target, hash, exported_at, job_id) ",
                );
                query.push_values(chunk, |mut b, r| {
                    b.push_bind(entity)
                        .push_bind(r.key.as_str())
                        .push_bind(target)
                        .push_bind(r.hash)
                        .push_bind(now)
                        .push_bind(writer.job_id);
                });
                query.push(
                    " on conflict (entity, key, target) do update set hash = excluded.hash, \
                     exported_at = excluded.exported_at, job_id = excluded.job_id",
                );
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Stores log lines (any jobs, any attempts) in one statement per 500.
    pub async fn append_logs(&self, lines: &[JobLogLine]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut parsed = Vec::with_capacity(lines.len());
        for line in lines {
            let Ok(id) = Uuid::parse_str(&line.job_id) else {
                continue;
            };
            parsed.push((id, line));
        }
        on_pool!(self, pool => {
            for chunk in parsed.chunks(500) {
                let mut query = sqlx::QueryBuilder::new(
                    "insert into job_logs (job_id, attempt, seq, at, level, message) ",
                );
                query.push_values(chunk, |mut b, (id, line)| {
                    b.push_bind(*id)
                        .push_bind(i64::from(line.attempt))
                        .push_bind(i64::from(line.seq))
                        .push_bind(line.at)
                        .push_bind(line.level.as_str())
                        .push_bind(line.message.as_str());
                });
                query.build().execute(pool).await?;
            }
        });
        Ok(())
    }

    /// A job's log lines in order, after the line with id `after` if given, at most `limit`.
    pub async fn job_logs(
        &self,
        job_id: Uuid,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<JobLogLine>, StoreError> {
        let sql = "select id, attempt, seq, at, level, message from job_logs where job_id = $1 \
                   and id > $2 order by id limit $3";
        let rows: Vec<(i64, i64, i64, DateTime<Utc>, String, String)> = on_pool!(read self, pool => {
            sqlx::query_as(sql)
                .bind(job_id)
                .bind(after.unwrap_or(0))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, attempt, seq, at, level, message)| JobLogLine {
                id: Some(id),
                job_id: job_id.to_string(),
                attempt: attempt.clamp(0, i64::from(u32::MAX)) as u32,
                seq: seq.clamp(0, i64::from(u32::MAX)) as u32,
                at,
                level: LogLevel::parse(&level),
                message,
            })
            .collect())
    }
}

/// `key in (…)`, the way each database plans well: SQLite looks each bound key up in the primary
/// key; Postgres gets one array (`key = any($n)`), because with hundreds of separate parameters
/// its cached generic plan scans the entity and compares every key (2 s per page of 500 in
/// 100k records, against 3 ms).
trait KeyIn: sqlx::Database + Sized {
    fn push_key_in<'a>(query: &mut sqlx::QueryBuilder<'a, Self>, keys: &[&'a str]);
}

impl KeyIn for sqlx::Sqlite {
    fn push_key_in<'a>(query: &mut sqlx::QueryBuilder<'a, Self>, keys: &[&'a str]) {
        query.push("key in (");
        let mut list = query.separated(", ");
        for key in keys {
            list.push_bind(*key);
        }
        query.push(")");
    }
}

impl KeyIn for sqlx::Postgres {
    fn push_key_in<'a>(query: &mut sqlx::QueryBuilder<'a, Self>, keys: &[&'a str]) {
        query.push("key = any(").push_bind(keys.to_vec()).push(")");
    }
}

fn push_key_in<'a, DB: KeyIn>(query: &mut sqlx::QueryBuilder<'a, DB>, keys: &[&'a str]) {
    DB::push_key_in(query, keys);
}

/// A regular expression for JSON text that holds an escaped NUL (`\u0000` after an even number
/// of backslashes, so not an escaped backslash followed by `u0000`).
const ESCAPED_NUL: &str = r"(^|[^\\])(\\\\)*\\u0000";

/// Adds the export's `only = { field, value }` filter (the field name is checked to be a plain
/// identifier when the configuration is read).
fn push_only<'a, DB: sqlx::Database>(
    query: &mut sqlx::QueryBuilder<'a, DB>,
    backend: super::Backend,
    only: Option<(&'a str, &'a str)>,
) where
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let Some((field, value)) = only else { return };
    match backend {
        // String values only, in both databases (SQLite's json_extract gives numbers as numbers,
        // Postgres' ->> as text).
        super::Backend::Sqlite => {
            query
                .push(" and json_type(r.data, ")
                .push_bind(format!("$.{field}"))
                .push(") = 'text' and json_extract(r.data, ")
                .push_bind(format!("$.{field}"))
                .push(") = ")
                .push_bind(value);
        }
        // Postgres' jsonb refuses a record holding `\u0000` (and with it the whole statement),
        // so such a record is never read as jsonb: it does not match, and the export says so.
        super::Backend::Postgres => {
            query
                .push(" and jsonb_typeof(case when r.data ~ ")
                .push_bind(ESCAPED_NUL)
                .push(" then null else r.data::jsonb end -> ")
                .push_bind(field)
                .push(") = 'string' and (case when r.data ~ ")
                .push_bind(ESCAPED_NUL)
                .push(" then null else r.data::jsonb end ->> ")
                .push_bind(field)
                .push(") = ")
                .push_bind(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_fields_lists_added_removed_and_different_values() {
        let fields = changed_fields(
            r#"{"a": 1, "b": "x", "gone": true}"#,
            r#"{"a": 1, "b": "y", "new": null}"#,
        );
        assert_eq!(fields, ["b", "gone", "new"]);
        assert!(changed_fields(r#"{"a": 1}"#, r#"{"a": 1}"#).is_empty());
        assert!(changed_fields("[1]", r#"{"a": 1}"#).is_empty());
    }
}
