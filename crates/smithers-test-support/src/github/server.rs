//! One request's way through the stand-in: matched to its operation in
//! GitHub's description (none: a violation and 404), checked against it,
//! authenticated, rate-limited, failed when a test scripted a fault,
//! answered by the operation's implementation (none: a violation and
//! 404), and the answer checked against the description too. Every
//! answer carries `x-github-request-id` and the `x-ratelimit-*` headers.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use super::auth::{self, Principal, RATE_LIMIT, RateHeaders, Refusal};
use super::openapi::{self, API_VERSION, Operation};
use super::state::{AuthKind, FaultKind, Recorded, State};
use super::{apps, git_http, members, pulls, repos, stacks, webhooks};

/// An answer of an implementation, before the common headers.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
    /// A primary rate limit: `x-ratelimit-remaining: 0` whatever the
    /// window says.
    pub exhausted: bool,
}

impl Answer {
    pub fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            body: Some(body),
            headers: Vec::new(),
            exhausted: false,
        }
    }

    /// GitHub's error body (`basic-error`).
    pub fn error(status: u16, message: &str) -> Answer {
        Answer::json(
            status,
            json!({
                "message": message,
                "documentation_url": "https://docs.github.com/rest",
                "status": status.to_string(),
            }),
        )
    }

    /// GitHub's 422 (`validation-error`), with its `errors`.
    pub fn invalid(message: &str, errors: Value) -> Answer {
        Answer::json(
            422,
            json!({
                "message": message,
                "errors": errors,
                "documentation_url": "https://docs.github.com/rest",
                "status": "422",
            }),
        )
    }

    pub fn not_found() -> Answer {
        Answer::error(404, "Not Found")
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// This answer as page `page` of `last` of `path` at `base`, with the
    /// `Link` header GitHub sends (RFC 8288: `next` and `last`), none on
    /// the last page.
    pub fn page_of(
        self,
        base: &str,
        path: &str,
        per_page: usize,
        page: usize,
        last: usize,
    ) -> Answer {
        if page >= last {
            return self;
        }
        let url = |p: usize| format!("<{base}{path}?per_page={per_page}&page={p}>");
        self.header(
            "link",
            format!(
                "{}; rel=\"next\", {}; rel=\"last\"",
                url(page + 1),
                url(last)
            ),
        )
    }
}

impl From<Refusal> for Answer {
    fn from(r: Refusal) -> Answer {
        Answer::error(r.status, &r.message)
    }
}

/// A request as an implementation sees it.
pub(crate) struct Call<'a> {
    pub op: &'a Operation,
    pub query: &'a [(String, String)],
    pub body: Option<&'a Value>,
    pub principal: &'a Principal,
    pub headers: &'a HeaderMap,
}

impl Call<'_> {
    /// A path parameter (the router matched it, so it is there).
    pub fn param(&self, name: &str) -> &str {
        self.op.params.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `per_page` (default 30, at most 100) and `page` (from 1).
    pub fn page(&self) -> (usize, usize) {
        let per_page = self
            .query("per_page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(30usize)
            .clamp(1, 100);
        let page = self
            .query("page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1usize)
            .max(1);
        (per_page, page)
    }

    pub fn field(&self, name: &str) -> Option<&Value> {
        self.body.and_then(|b| b.get(name))
    }

    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(Value::as_str)
    }
}

type Implementation = fn(&mut State, &Call) -> Answer;

/// The operations the stand-in answers, by `operationId`.
fn implementation(id: &str) -> Option<Implementation> {
    Some(match id {
        "apps/get-authenticated" => apps::get_authenticated,
        "apps/list-installations" => apps::list_installations,
        "apps/get-installation" => apps::get_installation,
        "apps/create-installation-access-token" => apps::create_access_token,
        "apps/list-repos-accessible-to-installation" => apps::list_installation_repositories,
        "apps/list-webhook-deliveries" => webhooks::list_deliveries,
        "apps/get-webhook-delivery" => webhooks::get_delivery,
        "apps/redeliver-webhook-delivery" => webhooks::redeliver,
        "repos/get" => repos::get,
        "repos/get-branch" => repos::get_branch,
        "repos/create-commit-status" => pulls::create_status,
        "repos/list-commit-statuses-for-ref" => pulls::list_statuses,
        "pulls/create" => pulls::create,
        "pulls/list" => pulls::list,
        "pulls/get" => pulls::get,
        "pulls/update" => pulls::update,
        "issues/create-comment" => pulls::create_comment,
        "pull-request-stacks/create" => stacks::create,
        "orgs/list-members" => members::list_members,
        "teams/list" => members::list_teams,
        "teams/list-members-in-org" => members::list_team_members,
        _ => return None,
    })
}

/// Every request the stand-in's listener takes.
pub(crate) async fn handle(shared: Arc<Shared>, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.to_string();
    let raw_path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let shown = match parts.uri.query() {
        Some(q) => format!("{raw_path}?{q}"),
        None => raw_path.clone(),
    };
    // A GitHub Enterprise Server serves the API under /api/v3.
    let path = raw_path
        .strip_prefix("/api/v3")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(&raw_path)
        .to_string();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "too large").into_response();
    };
    if git_http::is_git(&path) {
        return git_http::serve(shared, &method, &path, &raw_query, &parts.headers, bytes).await;
    }
    let response = api(
        &shared,
        &method,
        &path,
        &shown,
        &raw_query,
        &parts.headers,
        &bytes,
    );
    webhooks::drain(shared);
    response
}

