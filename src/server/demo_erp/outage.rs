//! Misbehaving on purpose: latency, random 503s and planned outages (`POST /api/_outage`).

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{header::RETRY_AFTER, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::json;

use super::{refuse, DemoErp, ENTITIES};

/// Latency and simulated failures, before every route.
pub(super) async fn behave(
    State(erp): State<Arc<DemoErp>>,
    request: Request,
    next: Next,
) -> Response {
    if !erp.settings.latency.is_zero() {
        tokio::time::sleep(erp.settings.latency).await;
    }
    let planned = {
        let mut outages = erp.outages.lock().unwrap_or_else(|p| p.into_inner());
        let hit = outages
            .iter_mut()
            .find(|(path, _, left)| *path == request.uri().path() && *left > 0)
            .map(|(_, status, left)| {
                *left -= 1;
                *status
            });
        outages.retain(|(_, _, left)| *left > 0);
        hit
    };
    if let Some(status) = planned {
        return refuse(
            status,
            format!(
                "a planned outage of the demo ERP ({} {})",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
        );
    }
    if erp.settings.failure_rate > 0.0 && fastrand::f64() < erp.settings.failure_rate {
        let mut response = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the demo ERP is busy (a simulated failure); try again in a second",
        );
        response
            .headers_mut()
            .insert(RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        return response;
    }
    next.run(request).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutageBody {
    path: String,
    #[serde(default = "default_outage_status")]
    status: u16,
    #[serde(default = "default_outage_requests")]
    requests: u32,
}

fn default_outage_status() -> u16 {
    503
}

fn default_outage_requests() -> u32 {
    1
}

pub(super) async fn outage(State(erp): State<Arc<DemoErp>>, body: axum::body::Bytes) -> Response {
    let body: OutageBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(err) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "expected {{\"path\": \"/api/customers\", \"status\": 422, \"requests\": 1}}: {err}"
                ),
            )
        }
    };
    let status = match StatusCode::from_u16(body.status) {
        Ok(status) if (400..600).contains(&body.status) => status,
        _ => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("`status` must be 400 to 599, not {}", body.status),
            )
        }
    };
    let known = body.path.strip_prefix("/api/").is_some_and(|route| {
        ENTITIES.contains(&route)
            || ["orders/import", "web/import"].contains(&route)
            || route
                .strip_prefix("employees/")
                .is_some_and(|step| !step.is_empty() && !step.contains('/'))
    });
    if !known {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "`path` must be one of the demo ERP's routes without a query: /api/<entity> ({}), \
                 /api/orders/import, /api/web/import or /api/employees/<step>; not {}",
                ENTITIES.join(", "),
                body.path
            ),
        );
    }
    if body.requests == 0 {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`requests` must be at least 1",
        );
    }
    erp.outages.lock().unwrap_or_else(|p| p.into_inner()).push((
        body.path.clone(),
        status,
        body.requests,
    ));
    Json(json!({ "path": body.path, "status": body.status, "requests": body.requests }))
        .into_response()
}
