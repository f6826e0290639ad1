//! Anthropic's Messages API with tool use: the request a conversation
//! makes, the answer read strictly, the calls' results as `tool_result`
//! blocks of one user message.

use serde_json::{Value, json};

use super::CallResult;
use super::model::{ModelCall, Reply, Stop, result_text};
use crate::Error;
use crate::tools::specs;

pub(crate) const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// The API version the request and answer shapes here follow.
const VERSION: &str = "2023-06-01";

/// Output tokens per answer: enough for a long patch in one call.
const MAX_TOKENS: u32 = 8192;

pub(crate) fn endpoint(base: &str) -> String {
    format!("{}/v1/messages", base.trim_end_matches('/'))
}

pub(crate) fn headers(key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-api-key", key.to_string()),
        ("anthropic-version", VERSION.to_string()),
    ]
}

pub(crate) fn request(model: &str, system: &str, messages: &[Value]) -> Value {
    let tools: Vec<Value> = specs()
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "description": t.description,
                "input_schema": t.parameters,
            })
        })
        .collect();
    json!({
        "model": model,
        "max_tokens": MAX_TOKENS,
        "system": system,
        "messages": messages,
        "tools": tools,
        "tool_choice": {"type": "auto"},
    })
}

pub(crate) fn opening(prompt: &str) -> Vec<Value> {
    vec![json!({"role": "user", "content": prompt})]
}

fn bad(detail: impl std::fmt::Display) -> Error {
    Error::Model(format!(
        "the anthropic API's answer is not a message: {detail}"
    ))
}

pub(crate) fn parse(response: &Value) -> Result<Reply, Error> {
    if response.get("type").and_then(Value::as_str) != Some("message") {
        return Err(bad("its type is not \"message\""));
    }
    let content = response
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no content"))?;
    let mut text = Vec::new();
    let mut calls = Vec::new();
    for block in content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = block.get("text").and_then(Value::as_str) {
                    text.push(t.to_string());
                }
            }
            Some("tool_use") => {
                let id = block
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| bad("a tool_use block without an id"))?;
                let name = block
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("tool_use {id} has no name")))?;
                let arguments = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(ModelCall {
                    id: id.to_string(),
                    name: name.to_string(),
                    raw_arguments: arguments.to_string(),
                    arguments,
                });
            }
            // Thinking and other blocks go back as they came.
            Some(_) => {}
            None => return Err(bad("a content block without a type")),
        }
    }
    let stop_reason = response
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let stop = if !calls.is_empty() {
        Stop::Calls
    } else {
        match stop_reason {
            "end_turn" | "stop_sequence" | "tool_use" => Stop::Finished,
            "max_tokens" => {
                Stop::Cut("it ran out of output tokens (stop_reason max_tokens)".into())
            }
            "refusal" => Stop::Cut("it refused (stop_reason refusal)".into()),
            other => Stop::Cut(format!("stop_reason {other}")),
        }
    };
    let usage = response.get("usage");
    Ok(Reply {
        // Sent back unchanged: the API wants its own blocks (thinking
        // included) exactly as it gave them.
        message: json!({"role": "assistant", "content": content}),
        calls,
        text: text.join("\n"),
        stop,
        input_tokens: usage
            .and_then(|u| u.get("input_tokens"))
            .and_then(Value::as_u64),
        output_tokens: usage
            .and_then(|u| u.get("output_tokens"))
            .and_then(Value::as_u64),
    })
}

pub(crate) fn results(results: &[(String, CallResult)]) -> Vec<Value> {
    if results.is_empty() {
        return Vec::new();
    }
    let blocks: Vec<Value> = results
        .iter()
        .map(|(id, result)| {
            json!({
                "type": "tool_result",
                "tool_use_id": id,
                "content": result_text(result),
                "is_error": result.outcome != super::CallOutcome::Ok,
            })
        })
        .collect();
    vec![json!({"role": "user", "content": blocks})]
}
