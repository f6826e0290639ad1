//! The tools of the kernel as an agent calls them: their JSON schemas (what
//! the HTTP drivers offer a model), a call read from the model's JSON
//! arguments (every argument checked, nothing extra accepted), the
//! resource the kernel decides on, and the execution of a call inside the
//! run's sandbox, its output capped and redacted before anyone sees it.
//!
//! `create_commit` and `push_branch` touch git history and the remote:
//! they are carried out by the run executor, not here.

use std::time::Duration;

use serde_json::{Value, json};
use smithers_sandbox::{
    ExecOutcome, ExecRequest, OutputChunk, ParsedPatch, Provider, SandboxId, Stream,
};
use smithers_secrets::Redactor;
use tokio::sync::mpsc;

use crate::Error;

/// One tool call, its arguments checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    ReadFile { path: String },
    SearchFiles { pattern: String, path: String },
    ListDirectory { path: String },
    InspectRepo,
    GetGitDiff,
    WriteFile { path: String, contents: String },
    ApplyPatch { patch: String },
    RunCommand { command: String },
    RunTests { command: String },
    CreateCommit { message: String, branch: String },
    PushBranch { branch: String },
}

/// A tool as a model is told of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

fn object(properties: &[(&str, &str)], required: &[&str]) -> Value {
    let props: serde_json::Map<String, Value> = properties
        .iter()
        .map(|(name, description)| {
            (
                (*name).to_string(),
                json!({"type": "string", "description": description}),
            )
        })
        .collect();
    json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    })
}

/// Every tool, in the kernel's order (built once).
pub fn specs() -> &'static [ToolSpec] {
    static SPECS: std::sync::LazyLock<Vec<ToolSpec>> = std::sync::LazyLock::new(all_specs);
    &SPECS
}

fn all_specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "read_file",
            description: "Read a file of the repository (path relative to its root).",
            parameters: object(
                &[("path", "File path, relative to the repository root")],
                &["path"],
            ),
        },
        ToolSpec {
            name: "search_files",
            description: "Search file contents with a regular expression (grep -E); prints path:line:text.",
            parameters: object(
                &[
                    ("pattern", "Extended regular expression"),
                    (
                        "path",
                        "Directory or file to search (default: the whole repository)",
                    ),
                ],
                &["pattern"],
            ),
        },
        ToolSpec {
            name: "list_directory",
            description: "List a directory of the repository.",
            parameters: object(
                &[(
                    "path",
                    "Directory, relative to the repository root (default: the root)",
                )],
                &[],
            ),
        },
        ToolSpec {
            name: "inspect_repo",
            description: "Show the repository's branch, status and recent commits.",
            parameters: object(&[], &[]),
        },
        ToolSpec {
            name: "get_git_diff",
            description: "Show the uncommitted changes (git diff against HEAD).",
            parameters: object(&[], &[]),
        },
        ToolSpec {
            name: "write_file",
            description: "Write a whole file (creating directories as needed).",
            parameters: object(
                &[
                    ("path", "File path, relative to the repository root"),
                    ("contents", "The whole new contents"),
                ],
                &["path", "contents"],
            ),
        },
        ToolSpec {
            name: "apply_patch",
            description: "Apply a unified diff to the repository: all of it or nothing.",
            parameters: object(&[("patch", "A unified or git diff")], &["patch"]),
        },
        ToolSpec {
            name: "run_command",
            description: "Run a shell command in the repository (sandboxed, no network unless allowed).",
            parameters: object(&[("command", "The command line")], &["command"]),
        },
        ToolSpec {
            name: "run_tests",
            description: "Run the test command in the repository (sandboxed).",
            parameters: object(&[("command", "The test command line")], &["command"]),
        },
        ToolSpec {
            name: "create_commit",
            description: "Commit every change of the workspace to a branch under smithers/.",
            parameters: object(
                &[
                    ("message", "The commit message"),
                    ("branch", "A branch under smithers/ (default: the run's)"),
                ],
                &["message"],
            ),
        },
        ToolSpec {
            name: "push_branch",
            description: "Push a smithers/ branch to the repository's remote (Smithers pushes; humans merge).",
            parameters: object(&[("branch", "The branch, under smithers/")], &["branch"]),
        },
    ]
}

/// The arguments object of a call: only the named keys, each a string.
struct Arguments<'a> {
    tool: &'a str,
    map: &'a serde_json::Map<String, Value>,
}

