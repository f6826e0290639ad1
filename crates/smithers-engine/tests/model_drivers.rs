#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! The `openai` and `anthropic` drivers against a local server speaking
//! each API's wire format: the conversation (several calls in one answer,
//! every result sent back under its call's id, refusals marked), replay of
//! recorded answers without asking again, and every way an API fails —
//! a wrong key, a bad request, retried overload, an answer that is not
//! JSON or not the API's shape, a model cut off, no answer in time, no
//! server at all.

use std::time::Duration;

use serde_json::{Value, json};
use smithers_engine::Error;
use smithers_engine::agent::{CallOutcome, CallResult, Driver, Model, ModelSetup, Turn, Wire};
use smithers_test_support::model_server::{Api, ModelServer, Say};
use zeroize::Zeroizing;

const KEY: &str = "sk-test-5c1f00d";

fn wire(api: Api) -> Wire {
    match api {
        Api::OpenAi => Wire::OpenAi,
        Api::Anthropic => Wire::Anthropic,
    }
}

fn model(server: &ModelServer, key: &str, replay: Vec<Value>, time: Duration) -> Model {
    Model::new(ModelSetup {
        wire: wire(server.api),
        model: "test-model-1".into(),
        base_url: Some(server.base_url()),
        key: Zeroizing::new(key.to_string()),
        role: "implementer".into(),
        prompt: "Fix the answer".into(),
        replay,
        time,
    })
    .unwrap()
}

fn result(outcome: CallOutcome, text: &str) -> CallResult {
    CallResult {
        outcome,
        text: text.into(),
    }
}

fn call(tool: &str, arguments: Value) -> Turn {
    Turn::Call {
        tool: tool.into(),
        arguments,
    }
}

