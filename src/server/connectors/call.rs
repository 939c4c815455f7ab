//! `http_call`: POSTs a JSON body to a URL (seed 004's worker functions) and takes counts,
//! warnings and a message from the response.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::http::{shown_url, Connection};
use crate::{
    model::LogLevel,
    server::engine::task::{SyncTask, TaskContext, TaskError, TaskOutput},
};

/// `task = { kind = "http_call", connection = "hr", path = "/collect", body = { … } }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCallConfig {
    /// The `[connections.<name>]` to use (its auth header carries the bearer token).
    pub connection: String,
    /// The path under the connection's base URL.
    pub path: String,
    /// The JSON body; an object gets `job_id`, `sync_type` and `attempt` added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// The counts a response may carry, copied into the job's result.
const COUNTS: &[&str] = &["processed", "created", "updated", "changes", "errors"];

/// The task.
pub struct HttpCallTask {
    config: HttpCallConfig,
    connection: Arc<Connection>,
}

impl HttpCallTask {
    /// A call over `connection`.
    pub fn new(config: HttpCallConfig, connection: Arc<Connection>) -> Self {
        Self { config, connection }
    }
}

#[async_trait]
impl SyncTask for HttpCallTask {
    async fn run(&self, ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        let url = self.connection.url(&self.config.path, &BTreeMap::new())?;
        let mut body = self.config.body.clone().unwrap_or_else(|| json!({}));
        if let Value::Object(object) = &mut body {
            object.insert("job_id".into(), json!(ctx.job_id().to_string()));
            object.insert("sync_type".into(), json!(ctx.sync_type()));
            object.insert("attempt".into(), json!(ctx.attempt()));
        }
        ctx.progress(0, None, format!("calling {}", shown_url(&url)));
        let started = std::time::Instant::now();
        let response = self
            .connection
            .send(ctx, Method::POST, &url, Some(&body))
            .await?;
        let status = response.status();
        let body = self
            .connection
            .read_body(ctx, response, &format!("POST {}", shown_url(&url)))
            .await?;
        let text = String::from_utf8_lossy(&body);
        let answer: Map<String, Value> = if text.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str(&text) {
                Ok(Value::Object(answer)) => answer,
                _ => {
                    ctx.warn(format!(
                        "POST {}: the response is not a JSON object; no counts taken",
                        shown_url(&url)
                    ));
                    Map::new()
                }
            }
        };
        if let Some(Value::Array(warnings)) = answer.get("warnings") {
            for warning in warnings {
                match warning {
                    Value::String(w) => ctx.warn(self.connection.scrub(w)),
                    other => ctx.warn(self.connection.scrub(&other.to_string())),
                }
            }
        }
        let message = answer
            .get("message")
            .and_then(Value::as_str)
            .map(|m| self.connection.scrub(m));
        ctx.log(
            LogLevel::Info,
            format!(
                "POST {}: {status} in {} ms{}",
                shown_url(&url),
                started.elapsed().as_millis(),
                message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
        );
        let mut result = Map::new();
        result.insert("status".into(), json!(status.as_u16()));
        for key in COUNTS {
            if let Some(n) = answer.get(*key).and_then(Value::as_u64) {
                result.insert((*key).into(), json!(n));
            }
        }
        if let Some(message) = &message {
            result.insert("message".into(), json!(message));
        }
        let processed = answer.get("processed").and_then(Value::as_u64).unwrap_or(0);
        ctx.progress(
            processed,
            Some(processed),
            message.unwrap_or_else(|| format!("{status}")),
        );
        Ok(TaskOutput {
            result: Some(Value::Object(result)),
        })
    }
}
