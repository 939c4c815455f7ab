//! The `records` table, where the built-in `records` task upserts pushed records by their `id`.

use chrono::Utc;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::on_pool;

impl Store {
    /// Upserts records by id in one transaction (the `records` task, one batch at a time).
    pub async fn upsert_records(
        &self,
        job_id: Uuid,
        records: &[(String, String)],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in records.chunks(1000) {
                let mut builder =
                    sqlx::QueryBuilder::new("insert into records (id, data, job_id, updated_at) ");
                builder.push_values(chunk, |mut b, (id, data)| {
                    b.push_bind(id.clone())
                        .push_bind(data.clone())
                        .push_bind(job_id)
                        .push_bind(now);
                });
                builder.push(
                    " on conflict (id) do update set data = excluded.data, \
                     job_id = excluded.job_id, updated_at = excluded.updated_at",
                );
                builder.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// How many records are stored.
    pub async fn count_records(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(read self, pool => {
            sqlx::query_scalar("select count(*) from records").fetch_one(pool).await?
        });
        Ok(n.max(0) as u64)
    }
}
