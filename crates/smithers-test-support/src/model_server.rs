//! A local server speaking the OpenAI chat-completions and Anthropic
//! Messages wire formats, for the model drivers' tests (the real APIs
//! cannot be reached offline). It checks every request as the real API
//! would reject it — the key, the headers, the tools, every call of an
//! answer followed by its result under the same id — and answers from a
//! script in the real response shapes: tool calls, a final text, or a
//! given status and body (for failures). Every request is kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// Which API the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    OpenAi,
    Anthropic,
}

impl Api {
    pub fn driver(self) -> &'static str {
        match self {
            Api::OpenAi => "openai",
            Api::Anthropic => "anthropic",
        }
    }

    pub fn key_secret(self) -> &'static str {
        match self {
            Api::OpenAi => "OPENAI_API_KEY",
            Api::Anthropic => "ANTHROPIC_API_KEY",
        }
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Say {
    /// Tool calls: (tool, arguments object).
    Calls(Vec<(&'static str, Value)>),
    /// One call whose arguments are this raw text (OpenAI sends a string).
    RawArguments(&'static str, &'static str),
    /// The final answer.
    Text(&'static str),
    /// Cut off for want of output tokens.
    OutOfTokens,
    /// This status and body, as they are.
    Status(u16, &'static str),
    /// A 2xx body that is not what the API sends.
    Body(&'static str),
    /// Sleeps, then answers the next entry.
    Slow(Duration),
}

const TOOLS: [&str; 11] = [
    "read_file",
    "search_files",
    "list_directory",
    "inspect_repo",
    "get_git_diff",
    "write_file",
    "apply_patch",
    "run_command",
    "run_tests",
    "create_commit",
    "push_branch",
];

struct Inner {
    api: Api,
    key: String,
    script: VecDeque<Say>,
    requests: Vec<Value>,
    /// Calls handed out, in order, with their ids.
    ids: usize,
}

#[derive(Clone)]
pub struct ModelServer {
    pub api: Api,
    pub addr: std::net::SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl ModelServer {
    /// Serves `script` on a loopback port, taking only `key`.
    pub async fn start(api: Api, key: &str, script: Vec<Say>) -> ModelServer {
        let inner = Arc::new(Mutex::new(Inner {
            api,
            key: key.to_string(),
            script: script.into(),
            requests: Vec::new(),
            ids: 0,
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .route("/v1/messages", post(answer))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        ModelServer { api, addr, inner }
    }

    /// What a workflow's `base_url` names.
    pub fn base_url(&self) -> String {
        match self.api {
            Api::OpenAi => format!("http://{}/v1", self.addr),
            Api::Anthropic => format!("http://{}", self.addr),
        }
    }

    /// Every request body, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Scripted answers not given yet.
    pub fn left(&self) -> usize {
        self.inner.lock().unwrap().script.len()
    }
}

fn error(api: Api, status: StatusCode, kind: &str, message: &str) -> Response {
    let body = match api {
        Api::OpenAi => {
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
        }
        Api::Anthropic => json!({"type": "error", "error": {"type": kind, "message": message}}),
    };
    (status, axum::Json(body)).into_response()
}

async fn answer(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let api = inner.lock().unwrap().api;
    let path_ok = match api {
        Api::OpenAi => uri.path() == "/v1/chat/completions",
        Api::Anthropic => uri.path() == "/v1/messages",
    };
    if !path_ok {
        return error(
            api,
            StatusCode::NOT_FOUND,
            "not_found_error",
            "no such endpoint",
        );
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let key = inner.lock().unwrap().key.clone();
    let authorized = match api {
        Api::OpenAi => header("authorization") == format!("Bearer {key}"),
        Api::Anthropic => header("x-api-key") == key,
    };
    if !authorized {
        return error(
            api,
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "Incorrect API key provided",
        );
    }
    if api == Api::Anthropic && header("anthropic-version").is_empty() {
        return error(
            api,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    let request: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                api,
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &e.to_string(),
            );
        }
    };
    inner.lock().unwrap().requests.push(request.clone());
    let problem = match api {
        Api::OpenAi => check_openai(&request),
        Api::Anthropic => check_anthropic(&request),
    };
    if let Err(problem) = problem {
        return error(
            api,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &problem,
        );
    }
    loop {
        let say = inner.lock().unwrap().script.pop_front();
        let Some(say) = say else {
            return error(
                api,
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "the test server's script is used up",
            );
        };
        if let Say::Slow(d) = say {
            tokio::time::sleep(d).await;
            continue;
        }
        let model = request["model"].as_str().unwrap_or_default().to_string();
        let mut inner = inner.lock().unwrap();
        return respond(api, &model, say, &mut inner.ids);
    }
}

/// A call handed out: (id, tool, arguments).
type Handed = (String, String, Value);

fn respond(api: Api, model: &str, say: Say, ids: &mut usize) -> Response {
    let mut next_id = |prefix: &str| {
        *ids += 1;
        format!("{prefix}{:024}", *ids)
    };
    let (calls, text, cut): (Vec<Handed>, Option<&str>, bool) = match say {
        Say::Status(code, body) => {
            return (
                StatusCode::from_u16(code).unwrap(),
                [("content-type", "application/json"), ("retry-after", "0")],
                body.to_string(),
            )
                .into_response();
        }
        Say::Body(body) => return (StatusCode::OK, body.to_string()).into_response(),
        Say::Calls(calls) => (
            calls
                .into_iter()
                .map(|(tool, args)| {
                    let id = next_id(if api == Api::OpenAi {
                        "call_"
                    } else {
                        "toolu_"
                    });
                    (id, tool.to_string(), args)
                })
                .collect(),
            None,
            false,
        ),
        Say::RawArguments(tool, raw) => (
            vec![(
                next_id("call_"),
                tool.to_string(),
                Value::String(raw.into()),
            )],
            None,
            false,
        ),
        Say::Text(text) => (Vec::new(), Some(text), false),
        Say::OutOfTokens => (Vec::new(), Some("I was about to"), true),
        Say::Slow(_) => unreachable!(),
    };
    let body = match api {
        Api::OpenAi => {
            let tool_calls: Vec<Value> = calls
                .iter()
                .map(|(id, tool, args)| {
                    let arguments = match args {
                        Value::String(raw) => raw.clone(),
                        other => other.to_string(),
                    };
                    json!({"id": id, "type": "function", "function": {"name": tool, "arguments": arguments}})
                })
                .collect();
            let finish = if cut {
                "length"
            } else if calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            };
            let mut message =
                json!({"role": "assistant", "content": text, "refusal": null, "annotations": []});
            if !tool_calls.is_empty() {
                message["tool_calls"] = Value::Array(tool_calls);
            }
            json!({
                "id": next_id("chatcmpl-"),
                "object": "chat.completion",
                "created": 1_763_800_000,
                "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
                "usage": {"prompt_tokens": 812, "completion_tokens": 41, "total_tokens": 853},
                "system_fingerprint": "fp_local",
            })
        }
        Api::Anthropic => {
            let mut content: Vec<Value> = Vec::new();
            if let Some(text) = text {
                content.push(json!({"type": "text", "text": text}));
            }
            for (id, tool, args) in &calls {
                content.push(json!({"type": "tool_use", "id": id, "name": tool, "input": args}));
            }
            let stop = if cut {
                "max_tokens"
            } else if calls.is_empty() {
                "end_turn"
            } else {
                "tool_use"
            };
            json!({
                "id": next_id("msg_"),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop,
                "stop_sequence": null,
                "usage": {"input_tokens": 812, "output_tokens": 41},
            })
        }
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn check_tools(tools: &Value, schema_key: &str, nested: bool) -> Result<(), String> {
    let tools = tools.as_array().ok_or("tools must be an array")?;
    let mut names = Vec::new();
    for tool in tools {
        let def = if nested {
            if tool["type"] != "function" {
                return Err("every tool must be of type function".into());
            }
            &tool["function"]
        } else {
            tool
        };
        let name = def["name"].as_str().ok_or("a tool without a name")?;
        if def[schema_key]["type"] != "object" {
            return Err(format!(
                "tool {name}: {schema_key} must be an object schema"
            ));
        }
        names.push(name.to_string());
    }
    if names != TOOLS {
        return Err(format!("unexpected tools {names:?}"));
    }
    Ok(())
}

/// What OpenAI refuses: a bad shape, tools without schemas, an assistant
/// message with tool calls not followed by one `tool` message per call.
fn check_openai(request: &Value) -> Result<(), String> {
    request["model"].as_str().ok_or("model is required")?;
    check_tools(&request["tools"], "parameters", true)?;
    let messages = request["messages"]
        .as_array()
        .ok_or("messages is required")?;
    if messages.first().map(|m| &m["role"]) != Some(&json!("system")) {
        return Err("the first message should be the system prompt".into());
    }
    let mut i = 1;
    while i < messages.len() {
        let m = &messages[i];
        match m["role"].as_str() {
            Some("user") => {}
            Some("assistant") => {
                let calls = m["tool_calls"].as_array().cloned().unwrap_or_default();
                for (k, call) in calls.iter().enumerate() {
                    let answer = messages.get(i + 1 + k).ok_or_else(|| {
                        format!(
                            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                            call["id"]
                        )
                    })?;
                    if answer["role"] != "tool" || answer["tool_call_id"] != call["id"] {
                        return Err(format!("tool_call_id {} has no response", call["id"]));
                    }
                    if !answer["content"].is_string() {
                        return Err("a tool message's content must be a string".into());
                    }
                    if !call["function"]["arguments"].is_string() {
                        return Err("function.arguments must be a string".into());
                    }
                }
                i += calls.len();
            }
            Some("tool") => return Err("a tool message without a preceding tool call".into()),
            other => return Err(format!("unknown role {other:?}")),
        }
        i += 1;
    }
    match messages.last().and_then(|m| m["role"].as_str()) {
        Some("user" | "tool") => Ok(()),
        other => Err(format!("the last message is {other:?}")),
    }
}

/// What Anthropic refuses: no max_tokens, roles not alternating from the
/// user, tool_use blocks not answered by tool_result blocks in the very
/// next user message.
fn check_anthropic(request: &Value) -> Result<(), String> {
    request["model"].as_str().ok_or("model: Field required")?;
    request["max_tokens"]
        .as_u64()
        .ok_or("max_tokens: Field required")?;
    check_tools(&request["tools"], "input_schema", false)?;
    let messages = request["messages"]
        .as_array()
        .ok_or("messages: Field required")?;
    for (i, m) in messages.iter().enumerate() {
        let expected = if i % 2 == 0 { "user" } else { "assistant" };
        if m["role"] != expected {
            return Err(format!("messages.{i}: roles must alternate from user"));
        }
        if expected == "assistant" {
            let uses: Vec<&Value> = m["content"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .filter(|b| b["type"] == "tool_use")
                        .map(|b| &b["id"])
                        .collect()
                })
                .unwrap_or_default();
            if uses.is_empty() {
                continue;
            }
            let next = messages.get(i + 1).ok_or_else(|| {
                format!("messages.{i}: tool_use ids were found without tool_result blocks immediately after")
            })?;
            let results: Vec<&Value> = next["content"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .filter(|b| b["type"] == "tool_result" && b["content"].is_string())
                        .map(|b| &b["tool_use_id"])
                        .collect()
                })
                .unwrap_or_default();
            if results != uses {
                return Err(format!(
                    "messages.{}: tool_result blocks {results:?} do not answer tool_use ids {uses:?}",
                    i + 1
                ));
            }
        }
    }
    match messages.last() {
        Some(m) if m["role"] == "user" => Ok(()),
        _ => Err("the last message must be the user's".into()),
    }
}