impl<'a> Arguments<'a> {
    fn new(
        tool: &'a str,
        arguments: &'a Value,
        allowed: &[String],
    ) -> Result<Arguments<'a>, Error> {
        let map = match arguments {
            Value::Object(map) => map,
            other => {
                return Err(Error::Tool(format!(
                    "{tool}: the arguments must be an object, not {other}"
                )));
            }
        };
        if let Some(extra) = map.keys().find(|k| !allowed.contains(k)) {
            return Err(Error::Tool(format!(
                "{tool}: unknown argument {extra:?} (takes {})",
                if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                }
            )));
        }
        Ok(Arguments { tool, map })
    }

    fn optional(&self, name: &str) -> Result<Option<String>, Error> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Error::Tool(format!(
                "{}: `{name}` must be a string, not {other}",
                self.tool
            ))),
        }
    }

    fn required(&self, name: &str) -> Result<String, Error> {
        match self.optional(name)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(Error::Tool(format!("{}: `{name}` is required", self.tool))),
        }
    }
}

impl ToolCall {
    /// Reads a call as a model sends it: the tool's name and its arguments.
    /// `default_branch` is the run's own branch (`smithers/<run-id>`).
    pub fn parse(name: &str, arguments: &Value, default_branch: &str) -> Result<ToolCall, Error> {
        let spec = specs().iter().find(|s| s.name == name).ok_or_else(|| {
            Error::Tool(format!(
                "unknown tool {name:?} (tools: {})",
                specs()
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let allowed: Vec<String> = spec.parameters["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let args = Arguments::new(name, arguments, &allowed)?;
        Ok(match name {
            "read_file" => ToolCall::ReadFile {
                path: args.required("path")?,
            },
            "search_files" => ToolCall::SearchFiles {
                pattern: args.required("pattern")?,
                path: args.optional("path")?.unwrap_or_else(|| ".".into()),
            },
            "list_directory" => ToolCall::ListDirectory {
                path: args.optional("path")?.unwrap_or_else(|| ".".into()),
            },
            "inspect_repo" => ToolCall::InspectRepo,
            "get_git_diff" => ToolCall::GetGitDiff,
            "write_file" => ToolCall::WriteFile {
                path: args.required("path")?,
                contents: args.optional("contents")?.unwrap_or_default(),
            },
            "apply_patch" => ToolCall::ApplyPatch {
                patch: args.required("patch")?,
            },
            "run_command" => ToolCall::RunCommand {
                command: args.required("command")?,
            },
            "run_tests" => ToolCall::RunTests {
                command: args.required("command")?,
            },
            "create_commit" => ToolCall::CreateCommit {
                message: args.required("message")?,
                branch: args
                    .optional("branch")?
                    .unwrap_or_else(|| default_branch.to_string()),
            },
            _ => ToolCall::PushBranch {
                branch: args.required("branch")?,
            },
        })
    }

    /// The kernel's name of the tool.
    pub fn name(&self) -> &'static str {
        match self {
            ToolCall::ReadFile { .. } => "read_file",
            ToolCall::SearchFiles { .. } => "search_files",
            ToolCall::ListDirectory { .. } => "list_directory",
            ToolCall::InspectRepo => "inspect_repo",
            ToolCall::GetGitDiff => "get_git_diff",
            ToolCall::WriteFile { .. } => "write_file",
            ToolCall::ApplyPatch { .. } => "apply_patch",
            ToolCall::RunCommand { .. } => "run_command",
            ToolCall::RunTests { .. } => "run_tests",
            ToolCall::CreateCommit { .. } => "create_commit",
            ToolCall::PushBranch { .. } => "push_branch",
        }
    }

    /// What the kernel decides on: the path, the command line or the
    /// branch; a patch, every path its headers name (each is decided, and
    /// the most restrictive decision is the call's).
    pub fn resources(&self) -> Result<Vec<String>, Error> {
        Ok(match self {
            ToolCall::ReadFile { path }
            | ToolCall::SearchFiles { path, .. }
            | ToolCall::ListDirectory { path }
            | ToolCall::WriteFile { path, .. } => vec![path.clone()],
            ToolCall::InspectRepo | ToolCall::GetGitDiff => vec!["*".to_string()],
            ToolCall::ApplyPatch { patch } => ParsedPatch::parse(patch)
                .map_err(|e| Error::Tool(format!("apply_patch: {e}")))?
                .paths(),
            ToolCall::RunCommand { command } | ToolCall::RunTests { command } => {
                vec![command.clone()]
            }
            ToolCall::CreateCommit { branch, .. } | ToolCall::PushBranch { branch } => {
                vec![branch.clone()]
            }
        })
    }

    /// The call as stored and shown (arguments by name).
    pub fn arguments(&self) -> Value {
        match self {
            ToolCall::ReadFile { path } | ToolCall::ListDirectory { path } => json!({"path": path}),
            ToolCall::SearchFiles { pattern, path } => json!({"pattern": pattern, "path": path}),
            ToolCall::InspectRepo | ToolCall::GetGitDiff => json!({}),
            ToolCall::WriteFile { path, contents } => json!({"path": path, "contents": contents}),
            ToolCall::ApplyPatch { patch } => json!({"patch": patch}),
            ToolCall::RunCommand { command } | ToolCall::RunTests { command } => {
                json!({"command": command})
            }
            ToolCall::CreateCommit { message, branch } => {
                json!({"message": message, "branch": branch})
            }
            ToolCall::PushBranch { branch } => json!({"branch": branch}),
        }
    }
}

/// Parses the patch once and has the provider apply that parse: the one
/// whose paths were decided on.
async fn apply_patch<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
    patch: &str,
) -> Result<Vec<String>, smithers_sandbox::Error> {
    provider
        .apply_patch(sandbox, &ParsedPatch::parse(patch)?)
        .await
}

/// Bounds on what a tool call may take and give back.
#[derive(Debug, Clone, Copy)]
pub struct ToolLimits {
    /// Bytes of output an agent is shown (the rest is cut, and said so).
    pub output_bytes: usize,
    /// Wall-clock limit of a command a tool runs.
    pub timeout: Duration,
}

impl Default for ToolLimits {
    fn default() -> Self {
        ToolLimits {
            output_bytes: 64 * 1024,
            timeout: Duration::from_secs(10 * 60),
        }
    }
}

/// What a tool call gave back, as the agent sees it: redacted and capped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub ok: bool,
    pub text: String,
    /// A command's exit code.
    pub exit_code: Option<i32>,
    pub truncated: bool,
}

/// The shell that reads a script in the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shell {
    /// `/bin/sh`: Smithers' own fixed scripts, every argument quoted.
    Own,
    /// bash, the dialect the kernel reads command lines in
    /// ([`smithers_policy::shell::Dialect::Bash`]): what a workflow or an
    /// agent wrote runs exactly as it was decided.
    Kernel,
}

impl Shell {
    /// The request that runs `script` with this shell.
    pub(crate) fn request(self, script: &str) -> ExecRequest {
        match self {
            Shell::Own => ExecRequest::new(["/bin/sh", "-c", script]),
            Shell::Kernel => ExecRequest::new(["bash", "-c", script]),
        }
    }

