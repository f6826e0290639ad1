//! `smithers init`: a commented starter `smithers.toml` and policy for a
//! repository, written whole or not at all.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::workflow::FILE_NAME;

/// The built-in policy: what a workflow without `policy` is decided by.
pub const DEFAULT_POLICY: &str = include_str!("../../../examples/policies/default.policy");

/// Where `init` puts the policy.
pub const POLICY_PATH: &str = ".smithers/policy";

/// The test command a repository's files suggest.
fn test_command(repo: &Path) -> &'static str {
    let has = |name: &str| repo.join(name).exists();
    if has("Cargo.toml") {
        "cargo test"
    } else if has("package.json") {
        "npm test"
    } else if has("go.mod") {
        "go test ./..."
    } else if has("pyproject.toml") || has("setup.py") {
        "python3 -m pytest"
    } else if has("Makefile") {
        "make test"
    } else {
        "sh -c 'echo add your test command here'"
    }
}

/// The starter workflow file for `repo`.
pub fn starter_workflow(repo: &Path) -> String {
    let test = test_command(repo);
    format!(
        r#"# Workflows Smithers runs on this repository.
#   smithers workflow check      validates this file (and the files it names)
#   smithers run NAME            runs a workflow in a disposable sandbox

[workflows.test]
description = "Run the tests in a sandbox"
# What starts it: "manual", "pull_request.opened", "pull_request.synchronize",
# "pull_request.reopened", "push", "schedule" (with schedule = "0 3 * * *").
on = ["manual", "pull_request.opened"]
# Hosts the sandbox may reach, through Smithers' proxy; default: no network at all.
egress = []
# Secrets its commands get as environment variables (set with `smithers secrets set`):
# secrets = [{{ name = "API_TOKEN", env = "dev" }}]
timeout = "30m"                  # the wall-clock limit of the whole run
approval_timeout = "24h"         # an approval nobody decides in time expires (a rejection)
provider = "native"              # or "docker"
policy = "{POLICY_PATH}"       # who may do what; leave out for the built-in policy

[[workflows.test.steps]]
id = "test"
run = "{test}"                   # decided by the kernel as run_tests / run_command
retries = 0
# timeout = "10m"                # this step's own limit
# continue_on_error = false

# An agent that proposes a fix, a human gate, and a commit on a smithers/ branch:
#
# [workflows.fix-tests]
# on = ["manual"]
# secrets = [{{ name = "OPENAI_API_KEY", env = "dev" }}]
#
# [[workflows.fix-tests.steps]]
# id = "plan"
# agent = {{ role = "implementer", driver = "openai", model = "gpt-4.1", prompt = "Make the tests pass" }}
# # driver = "anthropic" (key ANTHROPIC_API_KEY) works the same; base_url = "https://…" points
# # either at a compatible gateway; max_turns = 20 bounds the agent's tool calls. Smithers calls
# # the model itself: the key never enters the sandbox, and every call the model asks for
# # passes the policy first. The agent's commands get none of the workflow's secrets unless
# # the step names them (secrets = ["API_TOKEN"]): the model is shown what they print.
#
# [[workflows.fix-tests.steps]]
# id = "test"
# run = "{test}"
# if = "plan.succeeded"
#
# [[workflows.fix-tests.steps]]
# id = "ship"
# commit = {{ branch = "smithers/fix-tests", message = "Fix the failing tests" }}
# needs_approval = true
"#
    )
}

/// The starter policy: the built-in one, with how to read it.
pub fn starter_policy() -> String {
    format!(
        "# Who may do what: SUBJECT ACTION RESOURCE -> allow | ask | admin-only | deny | forbid.\n\
         # `smithers policy check {POLICY_PATH}` validates it and runs its `test` lines;\n\
         # `smithers policy explain` shows why a request gets its decision.\n\
         # A run_tests call is decided as run_tests only when every program it starts is a\n\
         # test runner (cargo test, npm test, go test, pytest, make test, ...); name your own:\n\
         #   test-runner \"python3 -m unittest *\"\n\n{DEFAULT_POLICY}"
    )
}

/// Writes the starter files into `repo`; refuses (writing nothing) if one
/// exists, unless `force`. Returns the files written.
pub fn write_starter(repo: &Path, force: bool) -> Result<Vec<PathBuf>, Error> {
    if !repo.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is not a directory",
            repo.display()
        )));
    }
    let files = [
        (repo.join(FILE_NAME), starter_workflow(repo)),
        (repo.join(POLICY_PATH), starter_policy()),
    ];
    if !force {
        let existing: Vec<String> = files
            .iter()
            .filter(|(path, _)| path.exists())
            .map(|(path, _)| path.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(Error::Exists(existing));
        }
    }
    // Each file goes in whole (a temporary name, then a rename).
    let mut written = Vec::new();
    for (path, contents) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        let partial = path.with_extension("smithers-init");
        std::fs::write(&partial, contents)
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(Error::io(path))?;
        written.push(path.clone());
    }
    Ok(written)
}
