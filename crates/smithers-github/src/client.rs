//! GitHub's REST API (version 2022-11-28), as the App: every request is
//! authenticated with the App's JWT or a down-scoped installation token,
//! recorded in the audit log (method, route, repository, delivery,
//! GitHub's request id, status — never a token), and retried only where
//! that cannot do a thing twice:
//!
//! - a rate-limit refusal (GitHub Docs, "Rate limits for the REST API":
//!   403 or 429 with `retry-after`, or `x-ratelimit-remaining: 0` until
//!   `x-ratelimit-reset`) was not carried out, so it is waited out (up to
//!   [`RetryLimits::max_wait`]) and sent again, whatever the method;
//! - a 401 to an installation token: the token is forgotten, a new one
//!   minted, the request sent again once;
//! - a 5xx or a dropped connection: sent again (with backoff) only for
//!   methods that mean the same thing twice (GET, PUT, PATCH, DELETE); a
//!   POST answers [`Error::Uncertain`] and its caller looks before
//!   retrying, so a 502 on "create a pull request" does not make two.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use smithers_audit::ActorType;
use smithers_store::AuditLog;

use crate::Error;
use crate::jwt::AppKey;
use crate::token::{InstallationToken, TokenCache, TokenScope};

/// The REST API version asked for (GitHub Docs, "API Versions").
pub const API_VERSION: &str = "2022-11-28";

/// The most of one answer that is read.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// The actor id of the App's own requests in the audit log.
const ACTOR: &str = "smithers";

/// How long and how often a request is tried.
#[derive(Debug, Clone, Copy)]
pub struct RetryLimits {
    /// The most one request waits for a rate limit to lift; longer is
    /// [`Error::RateLimited`].
    pub max_wait: Duration,
    /// Tries of one request, the first included.
    pub attempts: u32,
    /// The first backoff after a 5xx or a dropped connection; doubled each
    /// time.
    pub backoff: Duration,
    /// How long one try may take.
    pub timeout: Duration,
}

impl Default for RetryLimits {
    fn default() -> RetryLimits {
        RetryLimits {
            max_wait: Duration::from_secs(60),
            attempts: 3,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
        }
    }
}

/// How a request is authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// As the App itself (its JWT): its installations, its deliveries.
    App,
    /// As an installation, with a token of this scope.
    Installation(TokenScope),
}

/// Why a request is made, for its audit record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The repository it concerns (`owner/name`).
    pub repository: Option<&'a str>,
    /// The webhook delivery it answers.
    pub delivery: Option<&'a str>,
}

/// One request.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: Method,
    /// The route's template as GitHub's API description names it
    /// (`/repos/{owner}/{repo}/pulls`): what is recorded.
    pub route: &'static str,
    /// The values of the template's parameters, in order (percent-encoded
    /// here, so a value cannot add a path segment).
    pub params: Vec<String>,
    pub query: Vec<(&'static str, String)>,
    pub auth: Auth,
    pub body: Option<Value>,
    pub context: Context<'a>,
    /// A conditional request: the `ETag` of the answer held.
    pub if_none_match: Option<String>,
}

impl<'a> Request<'a> {
    /// A request without query, body or condition.
    pub fn new(method: Method, route: &'static str, params: &[&str], auth: Auth) -> Request<'a> {
        Request {
            method,
            route,
            params: params.iter().map(|p| p.to_string()).collect(),
            query: Vec::new(),
            auth,
            body: None,
            context: Context::default(),
            if_none_match: None,
        }
    }

    /// This request with `body`.
    pub fn json(mut self, body: Value) -> Request<'a> {
        self.body = Some(body);
        self
    }

    /// This request for `context`.
    pub fn context(mut self, context: Context<'a>) -> Request<'a> {
        self.context = context;
        self
    }

    /// This request with a query parameter.
    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Request<'a> {
        self.query.push((name, value.into()));
        self
    }
}

