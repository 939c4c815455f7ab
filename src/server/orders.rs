//! The order form's service: customers and products to pick from (the synced records, with the
//! synced prices), and drafts: checked, priced from the synced data, saved, edited, deleted,
//! marked ready. A ready draft is also a record of the entity `drafts`, which the daily sync's
//! export step sends to the ERP; after that it can no longer change.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::store::{draft_key, DraftData, DraftRow, Store, StoreError};
use crate::model::{
    text::job_text, CustomerHit, Draft, DraftInput, DraftLine, DraftStatus, ProductHit,
};

/// Most lines a draft may have.
pub const MAX_LINES: usize = 200;
/// Most pieces of one line.
pub const MAX_QUANTITY: i64 = 100_000;
/// Most hits a search returns.
pub const MAX_HITS: u32 = 50;

/// Why a draft was not saved.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// Fields that cannot be used, each with what is wrong (`customer_id`, `lines[1].quantity`).
    #[error("{}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(String, String)>),
    /// No such draft.
    #[error("there is no draft {0}")]
    NotFound(i64),
    /// It was exported: it can no longer change.
    #[error("draft {0} was sent to the ERP and can no longer change; make a new draft instead")]
    Exported(i64),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The order form's service; cheap to clone.
#[derive(Clone)]
pub struct Orders {
    store: Store,
}

fn text(data: &Value, name: &str) -> Option<String> {
    data.get(name).and_then(Value::as_str).map(str::to_string)
}