    /// The request that runs `script` with this shell, within `timeout`,
    /// with `env` added to the sandbox's environment.
    pub(crate) fn command(
        self,
        script: &str,
        timeout: Duration,
        env: Vec<(String, String)>,
    ) -> ExecRequest {
        let mut request = self.request(script);
        request.timeout = Some(timeout);
        request.env = env;
        request
    }
}

/// Shell-quotes one word for `sh -c`.
pub(crate) fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A command's output as it came, up to a bound.
pub(crate) struct Collected {
    pub chunks: Vec<OutputChunk>,
    pub outcome: ExecOutcome,
    /// Output past the bound was read (the command must not block on a
    /// full pipe) and dropped.
    pub over: bool,
}

impl Collected {
    /// The bytes of `stream`, or of both in the order they came.
    pub fn bytes(&self, stream: Option<Stream>) -> Vec<u8> {
        self.chunks
            .iter()
            .filter(|c| stream.is_none_or(|s| s == c.stream))
            .flat_map(|c| c.bytes.iter().copied())
            .collect()
    }
}

/// Runs `request` in the sandbox, keeping its output while less than
/// `bound` bytes are kept.
pub(crate) async fn collect<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
    request: ExecRequest,
    bound: usize,
    live: Option<mpsc::Sender<OutputChunk>>,
) -> Result<Collected, Error> {
    let (tx, mut rx) = mpsc::channel::<OutputChunk>(64);
    let reader = tokio::spawn(async move {
        let (mut chunks, mut kept, mut over) = (Vec::new(), 0, false);
        while let Some(chunk) = rx.recv().await {
            if let Some(live) = &live {
                // Whoever watches live may have gone; the result still counts.
                let _ = live.send(chunk.clone()).await;
            }
            if kept < bound {
                kept += chunk.bytes.len();
                chunks.push(chunk);
            } else {
                over = true;
            }
        }
        (chunks, over)
    });
    let outcome = provider.exec(sandbox, request, tx).await?;
    let (chunks, over) = reader
        .await
        .map_err(|e| Error::Invalid(format!("the output reader failed: {e}")))?;
    Ok(Collected {
        chunks,
        outcome,
        over,
    })
}

