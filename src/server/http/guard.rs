//! The one layer every mutating request passes through.
//!
//! Safe methods (GET, HEAD, OPTIONS) pass. Anything else must come from this site: a browser's
//! `Sec-Fetch-Site: cross-site`, or an `Origin` whose host differs from `Host`, is refused with 403,
//! so another web page cannot make a staff member's browser start or cancel syncs. Requests without
//! either header (curl, scripts, other services) pass. Authentication and roles plug in here.

use axum::{
    extract::Request,
    http::{header, HeaderMap},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::ApiError;

/// Middleware: refuses cross-site mutations, passes everything else on.
pub async fn guard_mutations(request: Request, next: Next) -> Response {
    if request.method().is_safe() {
        return next.run(request).await;
    }
    if let Err(reason) = same_site(request.headers()) {
        tracing::warn!(method = %request.method(), uri = %request.uri(), reason, "refused a cross-site request");
        return ApiError::Forbidden(format!(
            "{reason}: changes can only be made from Baton's own pages or from clients that send no Origin"
        ))
        .into_response();
    }
    next.run(request).await
}

/// Whether the request's own headers say it came from this site (or from no browser at all).
fn same_site(headers: &HeaderMap) -> Result<(), &'static str> {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site == Some("cross-site") {
        return Err("the browser marked this request as cross-site");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .map_err(|_| "the Origin header is not readable")?;
    if origin == "null" {
        return Err("the request comes from an opaque origin");
    }
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'))
        .ok_or("the Origin header is not a URL")?;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or("the request names an Origin but no Host")?;
    if origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err("the Origin header names another site")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn requests_without_browser_headers_pass() {
        assert!(same_site(&headers(&[("host", "127.0.0.1:3000")])).is_ok());
    }

    #[test]
    fn same_origin_passes_and_other_origins_do_not() {
        let ok = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ]);
        assert!(same_site(&ok).is_ok());
        let other_port = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:4000"),
        ]);
        assert!(same_site(&other_port).is_err());
        let evil = headers(&[("host", "baton.local"), ("origin", "https://evil.example")]);
        assert!(same_site(&evil).is_err());
        let opaque = headers(&[("host", "baton.local"), ("origin", "null")]);
        assert!(same_site(&opaque).is_err());
    }

    #[test]
    fn the_browser_cross_site_marker_is_refused_even_without_origin() {
        let marked = headers(&[("host", "baton.local"), ("sec-fetch-site", "cross-site")]);
        assert!(same_site(&marked).is_err());
        let same = headers(&[("host", "baton.local"), ("sec-fetch-site", "same-origin")]);
        assert!(same_site(&same).is_ok());
    }
}
