//! People, tokens, webhooks, the perimeter and the audit log, over real HTTP on both databases:
//! a sweep of every route the router has (read from the router itself) with every kind of
//! caller; signing in, its limits, session ends; the same-origin proof for the cookie; foreign
//! hosts; signed webhooks and their replays; one audit row per change and per refusal.

use std::time::Duration;

use baton::{
    model::Role,
    server::{
        auth::{hooks::Hook, Who},
        http::access::{rule_for, Access},
    },
};
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{client_with, make_token, spawn_app_with, TestApp, TestDb};

fn tests() -> Who {
    Who::system("tests")
}

/// An app whose refusals are all recorded (the sweep makes hundreds).
async fn app(db: TestDb) -> TestApp {
    spawn_app_with(db, |config| config.audit_refusals = 0).await
}

/// Signs in over the JSON route: the status, the answer, and the session cookie it set.
async fn login(app: &TestApp, name: &str, password: &str) -> (u16, Value, Option<String>) {
    let response = reqwest::Client::new()
        .post(app.url("/api/auth/login"))
        .json(&json!({ "username": name, "password": password }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("baton_session=") && !v.contains("Max-Age=0"))
        .map(|v| v.split(';').next().unwrap().to_string());
    (status, response.json().await.unwrap_or_default(), cookie)
}

/// A request with the session cookie, from Baton's own page (`Origin` of this site).
fn with_cookie(app: &TestApp, method: Method, path: &str, cookie: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, app.url(path))
        .header(header::COOKIE, cookie)
        .header(header::ORIGIN, format!("http://{}", app.addr))
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let sql = format!("select count(*) from {table}");
    match &app.state.store {
        baton::server::store::Store::Sqlite(pools) => sqlx::query_scalar(&sql)
            .fetch_one(&pools.read)
            .await
            .unwrap(),
        baton::server::store::Store::Postgres(pools) => sqlx::query_scalar(&sql)
            .fetch_one(&pools.main)
            .await
            .unwrap(),
    }
}

async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let page = app
        .get_json(&format!("/api/audit?limit=1000&{query}"))
        .await;
    page["entries"].as_array().cloned().unwrap_or_default()
}

