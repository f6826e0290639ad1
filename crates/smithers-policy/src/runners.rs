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
//! program known only at run time, arguments known only at run time) is
//! decided as `run_command`.

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
    /// Arguments (before a `--`) that make the runner start another
    /// program or load code from elsewhere (cargo's `--config
    /// target.….runner=…`, go's `-exec`, make's `SHELL=…`): with one of
    /// them the line is not a test run.
    pub(crate) refused_args: Vec<(String, TextGlob)>,
    /// Where a policy named it; `None` for the built-in ones.
    pub origin: Option<Origin>,
}

impl TestRunner {
    /// Whether `words` run this test runner, with no refused argument
    /// before a `--`.
    pub(crate) fn matches(&self, words: &[String]) -> bool {
        self.command.matches(words)
            && !words
                .iter()
                .skip(1)
                .take_while(|w| *w != "--")
                .any(|w| self.refuses(w))
    }

    /// A refused `--option*` also refuses its abbreviations
    /// (`--node-opt` for `--node-options`), which npm and getopt_long
    /// accept.
    fn refuses(&self, word: &str) -> bool {
        self.refused_args.iter().any(|(raw, glob)| {
            if glob.matches(word) {
                return true;
            }
            let name = word.split('=').next().unwrap_or(word);
            let refused = raw.split('*').next().unwrap_or(raw);
            name.starts_with("--")
                && name.len() >= 4
                && refused.starts_with("--")
                && refused.starts_with(name)
        })
    }
}

const PYTEST: &[&str] = &[
    "-p*",
    "-c*",
    "--config-file*",
    "--rootdir*",
    "--confcutdir*",
    "-o*",
    "--override-ini*",
];
const MAKE: &[&str] = &[
    "*=*",
    "--eval*",
    "-E*",
    "-f*",
    "--file*",
    "--makefile*",
    "-C*",
    "--directory*",
    "-I*",
    "--include-dir*",
];
const GRADLE: &[&str] = &[
    "-I*",
    "--init-script*",
    "-D*",
    "--system-prop*",
    "-p*",
    "--project-dir*",
    "-c*",
    "--settings-file*",
    "-g*",
    "--gradle-user-home*",
    "-b*",
    "--build-file*",
];
const RSPEC: &[&str] = &["-r*", "--require*", "-I*", "--options*"];
/// npm, yarn and pnpm read any option as configuration (a script shell,
/// node's options, another .npmrc): none before `--`.
const NODE: &[&str] = &["-*"];

/// The built-in test runners, with the arguments that make each start
/// another program or load code from elsewhere.
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
            "--vettool*",
            "-overlay*",
            "--overlay*",
        ],
    ),
    ("npm test *", NODE),
    ("npm run test *", NODE),
    ("yarn test *", NODE),
    ("pnpm test *", NODE),
    ("pytest *", PYTEST),
    ("python -m pytest *", PYTEST),
    ("python3 -m pytest *", PYTEST),
    ("make test *", MAKE),
    ("make check *", MAKE),
    (
        "ctest *",
        &[
            "-S*",
            "--script*",
            "-SP*",
            "--build-and-test*",
            "--test-command*",
            "--test-dir*",
            "-D*",
        ],
    ),
    (
        "mvn test *",
        &[
            "-D*",
            "--define*",
            "-f*",
            "--file*",
            "-s*",
            "--settings*",
            "-gs*",
            "--global-settings*",
        ],
    ),
    ("gradle test *", GRADLE),
    ("./gradlew test *", GRADLE),
    ("bundle exec rspec *", RSPEC),
    ("rspec *", RSPEC),
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
                    .filter_map(|g| Some(((*g).to_string(), TextGlob::parse(g, 0).ok()?)))
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

/// Wrappers that only change how their program runs (and write no file
/// of their own); their program is a part of its own, which must be a test
/// runner. (The `time` keyword is not a part at all.)
const TRANSPARENT_WRAPPERS: &[&str] = &[
    "timeout", "nice", "ionice", "chrt", "taskset", "nohup", "setsid", "stdbuf", "env", "command",
];

/// Directories whose programs are taken by name.
const SYSTEM_BIN_DIRS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
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
        let system = program
            .rsplit_once('/')
            .is_some_and(|(dir, _)| SYSTEM_BIN_DIRS.contains(&dir));
        let name = part.program().unwrap_or_default();
        if by_name && NEUTRAL_BUILTINS.contains(&name) {
            continue;
        }
        if (by_name || system) && TRANSPARENT_WRAPPERS.contains(&name) {
            continue;
        }
        if part.computed_args {
            return Err(format!(
                "{}: its arguments are only known when it runs",
                which()
            ));
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
