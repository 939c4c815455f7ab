//! `validate`: real checks on the synced data (the daily sync's step 4). Orders for customers
//! that are not there, order lines for products that are not there, and products without a
//! price. Findings do not fail the job: they are its warnings and its result's `findings`.

use std::collections::HashSet;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::server::engine::task::{SyncTask, TaskContext, TaskError, TaskOutput};

/// Findings kept in the result (all are counted).
const SHOWN: usize = 100;

/// The task.
pub struct ValidateTask;

fn parse(rows: Vec<(String, String)>) -> Vec<(String, Value)> {
    rows.into_iter()
        .map(|(k, d)| (k, serde_json::from_str(&d).unwrap_or(Value::Null)))
        .collect()
}

#[async_trait]
impl SyncTask for ValidateTask {
    async fn run(&self, ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        let read = |e: crate::server::store::StoreError| {
            TaskError::database("could not read the synced data", e)
        };
        let store = ctx.store();
        ctx.progress(0, Some(4), "reading customers, products, prices and orders");
        let customers: HashSet<String> = store
            .live_records("customers")
            .await
            .map_err(read)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let products = parse(store.live_records("products").await.map_err(read)?);
        let priced: HashSet<String> = parse(store.live_records("prices").await.map_err(read)?)
            .into_iter()
            .filter_map(|(_, p)| {
                p.get("product_id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        let orders = parse(store.live_records("orders").await.map_err(read)?);
        let known_products: HashSet<&str> = products.iter().map(|(k, _)| k.as_str()).collect();
        let mut findings = Vec::new();
        ctx.progress(2, Some(4), format!("checking {} orders", orders.len()));
        for (key, order) in &orders {
            if let Some(customer) = order.get("customer_id").and_then(Value::as_str) {
                if !customers.contains(customer) {
                    findings.push(json!({
                        "check": "order_customer",
                        "key": key,
                        "message": format!("order {key} is for customer {customer}, who is not in the customers"),
                    }));
                }
            }
            for line in order
                .get("lines")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(product) = line.get("product_id").and_then(Value::as_str) {
                    if !known_products.contains(product) {
                        findings.push(json!({
                            "check": "order_product",
                            "key": key,
                            "message": format!("order {key} has a line for product {product}, which is not in the products"),
                        }));
                    }
                }
            }
        }
        ctx.progress(3, Some(4), format!("checking {} products", products.len()));
        for (key, _) in &products {
            if !priced.contains(key) {
                findings.push(json!({
                    "check": "product_price",
                    "key": key,
                    "message": format!("product {key} has no price"),
                }));
            }
        }
        let count = |check: &str| findings.iter().filter(|f| f["check"] == check).count();
        let summary = [
            ("order_customer", "orders for unknown customers"),
            ("order_product", "order lines for unknown products"),
            ("product_price", "products without a price"),
        ];
        for (check, what) in summary {
            let n = count(check);
            if n > 0 {
                ctx.warn(format!("{n} {what}"));
            }
        }
        let checked = (orders.len() + products.len()) as u64;
        ctx.progress(
            4,
            Some(4),
            format!("{checked} records checked, {} findings", findings.len()),
        );
        Ok(TaskOutput {
            result: Some(json!({
                "processed": checked,
                "errors": findings.len(),
                "findings": findings.iter().take(SHOWN).collect::<Vec<_>>(),
            })),
        })
    }
}