impl Orders {
    /// The service over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Customers whose name or id contains `q`, by name.
    pub async fn customers(&self, q: &str, limit: u32) -> Result<Vec<CustomerHit>, StoreError> {
        let rows = self
            .store
            .search_records("customers", q.trim(), limit.clamp(1, MAX_HITS))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(key, data)| {
                let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                CustomerHit {
                    name: text(&data, "name").unwrap_or_else(|| key.clone()),
                    city: text(&data, "city"),
                    id: key,
                }
            })
            .collect())
    }

    /// Active products whose name or id contains `q`, by name, with their synced prices.
    pub async fn products(&self, q: &str, limit: u32) -> Result<Vec<ProductHit>, StoreError> {
        let rows = self
            .store
            .search_records("products", q.trim(), limit.clamp(1, MAX_HITS))
            .await?;
        let keys: Vec<String> = rows.iter().map(|(k, _)| k.clone()).collect();
        let prices: HashMap<String, i64> = self.store.prices_of(&keys).await?.into_iter().collect();
        Ok(rows
            .into_iter()
            .filter_map(|(key, data)| {
                let data: Value = serde_json::from_str(&data).ok()?;
                if data.get("active") == Some(&Value::Bool(false)) {
                    return None;
                }
                Some(ProductHit {
                    name: text(&data, "name").unwrap_or_else(|| key.clone()),
                    unit: text(&data, "unit"),
                    price_cents: prices.get(&key).copied(),
                    id: key,
                })
            })
            .collect())
    }

    /// Every draft, newest first.
    pub async fn drafts(&self) -> Result<Vec<Draft>, StoreError> {
        let rows = self.store.drafts().await?;
        let names = self.customer_names(&rows).await?;
        Ok(rows.into_iter().map(|r| draft(r, &names)).collect())
    }

    /// One draft.
    pub async fn draft(&self, id: i64) -> Result<Draft, OrderError> {
        let row = self
            .store
            .draft(id)
            .await?
            .ok_or(OrderError::NotFound(id))?;
        let names = self.customer_names(std::slice::from_ref(&row)).await?;
        Ok(draft(row, &names))
    }

    async fn customer_names(
        &self,
        rows: &[DraftRow],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut ids: Vec<String> = rows.iter().map(|r| r.customer_id.clone()).collect();
        ids.sort();
        ids.dedup();
        Ok(self
            .store
            .records_by_keys("customers", &ids)
            .await?
            .into_iter()
            .map(|(key, data)| {
                let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                (key.clone(), text(&data, "name").unwrap_or(key))
            })
            .collect())
    }

    /// Checks `input` against the synced customers, products and prices; the lines priced and
    /// named, and the total. Every field that cannot be used is named.
    async fn checked(
        &self,
        input: &DraftInput,
    ) -> Result<(Vec<DraftLine>, i64, Option<String>), OrderError> {
        let mut wrong = Vec::new();
        let customer = input.customer_id.trim();
        if customer.is_empty() {
            wrong.push(("customer_id".into(), "choose a customer".into()));
        } else if self
            .store
            .records_by_keys("customers", &[customer.to_string()])
            .await?
            .is_empty()
        {
            wrong.push((
                "customer_id".into(),
                format!("there is no customer `{customer}` (it may have been removed in the ERP)"),
            ));
        }
        if input.lines.is_empty() {
            wrong.push(("lines".into(), "add at least one line".into()));
        }
        if input.lines.len() > MAX_LINES {
            wrong.push(("lines".into(), format!("at most {MAX_LINES} lines")));
        }
        let keys: Vec<String> = input
            .lines
            .iter()
            .map(|l| l.product_id.trim().to_string())
            .collect();
        let products: BTreeMap<String, Value> = self
            .store
            .records_by_keys("products", &keys)
            .await?
            .into_iter()
            .map(|(k, d)| (k, serde_json::from_str(&d).unwrap_or(Value::Null)))
            .collect();
        let prices: HashMap<String, i64> = self.store.prices_of(&keys).await?.into_iter().collect();
        let mut lines = Vec::new();
        for (i, line) in input.lines.iter().enumerate() {
            let id = line.product_id.trim();
            if !(1..=MAX_QUANTITY).contains(&line.quantity) {
                wrong.push((
                    format!("lines[{i}].quantity"),
                    format!("a quantity from 1 to {MAX_QUANTITY}"),
                ));
            }
            let Some(product) = products.get(id) else {
                wrong.push((
                    format!("lines[{i}].product_id"),
                    format!("there is no product `{id}` (it may have been removed in the ERP)"),
                ));
                continue;
            };
            if product.get("active") == Some(&Value::Bool(false)) {
                wrong.push((
                    format!("lines[{i}].product_id"),
                    format!("product `{id}` is not active"),
                ));
                continue;
            }
            let Some(price) = prices.get(id).copied() else {
                wrong.push((
                    format!("lines[{i}].product_id"),
                    format!("product `{id}` has no synced price"),
                ));
                continue;
            };
            lines.push(DraftLine {
                product_id: id.to_string(),
                name: text(product, "name").unwrap_or_else(|| id.to_string()),
                quantity: line.quantity.clamp(1, MAX_QUANTITY) as u32,
                price_cents: price,
            });
        }
        let note = input
            .note
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| job_text(n.to_string(), 1000));
        if note
            .as_deref()
            .is_some_and(|n| n.chars().any(|c| c.is_control() && c != '\n'))
        {
            wrong.push(("note".into(), "no control characters".into()));
        }
        if !wrong.is_empty() {
            return Err(OrderError::Invalid(wrong));
        }
        let total = lines
            .iter()
            .map(|l| l.price_cents * i64::from(l.quantity))
            .sum();
        Ok((lines, total, note))
    }

    /// Saves a new draft.
    pub async fn create(&self, input: &DraftInput, who: &str) -> Result<Draft, OrderError> {
        let (lines, total, note) = self.checked(input).await?;
        let lines_json = serde_json::to_string(&lines).unwrap_or_else(|_| "[]".into());
        let id = self
            .store
            .insert_draft(
                &DraftData {
                    customer_id: input.customer_id.trim(),
                    lines: &lines_json,
                    total_cents: total,
                    note: note.as_deref(),
                },
                who,
            )
            .await?;
        self.draft(id).await
    }

    /// Changes a draft that was not exported (a ready one stays ready, its record follows).
    pub async fn update(
        &self,
        id: i64,
        input: &DraftInput,
        who: &str,
    ) -> Result<Draft, OrderError> {
        let current = self.draft(id).await?;
        if current.status == DraftStatus::Exported {
            return Err(OrderError::Exported(id));
        }
        let (lines, total, note) = self.checked(input).await?;
        let lines_json = serde_json::to_string(&lines).unwrap_or_else(|_| "[]".into());
        let record = (current.status == DraftStatus::Ready)
            .then(|| record_of(id, input.customer_id.trim(), &lines, total, note.as_deref()));
        let changed = self
            .store
            .update_draft(
                id,
                &DraftData {
                    customer_id: input.customer_id.trim(),
                    lines: &lines_json,
                    total_cents: total,
                    note: note.as_deref(),
                },
                who,
                record.as_ref().map(|(r, h)| (r.as_str(), *h)),
            )
            .await?;
        self.changed(id, changed).await
    }

    /// Marks a draft ready for export.
    pub async fn mark_ready(&self, id: i64, who: &str) -> Result<Draft, OrderError> {
        let current = self.draft(id).await?;
        if current.status == DraftStatus::Exported {
            return Err(OrderError::Exported(id));
        }
        let (record, hash) = record_of(
            id,
            &current.customer_id,
            &current.lines,
            current.total_cents,
            current.note.as_deref(),
        );
        let changed = self.store.mark_draft_ready(id, who, &record, hash).await?;
        self.changed(id, changed).await
    }

    /// Deletes a draft that was not exported.
    pub async fn delete(&self, id: i64) -> Result<(), OrderError> {
        let current = self.draft(id).await?;
        if current.status == DraftStatus::Exported {
            return Err(OrderError::Exported(id));
        }
        if self.store.delete_draft(id).await? {
            Ok(())
        } else {
            self.changed(id, false).await.map(|_| ())
        }
    }

    /// The draft after a guarded write: the write missed because it is gone or was exported
    /// meanwhile, which the error says.
    async fn changed(&self, id: i64, changed: bool) -> Result<Draft, OrderError> {
        let now = self.draft(id).await?;
        if !changed && now.status == DraftStatus::Exported {
            return Err(OrderError::Exported(id));
        }
        Ok(now)
    }
}