/// Every path the router serves, read from the router itself (not from a hand-written list).
pub(crate) fn router_paths(app: &TestApp) -> Vec<String> {
    let router = baton::server::http::router(app.state.clone());
    let debug = format!("{router:?}");
    let mut paths: Vec<String> = debug
        .split("RouteId(")
        .skip(1)
        .filter_map(|part| {
            let rest = part.split_once("): \"")?.1;
            Some(rest.split('"').next()?.to_string())
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// A concrete path for a router path: each parameter filled with something plausible.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{id}" => uuid::Uuid::now_v7().to_string(),
            "{sync_type}" => "customers".into(),
            "{step}" => "1".into(),
            "{name}" => "shop".into(),
            "{*rest}" => "nothing/here".into(),
            other if other.starts_with('{') => "x".into(),
            other => other.into(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

both_backends!(every_route_refuses_whoever_its_rule_does_not_allow, |db| {
    let app = app(db).await;
    let auth = &app.state.auth;
    let viewer = client_with(&make_token(auth, "sweep-viewer", Role::Viewer).await);
    let staff = client_with(&make_token(auth, "sweep-staff", Role::Staff).await);
    let revoked_token = make_token(auth, "sweep-revoked", Role::Admin).await;
    auth.revoke_token("sweep-revoked", &tests()).await.unwrap();
    let revoked = client_with(&revoked_token);
    let wrong = client_with("baton_this-token-was-never-made");
    auth.add_user("sweep-admin", Role::Admin, "sweep-password", &tests())
        .await
        .unwrap();
    let (_, _, cookie) = login(&app, "sweep-admin", "sweep-password").await;
    let cookie = cookie.expect("signed in");
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let paths = router_paths(&app);
    assert!(
        paths.iter().any(|p| p == "/api/fn/run_sync") && paths.iter().any(|p| p == "/tasks"),
        "the router lists pages and server functions too: {paths:?}"
    );
    let before = (
        count(&app, "jobs").await,
        count(&app, "sessions").await,
        count(&app, "users").await,
        count(&app, "api_tokens").await,
    );
    let mut refusals = 0;
    let mut tried = 0;
    for path in &paths {
        for method in METHODS {
            let rule = rule_for(&method, path);
            let url = app.url(&concrete(path));
            let changes = method != Method::GET;
            let form = |r: reqwest::RequestBuilder| {
                r.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body("id=01938f6e-8a4b-7cc0-9f1e-2b3c4d5e6f70&sync_type=customers")
            };
            // No rule for the method: the router's 405 (or the catch-all's 404), never
            // a route nobody declared.
            let Some(rule) = rule else {
                let response = form(anonymous.request(method.clone(), &url))
                    .send()
                    .await
                    .unwrap();
                let body = response.text().await.unwrap_or_default();
                assert!(
                    !body.contains("undeclared_route"),
                    "{method} {path}: {body}"
                );
                continue;
            };
            tried += 1;
            let needed = match rule.access {
                Access::Role(role) => Some(role),
                _ => None,
            };
            let page = !path.starts_with("/api/")
                && !matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics");

            // Nobody: 401 (or the sign-in page for a page), never the thing itself.
            let response = form(anonymous.request(method.clone(), &url))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(
                !text.contains("undeclared_route"),
                "{method} {path}: {text}"
            );
            if needed.is_some() {
                if page {
                    assert_eq!(status, StatusCode::SEE_OTHER, "{method} {path}");
                } else {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {text}");
                    let body: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(body["error"], "unauthorized");
                    refusals += 1;
                }
            }
            // A revoked or a wrong token: 401 on every route but the probes (a token that
            // is sent is checked, even where none is needed).
            for client in [&revoked, &wrong] {
                if matches!(path.as_str(), "/healthz" | "/readyz") {
                    continue;
                }
                let response = form(client.request(method.clone(), &url))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    response.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path}"
                );
                refusals += 1;
            }
            // Too low a role: 403 with a message naming the role needed.
            for (client, has) in [(&viewer, Role::Viewer), (&staff, Role::Staff)] {
                if let Some(role) = needed.filter(|r| !has.allows(*r)) {
                    let response = form(client.request(method.clone(), &url))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
                    let body: Value = response.json().await.unwrap();
                    assert!(
                        body["message"].as_str().unwrap().contains(role.as_str()),
                        "{method} {path}: {body}"
                    );
                    refusals += 1;
                }
            }
            // The cookie from another site: no change passes.
            if changes && needed.is_some() {
                let response = form(
                    reqwest::Client::new()
                        .request(method.clone(), &url)
                        .header(header::COOKIE, &cookie)
                        .header(header::ORIGIN, "https://evil.example"),
                )
                .send()
                .await
                .unwrap();
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
                refusals += 1;
                // Nor the cookie with no Origin at all (a form from a sandboxed page, a
                // browser that hides it): the cookie alone proves nothing.
                let response = form(
                    reqwest::Client::new()
                        .request(method.clone(), &url)
                        .header(header::COOKIE, &cookie),
                )
                .send()
                .await
                .unwrap();
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
                refusals += 1;
            }
            // A foreign Host (DNS rebinding): 421 everywhere but the probes.
            if !matches!(path.as_str(), "/healthz" | "/readyz") {
                let response = app
                    .client
                    .request(method.clone(), &url)
                    .header(header::HOST, format!("rebind.attacker:{}", app.addr.port()))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    response.status(),
                    StatusCode::MISDIRECTED_REQUEST,
                    "{method} {path}"
                );
                refusals += 1;
            }
        }
    }
    assert!(tried > 60, "only {tried} rules met");
    let after = (
        count(&app, "jobs").await,
        count(&app, "sessions").await,
        count(&app, "users").await,
        count(&app, "api_tokens").await,
    );
    assert_eq!(before, after, "a refused request changed something");
    // One audit row per refusal.
    let refused = audit(&app, "outcome=refused").await;
    let refused_here = refused
        .iter()
        .filter(|e| e["action"] != "auth.login")
        .count();
    assert_eq!(refused_here, refusals, "one row per refusal");
    app.shutdown().await;
});

both_backends!(signing_in_its_limits_expiry_logout_and_role_changes, |db| {
    let app = app(db).await;
    let auth = &app.state.auth;
    auth.add_user("anna", Role::Staff, "anna-password", &tests())
        .await
        .unwrap();
    // A wrong password and an unknown user say the same, with 401.
    let (status, body, cookie) = login(&app, "anna", "wrong-password").await;
    assert_eq!((status, cookie), (401, None), "{body}");
    assert_eq!(body["error"], "unauthorized");
    let (status, unknown, _) = login(&app, "nobody", "wrong-password").await;
    assert_eq!(status, 401);
    assert_eq!(unknown["message"], body["message"]);
    // Right: the user, and a cookie that is HttpOnly and SameSite.
    let response = reqwest::Client::new()
        .post(app.url("/api/auth/login"))
        .json(&json!({ "username": "ANNA", "password": "anna-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let set = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "no https public_url: {set}");
    let me: Value = response.json().await.unwrap();
    assert_eq!(me, json!({ "name": "anna", "role": "staff" }));
    let cookie = set.split(';').next().unwrap().to_string();
    // The cookie works, from Baton's own page.
    let response = with_cookie(&app, Method::POST, "/api/sync/customers", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    let job = app
        .get_json(&format!("/api/jobs/{}", job["job_id"].as_str().unwrap()))
        .await;
    assert_eq!(
        (job["triggered_by"].as_str(), job["source"].as_str()),
        (Some("anna"), Some("manual"))
    );
    // Staff may not read the audit log.
    let response = with_cookie(&app, Method::GET, "/api/audit", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Five failures for a name, then 429 with Retry-After, even with the right password.
    auth.add_user("bob", Role::Viewer, "bob-password", &tests())
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(login(&app, "bob", "nope-nope-nope").await.0, 401);
    }
    let response = reqwest::Client::new()
        .post(app.url("/api/auth/login"))
        .json(&json!({ "username": "bob", "password": "bob-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("too many failed sign-ins"),
        "{body}"
    );

    // A session idle for longer than session_idle has ended: 401, and the cookie is cleared.
    let (_, _, second) = login(&app, "anna", "anna-password").await;
    let second = second.unwrap();
    let store = &app.state.store;
    let idle = chrono::Utc::now() - chrono::Duration::hours(13);
    let sql = "update auth_sessions set seen_at = $1";
    match store {
        baton::server::store::Store::Sqlite(p) => {
            sqlx::query(sql).bind(idle).execute(&p.write).await.unwrap();
        }
        baton::server::store::Store::Postgres(p) => {
            sqlx::query(sql).bind(idle).execute(&p.main).await.unwrap();
        }
    }
    let response = with_cookie(&app, Method::GET, "/api/jobs", &second)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("ended"),
        "{body}"
    );

    // Logout ends the session.
    let (_, _, third) = login(&app, "anna", "anna-password").await;
    let third = third.unwrap();
    let response = with_cookie(&app, Method::POST, "/api/auth/logout", &third)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = with_cookie(&app, Method::GET, "/api/jobs", &third)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // A new role ends the person's sessions; they sign in again with it.
    let (_, _, fourth) = login(&app, "anna", "anna-password").await;
    let fourth = fourth.unwrap();
    assert_eq!(
        with_cookie(&app, Method::GET, "/api/jobs", &fourth)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    auth.set_role("anna", Role::Viewer, &tests()).await.unwrap();
    assert_eq!(
        with_cookie(&app, Method::GET, "/api/jobs", &fourth)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let (_, me, fifth) = login(&app, "anna", "anna-password").await;
    assert_eq!(me["role"], "viewer");
    let response = with_cookie(&app, Method::POST, "/api/sync/customers", &fifth.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Changing one's password keeps this session and ends the others.
    let (_, _, here) = login(&app, "anna", "anna-password").await;
    let (_, _, elsewhere) = login(&app, "anna", "anna-password").await;
    let (here, elsewhere) = (here.unwrap(), elsewhere.unwrap());
    let response = with_cookie(&app, Method::POST, "/api/auth/password", &here)
        .json(&json!({ "current": "anna-password", "new": "anna-new-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        with_cookie(&app, Method::GET, "/api/jobs", &here)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        with_cookie(&app, Method::GET, "/api/jobs", &elsewhere)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(login(&app, "anna", "anna-new-password").await.0, 200);

    // The only admin cannot be removed or demoted.
    auth.add_user("root", Role::Admin, "root-password", &tests())
        .await
        .unwrap();
    let err = auth.remove_user("root", &tests()).await.unwrap_err();
    assert!(err.to_string().contains("only admin"), "{err}");
    app.shutdown().await;
});

#[tokio::test]
async fn one_address_is_limited_across_names_too() {
    let app = app(TestDb::sqlite()).await;
    // Twenty failures with twenty names from one address, then that address waits.
    for i in 0..20 {
        assert_eq!(
            login(&app, &format!("guess{i}"), "wrong-password").await.0,
            401
        );
    }
    let (status, body, _) = login(&app, "someone-else", "wrong-password").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("from this address"),
        "{body}"
    );
}

#[tokio::test]
async fn pages_need_a_session_and_carry_the_security_headers() {
    let app = app(TestDb::sqlite()).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Nobody: to the sign-in page, with the way back.
    let response = plain
        .get(app.url("/tasks?state=failed"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()[header::LOCATION],
        "/login?next=%2Ftasks%3Fstate%3Dfailed"
    );
    // The sign-in page itself is public; its scripts run by nonce, nothing may frame it.
    let response = plain.get(app.url("/login")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let csp = headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(headers.contains_key(header::REFERRER_POLICY));
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("'wasm-unsafe-eval'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the page's scripts carry the nonce"
    );
    assert!(
        !html.contains("<script>"),
        "no inline script without the nonce"
    );
    // A second render gets another nonce.
    let again = plain.get(app.url("/login")).send().await.unwrap();
    assert_ne!(
        again.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap(),
        csp
    );
    // JSON answers carry the strict default.
    let response = app.get("/api/jobs").await;
    assert_eq!(
        response.headers()[header::CONTENT_SECURITY_POLICY],
        "default-src 'none'; frame-ancestors 'none'"
    );
    // Signed in (a token here): the page renders, and names who is signed in.
    let response = app.get("/tasks").await;
    assert_eq!(response.status(), 200);
    // A foreign Host is refused even for a page, and the probes answer any Host.
    let response = plain
        .get(app.url("/login"))
        .header(header::HOST, "rebind.attacker")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 421);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("public_url"),
        "{body}"
    );
    let response = plain
        .get(app.url("/healthz"))
        .header(header::HOST, "10.1.2.3:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // A configured public_url is answered to, and its origin is accepted.
    let app = spawn_app_with(TestDb::sqlite(), |c| {
        c.public_url = Some("https://baton.example.com".into())
    })
    .await;
    let response = app
        .client
        .get(app.url("/api/jobs"))
        .header(header::HOST, "baton.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// A hook `shop` that requests `customers`, its secret in a variable of its own.
async fn hooked(db: TestDb) -> (TestApp, String) {
    let variable = format!("BATON_TEST_HOOK_{}", uuid::Uuid::now_v7().simple());
    let secret = "a-long-shared-secret-for-the-shop".to_string();
    std::env::set_var(&variable, &secret);
    let app = spawn_app_with(db, |config| {
        config.audit_refusals = 0;
        config.hooks.insert(
            "shop".into(),
            baton::server::auth::hooks::HookConfig {
                secret_env: variable.clone(),
                sync: Some("customers".into()),
                workflow: None,
            },
        );
    })
    .await;
    (app, secret)
}

async fn deliver(
    app: &TestApp,
    timestamp: i64,
    delivery: &str,
    signature: &str,
    body: &str,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url("/api/hooks/shop"))
        .header("x-baton-timestamp", timestamp.to_string())
        .header("x-baton-delivery", delivery)
        .header("x-baton-signature", signature)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

both_backends!(
    signed_webhooks_start_their_sync_once_and_refuse_the_rest,
    |db| {
        let (app, secret) = hooked(db).await;
        let body = r#"{"event":"customer.updated","id":42}"#;
        let now = chrono::Utc::now().timestamp();
        let good = Hook::sign(&secret, now, body.as_bytes());
        let (status, answer) = deliver(&app, now, "d-1", &good, body).await;
        assert_eq!(status, 202, "{answer}");
        let job = app
            .get_json(&format!("/api/jobs/{}", answer["job_id"].as_str().unwrap()))
            .await;
        assert_eq!(
            (job["triggered_by"].as_str(), job["source"].as_str()),
            (Some("hook:shop"), Some("webhook"))
        );
        let jobs = count(&app, "jobs").await;

        // The same delivery again, or its signature under a new id: a replay.
        let (status, answer) = deliver(&app, now, "d-1", &good, body).await;
        assert_eq!(status, 401, "{answer}");
        assert!(answer["message"]
            .as_str()
            .unwrap()
            .contains("received before"));
        assert_eq!(deliver(&app, now, "d-2", &good, body).await.0, 401);
        // The body changed after signing; a wrong secret; a signature for another time.
        assert_eq!(
            deliver(
                &app,
                now,
                "d-3",
                &good,
                r#"{"event":"customer.updated","id":43}"#
            )
            .await
            .0,
            401
        );
        let wrong = Hook::sign("another-secret-of-enough-length", now, body.as_bytes());
        assert_eq!(deliver(&app, now, "d-4", &wrong, body).await.0, 401);
        // Six minutes old, correctly signed: too old.
        let old = now - 360;
        let signed_old = Hook::sign(&secret, old, body.as_bytes());
        let (status, answer) = deliver(&app, old, "d-5", &signed_old, body).await;
        assert_eq!(status, 401);
        assert!(
            answer["message"].as_str().unwrap().contains("clock"),
            "{answer}"
        );
        // No signature at all, and an unknown hook.
        let response = reqwest::Client::new()
            .post(app.url("/api/hooks/shop"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let response = reqwest::Client::new()
            .post(app.url("/api/hooks/nope"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(
            count(&app, "jobs").await,
            jobs,
            "no refused delivery started anything"
        );
        // The audit log has the delivery, by the hook, and each refusal.
        let done = audit(&app, "action=hook.deliver&outcome=done").await;
        assert_eq!(done.len(), 1);
        assert_eq!(done[0]["actor"], "hook:shop");
        let refused = audit(&app, "action=hook.deliver&outcome=refused").await;
        assert_eq!(refused.len(), 6, "{refused:#?}");
        app.shutdown().await;
    }
);

both_backends!(every_change_names_who_made_it_in_the_audit_log, |db| {
    let app = app(db).await;
    let (status, started) = app.post_json("/api/sync/customers", None).await;
    assert_eq!(status, 202);
    let (status, _) = app.post_json("/api/jobs/not-a-job/cancel", None).await;
    assert_eq!(status, 400);
    let viewer = client_with(&make_token(&app.state.auth, "reader", Role::Viewer).await);
    let response = viewer
        .post(app.url("/api/sync/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let entries = audit(&app, "").await;
    let find = |action: &str, outcome: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action && e["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {action} {outcome} in {entries:#?}"))
            .clone()
    };
    let run = find("sync.run", "done");
    assert_eq!(run["actor"], "token:tests");
    assert_eq!(run["actor_kind"], "token");
    assert_eq!(run["role"], "admin");
    assert_eq!(run["target"], "sync_type:customers");
    assert_eq!(run["address"], "127.0.0.1");
    assert!(run["detail"]
        .as_str()
        .unwrap()
        .contains(started["job_id"].as_str().unwrap()));
    let failed = find("job.cancel", "failed");
    assert_eq!(failed["status"], 400);
    let refused = find("sync.run", "refused");
    assert_eq!(refused["actor"], "token:reader");
    assert_eq!(refused["status"], 403);
    // Tokens made and the filters of the log.
    assert!(entries
        .iter()
        .any(|e| e["action"] == "token.create" && e["target"] == "token:reader"));
    assert_eq!(audit(&app, "actor=token:reader").await.len(), 1);
    assert!(audit(&app, "action=sync.").await.len() >= 2);
    let (status, body) = app.get_json_status("/api/audit?outcome=maybe").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app.get_json_status("/api/audit?since=yesterday").await;
    assert_eq!(status, 400);
    // Paging: one at a time, newest first, down to the oldest.
    let first = app.get_json("/api/audit?limit=1").await;
    let before = first["next_before"].as_i64().unwrap();
    let second = app
        .get_json(&format!("/api/audit?limit=1&before={before}"))
        .await;
    assert!(second["entries"][0]["id"].as_i64().unwrap() < before);
    app.shutdown().await;
});

#[tokio::test]
async fn cors_lets_only_the_configured_origins_call_with_a_token() {
    let app = spawn_app_with(TestDb::sqlite(), |c| {
        c.cors_origins = vec!["https://shop.example.com".into()]
    })
    .await;
    for (origin, allowed) in [
        ("https://shop.example.com", true),
        ("https://evil.example", false),
    ] {
        let response = reqwest::Client::new()
            .request(Method::OPTIONS, app.url("/api/sync/customers"))
            .header(header::ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization")
            .send()
            .await
            .unwrap();
        let given = response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            given.as_deref() == Some(origin),
            allowed,
            "{origin}: {given:?}"
        );
    }
    // With its token, the allowed origin's page may start a sync (no cookie, no CSRF proof).
    let response = app
        .client
        .post(app.url("/api/sync/customers"))
        .header(header::ORIGIN, "https://shop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

#[tokio::test]
async fn the_first_start_prints_a_setup_link_that_makes_the_first_admin_once() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = crate::helpers::baton_command()
        .arg("serve")
        .env("BATON_DATA_DIR", dir.path())
        .env("BATON_ADDR", "127.0.0.1:0")
        .env("BATON_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let addr = crate::helpers::listening_addr(stderr);
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let link = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.trim()
                .starts_with("http")
                .then(|| line.trim().to_string())
        })
        .expect("a setup link on stdout");
    let token = link.split("token=").nth(1).unwrap().to_string();
    assert!(link.contains("/setup?token="), "{link}");
    let base = format!("http://{addr}");
    // Before: nothing but the sign-in and setup pages.
    let response = reqwest::Client::new()
        .get(format!("{base}/api/jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // A wrong token is refused; the right one makes the admin and signs them in.
    let setup = |token: String| {
        let base = base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/api/auth/setup"))
                .json(&json!({ "token": token, "username": "boss", "password": "boss-password" }))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(setup("guess".into()).await.status(), 403);
    let response = setup(token.clone()).await;
    assert_eq!(response.status(), 200);
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let response = reqwest::Client::new()
        .get(format!("{base}/"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Once only.
    assert_eq!(setup(token).await.status(), 403);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

#[tokio::test]
async fn the_cli_manages_users_and_tokens() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = crate::helpers::baton_command()
            .args(args)
            .env("BATON_DATA_DIR", dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let output = child.wait_with_output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).to_string(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    };
    let (code, out, err) = run(
        &["user", "add", "anna", "--role", "staff", "--password-stdin"],
        Some("anna-password\n"),
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, _, err) = run(
        &["user", "add", "ANNA", "--role", "staff", "--password-stdin"],
        Some("other-password\n"),
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("exists already"), "{err}");
    let (code, _, err) = run(
        &["user", "add", "bob", "--role", "root", "--password-stdin"],
        Some("x\n"),
    );
    assert_eq!(code, Some(2), "clap refuses the role");
    assert!(err.contains("viewer, staff or admin"), "{err}");
    let (code, _, err) = run(
        &["user", "add", "bob", "--role", "viewer", "--password-stdin"],
        Some("short\n"),
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("at least 8"), "{err}");
    let (code, out, _) = run(&["user", "list"], None);
    assert_eq!(code, Some(0));
    assert!(out.contains("anna\tstaff"), "{out}");
    let (code, out, err) = run(
        &["token", "create", "--name", "nightly", "--role", "staff"],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    let token = out.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("baton_"), "{out}");
    let (_, out, _) = run(&["token", "list"], None);
    assert!(
        out.contains("nightly\tstaff\tnever used\tcreated by system:cli"),
        "{out}"
    );
    assert!(!out.contains(&token), "a token's secret is never listed");
    let (code, _, _) = run(&["user", "set-role", "anna", "admin"], None);
    assert_eq!(code, Some(0));
    let (code, _, _) = run(&["token", "revoke", "nightly"], None);
    assert_eq!(code, Some(0));
    let (code, _, err) = run(&["token", "revoke", "nightly"], None);
    assert_eq!(code, Some(1), "{err}");
    // Everything the CLI did is in the audit log, by the CLI.
    let store = baton::server::store::Store::connect(
        &baton::server::store::DatabaseTarget::Sqlite(dir.path().join("baton.db")),
        1,
    )
    .await
    .unwrap();
    let rows = store
        .audit(&baton::server::store::AuditFilter {
            actor: Some("system:cli".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<_> = rows.iter().rev().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["user.create", "token.create", "user.role", "token.revoke"]
    );
    // A token made by the CLI works against a server on that database, and not once revoked.
    let served = spawn_app_with(TestDb::Sqlite(dir), |_| {}).await;
    let auth = &served.state.auth;
    let fresh = make_token(auth, "fresh", Role::Viewer).await;
    assert_eq!(
        client_with(&fresh)
            .get(served.url("/api/jobs"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client_with(&token)
            .get(served.url("/api/jobs"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let _ = Duration::ZERO;
}