/// The results the request sent back, as (id, text) in order.
fn results_sent(api: Api, request: &Value) -> Vec<(String, String)> {
    let messages = request["messages"].as_array().unwrap();
    match api {
        Api::OpenAi => messages
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| {
                (
                    m["tool_call_id"].as_str().unwrap().to_string(),
                    m["content"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
        Api::Anthropic => messages
            .iter()
            .filter_map(|m| m["content"].as_array())
            .flatten()
            .filter(|b| b["type"] == "tool_result")
            .map(|b| {
                (
                    b["tool_use_id"].as_str().unwrap().to_string(),
                    b["content"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
    }
}

async fn a_conversation_goes_through_every_call_of_an_answer(api: Api) {
    let server = ModelServer::start(
        api,
        KEY,
        vec![
            Say::Calls(vec![
                ("read_file", json!({"path": "src/answer.txt"})),
                ("push_branch", json!({"branch": "main"})),
            ]),
            Say::Calls(vec![("run_tests", json!({"command": "sh test.sh"}))]),
            Say::Text("Fixed the answer; tests pass."),
        ],
    )
    .await;
    let mut m = model(&server, KEY, Vec::new(), Duration::from_secs(30));
    assert_eq!(
        m.next(None).await.unwrap(),
        call("read_file", json!({"path": "src/answer.txt"}))
    );
    let first = m.take_answer().unwrap();
    assert_eq!((first.turn, first.calls), (0, 2));
    assert_eq!(first.input_tokens, Some(812));
    // The second call of the same answer needs no request.
    assert_eq!(
        m.next(Some(&result(CallOutcome::Ok, "41\n")))
            .await
            .unwrap(),
        call("push_branch", json!({"branch": "main"}))
    );
    assert!(m.take_answer().is_none());
    assert_eq!(server.requests().len(), 1);
    assert_eq!(
        m.next(Some(&result(
            CallOutcome::Denied,
            "rule 3 denies push_branch main"
        )))
        .await
        .unwrap(),
        call("run_tests", json!({"command": "sh test.sh"}))
    );
    assert_eq!(m.take_answer().unwrap().turn, 1);
    assert_eq!(
        m.next(Some(&result(CallOutcome::Failed, "wrong answer")))
            .await
            .unwrap(),
        Turn::Done {
            ok: true,
            summary: "Fixed the answer; tests pass.".into()
        }
    );
    assert_eq!(m.take_answer().unwrap().calls, 0);
    assert_eq!(server.left(), 0);

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0]["model"], "test-model-1");
    // Both results of the first answer went back together, under their
    // calls' ids, the refusal marked as one.
    let sent = results_sent(api, &requests[1]);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].1, "41\n");
    assert_eq!(
        sent[1].1,
        "[denied by policy] rule 3 denies push_branch main"
    );
    assert_ne!(sent[0].0, sent[1].0);
    let sent = results_sent(api, &requests[2]);
    assert_eq!(sent.last().unwrap().1, "[failed] wrong answer");
    // The prompt and the role reached the model.
    let text = requests[0].to_string();
    assert!(text.contains("Fix the answer") && text.contains("implementer agent"));
}

#[tokio::test]
async fn openai_conversation() {
    a_conversation_goes_through_every_call_of_an_answer(Api::OpenAi).await;
}

#[tokio::test]
async fn anthropic_conversation() {
    a_conversation_goes_through_every_call_of_an_answer(Api::Anthropic).await;
}

/// A resumed run's recorded answers come back without a request, and the
/// next request carries them as the model gave them.
async fn recorded_answers_are_replayed_not_asked_again(api: Api) {
    let first = ModelServer::start(
        api,
        KEY,
        vec![Say::Calls(vec![("list_directory", json!({}))])],
    )
    .await;
    let mut m = model(&first, KEY, Vec::new(), Duration::from_secs(30));
    m.next(None).await.unwrap();
    let recorded = m.take_answer().unwrap().response;

    let second = ModelServer::start(api, KEY, vec![Say::Text("done")]).await;
    let mut m = model(&second, KEY, vec![recorded], Duration::from_secs(30));
    assert_eq!(
        m.next(None).await.unwrap(),
        call("list_directory", json!({}))
    );
    assert!(
        m.take_answer().is_none(),
        "a replayed answer is not recorded again"
    );
    assert!(second.requests().is_empty());
    let done = m
        .next(Some(&result(CallOutcome::Ok, "src\ntest.sh")))
        .await
        .unwrap();
    assert_eq!(
        done,
        Turn::Done {
            ok: true,
            summary: "done".into()
        }
    );
    let answer = m.take_answer().unwrap();
    assert_eq!(answer.turn, 1);
    // The server checked the replayed call is answered under its own id.
    assert_eq!(second.requests().len(), 1);
    assert_eq!(
        results_sent(api, &second.requests()[0])[0].1,
        "src\ntest.sh"
    );
}

#[tokio::test]
async fn openai_replay() {
    recorded_answers_are_replayed_not_asked_again(Api::OpenAi).await;
}

#[tokio::test]
async fn anthropic_replay() {
    recorded_answers_are_replayed_not_asked_again(Api::Anthropic).await;
}

fn model_error(e: Error) -> String {
    match e {
        Error::Model(why) => why,
        other => panic!("not a model error: {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_key_is_refused_at_once_and_said_so() {
    for api in [Api::OpenAi, Api::Anthropic] {
        let server = ModelServer::start(api, KEY, vec![Say::Text("never")]).await;
        let mut m = model(&server, "sk-wrong", Vec::new(), Duration::from_secs(30));
        let why = model_error(m.next(None).await.unwrap_err());
        assert!(
            why.contains(&format!(
                "the {} API refused the key (HTTP 401)",
                api.driver()
            )) && why.contains("Incorrect API key provided"),
            "{why}"
        );
        assert_eq!(
            server.requests().len(),
            0,
            "the server refused before reading"
        );
        assert_eq!(server.left(), 1, "not retried");
    }
}

#[tokio::test]
async fn overload_and_rate_limits_are_retried() {
    for api in [Api::OpenAi, Api::Anthropic] {
        let server = ModelServer::start(
            api,
            KEY,
            vec![
                Say::Status(529, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
                Say::Status(429, r#"{"error":{"message":"Rate limit reached"}}"#),
                Say::Text("fine"),
            ],
        )
        .await;
        let mut m = model(&server, KEY, Vec::new(), Duration::from_secs(30));
        assert_eq!(
            m.next(None).await.unwrap(),
            Turn::Done {
                ok: true,
                summary: "fine".into()
            }
        );
        assert_eq!(server.requests().len(), 3);
    }
}

#[tokio::test]
async fn an_api_that_keeps_failing_is_given_up_on_with_its_words() {
    let server = ModelServer::start(
        Api::OpenAi,
        KEY,
        vec![Say::Status(503, r#"{"error":{"message":"The server is overloaded"}}"#); 6],
    )
    .await;
    let mut m = model(&server, KEY, Vec::new(), Duration::from_secs(30));
    let why = model_error(m.next(None).await.unwrap_err());
    assert!(
        why.contains("HTTP 503: The server is overloaded") && why.contains("after 4 attempts"),
        "{why}"
    );
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn a_bad_request_is_not_retried() {
    let server = ModelServer::start(
        Api::Anthropic,
        KEY,
        vec![Say::Status(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"model: unknown model"}}"#,
        )],
    )
    .await;
    let mut m = model(&server, KEY, Vec::new(), Duration::from_secs(30));
    let why = model_error(m.next(None).await.unwrap_err());
    assert_eq!(
        why,
        "the anthropic API refused the request (HTTP 400): model: unknown model"
    );
}

#[tokio::test]
async fn answers_that_are_not_the_apis_shape_fail_the_turn() {
    for (api, body, expected) in [
        (Api::OpenAi, "<html>bad gateway</html>", "not JSON"),
        (
            Api::OpenAi,
            r#"{"choices": []}"#,
            "not a chat completion: no choices",
        ),
        (
            Api::OpenAi,
            r#"{"choices": [{"message": {"content": 7}}]}"#,
            "content is 7",
        ),
        (
            Api::OpenAi,
            r#"{"choices": [{"message": {"tool_calls": [{"function": {"name": "read_file"}}]}}]}"#,
            "a tool call without an id",
        ),
        (
            Api::Anthropic,
            r#"{"content": []}"#,
            "its type is not \"message\"",
        ),
        (
            Api::Anthropic,
            r#"{"type": "message", "content": [{"type": "tool_use", "id": "t1"}]}"#,
            "tool_use t1 has no name",
        ),
    ] {
        let server = ModelServer::start(api, KEY, vec![Say::Body(body)]).await;
        let mut m = model(&server, KEY, Vec::new(), Duration::from_secs(30));
        let why = model_error(m.next(None).await.unwrap_err());
        assert!(why.contains(expected), "{body}: {why}");
    }
}

#[tokio::test]
async fn a_model_cut_off_fails_the_step_with_why() {
    for (api, why) in [
        (Api::OpenAi, "finish_reason length"),
        (Api::Anthropic, "stop_reason max_tokens"),
    ] {
        let server = ModelServer::start(api, KEY, vec![Say::OutOfTokens]).await;
        let mut m = model(&server, KEY, Vec::new(), Duration::from_secs(30));
        match m.next(None).await.unwrap() {
            Turn::Done { ok: false, summary } => {
                assert!(summary.contains(why), "{summary}")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn arguments_that_are_not_json_reach_the_tool_as_text() {
    let server = ModelServer::start(
        Api::OpenAi,
        KEY,
        vec![Say::RawArguments("read_file", "{\"path\": ")],
    )
    .await;
    let mut m = model(&server, KEY, Vec::new(), Duration::from_secs(30));
    assert_eq!(
        m.next(None).await.unwrap(),
        call("read_file", Value::String("{\"path\": ".into()))
    );
    // The tool refuses it with the reason, which goes back to the model.
    let refusal = smithers_engine::tools::ToolCall::parse(
        "read_file",
        &Value::String("{\"path\": ".into()),
        "smithers/x",
    )
    .unwrap_err();
    assert!(
        refusal.to_string().contains("must be an object"),
        "{refusal}"
    );
}

#[tokio::test]
async fn no_request_goes_past_the_steps_time() {
    let server = ModelServer::start(
        Api::OpenAi,
        KEY,
        vec![Say::Slow(Duration::from_secs(30)), Say::Text("late")],
    )
    .await;
    let mut m = model(&server, KEY, Vec::new(), Duration::from_millis(600));
    let started = std::time::Instant::now();
    let why = model_error(m.next(None).await.unwrap_err());
    assert!(why.contains("did not answer"), "{why}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn no_server_is_said_plainly() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut m = Model::new(ModelSetup {
        wire: Wire::OpenAi,
        model: "m".into(),
        base_url: Some(format!("http://127.0.0.1:{port}/v1")),
        key: Zeroizing::new(KEY.into()),
        role: "r".into(),
        prompt: "p".into(),
        replay: Vec::new(),
        time: Duration::from_secs(20),
    })
    .unwrap();
    let why = model_error(m.next(None).await.unwrap_err());
    assert!(
        why.contains(&format!(
            "cannot reach the openai API at http://127.0.0.1:{port}/v1/chat/completions"
        )),
        "{why}"
    );
}
