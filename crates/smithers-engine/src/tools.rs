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

/// What a file tool may see: the path its path resolved to (what the
/// kernel decided on, and what is read), and which workspace paths the
/// calling subject may read (a listing or a search shows nothing else).
pub struct Access<'a> {
    pub resolved: Option<&'a str>,
    pub may_read: &'a (dyn Fn(&str) -> bool + Sync),
}

/// The sandbox's argument for a workspace-relative path (`""` is `.`).
fn workspace_arg(path: &str) -> String {
    quote(if path.is_empty() { "." } else { path })
}

/// A path a program printed, workspace-relative and normalized; `None`
/// when it leaves the workspace.
fn printed_path(path: &str) -> Option<String> {
    smithers_policy::path::normalize(path, "/workspace")
        .ok()
        .map(|p| p.into_owned())
}

/// `list_directory`: the entries of `dir` the subject may read, each with
/// its kind and size; a link's target only where the subject may read it.
async fn list<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
    dir: &str,
    limits: &ToolLimits,
    redactor: Option<&Redactor>,
    access: &Access<'_>,
) -> Result<ToolOutput, Error> {
    let arg = workspace_arg(dir);
    let script = format!(
        "[ -d {arg} ] || {{ echo 'not a directory' >&2; exit 2; }}; find -P {arg} -mindepth 1 -maxdepth 1 -printf '%y\\0%s\\0%f\\0%l\\0'"
    );
    let collected = collect(
        provider,
        sandbox,
        Shell::Own.command(&script, limits.timeout, Vec::new()),
        MAX_LISTING,
        None,
    )
    .await?;
    if collected.outcome.exit_code != 0 || collected.over {
        let mut text = collected.bytes(Some(Stream::Stderr));
        if collected.over {
            text.extend_from_slice(b"the directory has too many entries to list");
        }
        return Ok(finish(
            &text,
            false,
            Some(collected.outcome.exit_code),
            limits,
            redactor,
        ));
    }
    let stdout = collected.bytes(Some(Stream::Stdout));
    let fields: Vec<String> = stdout
        .split(|&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).replace(['\n', '\r'], "?"))
        .collect();
    let mut lines = Vec::new();
    for entry in fields.chunks_exact(4) {
        let (kind, size, name, target) = (&entry[0], &entry[1], &entry[2], &entry[3]);
        let path = if dir.is_empty() {
            name.clone()
        } else {
            format!("{dir}/{name}")
        };
        if !(access.may_read)(&path) {
            continue;
        }
        let line = match kind.as_str() {
            "d" => format!("d {:>10} {name}/", ""),
            "l" => {
                let shown = if target.starts_with('/') {
                    printed_path(target)
                } else {
                    printed_path(&format!(
                        "{}/{target}",
                        if dir.is_empty() { "." } else { dir }
                    ))
                };
                match shown {
                    Some(inside) if (access.may_read)(&inside) => {
                        format!("l {:>10} {name} -> {target}", "")
                    }
                    _ => format!("l {:>10} {name} -> (not shown)", ""),
                }
            }
            "f" => format!("- {size:>10} {name}"),
            other => format!("{other} {:>10} {name}", ""),
        };
        lines.push((name.clone(), line));
    }
    lines.sort();
    let text: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
    Ok(finish(
        text.join("\n").as_bytes(),
        true,
        Some(0),
        limits,
        redactor,
    ))
}