/// A REST API request, answered under the state's lock (nothing in it
/// waits on anything but git, on the repositories' own directories).
fn api(
    shared: &Shared,
    method: &str,
    path: &str,
    shown: &str,
    raw_query: &str,
    headers: &HeaderMap,
    bytes: &Bytes,
) -> Response {
    let description = openapi::description();
    let query = openapi::query_pairs(raw_query);
    let (kind, _) = auth::credentials(headers);
    let mut state = shared.lock();
    let violation = |state: &mut State, what: String| {
        state.violations.push(format!("{method} {shown}: {what}"));
    };
    let op = description.find(method, path);
    let body: Option<Value> = if bytes.is_empty() {
        None
    } else {
        match serde_json::from_slice(bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                violation(&mut state, format!("the body is not JSON: {e}"));
                let answer = Answer::error(400, "Problems parsing JSON");
                return finish(&mut state, method, shown, None, kind, None, answer);
            }
        }
    };
    let Some(op) = op else {
        violation(
            &mut state,
            "GitHub's OpenAPI description has no such operation".into(),
        );
        return finish(
            &mut state,
            method,
            shown,
            None,
            kind,
            None,
            Answer::not_found(),
        );
    };
    // GitHub refuses a request without a User-Agent.
    if headers.get(axum::http::header::USER_AGENT).is_none() {
        violation(&mut state, "no User-Agent header".into());
        let answer = Answer::error(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.",
        );
        return finish(&mut state, method, shown, Some(&op), kind, None, answer);
    }
    if let Some(version) = headers
        .get("x-github-api-version")
        .and_then(|v| v.to_str().ok())
        && version != API_VERSION
    {
        violation(&mut state, format!("X-GitHub-Api-Version {version}"));
        let answer = Answer::error(400, &format!("API version {version} is not supported."));
        return finish(&mut state, method, shown, Some(&op), kind, None, answer);
    }
    let wrong = description.check_request(&op, &query, body.as_ref());
    let body_wrong = wrong.iter().any(|w| {
        w.starts_with("request body")
            || w.contains("body is required")
            || w.contains("no JSON body")
    });
    for w in wrong {
        violation(&mut state, w);
    }
    let principal = match auth::authenticate(&state, headers) {
        Ok(p) => p,
        Err(refusal) => {
            return finish(
                &mut state,
                method,
                shown,
                Some(&op),
                kind,
                None,
                refusal.into(),
            );
        }
    };
    let window = match &principal {
        Principal::App => "app".to_string(),
        Principal::Installation { installation, .. } => format!("installation:{installation}"),
        Principal::Anonymous => "anonymous".to_string(),
    };
    let limit = match principal {
        Principal::Anonymous => 60,
        _ => RATE_LIMIT,
    };
    let rate = auth::spend(&mut state, &window, limit, false);
    if rate.remaining == 0 {
        let answer = primary_limit(403, &principal);
        return finish(
            &mut state,
            method,
            shown,
            Some(&op),
            kind,
            Some((window, limit)),
            answer,
        );
    }
    let fault = take_fault(&mut state, method, path, &op.template);
    let answer = match fault {
        Some(FaultKind::Status(status)) => Answer::error(status, reason(status)),
        Some(FaultKind::Secondary { retry_after }) => Answer::error(
            403,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
        )
        .header("retry-after", retry_after.to_string()),
        Some(FaultKind::Primary { status }) => {
            let mut answer = primary_limit(status, &principal);
            answer.exhausted = true;
            answer
        }
        Some(FaultKind::AfterEffect(_)) | None => {
            let answer = if body_wrong {
                Answer::error(422, "Invalid request.")
            } else {
                match implementation(&op.id) {
                    Some(f) => {
                        let call = Call {
                            op: &op,
                            query: &query,
                            body: body.as_ref(),
                            principal: &principal,
                            headers,
                        };
                        f(&mut state, &call)
                    }
                    None => {
                        violation(
                            &mut state,
                            format!("{} ({}) is not one the stand-in implements", op.id, op.template),
                        );
                        Answer::not_found()
                    }
                }
            };
            match fault {
                Some(FaultKind::AfterEffect(status)) => Answer::error(status, reason(status)),
                _ => answer,
            }
        }
    };
    finish(
        &mut state,
        method,
        shown,
        Some(&op),
        kind,
        Some((window, limit)),
        answer,
    )
}