/// The record of a ready draft (canonical JSON, keys sorted) and its hash, as a pull stores one.
fn record_of(
    id: i64,
    customer_id: &str,
    lines: &[DraftLine],
    total_cents: i64,
    note: Option<&str>,
) -> (String, i64) {
    let data = json!({
        "id": draft_key(id),
        "customer_id": customer_id,
        "lines": lines.iter().map(|l| json!({
            "product_id": l.product_id,
            "quantity": l.quantity,
            "price_cents": l.price_cents,
        })).collect::<Vec<_>>(),
        "total_cents": total_cents,
        "note": note,
        "status": "ready",
        "source": "baton",
    });
    let text = data.to_string();
    let hash = xxhash_rust::xxh3::xxh3_64(text.as_bytes()) as i64;
    (text, hash)
}

fn draft(row: DraftRow, names: &HashMap<String, String>) -> Draft {
    let status = match (row.exported_at, row.status.as_str()) {
        (Some(_), _) => DraftStatus::Exported,
        (None, "ready") => DraftStatus::Ready,
        _ => DraftStatus::Draft,
    };
    Draft {
        id: row.id,
        customer_name: names
            .get(&row.customer_id)
            .cloned()
            .unwrap_or_else(|| row.customer_id.clone()),
        customer_id: row.customer_id,
        lines: serde_json::from_str(&row.lines).unwrap_or_default(),
        total_cents: row.total_cents,
        note: row.note,
        status,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_by: row.updated_by,
        updated_at: row.updated_at,
        exported_at: row.exported_at,
    }
}
