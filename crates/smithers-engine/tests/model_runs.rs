#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! A workflow whose agent is a model (OpenAI-compatible and Anthropic, each
//! through a local server speaking its wire format) runs for real on the
//! native sandbox: the model's calls pass the kernel, a write is asked and
//! approved, a push to main is denied and the refusal goes back to the
//! model, the tests run with a secret the model never sees, the commit
//! lands on smithers/… in the bare remote, and every answer is recorded.

use serde_json::json;
use smithers_store::{Answer, RunState, ToolCallState};
use smithers_test_support::engine::{Fixture, TOKEN};
use smithers_test_support::git::git;
use smithers_test_support::model_server::{Api, ModelServer, Say};

/// The sandbox helper program, a binary of this crate.
const HELPER: &str = env!("CARGO_BIN_EXE_smithers-engine-sandbox-helper");

const KEY: &str = "sk-model-key-77aa19";

const POLICY: &str = "\
implementer read_file * -> allow
implementer write_file * -> ask
implementer push_branch smithers/* -> allow
implementer push_branch * -> deny
implementer run_tests \"sh test.sh\" -> allow
implementer create_commit smithers/* -> allow
# The project's own test command: a run_tests call is decided as one only
# when every program it starts is a test runner.
test-runner \"sh test.sh\"
";

fn workflow(server: &ModelServer) -> String {
    let api = server.api;
    format!(
        r#"
[workflows.model]
on = ["manual"]
secrets = [{{ name = "API_TOKEN", env = "dev" }}, {{ name = "{key}", env = "dev" }}]
timeout = "5m"
policy = ".smithers/policy"

[[workflows.model.steps]]
id = "fix"
agent = {{ role = "implementer", driver = "{driver}", model = "test-model-1", base_url = "{url}", prompt = "Make test.sh pass", max_turns = 12, secrets = ["API_TOKEN"] }}
"#,
        key = api.key_secret(),
        driver = api.driver(),
        url = server.base_url(),
    )
}

fn script() -> Vec<Say> {
    vec![
        Say::Calls(vec![("read_file", json!({"path": "src/answer.txt"}))]),
        Say::Calls(vec![
            (
                "write_file",
                json!({"path": "src/answer.txt", "contents": "42\n"}),
            ),
            ("push_branch", json!({"branch": "main"})),
        ]),
        Say::Calls(vec![("run_tests", json!({"command": "sh test.sh"}))]),
        Say::Calls(vec![
            (
                "create_commit",
                json!({"message": "Fix the answer", "branch": "smithers/model-fix"}),
            ),
            ("push_branch", json!({"branch": "smithers/model-fix"})),
        ]),
        Say::Text("The answer is 42 now; test.sh passes."),
    ]
}

async fn a_model_agent_works_through_the_kernel(api: Api) {
    let server = ModelServer::start(api, KEY, script()).await;
    let toml = workflow(&server);
    let f = Fixture::new(
        HELPER,
        &[
            ("smithers.toml", toml.as_str()),
            (".smithers/policy", POLICY),
        ],
    )
    .await;
    f.set_secret(api.key_secret(), KEY).await;
    let main_before = git(&f.remote(), &["rev-parse", "main"]);
    let run = f.start("model").await;
    let (done, asked) = f.execute_deciding(&f.provider, &run.id, true).await;
    let log = f.log(&run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}\n{log}", done.error);
    assert_eq!(server.left(), 0, "{log}");

    // The secrets' release, then the write the policy asks about.
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[1].contains("write_file"), "{asked:?}");

    let calls = f.engine.runs.tool_calls(&run.id).await.unwrap();
    let tools: Vec<(&str, ToolCallState)> =
        calls.iter().map(|c| (c.tool.as_str(), c.state)).collect();
    assert_eq!(
        tools,
        [
            ("read_file", ToolCallState::Completed),
            ("write_file", ToolCallState::Completed),
            ("push_branch", ToolCallState::Denied),
            ("run_tests", ToolCallState::Completed),
            ("create_commit", ToolCallState::Completed),
            ("push_branch", ToolCallState::Completed),
        ]
    );

    // What the model was told: the file, the refusal, the tests' output
    // with the secret masked — and never a secret's value.
    let requests = server.requests();
    assert_eq!(requests.len(), 5);
    let told: String = requests.iter().map(|r| r.to_string()).collect();
    assert!(told.contains("41\\n"), "{told}");
    assert!(told.contains("[denied by policy]"), "{told}");
    assert!(told.contains("token in use: ***"), "{told}");
    assert!(!told.contains(TOKEN) && !told.contains(KEY));
    assert!(log.contains("The answer is 42 now"), "{log}");
    // The tests' output streamed into the log as it came, once.
    assert_eq!(
        log.matches("[stdout] token in use: ***").count(),
        1,
        "{log}"
    );
    assert!(!log.contains(TOKEN) && !log.contains(KEY), "{log}");

    // Every answer recorded, each with its event.
    let turns = f.engine.runs.all_model_turns(&run.id).await.unwrap();
    assert_eq!(turns.len(), 5);
    assert_eq!(
        turns.iter().map(|t| t.calls).collect::<Vec<_>>(),
        [1, 2, 1, 2, 0]
    );
    assert!(
        turns
            .iter()
            .all(|t| t.driver == api.driver() && t.model == "test-model-1")
    );
    // Sealed under the run's own key, destroyed when the run ended: the
    // answers are ciphertext no key opens any more.
    for t in &turns {
        let Answer::Sealed(sealed) = &t.response else {
            panic!("an answer was stored plain: {:?}", t.response);
        };
        assert!(!String::from_utf8_lossy(sealed).contains("The answer is 42"));
    }
    assert!(done.history_destroyed_at.is_some());
    let gone = f
        .engine
        .secrets
        .as_ref()
        .unwrap()
        .history_key(&run.id)
        .await
        .unwrap_err();
    assert!(gone.to_string().contains("destroyed"), "{gone}");
    let events = smithers_test_support::audit::all_events(&f.store).await;
    let destroyed: Vec<_> = events
        .iter()
        .filter(|e| e.event.action == "run.history_destroyed")
        .collect();
    assert_eq!(destroyed.len(), 1);
    assert_eq!(destroyed[0].event.details["sealed_answers"], 5);
    assert_eq!(destroyed[0].event.details["workspace"]["clean"], true);

    assert_eq!(git(&f.remote(), &["rev-parse", "main"]), main_before);
    assert_eq!(
        git(&f.remote(), &["show", "smithers/model-fix:src/answer.txt"]),
        "42"
    );
    f.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_agent_works_through_the_kernel() {
    a_model_agent_works_through_the_kernel(Api::OpenAi).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_agent_works_through_the_kernel() {
    a_model_agent_works_through_the_kernel(Api::Anthropic).await;
}

/// A key the API refuses fails the step with the API's words, and the
/// run with it; the key itself is not in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_fails_the_step_plainly() {
    let server = ModelServer::start(Api::OpenAi, "sk-the-right-one", script()).await;
    let toml = workflow(&server);
    let f = Fixture::new(
        HELPER,
        &[
            ("smithers.toml", toml.as_str()),
            (".smithers/policy", POLICY),
        ],
    )
    .await;
    f.set_secret("OPENAI_API_KEY", KEY).await;
    let run = f.start("model").await;
    let (done, _) = f.execute_deciding(&f.provider, &run.id, true).await;
    let log = f.log(&run.id).await;
    assert_eq!(done.state, RunState::Failed, "{log}");
    let error = done.error.unwrap_or_default();
    assert!(
        error.contains("the openai API refused the key (HTTP 401)"),
        "{error}\n{log}"
    );
    assert!(!log.contains(KEY), "{log}");
    assert!(f.engine.runs.tool_calls(&run.id).await.unwrap().is_empty());
}

/// A model slow to answer does not hold up a cancel: the request is
/// dropped and nothing of it is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_does_not_wait_for_a_slow_model() {
    let server = ModelServer::start(
        Api::Anthropic,
        KEY,
        vec![
            Say::Slow(std::time::Duration::from_secs(60)),
            Say::Text("too late"),
        ],
    )
    .await;
    let toml = workflow(&server);
    let f = Fixture::new(
        HELPER,
        &[
            ("smithers.toml", toml.as_str()),
            (".smithers/policy", POLICY),
        ],
    )
    .await;
    f.set_secret("ANTHROPIC_API_KEY", KEY).await;
    let run = f.start("model").await;
    let engine = f.engine.clone();
    let provider = f.provider.clone();
    let id = run.id.clone();
    let executing = tokio::spawn(async move { engine.execute(&provider, &id).await });
    for _ in 0..600 {
        for a in f.engine.runs.approvals("local", true, 10).await.unwrap() {
            f.engine
                .decide("local", "admin", &a.id, true, None)
                .await
                .unwrap();
        }
        if !server.requests().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(server.requests().len(), 1, "{}", f.log(&run.id).await);
    let asked = std::time::Instant::now();
    f.engine.cancel(&run.id, "admin").await.unwrap();
    let done = executing.await.unwrap().unwrap();
    assert_eq!(done.state, RunState::Cancelled);
    assert!(asked.elapsed() < std::time::Duration::from_secs(20));
    assert!(
        f.engine
            .runs
            .all_model_turns(&run.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(done.purge.unwrap()["clean"], true);
}
