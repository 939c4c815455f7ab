//! The OpenAPI document against the router: every JSON route is in it with the role its access
//! rule gives, nothing is in it that the router does not serve, and the page that renders it
//! loads only its own files.

use baton::server::http::access::{rule_for, Access};
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{spawn_app, TestDb};

/// Routes that are not part of the contract: the pages, the pages' server functions, the API's
/// catch-all 404 and the documentation page's own files.
fn documented(path: &str) -> bool {
    let api = path.starts_with("/api/") || matches!(path, "/healthz" | "/readyz" | "/metrics");
    api && !path.starts_with("/api/fn/")
        && !path.starts_with("/api/auth/")
        && !path.starts_with("/api/docs")
        && path != "/api/{*rest}"
}

#[tokio::test]
async fn every_route_of_the_router_is_in_the_document_with_its_role() {
    let app = spawn_app(TestDb::sqlite()).await;
    let response = reqwest::get(app.url("/api/openapi.json")).await.unwrap();
    assert_eq!(response.status(), 200, "the document is public");
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let paths = doc["paths"].as_object().unwrap();

    let router = crate::auth::router_paths(&app);
    let mut checked = 0;
    for path in router.iter().filter(|p| documented(p)) {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            let Some(rule) = rule_for(&method, path) else {
                continue;
            };
            let op = &paths
                .get(path)
                .unwrap_or_else(|| panic!("{path} is served but not in /api/openapi.json"))
                [method.as_str().to_lowercase()];
            assert!(
                op.is_object(),
                "{method} {path} is served but not documented"
            );
            let role = match rule.access {
                Access::Role(role) => role.as_str(),
                Access::Public => "public",
                Access::Signed => "signed",
            };
            assert_eq!(op["x-baton-role"], role, "{method} {path}");
            let secured = op["security"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s.get("token").is_some());
            assert_eq!(
                secured,
                matches!(rule.access, Access::Role(_)),
                "{method} {path}"
            );
            assert!(
                op["responses"]["default"].is_object(),
                "{method} {path}: errors"
            );
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} operations met");
    // And nothing documented that the router does not serve.
    for (path, item) in paths {
        assert!(router.contains(path), "{path} is documented but not served");
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            assert!(
                rule_for(&method, path).is_some(),
                "{method} {path} has no access rule"
            );
        }
    }
    // Every schema an operation refers to is in the document.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            schemas.contains_key(name),
            "{name} is referred to but missing"
        );
    }
}

#[tokio::test]
async fn the_documentation_page_serves_swagger_ui_from_baton_itself() {
    let app = spawn_app(TestDb::sqlite()).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(response.status(), 303, "/api/docs → /api/docs/");
    let response = client.get(app.url("/api/docs/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("http"),
        "{csp}"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    assert!(!html.contains("https://"), "nothing from elsewhere: {html}");
    let init = client
        .get(app.url("/api/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/api/openapi.json"), "{init}");
    let missing = client
        .get(app.url("/api/docs/nothing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
