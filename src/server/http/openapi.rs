//! The API contract: an OpenAPI 3.1 document generated from the handlers' own annotations
//! (`#[utoipa::path]`, each area's `Doc`), served at `GET /api/openapi.json` and rendered by
//! Swagger UI at `/api/docs` (from the crate registry's copy; nothing loads from a CDN).
//!
//! What every operation shares is added here from the one place it is decided: the role each
//! route needs comes from [`access::RULES`](super::access::RULES) (as `x-baton-role`, the
//! security requirement and a sentence in the description), and every error answer not listed
//! by the handler is the API's [`ErrorBody`](super::error::ErrorBody) (`default`). The page
//! server functions (`/api/fn/…`, `/api/auth/…`) are the pages' own calls, not part of it.

use std::sync::OnceLock;

use axum::{
    http::{header, HeaderValue, Method},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use utoipa::{
    openapi::{
        content::ContentBuilder,
        extensions::Extensions,
        path::Operation,
        response::ResponseBuilder,
        security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        },
        InfoBuilder, OpenApi as Document, Ref, RefOr,
    },
    OpenApi, PartialSchema, ToSchema,
};

use super::{
    access::{self, Access},
    error::ErrorBody,
};
use crate::server::{auth::COOKIE, state::AppState};

/// The routes: the document, and the page that renders it.
pub fn routes() -> Router<AppState> {
    let config = utoipa_swagger_ui::Config::from("/api/openapi.json").validator_url("none");
    let ui =
        Router::<AppState>::from(utoipa_swagger_ui::SwaggerUi::new("/api/docs").config(config))
            .layer(axum::middleware::map_response(docs_policy));
    Router::new()
        .route("/api/openapi.json", get(serve))
        .merge(ui)
}

/// The page's own scripts and styles may load; nothing else (Baton's pages get a stricter
/// policy from the perimeter, which leaves a response that has one alone).
async fn docs_policy(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; font-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    response
}

/// The OpenAPI 3.1 document of the whole API.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "server",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)),
)]
async fn serve() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"internal\", \"message\": \"{e}\"}}"))
    });
    ([(header::CONTENT_TYPE, "application/json")], json.as_str()).into_response()
}

#[derive(OpenApi)]
#[openapi(paths(serve))]
struct Own;

/// The whole document: every area's operations, with what they share added.
pub fn document() -> Document {
    let mut doc = Own::openapi();
    doc.info = InfoBuilder::new()
        .title("Baton")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The HTTP API of Baton, a self-hosted sync orchestrator. Programs authenticate with \
             an API token (`Authorization: Bearer <token>`, made with `baton token create`); \
             Baton's own pages use the session cookie. Each operation says the role it needs \
             (`x-baton-role`: viewer, staff or admin). Errors are JSON: `{error, message}` with \
             a stable `error` code and a sentence a person can act on.",
        ))
        .build();
    for (area, mut part) in [
        ("server", super::probes::Doc::openapi()),
        ("jobs", super::jobs::Doc::openapi()),
        ("seed002", super::compat::Doc::openapi()),
        ("schedules", super::schedules::Doc::openapi()),
        ("sessions", super::sessions::Doc::openapi()),
        ("events", super::events::Doc::openapi()),
        ("people", super::people::Doc::openapi()),
        ("orders", super::orders::Doc::openapi()),
    ] {
        // Handlers of different areas share names (`cancel`): the area makes each id unique.
        for item in part.paths.paths.values_mut() {
            for (_, operation) in operations(item) {
                if let Some(id) = operation.operation_id.take() {
                    operation.operation_id = Some(format!("{area}_{id}"));
                }
            }
        }
        doc.merge(part);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "token",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(COOKIE))),
    );
    components
        .schemas
        .insert(ErrorBody::name().into_owned(), ErrorBody::schema());
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            shared(path, &method, operation);
        }
    }
    doc
}

/// The operations of a path with their methods.
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation?)))
}

/// Adds the role, the security requirement and the default error answer to one operation.
fn shared(path: &str, method: &Method, operation: &mut Operation) {
    let none = || vec![SecurityRequirement::default()];
    let (role, needs, security) = match access::rule_for(method, path).map(|r| r.access) {
        Some(Access::Role(role)) => (
            role.as_str(),
            format!("It needs the {role} role (an API token or a signed-in person)."),
            vec![
                SecurityRequirement::new("token", Vec::<String>::new()),
                SecurityRequirement::new("session", Vec::<String>::new()),
            ],
        ),
        Some(Access::Signed) => (
            "signed",
            "It needs the hook's signature, not a token.".to_string(),
            none(),
        ),
        // No rule: the test that compares the router, the rules and this document fails.
        Some(Access::Public) | None => ("public", "Anyone may call it.".to_string(), none()),
    };
    operation.security = Some(security);
    operation.description = Some(match operation.description.take() {
        Some(text) if !text.is_empty() => format!("{text}\n\n{needs}"),
        _ => needs,
    });
    operation
        .extensions
        .get_or_insert_with(Extensions::default)
        .insert("x-baton-role".into(), serde_json::json!(role));
    let error = ResponseBuilder::new()
        .description("An error: `{error, message}`, the status saying which kind")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(Ref::from_schema_name(ErrorBody::name()))))
                .build(),
        )
        .build();
    operation
        .responses
        .responses
        .entry("default".into())
        .or_insert(RefOr::T(error));
}

#[cfg(test)]
mod tests {
    use super::document;

    #[test]
    fn every_operation_names_its_role_and_the_document_is_3_1() {
        let doc = document();
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        let mut operations = 0;
        for (path, item) in json["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let role = op["x-baton-role"].as_str().unwrap_or_default();
                assert!(
                    ["public", "signed", "viewer", "staff", "admin"].contains(&role),
                    "{method} {path}: {role}"
                );
                assert!(op["responses"]["default"].is_object(), "{method} {path}");
            }
        }
        assert!(operations >= 50, "{operations} operations");
        assert_eq!(
            json["paths"]["/api/jobs/{id}/cancel"]["post"]["x-baton-role"],
            "staff"
        );
        assert_eq!(json["paths"]["/api/audit"]["get"]["x-baton-role"], "admin");
        assert_eq!(json["paths"]["/healthz"]["get"]["x-baton-role"], "public");
        let mut ids = std::collections::HashSet::new();
        for item in json["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap().to_string();
                assert!(ids.insert(id.clone()), "operationId {id} twice");
            }
        }
    }
}