impl Request<'_> {
    /// Who the request is made as, for a cache key (a page depends on
    /// what the credential may see).
    fn auth_key(&self) -> String {
        match &self.auth {
            Auth::App => "app".into(),
            Auth::Installation(scope) => format!("{scope:?}"),
        }
    }
}

/// Pages held for conditional requests: per request, GitHub's `ETag` and
/// what the page held.
#[derive(Debug, Default)]
pub struct PageCache {
    pages: std::sync::Mutex<std::collections::HashMap<String, CachedPage>>,
}

#[derive(Debug, Clone)]
struct CachedPage {
    etag: String,
    /// The body GitHub sent with `etag`.
    body: Value,
    next: Option<Vec<(String, String)>>,
}

type Page = (Value, Option<Vec<(String, String)>>);

impl PageCache {
    fn etag(&self, key: &str) -> Option<String> {
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages.get(key).map(|p| p.etag.clone())
    }

    fn page(&self, key: &str) -> Option<Page> {
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages.get(key).map(|p| (p.body.clone(), p.next.clone()))
    }

    fn keep(&self, key: String, etag: String, body: Value, next: Option<Vec<(String, String)>>) {
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages.insert(key, CachedPage { etag, body, next });
    }
}

/// GitHub's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The JSON body (`Null` when empty, as for a 304 or a 204).
    pub body: Value,
    pub etag: Option<String>,
    /// `X-GitHub-Request-Id`.
    pub request_id: Option<String>,
    /// The query of the `Link: <…>; rel="next"` page, when the answer has
    /// more (only ever a page of the same route).
    pub next_query: Option<Vec<(String, String)>>,
}

/// The App's client. Cheap to clone.
#[derive(Clone)]
pub struct Github {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    api_url: url::Url,
    key: AppKey,
    tokens: TokenCache,
    audit: AuditLog,
    organization: String,
    limits: RetryLimits,
}

impl std::fmt::Debug for Github {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Github")
            .field("api_url", &self.inner.api_url.as_str())
            .field("app_id", &self.inner.key.app_id())
            .finish_non_exhaustive()
    }
}

