//! Drafts of orders, and the order form's lookups in the synced records (customers by name,
//! products with their prices). A draft marked ready is also a record of the entity `drafts`
//! (key `D000042`), which the `export-drafts` type sends to the ERP; once a record of it has
//! been exported, the draft reads as exported.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Backend, Store, StoreError};
use crate::on_pool;

/// A row of `drafts`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DraftRow {
    pub id: i64,
    pub customer_id: String,
    pub lines: String,
    pub total_cents: i64,
    pub note: Option<String>,
    pub status: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
    pub exported_at: Option<DateTime<Utc>>,
}

/// What a draft holds, to insert or update.
#[derive(Clone, Debug)]
pub struct DraftData<'a> {
    pub customer_id: &'a str,
    pub lines: &'a str,
    pub total_cents: i64,
    pub note: Option<&'a str>,
}

/// The entity of drafts marked ready.
pub const DRAFT_ENTITY: &str = "drafts";

/// The record key of draft `id`.
pub fn draft_key(id: i64) -> String {
    format!("D{id:06}")
}

/// The job that "saw" a draft's record: Baton itself, not a pull.
const BATON: Uuid = Uuid::nil();

/// `json field of the record's data`, per database.
fn field(backend: Backend, column: &str, name: &str) -> String {
    match backend {
        Backend::Sqlite => format!("json_extract({column}, '$.{name}')"),
        Backend::Postgres => format!("(({column})::json ->> '{name}')"),
    }
}

fn draft_select(backend: Backend) -> String {
    let key = match backend {
        Backend::Sqlite => "'D' || substr('000000' || d.id, -6, 6)",
        Backend::Postgres => "'D' || lpad(d.id::text, 6, '0')",
    };
    format!(
        "select d.id, d.customer_id, d.lines, d.total_cents, d.note, d.status, d.created_by, \
         d.created_at, d.updated_by, d.updated_at, \
         (select max(e.exported_at) from entity_exports e where e.entity = 'drafts' \
          and e.key = {key}) as exported_at \
         from drafts d"
    )
}

