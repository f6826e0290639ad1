//! One JSON POST to a model's API, as a step can afford it: never past the
//! step's deadline, retried on what is worth retrying (rate limits,
//! overload, a dropped connection) with the server's `Retry-After`
//! honoured, the answer read up to a bound, and every failure said in
//! words a user can act on.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::Error;

/// Attempts per request, the first included.
const ATTEMPTS: u32 = 4;
/// The longest one request may take, whatever time the step has left.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest wait between attempts (a longer `Retry-After` is cut).
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// An answer larger than this is refused rather than held in memory.
const MAX_BODY: usize = 16 << 20;

/// Statuses worth another attempt: timeout, conflict, rate limit, the
/// server's own failures, and Anthropic's "overloaded".
fn retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 500 | 502 | 503 | 504 | 529)
}

#[derive(Debug, Clone)]
pub(crate) struct Client {
    inner: reqwest::Client,
    /// Says whose API in errors (`openai`, `anthropic`).
    api: &'static str,
}

impl Client {
    pub(crate) fn new(api: &'static str) -> Result<Client, Error> {
        let inner = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("smithers/", env!("CARGO_PKG_VERSION")))
            // A key is never sent on to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Model(format!("cannot set up an HTTP client: {e}")))?;
        Ok(Client { inner, api })
    }

    /// POSTs `body` to `url` and reads the JSON answer of a 2xx.
    pub(crate) async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: &Value,
        deadline: Instant,
    ) -> Result<Value, Error> {
        let api = self.api;
        let body = body.to_string();
        let mut attempt = 1;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Model(format!(
                    "the {api} API did not answer before the step's deadline"
                )));
            }
            let mut request = self
                .inner
                .post(url)
                .timeout(left.min(REQUEST_TIMEOUT))
                .header("content-type", "application/json")
                .body(body.clone());
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            let (failure, wait) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let wait = retry_after(&response);
                    let answer = read(response).await;
                    if status.is_success() {
                        let bytes = answer.map_err(|e| {
                            Error::Model(format!("the {api} API's answer could not be read: {e}"))
                        })?;
                        return serde_json::from_slice(&bytes).map_err(|e| {
                            Error::Model(format!(
                                "the {api} API answered {status} with something that is not JSON ({e}): {}",
                                excerpt(&bytes)
                            ))
                        });
                    }
                    let said = answer.map(|b| said(&b)).unwrap_or_else(|e| e);
                    let code = status.as_u16();
                    if code == 401 || code == 403 {
                        return Err(Error::Model(format!(
                            "the {api} API refused the key (HTTP {code}): {said}"
                        )));
                    }
                    if !retryable(code) {
                        return Err(Error::Model(format!(
                            "the {api} API refused the request (HTTP {code}): {said}"
                        )));
                    }
                    (
                        Error::Model(format!("the {api} API answered HTTP {code}: {said}")),
                        wait,
                    )
                }
                Err(e) if e.is_timeout() => (
                    Error::Model(format!(
                        "the {api} API did not answer in time ({})",
                        crate::run::humanize(left.min(REQUEST_TIMEOUT))
                    )),
                    None,
                ),
                Err(e) if e.is_connect() || e.is_request() => (
                    Error::Model(format!(
                        "cannot reach the {api} API at {url}: {}",
                        chain(&e)
                    )),
                    None,
                ),
                Err(e) => {
                    return Err(Error::Model(format!(
                        "the {api} API request failed: {}",
                        chain(&e)
                    )));
                }
            };
            if attempt >= ATTEMPTS {
                return Err(Error::Model(format!(
                    "{failure} (gave up after {ATTEMPTS} attempts)"
                )));
            }
            let backoff = wait
                .unwrap_or(Duration::from_millis(500 << attempt))
                .min(MAX_BACKOFF);
            if Instant::now() + backoff >= deadline {
                return Err(failure);
            }
            tokio::time::sleep(backoff).await;
            attempt += 1;
        }
    }
}

/// `Retry-After` in seconds, or the `retry-after-ms` some APIs send.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    header("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| header("retry-after").map(Duration::from_secs_f64))
}

/// The body, up to [`MAX_BODY`].
async fn read(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| chain(&e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("it is larger than {} MiB", MAX_BODY >> 20));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What an error body says: its `error.message` (both APIs put it there),
/// or the start of the text.
fn said(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| excerpt(body))
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None if text.is_empty() => "(empty body)".into(),
        None => text.to_string(),
    }
}

/// An error with its causes (reqwest's own message alone is vague).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
