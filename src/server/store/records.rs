//! The `records` table, where the built-in `records` task upserts pushed records by their `id`.

use std::collections::HashMap;

use chrono::Utc;

use super::{Store, StoreError, Writer};
use crate::on_pool;

impl Store {
    /// Upserts records by id and stores `checkpoint` on the job, in one transaction, if `writer`
    /// still holds its job; `false` (nothing written) when it does not. The same id twice in
    /// `records` is one record, the last one.
    pub async fn upsert_records(
        &self,
        writer: Writer,
        records: &[(String, String)],
        checkpoint: &str,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let mut latest: HashMap<&str, &str> = HashMap::with_capacity(records.len());
        for (id, data) in records {
            latest.insert(id, data);
        }
        let mut rows: Vec<(&str, &str)> = latest.into_iter().collect();
        rows.sort_unstable();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(1000) {
                let mut builder =
                    sqlx::QueryBuilder::new("insert into records (id, data, job_id, updated_at) ");
                builder.push_values(chunk, |mut b, (id, data)| {
                    b.push_bind(*id)
                        .push_bind(*data)
                        .push_bind(writer.job_id)
                        .push_bind(now);
                });
                builder.push(
                    " on conflict (id) do update set data = excluded.data, \
                     job_id = excluded.job_id, updated_at = excluded.updated_at",
                );
                builder.build().execute(&mut *tx).await?;
            }
            // Last, so that a worker that lost the job writes nothing at all.
            if !hold_lease!(&mut *tx, writer, checkpoint) {
                return Ok(false);
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// How many records are stored.
    pub async fn count_records(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(read self, pool => {
            sqlx::query_scalar("select count(*) from records").fetch_one(pool).await?
        });
        Ok(n.max(0) as u64)
    }
}