fn finish(
    bytes: &[u8],
    ok: bool,
    exit_code: Option<i32>,
    limits: &ToolLimits,
    redactor: Option<&Redactor>,
) -> ToolOutput {
    // Redact first, on everything kept, so a cut never splits a secret's form.
    let redacted = match redactor {
        Some(r) => r.redact(bytes),
        None => bytes.to_vec(),
    };
    let truncated = redacted.len() > limits.output_bytes;
    let kept = &redacted[..redacted.len().min(limits.output_bytes)];
    let mut text = String::from_utf8_lossy(kept).into_owned();
    if truncated {
        text.push_str(&format!(
            "\n[output cut at {} bytes of {}]",
            limits.output_bytes,
            redacted.len()
        ));
    }
    ToolOutput {
        ok,
        text,
        exit_code,
        truncated,
    }
}

/// Carries out `call` in the sandbox. A call that fails as a tool (a file
/// that is not there, a command that exits non-zero, a patch that does not
/// apply) is an output with `ok: false` for the agent to read; an error is
/// for the sandbox itself failing. Commands get `env` (the run's secrets),
/// and their raw output is also sent to `live` as it comes (for the run
/// log, which redacts it on the way).
pub async fn execute<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
    call: &ToolCall,
    limits: &ToolLimits,
    redactor: Option<&Redactor>,
    env: Vec<(String, String)>,
    live: Option<mpsc::Sender<OutputChunk>>,
) -> Result<ToolOutput, Error> {
    let run = |shell: Shell, script: String| async move {
        let collected = collect(
            provider,
            sandbox,
            shell.command(&script, limits.timeout, env),
            limits.output_bytes * 2 + 1,
            live,
        )
        .await?;
        let (mut bytes, outcome) = (collected.bytes(None), collected.outcome);
        if let Some(limit) = outcome.limit_hit() {
            bytes.extend_from_slice(format!("\n[killed: {limit}]").as_bytes());
        }
        Ok::<_, Error>(finish(
            &bytes,
            outcome.exit_code == 0,
            Some(outcome.exit_code),
            limits,
            redactor,
        ))
    };
    match call {
        ToolCall::ReadFile { path } => Ok(match provider.read_file(sandbox, path).await {
            Ok(bytes) => finish(&bytes, true, None, limits, redactor),
            Err(e) => finish(e.to_string().as_bytes(), false, None, limits, redactor),
        }),
        ToolCall::WriteFile { path, contents } => Ok(
            match provider
                .write_file(sandbox, path, contents.as_bytes())
                .await
            {
                Ok(()) => finish(
                    format!("wrote {path} ({} bytes)", contents.len()).as_bytes(),
                    true,
                    None,
                    limits,
                    redactor,
                ),
                Err(e) => finish(e.to_string().as_bytes(), false, None, limits, redactor),
            },
        ),
        ToolCall::ApplyPatch { patch } => Ok(match apply_patch(provider, sandbox, patch).await {
            Ok(changed) => finish(
                format!("changed {}", changed.join(", ")).as_bytes(),
                true,
                None,
                limits,
                redactor,
            ),
            Err(e) => finish(e.to_string().as_bytes(), false, None, limits, redactor),
        }),
        ToolCall::ListDirectory { path } => {
            run(Shell::Own, format!("ls -la -- {}", quote(path))).await
        }
        ToolCall::SearchFiles { pattern, path } => {
            // grep exits 1 when nothing matches: that is an answer, not a failure.
            run(
                Shell::Own,
                format!(
                    "grep -rnE --exclude-dir=.git -e {} -- {}; s=$?; [ $s -le 1 ] || exit $s",
                    quote(pattern),
                    quote(path)
                ),
            )
            .await
        }
        ToolCall::InspectRepo => {
            run(
                Shell::Own,
                "git status --short --branch && echo && git log --oneline -n 20 && echo && ls -a"
                    .into(),
            )
            .await
        }
        ToolCall::GetGitDiff => {
            run(Shell::Own, "git diff HEAD --stat && git diff HEAD".into()).await
        }
        ToolCall::RunCommand { command } | ToolCall::RunTests { command } => {
            run(Shell::Kernel, command.clone()).await
        }
        ToolCall::CreateCommit { .. } | ToolCall::PushBranch { .. } => Err(Error::Tool(format!(
            "{} is carried out by the run, not inside the sandbox",
            call.name()
        ))),
    }
}