impl Github {
    /// A client of the API at `api_url` (`https://api.github.com`, or a
    /// GitHub Enterprise Server's `https://HOST/api/v3`) for the App
    /// `key`, recording its requests in `organization`'s audit log.
    ///
    /// Errors: [`Error::Settings`] for a URL that is not http(s).
    pub fn new(
        api_url: &str,
        key: AppKey,
        audit: AuditLog,
        organization: &str,
        limits: RetryLimits,
    ) -> Result<Github, Error> {
        let mut api = url::Url::parse(api_url)
            .map_err(|e| Error::Settings(format!("GitHub API URL {api_url:?}: {e}")))?;
        if !matches!(api.scheme(), "https" | "http") || api.cannot_be_a_base() {
            return Err(Error::Settings(format!(
                "GitHub API URL {api_url:?} is not an http(s) URL"
            )));
        }
        if !api.path().ends_with('/') {
            let path = format!("{}/", api.path());
            api.set_path(&path);
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static(API_VERSION),
        );
        let http = reqwest::Client::builder()
            .user_agent(concat!("smithers/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Settings(format!("HTTP client: {e}")))?;
        Ok(Github {
            inner: Arc::new(Inner {
                http,
                api_url: api,
                key,
                tokens: TokenCache::default(),
                audit,
                organization: organization.to_string(),
                limits,
            }),
        })
    }

    /// The App's id.
    pub fn app_id(&self) -> u64 {
        self.inner.key.app_id()
    }

    /// Forgets every token of `installation` (suspended or uninstalled);
    /// answers how many.
    pub fn revoke_installation(&self, installation: i64) -> usize {
        self.inner.tokens.revoke_installation(installation)
    }

    /// Sends `request`, retrying as the module says.
    ///
    /// Errors: [`Error::Api`] for an error answer (4xx, and a 5xx that
    /// lasted); [`Error::Uncertain`] for a POST that may have been carried
    /// out; [`Error::RateLimited`]; [`Error::Unreachable`];
    /// [`Error::Audit`] when a request cannot be recorded.
    pub async fn send(&self, request: &Request<'_>) -> Result<Answer, Error> {
        let url = self.url(request)?;
        let limits = self.inner.limits;
        let mut backoff = limits.backoff;
        let mut refreshed_token = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = match &request.auth {
                Auth::App => None,
                Auth::Installation(scope) => {
                    Some(self.installation_token(scope, request.context).await?)
                }
            };
            let sent = self.try_once(request, &url, token.as_deref()).await;
            self.record(request, attempt, &sent).await?;
            let tried = match sent {
                Ok(answer) => answer,
                Err(reason) => {
                    if idempotent(&request.method) && attempt < limits.attempts {
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                        continue;
                    }
                    return Err(if idempotent(&request.method) {
                        Error::Unreachable {
                            method: request.method.to_string(),
                            route: request.route.into(),
                            reason,
                        }
                    } else {
                        Error::Uncertain {
                            method: request.method.to_string(),
                            route: request.route.into(),
                            reason,
                        }
                    });
                }
            };
            let status = StatusCode::from_u16(tried.answer.status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if status.is_success() || status == StatusCode::NOT_MODIFIED {
                return Ok(tried.answer);
            }
            if let Some(wait) = tried.rate_limited {
                if wait > limits.max_wait {
                    return Err(Error::RateLimited {
                        route: request.route.into(),
                        wait_secs: wait.as_secs(),
                    });
                }
                if attempt < limits.attempts + 2 {
                    tracing::warn!(
                        route = request.route,
                        wait_ms = wait.as_millis() as u64,
                        "GitHub rate limit: waiting"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            if status == StatusCode::UNAUTHORIZED
                && let Auth::Installation(scope) = &request.auth
                && !refreshed_token
            {
                self.inner.tokens.forget(scope);
                refreshed_token = true;
                continue;
            }
            if status.is_server_error() {
                if idempotent(&request.method) && attempt < limits.attempts {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
                if !idempotent(&request.method) {
                    return Err(Error::Uncertain {
                        method: request.method.to_string(),
                        route: request.route.into(),
                        reason: format!("HTTP {}", tried.answer.status),
                    });
                }
            }
            return Err(api_error(request, &tried.answer));
        }
    }

    /// Every page of a list (`per_page=100`), following `Link: rel="next"`
    /// of the same route; the items of each page are the answer's array
    /// (or its `array_key` member, for answers that wrap it).
    ///
    /// Errors: as [`Github::send`]; [`Error::Malformed`] for a page that
    /// is not a list.
    pub async fn list(
        &self,
        request: Request<'_>,
        array_key: Option<&str>,
    ) -> Result<Vec<Value>, Error> {
        let mut request = request.query("per_page", "100");
        let mut items = Vec::new();
        loop {
            let answer = self.send(&request).await?;
            let page = match array_key {
                Some(key) => answer.body.get(key).cloned(),
                None => Some(answer.body.clone()),
            };
            let Some(Value::Array(page)) = page else {
                return Err(Error::Malformed(format!(
                    "GitHub's answer to {} is not a list",
                    request.route
                )));
            };
            items.extend(page);
            match answer.next_query {
                Some(query) => {
                    request.query = query
                        .into_iter()
                        .filter_map(|(k, v)| allowed_query_key(&k).map(|k| (k, v)))
                        .collect();
                }
                None => return Ok(items),
            }
        }
    }

    /// Every page of a list like [`Github::list`], each page asked for
    /// conditionally with the `ETag` `cache` holds for it (a 304 costs no
    /// rate limit: GitHub Docs, "Best practices for using the REST API"),
    /// its items then taken from `cache`. Answers the items and whether
    /// every page was unchanged.
    ///
    /// Errors: as [`Github::send`]; [`Error::Malformed`] for a page that
    /// is not a list.
    pub async fn list_cached(
        &self,
        request: Request<'_>,
        cache: &PageCache,
    ) -> Result<(Vec<Value>, bool), Error> {
        let mut request = request.query("per_page", "100");
        let mut items = Vec::new();
        let mut unchanged = true;
        loop {
            let (page, next, changed) = self.send_conditional(&mut request, cache).await?;
            unchanged &= !changed;
            let Value::Array(page) = page else {
                return Err(Error::Malformed(format!(
                    "GitHub's answer to {} is not a list",
                    request.route
                )));
            };
            items.extend(page);
            match next {
                Some(query) => {
                    request.query = query
                        .into_iter()
                        .filter_map(|(k, v)| allowed_query_key(&k).map(|k| (k, v)))
                        .collect();
                }
                None => return Ok((items, unchanged)),
            }
        }
    }

    /// One resource (a pull request, say), asked for conditionally with
    /// the `ETag` `cache` holds for it: a resource read again and again
    /// costs no rate limit while it does not change.
    ///
    /// Errors: as [`Github::send`].
    pub async fn get_cached(
        &self,
        request: Request<'_>,
        cache: &PageCache,
    ) -> Result<Value, Error> {
        let mut request = request;
        let (body, _, _) = self.send_conditional(&mut request, cache).await?;
        Ok(body)
    }

    /// Sends `request` with `If-None-Match` set to the `ETag` `cache`
    /// holds for it. Answers the body (GitHub's, kept in `cache` with its
    /// `ETag`, or on a 304 the one held), the next page's query, and
    /// whether GitHub sent a new body.
    ///
    /// Errors: as [`Github::send`]; [`Error::Malformed`] for a 304 to a
    /// request whose answer `cache` does not hold.
    async fn send_conditional(
        &self,
        request: &mut Request<'_>,
        cache: &PageCache,
    ) -> Result<(Value, Option<Vec<(String, String)>>, bool), Error> {
        let key = format!(
            "{} {} {:?} {:?}",
            request.route,
            request.auth_key(),
            request.params,
            request.query
        );
        request.if_none_match = cache.etag(&key);
        let answer = self.send(request).await?;
        if answer.status == 304 {
            let (body, next) = cache.page(&key).ok_or_else(|| {
                Error::Malformed(format!(
                    "GitHub answered 304 to {} for a page never held",
                    request.route
                ))
            })?;
            return Ok((body, next, false));
        }
        if let Some(etag) = &answer.etag {
            cache.keep(
                key,
                etag.clone(),
                answer.body.clone(),
                answer.next_query.clone(),
            );
        }
        Ok((answer.body, answer.next_query, true))
    }

    fn url(&self, request: &Request<'_>) -> Result<url::Url, Error> {
        let mut url = self.inner.api_url.clone();
        let mut params = request.params.iter();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| Error::Settings("the GitHub API URL cannot be a base".into()))?;
            segments.pop_if_empty();
            for part in request.route.trim_start_matches('/').split('/') {
                if part.starts_with('{') && part.ends_with('}') {
                    let value = params.next().ok_or_else(|| {
                        Error::Malformed(format!("{}: a parameter is missing", request.route))
                    })?;
                    segments.push(value);
                } else {
                    segments.push(part);
                }
            }
        }
        if params.next().is_some() {
            return Err(Error::Malformed(format!(
                "{}: more parameters than the route has",
                request.route
            )));
        }
        if !request.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(request.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    /// A token of `scope`, minted with the App's JWT if none is fresh.
    pub(crate) async fn installation_token(
        &self,
        scope: &TokenScope,
        context: Context<'_>,
    ) -> Result<Arc<InstallationToken>, Error> {
        self.inner
            .tokens
            .get_or_mint(scope, SystemTime::now(), || self.mint(scope, context))
            .await
    }

    async fn mint(
        &self,
        scope: &TokenScope,
        context: Context<'_>,
    ) -> Result<InstallationToken, Error> {
        let installation = scope.installation.to_string();
        let request = Request::new(
            Method::POST,
            "/app/installations/{installation_id}/access_tokens",
            &[&installation],
            Auth::App,
        )
        .json(scope.request_body())
        .context(context);
        // Minting twice is harmless (each token is independent), so an
        // uncertain answer is tried again.
        // (Boxed: `send` mints through here, and this sends as the App,
        // which never mints.)
        let answer = match Box::pin(self.send(&request)).await {
            Err(Error::Uncertain { .. }) => Box::pin(self.send(&request)).await?,
            other => other?,
        };
        let token = answer
            .body
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Malformed("GitHub's access token answer has no token".into()))?;
        let expires_at = answer
            .body
            .get("expires_at")
            .and_then(Value::as_str)
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .ok_or_else(|| {
                Error::Malformed("GitHub's access token answer has no expires_at".into())
            })?;
        Ok(InstallationToken::new(token.to_string(), expires_at))
    }

    async fn try_once(
        &self,
        request: &Request<'_>,
        url: &url::Url,
        token: Option<&InstallationToken>,
    ) -> Result<Tried, String> {
        let bearer = match token {
            Some(token) => format!("Bearer {}", token.expose()),
            None => format!(
                "Bearer {}",
                self.inner
                    .key
                    .jwt(SystemTime::now())
                    .map_err(|e| e.to_string())?
            ),
        };
        let mut authorization =
            HeaderValue::from_str(&bearer).map_err(|_| "a credential is not a header value")?;
        authorization.set_sensitive(true);
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), url.clone())
            .header(header::AUTHORIZATION, authorization)
            .timeout(self.inner.limits.timeout);
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        if let Some(etag) = &request.if_none_match {
            builder = builder.header(header::IF_NONE_MATCH, etag);
        }
        // reqwest's errors name the URL only, never a header.
        let response = builder.send().await.map_err(|e| without_url(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = read_capped(response).await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let answer = Answer {
            status,
            body,
            etag: text("etag"),
            request_id: text("x-github-request-id"),
            next_query: text("link").and_then(|link| next_page(&link, url)),
        };
        Ok(Tried {
            rate_limited: rate_limit_wait(status, &headers, SystemTime::now()),
            answer,
        })
    }

    /// Records one try in the audit log; a try that cannot be recorded
    /// stops the request.
    async fn record(
        &self,
        request: &Request<'_>,
        attempt: u32,
        sent: &Result<Tried, String>,
    ) -> Result<(), Error> {
        let (status, request_id, error) = match sent {
            Ok(tried) => (
                Some(tried.answer.status),
                tried.answer.request_id.clone(),
                None,
            ),
            Err(reason) => (None, None, Some(reason.clone())),
        };
        let installation = match &request.auth {
            Auth::App => None,
            Auth::Installation(scope) => Some(scope.installation),
        };
        self.audit(
            "github.request",
            (
                "github_route",
                &format!("{} {}", request.method, request.route),
            ),
            json!({
                "method": request.method.as_str(),
                "route": request.route,
                "repository": request.context.repository,
                "delivery": request.context.delivery,
                "installation": installation,
                "attempt": attempt,
                "status": status,
                "request_id": request_id,
                "error": error,
            }),
        )
        .await
    }

    /// Records what the App did in the organization's audit log, as the
    /// system actor `smithers`.
    ///
    /// Errors: [`Error::Audit`] when it cannot be recorded.
    pub(crate) async fn audit(
        &self,
        action: &str,
        resource: (&str, &str),
        details: Value,
    ) -> Result<(), Error> {
        let event = smithers_store::audit_event(
            &self.inner.organization,
            (ActorType::System, ACTOR),
            action,
            resource,
            details,
            smithers_store::now_micros(),
        );
        self.inner
            .audit
            .append(event)
            .await
            .map(|_| ())
            .map_err(|e| Error::Audit(e.to_string()))
    }
}

/// One try's answer and, if it was refused for a rate limit, how long to
/// wait.
struct Tried {
    answer: Answer,
    rate_limited: Option<Duration>,
}

fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// GitHub's error answer, with its `message` and the first of its
/// `errors` (never the request's body).
fn api_error(request: &Request<'_>, answer: &Answer) -> Error {
    let mut message = answer
        .body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .to_string();
    if let Some(first) = answer
        .body
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        let detail = first
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| first.to_string());
        message = format!("{message} ({detail})");
    }
    Error::Api {
        status: answer.status,
        method: request.method.to_string(),
        route: request.route.into(),
        message,
        request_id: answer.request_id.clone(),
    }
}

/// How long GitHub asks to wait before trying again, if this answer is a
/// rate-limit refusal: `retry-after` seconds, else until
/// `x-ratelimit-reset` when `x-ratelimit-remaining` is 0.
fn rate_limit_wait(status: u16, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if status != 403 && status != 429 {
        return None;
    }
    let number = |name: &str| -> Option<u64> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    };
    if let Some(seconds) = number("retry-after") {
        return Some(Duration::from_secs(seconds));
    }
    if number("x-ratelimit-remaining") == Some(0) {
        let reset = number("x-ratelimit-reset")?;
        let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
        return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
    }
    // A secondary limit without a header: GitHub asks for at least a
    // minute.
    if status == 429 {
        return Some(Duration::from_secs(60));
    }
    None
}

/// The query of the `rel="next"` link of a `Link` header (RFC 8288), if
/// it points at the same path of the same origin as `current`: a link
/// elsewhere is not followed (the request carries a credential).
fn next_page(link: &str, current: &url::Url) -> Option<Vec<(String, String)>> {
    for part in link.split(',') {
        let mut pieces = part.split(';');
        let target = pieces.next()?.trim();
        let is_next = pieces.any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        if !is_next {
            continue;
        }
        let target = target.strip_prefix('<')?.strip_suffix('>')?;
        let next = current.join(target).ok()?;
        if next.origin() != current.origin() || next.path() != current.path() {
            return None;
        }
        return Some(next.query_pairs().into_owned().collect());
    }
    None
}

/// The query names a next-page link may carry over.
fn allowed_query_key(key: &str) -> Option<&'static str> {
    const KEYS: &[&str] = &[
        "page",
        "per_page",
        "cursor",
        "since",
        "before",
        "after",
        "state",
        "head",
        "base",
        "role",
        "filter",
        "sort",
        "direction",
    ];
    KEYS.iter().find(|k| **k == key).copied()
}

/// A transport error's reason, without the URL reqwest would add.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    match std::error::Error::source(e) {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_string(),
    }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| without_url(&e))? {
        if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("the answer is over {MAX_ANSWER_BYTES} bytes"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn rate_limit_waits_follow_github_headers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut h = HeaderMap::new();
        assert_eq!(rate_limit_wait(403, &h, now), None, "a plain 403");
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(rate_limit_wait(403, &h, now), Some(Duration::from_secs(7)));
        assert_eq!(rate_limit_wait(200, &h, now), None);
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1030"));
        assert_eq!(rate_limit_wait(403, &h, now), Some(Duration::from_secs(31)));
        assert_eq!(
            rate_limit_wait(429, &HeaderMap::new(), now),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn next_links_are_followed_only_on_the_same_route() {
        let current =
            url::Url::parse("https://api.github.com/app/hook/deliveries?per_page=100").unwrap();
        let link = "<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_9>; \
                    rel=\"next\", <https://api.github.com/app/hook/deliveries?per_page=100>; rel=\"first\"";
        assert_eq!(
            next_page(link, &current).unwrap(),
            [
                ("per_page".to_string(), "100".to_string()),
                ("cursor".to_string(), "v1_9".to_string())
            ]
        );
        for elsewhere in [
            "<https://evil.example/app/hook/deliveries?cursor=1>; rel=\"next\"",
            "<https://api.github.com/user?cursor=1>; rel=\"next\"",
            "<http://api.github.com/app/hook/deliveries?cursor=1>; rel=\"next\"",
        ] {
            assert_eq!(next_page(elsewhere, &current), None, "{elsewhere}");
        }
        assert_eq!(next_page("<x>; rel=\"prev\"", &current), None);
    }
}
