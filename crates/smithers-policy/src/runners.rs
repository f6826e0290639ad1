//! Test runners: what a `run_tests` call may start and still be decided
//! as `run_tests`.
//!
//! A tool's name is only a label the caller chose. The kernel decides a
//! `run_tests` line as `run_tests` only when every program it starts is a
//! test runner — one of the built-in ones below, or one a policy names
//! with `test-runner "PATTERN"` — with nothing else on the line but
//! builtins that start nothing (`cd`, `echo`, `true`, …) and wrappers
//! that only change how their program runs (`timeout`, `nice`, `env`, …).
//! Anything else (`cargo test; curl …`, `RUSTC_WRAPPER=… cargo test`, a
//! program known only at run time) is decided as `run_command`.

use crate::env;
use crate::glob::TextGlob;
use crate::pattern::CommandPattern;
use crate::policy::Origin;
use crate::shell::CommandPart;

/// A command that runs a project's tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunner {
    /// The pattern as written (`"python3 -m unittest *"`).
    pub pattern: String,
    pub(crate) command: CommandPattern,
    /// Arguments that make the runner start another program (cargo's
    /// `--config target.….runner=…`, go's `-exec`, make's `SHELL=…`):
    /// with one of them the line is not a test run.
    pub(crate) refused_args: Vec<TextGlob>,
    /// Where a policy named it; `None` for the built-in ones.
    pub origin: Option<Origin>,
}

impl TestRunner {
    pub(crate) fn matches(&self, words: &[String]) -> bool {
        self.command.matches(words)
            && !words
                .iter()
                .skip(1)
                .any(|w| self.refused_args.iter().any(|g| g.matches(w)))
    }
}

/// The built-in test runners, with the arguments that make each start
/// another program.
const BUILTIN: &[(&str, &[&str])] = &[
    ("cargo test *", &["--config*", "-Z*"]),
    (
        "cargo nextest *",
        &["--config*", "-Z*", "--tool-config-file*"],
    ),
    (
        "go test *",
        &[
            "-exec*",
            "--exec*",
            "-toolexec*",
            "--toolexec*",
            "-vettool*",
            "-overlay*",
        ],
    ),
    (
        "npm test *",
        &[
            "--script-shell*",
            "--node-options*",
            "--userconfig*",
            "--globalconfig*",
        ],
    ),
    (
        "npm run test *",
        &[
            "--script-shell*",
            "--node-options*",
            "--userconfig*",
            "--globalconfig*",
        ],
    ),
    ("yarn test *", &[]),
    ("pnpm test *", &["--script-shell*", "--node-options*"]),
    ("pytest *", &[]),
    ("python -m pytest *", &[]),
    ("python3 -m pytest *", &[]),
    ("make test *", &["*=*", "--eval*", "-E*"]),
    ("make check *", &["*=*", "--eval*", "-E*"]),
    (
        "ctest *",
        &[
            "-S*",
            "--script*",
            "-SP*",
            "--build-and-test*",
            "--test-command*",
        ],
    ),
    ("mvn test *", &["-D*", "--define*"]),
    (
        "gradle test *",
        &["-I*", "--init-script*", "-D*", "--system-prop*"],
    ),
    (
        "./gradlew test *",
        &["-I*", "--init-script*", "-D*", "--system-prop*"],
    ),
    ("bundle exec rspec *", &[]),
    ("rspec *", &[]),
];

/// The built-in runners as [`TestRunner`]s.
pub(crate) fn builtin() -> Vec<TestRunner> {
    BUILTIN
        .iter()
        .filter_map(|(pattern, refused)| {
            Some(TestRunner {
                pattern: (*pattern).to_string(),
                command: CommandPattern::parse(pattern).ok()?,
                refused_args: refused
                    .iter()
                    .filter_map(|g| TextGlob::parse(g, 0).ok())
                    .collect(),
                origin: None,
            })
        })
        .collect()
}

/// Builtins that start no program and change nothing a test run depends on.
const NEUTRAL_BUILTINS: &[&str] = &[
    "cd", "pushd", "popd", "true", "false", ":", "echo", "printf", "pwd", "test", "[", "set",
    "export", "exit",
];

/// Wrappers that only change how their program runs; their program is a
/// part of its own, which must be a test runner.
const TRANSPARENT_WRAPPERS: &[&str] = &[
    "time",
    "timeout",
    "nice",
    "ionice",
    "chrt",
    "taskset",
    "nohup",
    "setsid",
    "stdbuf",
    "env",
    "command",
    "xvfb-run",
    "dbus-run-session",
];

/// `Ok` when every program `parts` start is a test runner; otherwise why not.
pub(crate) fn test_command(runners: &[TestRunner], parts: &[CommandPart]) -> Result<(), String> {
    let mut runs_tests = false;
    for (index, part) in parts.iter().enumerate() {
        let which = || format!("part {} (`{}`)", index + 1, part.display());
        if let Some(why) = part.dynamic_program {
            return Err(format!("{}: {why}", which()));
        }
        if let Some(a) = part
            .assignments
            .iter()
            .find(|a| !env::is_inert(&a.name, a.value.as_deref()))
        {
            return Err(format!(
                "{} runs with or sets `{}`, which can change what runs",
                which(),
                a.name
            ));
        }
        let Some(program) = part.words.first() else {
            continue;
        };
        let by_name = !program.contains('/');
        let name = part.program().unwrap_or_default();
        if by_name && NEUTRAL_BUILTINS.contains(&name) {
            continue;
        }
        if TRANSPARENT_WRAPPERS.contains(&name) {
            continue;
        }
        if runners.iter().any(|r| r.matches(&part.words)) {
            runs_tests = true;
            continue;
        }
        return Err(format!("{} is not a test runner", which()));
    }
    if runs_tests {
        Ok(())
    } else {
        Err("the line starts no test runner".into())
    }
}