/// `search_files`: the files under `dir` whose contents match, then the
/// matching lines of only those the subject may read. A file the subject
/// may not read leaves no trace: not its name, not whether it matched.
async fn search<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
    pattern: &str,
    dir: &str,
    limits: &ToolLimits,
    redactor: Option<&Redactor>,
    access: &Access<'_>,
) -> Result<ToolOutput, Error> {
    // grep exits 1 when nothing matches: that is an answer, not a failure.
    let matching = format!(
        "grep -rlZE --exclude-dir=.git -e {} -- {}; s=$?; [ $s -le 1 ] || exit $s",
        quote(pattern),
        workspace_arg(dir)
    );
    let collected = collect(
        provider,
        sandbox,
        Shell::Own.command(&matching, limits.timeout, Vec::new()),
        MAX_LISTING,
        None,
    )
    .await?;
    if collected.outcome.exit_code != 0 || collected.over {
        let mut text = collected.bytes(Some(Stream::Stderr));
        if collected.over {
            text.extend_from_slice(b"too many files match; search a narrower path");
        }
        return Ok(finish(
            &text,
            false,
            Some(collected.outcome.exit_code),
            limits,
            redactor,
        ));
    }
    let files: Vec<String> = collected
        .bytes(Some(Stream::Stdout))
        .split(|&b| b == 0)
        .filter(|f| !f.is_empty())
        .filter_map(|f| printed_path(&String::from_utf8_lossy(f)))
        .filter(|f| !f.is_empty() && (access.may_read)(f))
        .collect();
    let mut out = Vec::new();
    let mut ok = true;
    let mut exit_code = 0;
    // In batches, well under the kernel's argument size limit.
    let mut batch: Vec<String> = Vec::new();
    let mut size = 0;
    let mut batches = Vec::new();
    for file in files {
        size += file.len() + 3;
        batch.push(quote(&file));
        if size > 64 * 1024 {
            batches.push(std::mem::take(&mut batch));
            size = 0;
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    for files in batches {
        let script = format!(
            "grep -nHE -e {} -- {}; s=$?; [ $s -le 1 ] || exit $s",
            quote(pattern),
            files.join(" ")
        );
        let collected = collect(
            provider,
            sandbox,
            Shell::Own.command(&script, limits.timeout, Vec::new()),
            limits.output_bytes * 2 + 1,
            None,
        )
        .await?;
        out.extend(collected.bytes(None));
        if collected.outcome.exit_code != 0 {
            ok = false;
            exit_code = collected.outcome.exit_code;
        }
        if out.len() > limits.output_bytes * 2 {
            break;
        }
    }
    Ok(finish(&out, ok, Some(exit_code), limits, redactor))
}

/// Most bytes a listing or the names of matching files may take.
const MAX_LISTING: usize = 4 << 20;

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
        .map_err(|e| Error::Internal(format!("the output reader failed: {e}")))?;
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

/// How a call is carried out: its limits, the redactor its output goes
/// through, the environment its commands get (the secrets released to
/// it), where a command's raw output streams as it comes (for the run log,
/// which redacts it on the way), and what a file tool may see.
pub struct Carry<'a> {
    pub limits: ToolLimits,
    pub redactor: Option<&'a Redactor>,
    pub env: Vec<(String, String)>,
    pub live: Option<mpsc::Sender<OutputChunk>>,
    pub access: Access<'a>,
}

fn anything(_: &str) -> bool {
    true
}

impl Carry<'_> {
    /// Within `limits`, nothing redacted, no environment, nothing
    /// streamed, every path readable.
    pub fn new(limits: ToolLimits) -> Carry<'static> {
        Carry {
            limits,
            redactor: None,
            env: Vec::new(),
            live: None,
            access: Access {
                resolved: None,
                may_read: &anything,
            },
        }
    }
}

/// Carries out `call` in the sandbox. A call that fails as a tool (a file
/// that is not there, a command that exits non-zero, a patch that does not
/// apply) is an output with `ok: false` for the agent to read; an error is
/// for the sandbox itself failing.
pub async fn execute<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
    call: &ToolCall,
    carry: Carry<'_>,
) -> Result<ToolOutput, Error> {
    let Carry {
        limits,
        redactor,
        env,
        live,
        access,
    } = carry;
    let limits = &limits;
    let access = &access;
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
        ToolCall::ReadFile { path } => Ok(
            match provider
                .read_file(sandbox, access.resolved.unwrap_or(path))
                .await
            {
                Ok(bytes) => finish(&bytes, true, None, limits, redactor),
                Err(e) => finish(e.to_string().as_bytes(), false, None, limits, redactor),
            },
        ),
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
            list(
                provider,
                sandbox,
                access.resolved.unwrap_or(path),
                limits,
                redactor,
                access,
            )
            .await
        }
        ToolCall::SearchFiles { pattern, path } => {
            search(
                provider,
                sandbox,
                pattern,
                access.resolved.unwrap_or(path),
                limits,
                redactor,
                access,
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