impl Store {
    /// Live records of `entity` whose `name` (or key) contains `q` (any case), by name; at
    /// most `limit`. Each as (key, data).
    pub async fn search_records(
        &self,
        entity: &str,
        q: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let name = field(self.backend(), "data", "name");
        let pattern = format!(
            "%{}%",
            q.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let sql = format!(
            "select key, data from entity_records where entity = $1 and removed_at is null \
             and (lower(coalesce({name}, '')) like $2 escape '\\' or lower(key) like $2 escape '\\') \
             order by lower(coalesce({name}, '')), key limit $3"
        );
        Ok(on_pool!(read self, pool => {
            sqlx::query_as(&sql)
                .bind(entity)
                .bind(pattern)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }

    /// The live records of `entity` with these keys, as (key, data).
    pub async fn records_by_keys(
        &self,
        entity: &str,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_pool!(read self, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "select key, data from entity_records where removed_at is null and entity = ",
            );
            query.push_bind(entity).push(" and key in (");
            let mut list = query.separated(", ");
            for key in keys {
                list.push_bind(key.clone());
            }
            query.push(")");
            query.build_query_as().fetch_all(pool).await?
        }))
    }

    /// The synced price (in cents) of each of `products`, from the live `prices` records.
    pub async fn prices_of(&self, products: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
        if products.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.backend();
        let product = field(backend, "data", "product_id");
        let price = match backend {
            Backend::Sqlite => "cast(json_extract(data, '$.price_cents') as integer)".to_string(),
            Backend::Postgres => "((data)::json ->> 'price_cents')::bigint".to_string(),
        };
        Ok(on_pool!(read self, pool => {
            let mut query = sqlx::QueryBuilder::new(format!(
                "select {product}, {price} from entity_records where entity = 'prices' \
                 and removed_at is null and {price} is not null and {product} in ("
            ));
            let mut list = query.separated(", ");
            for id in products {
                list.push_bind(id.clone());
            }
            query.push(")");
            query.build_query_as().fetch_all(pool).await?
        }))
    }

    /// Every draft, newest first.
    pub async fn drafts(&self) -> Result<Vec<DraftRow>, StoreError> {
        let sql = format!("{} order by d.id desc", draft_select(self.backend()));
        Ok(on_pool!(read self, pool => sqlx::query_as(&sql).fetch_all(pool).await?))
    }

    /// One draft.
    pub async fn draft(&self, id: i64) -> Result<Option<DraftRow>, StoreError> {
        let sql = format!("{} where d.id = $1", draft_select(self.backend()));
        Ok(on_pool!(read self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?))
    }

    /// Saves a new draft; its number.
    pub async fn insert_draft(&self, data: &DraftData<'_>, who: &str) -> Result<i64, StoreError> {
        let sql = "insert into drafts (customer_id, lines, total_cents, note, status, created_by, \
                   created_at, updated_by, updated_at) values ($1, $2, $3, $4, 'draft', $5, $6, \
                   $5, $6) returning id";
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar(sql)
                .bind(data.customer_id)
                .bind(data.lines)
                .bind(data.total_cents)
                .bind(data.note)
                .bind(who)
                .bind(Utc::now())
                .fetch_one(pool)
                .await?
        }))
    }

    /// Changes draft `id` unless it was exported; with `ready`, also its record (in the same
    /// transaction). `false` when it is gone or was exported meanwhile.
    pub async fn update_draft(
        &self,
        id: i64,
        data: &DraftData<'_>,
        who: &str,
        record: Option<(&str, i64)>,
    ) -> Result<bool, StoreError> {
        let sql = "update drafts set customer_id = $2, lines = $3, total_cents = $4, note = $5, \
                   updated_by = $6, updated_at = $7 where id = $1 and not exists (select 1 from \
                   entity_exports e where e.entity = 'drafts' and e.key = $8)";
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(sql)
                .bind(id)
                .bind(data.customer_id)
                .bind(data.lines)
                .bind(data.total_cents)
                .bind(data.note)
                .bind(who)
                .bind(now)
                .bind(draft_key(id))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Ok(false);
            }
            if let Some((record, hash)) = record {
                upsert_draft_record(&mut tx, id, record, hash, now).await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Marks draft `id` ready and writes its record, in one transaction; `false` when it is
    /// gone or was exported.
    pub async fn mark_draft_ready(
        &self,
        id: i64,
        who: &str,
        record: &str,
        hash: i64,
    ) -> Result<bool, StoreError> {
        let sql = "update drafts set status = 'ready', updated_by = $2, updated_at = $3 \
                   where id = $1 and not exists (select 1 from entity_exports e \
                   where e.entity = 'drafts' and e.key = $4)";
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(sql)
                .bind(id)
                .bind(who)
                .bind(now)
                .bind(draft_key(id))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Ok(false);
            }
            upsert_draft_record(&mut tx, id, record, hash, now).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Deletes draft `id` (and its record) unless it was exported; `false` when it is gone or
    /// was exported.
    pub async fn delete_draft(&self, id: i64) -> Result<bool, StoreError> {
        let sql = "delete from drafts where id = $1 and not exists (select 1 from \
                   entity_exports e where e.entity = 'drafts' and e.key = $2)";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let gone = sqlx::query(sql)
                .bind(id)
                .bind(draft_key(id))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone == 0 {
                return Ok(false);
            }
            sqlx::query("delete from entity_records where entity = 'drafts' and key = $1")
                .bind(draft_key(id))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }
}

/// Writes draft `id`'s record (entity `drafts`), live.
async fn upsert_draft_record<'c, DB>(
    tx: &mut sqlx::Transaction<'c, DB>,
    id: i64,
    record: &str,
    hash: i64,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'t> &'t mut <DB as sqlx::Database>::Connection: sqlx::Executor<'t, Database = DB>,
{
    sqlx::query(
        "insert into entity_records (entity, key, data, hash, created_at, updated_at, \
         removed_at, seen_by) values ('drafts', $1, $2, $3, $4, $4, null, $5) \
         on conflict (entity, key) do update set data = excluded.data, hash = excluded.hash, \
         updated_at = excluded.updated_at, removed_at = null",
    )
    .bind(draft_key(id))
    .bind(record)
    .bind(hash)
    .bind(now)
    .bind(BATON)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
