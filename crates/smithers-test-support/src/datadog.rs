//! A local stand-in for Datadog's Logs intake API v2 (`POST
//! /api/v2/logs`; the real one cannot be reached offline). It holds every
//! request to what Datadog documents
//! (<https://docs.datadoghq.com/api/latest/logs/#send-logs>) and its
//! published OpenAPI description says: the `DD-API-KEY` header (403
//! otherwise), a JSON body gzip- or deflate-encoded or not, at most 5 MB
//! before compression (413), at most 1,000 entries (400), each entry an
//! `HTTPLogItem` — `message` a string, the reserved `ddsource`, `ddtags`,
//! `hostname`, `service` strings, any other attribute a string — checked
//! with JSON Schema; entries dated more than 18 hours ago are accepted and
//! dropped, as the intake does. Answers can be scripted (a status, or a
//! delay first) to play outages.

use std::collections::VecDeque;
use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// One scripted answer, taken by the next request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Answer this status (with Datadog's error body) and accept nothing.
    Status(u16),
    /// Wait this long, then handle the request as usual.
    Delay(Duration),
}

struct Intake {
    key: String,
    max_payload: usize,
    script: VecDeque<Answer>,
    /// Every answer given, by status.
    statuses: Vec<u16>,
    accepted: Vec<Value>,
    dropped_old: usize,
}

/// The running stand-in.
pub struct DatadogIntake {
    url: String,
    state: Arc<Mutex<Intake>>,
}

/// `HTTPLogItem` of Datadog's API v2 OpenAPI description, as JSON Schema.
fn item_schema() -> Value {
    json!({
        "type": "object",
        "required": ["message"],
        "properties": {
            "ddsource": {"type": "string"},
            "ddtags": {"type": "string"},
            "hostname": {"type": "string"},
            "message": {"type": "string"},
            "service": {"type": "string"}
        },
        "additionalProperties": {"type": "string"}
    })
}

fn error(status: u16, detail: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(
            json!({"errors": [{"status": status.to_string(), "title": detail, "detail": detail}]}),
        ),
    )
        .into_response()
}

async fn logs(
    State(state): State<Arc<Mutex<Intake>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (answer, key, max_payload) = {
        let mut s = state.lock().unwrap();
        (s.script.pop_front(), s.key.clone(), s.max_payload)
    };
    let reply = handle(answer, &key, max_payload, &headers, &body, &state).await;
    state.lock().unwrap().statuses.push(reply.status().as_u16());
    reply
}

async fn handle(
    answer: Option<Answer>,
    key: &str,
    max_payload: usize,
    headers: &HeaderMap,
    body: &[u8],
    state: &Arc<Mutex<Intake>>,
) -> Response {
    match answer {
        Some(Answer::Status(status)) => return error(status, "scripted"),
        Some(Answer::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if header("dd-api-key") != key {
        return error(403, "Forbidden");
    }
    if !header("content-type").starts_with("application/json") {
        return error(400, "Content-Type must be application/json");
    }
    let mut plain = Vec::new();
    let decoded = match header("content-encoding") {
        "gzip" => flate2::read::GzDecoder::new(body)
            .take(max_payload as u64 + 1)
            .read_to_end(&mut plain),
        "deflate" => flate2::read::ZlibDecoder::new(body)
            .take(max_payload as u64 + 1)
            .read_to_end(&mut plain),
        "" | "identity" => {
            plain = body.to_vec();
            Ok(plain.len())
        }
        other => return error(400, &format!("unknown Content-Encoding {other}")),
    };
    if decoded.is_err() {
        return error(400, "the body does not decompress");
    }
    if plain.len() > max_payload {
        return error(413, "Payload too large");
    }
    let Ok(parsed) = serde_json::from_slice::<Value>(&plain) else {
        return error(400, "the body is not JSON");
    };
    let items = match parsed {
        Value::Array(items) => items,
        item @ Value::Object(_) => vec![item],
        _ => return error(400, "the body is neither a log nor an array of logs"),
    };
    if items.len() > 1000 {
        return error(400, "more than 1000 logs in one request");
    }
    let validator = jsonschema::validator_for(&item_schema()).unwrap();
    for item in &items {
        if let Some(e) = validator.iter_errors(item).next() {
            return error(400, &format!("not an HTTPLogItem: {e}"));
        }
    }
    let oldest = SystemTime::now() - Duration::from_secs(18 * 3600);
    let mut s = state.lock().unwrap();
    for item in items {
        let old = item["date"]
            .as_str()
            .and_then(|d| humantime::parse_rfc3339(d).ok())
            .is_some_and(|t| t < oldest);
        if old {
            s.dropped_old += 1;
        } else {
            s.accepted.push(item);
        }
    }
    (StatusCode::ACCEPTED, axum::Json(json!({}))).into_response()
}

impl DatadogIntake {
    /// Listens on loopback, taking `key` as the only valid API key.
    pub async fn start(key: &str) -> DatadogIntake {
        let state = Arc::new(Mutex::new(Intake {
            key: key.to_string(),
            max_payload: 5 * 1024 * 1024,
            script: VecDeque::new(),
            statuses: Vec::new(),
            accepted: Vec::new(),
            dropped_old: 0,
        }));
        let app = Router::new()
            .route("/api/v2/logs", post(logs))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v2/logs", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        DatadogIntake { url, state }
    }

    /// The intake's URL (`…/api/v2/logs`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next requests get these answers, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    /// Takes only `key` from now on.
    pub fn set_key(&self, key: &str) {
        self.state.lock().unwrap().key = key.to_string();
    }

    /// Refuses bodies over `bytes` (before compression) with 413.
    pub fn set_max_payload(&self, bytes: usize) {
        self.state.lock().unwrap().max_payload = bytes;
    }

    /// Every entry accepted (and not dropped as too old), in arrival order.
    pub fn accepted(&self) -> Vec<Value> {
        self.state.lock().unwrap().accepted.clone()
    }

    /// The sealed events the accepted entries carry, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.accepted()
            .iter()
            .map(|e| serde_json::from_str(e["message"].as_str().unwrap()).unwrap())
            .collect()
    }

    /// Every status answered, in order.
    pub fn statuses(&self) -> Vec<u16> {
        self.state.lock().unwrap().statuses.clone()
    }

    /// Entries accepted but dropped for being older than 18 hours.
    pub fn dropped_old(&self) -> usize {
        self.state.lock().unwrap().dropped_old
    }
}
