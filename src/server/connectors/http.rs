//! Named HTTP connections (`[connections.<name>]`): a base URL, an optional auth header whose
//! value comes from an environment variable, TLS settings, a proxy, a timeout and how often a
//! request is retried.
//!
//! Requests speak HTTP/2 where the server offers it (ALPN) and HTTP/1.1 otherwise. Proxies come
//! from `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` as other programs read them, or
//! from the connection's own `proxy` (which `NO_PROXY` still exempts hosts from).

use std::{collections::BTreeMap, time::Duration};

use reqwest::{
    header::{HeaderName, HeaderValue, RETRY_AFTER},
    Method, StatusCode,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::tls::{self, TlsConfig};
use crate::server::engine::task::{TaskContext, TaskError};

/// One `[connections.<name>]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Where the API lives; task paths are appended to it.
    pub base_url: String,
    /// An auth header, its value read from an environment variable at start-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// How long one request may take.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// How often a request that timed out or got a 5xx or 429 is tried again within one attempt
    /// (after that the job's own retry policy takes over).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The longest `Retry-After` waited within an attempt; a longer one ends the attempt
    /// (retryably) instead.
    #[serde(default = "default_max_retry_after", with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// The largest answer read (a page, a call's answer), in bytes; a larger one ends the
    /// attempt for good, naming this key.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// Which certificates to trust and which to show (`tls = { ca_file = "…" }`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub tls: TlsConfig,
    /// A proxy for this connection's requests (`http://host:3128`, `https://…`,
    /// `socks5://…` not included); unset: `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

fn is_default(tls: &TlsConfig) -> bool {
    *tls == TlsConfig::default()
}

/// `auth = { env = "ERP_TOKEN" }`: sends `Authorization: Bearer <$ERP_TOKEN>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The environment variable holding the secret (its name, never the secret itself).
    pub env: String,
    /// The header.
    #[serde(default = "default_header")]
    pub header: String,
    /// What goes before the secret.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_retries() -> u32 {
    3
}
fn default_max_retry_after() -> Duration {
    Duration::from_secs(60)
}
fn default_max_response_bytes() -> u64 {
    64 * 1024 * 1024
}
/// The most of an error answer read to find the server's own words.
const ERROR_BODY_BYTES: usize = 64 * 1024;
/// The most of the server's own words kept in an error.
const ERROR_WORDS: usize = 300;
fn default_header() -> String {
    "Authorization".into()
}
fn default_prefix() -> String {
    "Bearer ".into()
}

impl ConnectionConfig {
    /// A connection to `base_url` with the defaults.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            auth: None,
            timeout: default_timeout(),
            retries: default_retries(),
            max_retry_after: default_max_retry_after(),
            max_response_bytes: default_max_response_bytes(),
            tls: TlsConfig::default(),
            proxy: None,
        }
    }
}