/// GitHub's answer when a principal's hourly requests are spent.
fn primary_limit(status: u16, principal: &Principal) -> Answer {
    let who = match principal {
        Principal::Installation { installation, .. } => format!("installation ID {installation}"),
        Principal::App => "the app".into(),
        Principal::Anonymous => "127.0.0.1".into(),
    };
    Answer::error(
        status,
        &format!(
            "API rate limit exceeded for {who}. If you reach out to GitHub Support for help, please include the request ID."
        ),
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        500 => "Server Error",
        502 => "Server Error",
        503 => "Service Unavailable",
        504 => {
            "We couldn't respond to your request in time. Sorry about that. Please try resubmitting your request and contact us if the problem persists."
        }
        404 => "Not Found",
        401 => "Bad credentials",
        403 => "Forbidden",
        409 => "Conflict",
        422 => "Validation Failed",
        _ => "Error",
    }
}

/// The first scripted fault for this request, spent once.
fn take_fault(state: &mut State, method: &str, path: &str, template: &str) -> Option<FaultKind> {
    let i = state.faults.iter().position(|f| {
        (f.method == "*" || f.method.eq_ignore_ascii_case(method))
            && (f.path == template || path.starts_with(&f.path))
    })?;
    let fault = &mut state.faults[i];
    let kind = fault.kind;
    fault.times -= 1;
    if fault.times == 0 {
        state.faults.remove(i);
    }
    Some(kind)
}

/// The common headers, the answer checked against the description, the
/// request recorded.
fn finish(
    state: &mut State,
    method: &str,
    shown: &str,
    op: Option<&Operation>,
    kind: AuthKind,
    window: Option<(String, u64)>,
    answer: Answer,
) -> Response {
    if let Some(op) = op {
        for w in openapi::description().check_response(op, answer.status, answer.body.as_ref()) {
            state
                .violations
                .push(format!("{method} {shown}: answer: {w}"));
        }
    }
    let (window, limit) = window.unwrap_or_else(|| ("anonymous".into(), 60));
    // A 304 does not count against the rate limit (GitHub Docs:
    // "Best practices for using the REST API", conditional requests).
    let mut rate = auth::spend(state, &window, limit, answer.status != 304);
    if answer.exhausted || (answer.status == 403 || answer.status == 429) && rate.remaining == 0 {
        rate = RateHeaders {
            remaining: 0,
            used: rate.limit,
            ..rate
        };
    }
    state.requests.push(Recorded {
        method: method.into(),
        path: shown.into(),
        operation: op.map(|o| o.template.clone()),
        status: answer.status,
        auth: kind,
    });
    respond(answer, &rate)
}

fn respond(answer: Answer, rate: &RateHeaders) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match &answer.body {
        Some(body) if answer.status != 304 => (
            status,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )],
            body.to_string(),
        )
            .into_response(),
        _ => status.into_response(),
    };
    let headers = response.headers_mut();
    let mut put = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(n, v);
        }
    };
    put("x-github-request-id", &request_id());
    put("x-github-api-version-selected", API_VERSION);
    put("x-github-media-type", "github.v3; format=json");
    put("x-ratelimit-limit", &rate.limit.to_string());
    put("x-ratelimit-remaining", &rate.remaining.to_string());
    put("x-ratelimit-used", &rate.used.to_string());
    put("x-ratelimit-reset", &rate.reset.to_string());
    put("x-ratelimit-resource", "core");
    for (k, v) in &answer.headers {
        put(k, v);
    }
    response
}

/// An id in the shape of GitHub's (`CBF4:3F7A:1C2D3E4:1D2E3F5:65A1B2C3`).
pub(crate) fn request_id() -> String {
    let mut b = [0u8; 14];
    auth::random_bytes(&mut b);
    format!(
        "{:02X}{:02X}:{:02X}{:02X}:{:02X}{:02X}{:02X}:{:02X}{:02X}{:02X}:{:02X}{:02X}{:02X}{:02X}",
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13]
    )
}