/// A connection ready to use: its client, its URL, its secret header.
#[derive(Clone)]
pub struct Connection {
    name: String,
    base: String,
    client: reqwest::Client,
    auth: Option<(HeaderName, HeaderValue)>,
    secret: Option<String>,
    retries: u32,
    max_retry_after: Duration,
    max_response_bytes: u64,
    tls: TlsConfig,
    /// First pause between retries of one request (doubles each time).
    pub backoff: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name)
            .field(
                "base",
                &Url::parse(&self.base)
                    .map(|u| shown_url(&u))
                    .unwrap_or_else(|_| "(not a URL)".into()),
            )
            .field("auth", &self.auth.as_ref().map(|(h, _)| h))
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Resolves `config`, reading the auth secret with `env`. Fails with a message naming the
    /// key when the URL is not http(s) or the variable is unset.
    pub fn resolve(
        name: &str,
        config: &ConnectionConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let url = Url::parse(&config.base_url)
            .map_err(|e| format!("connections.{name}.base_url: not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "connections.{name}.base_url: must start with http:// or https://"
            ));
        }
        let (auth, secret) = match &config.auth {
            None => (None, None),
            Some(auth) => {
                let secret = env(&auth.env).filter(|s| !s.is_empty()).ok_or_else(|| {
                    format!(
                        "connections.{name}.auth.env: the environment variable {} is not set; \
                         it must hold the secret for {}",
                        auth.env, auth.header
                    )
                })?;
                let header = HeaderName::try_from(auth.header.as_str()).map_err(|_| {
                    format!(
                        "connections.{name}.auth.header: `{}` is not a header name",
                        auth.header
                    )
                })?;
                let mut value = HeaderValue::try_from(format!("{}{secret}", auth.prefix))
                    .map_err(|_| {
                        format!(
                            "connections.{name}.auth.env: the value of {} cannot be sent in a header",
                            auth.env
                        )
                    })?;
                value.set_sensitive(true);
                (Some((header, value)), Some(secret))
            }
        };
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("baton/", env!("CARGO_PKG_VERSION")))
            // A redirect could carry a custom auth header to another host, or turn a refused
            // POST into a 200 login page; it is an error to fix in base_url instead.
            .redirect(reqwest::redirect::Policy::none());
        builder = config.tls.apply(name, builder)?;
        if let Some(proxy) = &config.proxy {
            builder = builder.proxy(proxy_of(name, proxy)?);
        }
        let client = builder
            .build()
            .map_err(|e| format!("connections.{name}: cannot build an HTTP client ({e})"))?;
        Ok(Self {
            name: name.to_string(),
            base: config.base_url.trim_end_matches('/').to_string(),
            client,
            auth,
            secret,
            retries: config.retries,
            max_retry_after: config.max_retry_after,
            max_response_bytes: config.max_response_bytes,
            tls: config.tls.clone(),
            backoff: Duration::from_millis(500),
        })
    }

    /// The connection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this connection accepts any server certificate (`tls.insecure`).
    pub fn insecure(&self) -> bool {
        self.tls.insecure
    }

    /// `path` (with its query) under the base URL.
    pub fn url(&self, path: &str, query: &BTreeMap<String, String>) -> Result<Url, TaskError> {
        let joined = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let mut url = Url::parse(&joined)
            .map_err(|e| TaskError::Fatal(format!("`{joined}` is not a URL: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter());
        }
        Ok(url)
    }

    /// The whole body of `response`, read chunk by chunk and refused once it passes
    /// `max_response_bytes` (a misbehaving server cannot fill the memory); `what` names the
    /// request in errors. Stops early when the job is told to stop.
    pub async fn read_body(
        &self,
        ctx: &TaskContext,
        mut response: reqwest::Response,
        what: &str,
    ) -> Result<Vec<u8>, TaskError> {
        let limit = self.max_response_bytes;
        let too_large = || {
            TaskError::Fatal(format!(
                "{what}: the answer is larger than {limit} bytes (max_response_bytes in \
                 [connections.{}]); raise it if the source really sends that much",
                self.name
            ))
        };
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        loop {
            let chunk = tokio::select! {
                _ = ctx.stop().cancelled() => return Err(TaskError::Interrupted),
                chunk = response.chunk() => chunk.map_err(|e| {
                    TaskError::Retryable(format!("{what}: the response broke off: {}", without_url(&e)))
                })?,
            };
            let Some(chunk) = chunk else {
                return Ok(body);
            };
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
    }

    /// Removes the secret from text that came from the other side (an error body may echo it).
    /// The secret counts in its plain and its percent-encoded form (as a server that echoes a
    /// URL or a form would write it).
    pub fn scrub(&self, text: &str) -> String {
        let Some(secret) = self.secret.as_deref().filter(|s| !s.is_empty()) else {
            return text.to_string();
        };
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let mut text = text.replace(secret, "***");
        if encoded != secret {
            text = text.replace(&encoded, "***");
        }
        text
    }

    /// Sends a request and returns the response once it is 2xx. A timeout, a connection
    /// error, a 5xx or a 429 is tried again (`retries` times, waiting `Retry-After` when the
    /// server says so, or a doubling backoff) and then ends the attempt retryably; another 4xx
    /// ends it fatally with the server's message. Stops early when the job is told to stop.
    pub async fn send(
        &self,
        ctx: &TaskContext,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, TaskError> {
        let shown = shown_url(url);
        let mut tries = 0u32;
        loop {
            tries += 1;
            let mut request = self.client.request(method.clone(), url.clone());
            if let Some((header, value)) = &self.auth {
                request = request.header(header, value.clone());
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let sent = tokio::select! {
                _ = ctx.stop().cancelled() => return Err(TaskError::Interrupted),
                sent = request.send() => sent,
            };
            let (problem, wait) = match sent {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) if response.status().is_redirection() => {
                    let to = response
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .unwrap_or("nowhere")
                        .to_string();
                    return Err(TaskError::Fatal(format!(
                        "{method} {shown}: {} to {}; redirects are not followed, point the \
                         connection's base_url at the final address",
                        response.status(),
                        self.scrub(&to)
                    )));
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(&response);
                    let message = error_message(response, |text| self.scrub(text)).await;
                    let problem = format!("{method} {shown}: {status}{message}");
                    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
                        return Err(TaskError::Fatal(problem));
                    }
                    (problem, retry_after)
                }
                Err(err) => match tls::explain(&err, &self.name, &self.tls) {
                    // A certificate problem stays a problem however often it is tried.
                    Some(said) => {
                        return Err(TaskError::Fatal(format!("{method} {shown}: {said}")))
                    }
                    None if err.is_timeout() => (
                        format!("{method} {shown}: no answer within the connection's timeout"),
                        None,
                    ),
                    None => (
                        format!("{method} {shown}: {}", self.scrub(&without_url(&err))),
                        None,
                    ),
                },
            };
            if tries > self.retries {
                return Err(TaskError::Retryable(problem));
            }
            let wait = match wait {
                Some(wait) if wait > self.max_retry_after => {
                    return Err(TaskError::Retryable(format!(
                        "{problem} (the server asks to wait {}s, longer than max_retry_after)",
                        wait.as_secs()
                    )))
                }
                Some(wait) => wait,
                None => self.backoff * 2u32.saturating_pow(tries - 1),
            };
            ctx.log(
                crate::model::LogLevel::Warn,
                format!(
                    "{problem}; trying again in {} ms ({tries} of {})",
                    wait.as_millis(),
                    self.retries + 1
                ),
            );
            tokio::select! {
                _ = ctx.stop().cancelled() => return Err(TaskError::Interrupted),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// The connection's own proxy, checked; `NO_PROXY` still exempts hosts from it.
fn proxy_of(name: &str, proxy: &str) -> Result<reqwest::Proxy, String> {
    let key = format!("connections.{name}.proxy");
    let url = Url::parse(proxy).map_err(|e| format!("{key}: not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{key}: must start with http:// or https:// (the proxy's own address)"
        ));
    }
    reqwest::Proxy::all(url)
        .map(|p| p.no_proxy(reqwest::NoProxy::from_env()))
        .map_err(|e| format!("{key}: {e}"))
}

/// A URL as it may appear in logs and errors: without user name or password, and with the
/// values of query parameters whose names suggest a secret (`api_key`, `token`, `password`,
/// `signature` …) shown as `***`.
pub fn shown_url(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if url.query_pairs().any(|(name, _)| secret_looking(&name)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if secret_looking(&name) {
                    "***".to_string()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// Whether a query parameter's name suggests that its value is a secret.
fn secret_looking(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "pass",
        "pwd",
        "auth",
        "sig",
        "credential",
        "session",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// reqwest's error text without the URL it repeats (the caller names the URL).
fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(&format!(" ({url})"), "");
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The server's own words: `error` or `message` of a JSON body, or the start of the text;
/// at most the first 64 KiB of the answer are read, and 300 characters kept.
async fn error_message(mut response: reqwest::Response, scrub: impl Fn(&str) -> String) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_BYTES);
    let text = String::from_utf8_lossy(&body);
    let said: String = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            ["error", "message", "detail"]
                .iter()
                .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_string))
        })
        .unwrap_or_else(|| text.trim().to_string());
    // Scrubbed before it is cut, so no prefix of a secret survives at the cut.
    let said = scrub(&said);
    let mut said: String = said.chars().take(ERROR_WORDS).collect();
    if said.chars().count() == ERROR_WORDS {
        said.push('…');
    }
    if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    }
}
