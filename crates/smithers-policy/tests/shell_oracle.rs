//! The splitter against the real shells: generated lines — lists,
//! pipelines, quotes of every kind, substitutions, wrappers with their own
//! options, shell bodies, redirections, keywords, then mutated with stray
//! quotes, backslashes and operators — run through the splitter and
//! through bash (or dash) with every program replaced by a recorder. Every
//! program the shell really starts must be one the splitter reported
//! (see `oracle/mod.rs`). Bounded here; `fuzz/fuzz_targets/shell_oracle.rs`
//! runs it without bound.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

mod oracle;

use std::sync::OnceLock;

use proptest::prelude::*;
use smithers_policy::shell::Dialect;

use oracle::{Oracle, Skipped};

fn oracle() -> &'static Oracle {
    static ORACLE: OnceLock<Oracle> = OnceLock::new();
    ORACLE.get_or_init(|| {
        Oracle::new().unwrap_or_else(|why| {
            panic!("the shell oracle needs bubblewrap, bash and dash ({why}); scripts/test installs them")
        })
    })
}

/// Runs `line` and fails with everything both sides saw if the shell
/// started a program the splitter did not report.
fn check(line: &str, dialect: Dialect) -> Result<bool, TestCaseError> {
    match oracle().run(line, dialect) {
        Err(Skipped::Unanalysable(_)) | Err(Skipped::Asks) => Ok(false),
        Ok(run) => {
            let unexpected = run.unexpected();
            prop_assert!(
                unexpected.is_empty(),
                "{} started programs the splitter did not report:\n  line: {:?}\n  unreported: {:#?}\n  every exec: {:#?}\n  parts: {:#?}",
                dialect.name(),
                line,
                unexpected,
                run.execs,
                run.parts.iter().map(|p| p.display()).collect::<Vec<_>>()
            );
            Ok(true)
        }
    }
}

const PROGRAMS: &[&str] = &[
    "touch",
    "rm",
    "id",
    "ls",
    "git",
    "curl",
    "cat",
    "cp",
    "true",
    "false",
    "/usr/bin/touch",
    "/bin/id",
    "./x",
    "tou?h",
    "/usr/bin/t[o]uch",
    "{touch,id}",
    "echo",
    "printf",
    ":",
];
const ARGS: &[&str] = &[
    "F", "-p", "-n", "5", "--", "-rf", "a", "b.txt", "*", "dir/*", "x=1", "-c", "'a b'", "\"q\"",
    "$HOME", "~", "{}", ";", "'-s'",
];
const WRAPPERS: &[&str] = &[
    "env",
    "env -i",
    "env -u HOME",
    "env A=1",
    "env -- ",
    "timeout 5",
    "timeout -k 1 5",
    "timeout --k=1 5",
    "timeout -s KILL 5",
    "nice",
    "nice -n 5",
    "nice -n5",
    "nice --adjustment=3",
    "nohup",
    "setsid",
    "setsid -f",
    "stdbuf -oL",
    "stdbuf -o 0",
    "time",
    "time -p",
    "time -p --",
    "/usr/bin/time",
    "command",
    "command -p",
    "builtin",
    "exec",
    "exec -a name",
    "xargs",
    "xargs -n 1",
    "xargs -I{}",
    "ionice -c 3",
    "taskset -c 0",
    "setarch x86_64 -R",
    "setarch -R",
    "flock /tmp/l",
    "flock -w 1 /tmp/l",
    "!",
];

fn word() -> impl Strategy<Value = String> {
    (prop::sample::select(ARGS), 0usize..4).prop_map(|(w, quote)| match quote {
        0 => format!("'{w}'"),
        1 => format!("\"{w}\""),
        _ => w.to_string(),
    })
}

fn program() -> impl Strategy<Value = String> {
    (prop::sample::select(PROGRAMS), 0usize..7).prop_map(|(p, quote)| match quote {
        0 => format!("'{p}'"),
        1 => format!("\"{p}\""),
        2 => format!("$'{p}'"),
        3 if p.len() > 1 => format!("{}\\{}", &p[..1], &p[1..]),
        _ => p.to_string(),
    })
}

fn simple() -> impl Strategy<Value = String> {
    (
        prop::option::of(prop::sample::select(&["A=1 ", "LANG=C.UTF-8 ", "X= "][..])),
        prop::collection::vec(prop::sample::select(WRAPPERS), 0..3),
        program(),
        prop::collection::vec(word(), 0..3),
        prop::option::of(prop::sample::select(
            &[
                " > f",
                " 2>&1",
                " < a",
                " >> f",
                " &> f",
                " 2>/dev/null",
                " <<< x",
            ][..],
        )),
    )
        .prop_map(|(assign, wrappers, program, args, redirect)| {
            let mut line = assign.unwrap_or_default().to_string();
            for w in wrappers {
                line.push_str(w);
                line.push(' ');
            }
            line.push_str(&program);
            for a in args {
                line.push(' ');
                line.push_str(&a);
            }
            line.push_str(redirect.unwrap_or_default());
            line
        })
}

fn command() -> impl Strategy<Value = String> {
    simple().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(&[" ; ", " && ", " || ", " | ", " & ", "\n", " |& "][..]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a}{op}{b}")),
            inner.clone().prop_map(|c| format!("( {c} )")),
            inner.clone().prop_map(|c| format!("{{ {c}; }}")),
            inner.clone().prop_map(|c| format!("echo $( {c} )")),
            inner.clone().prop_map(|c| format!("echo `{c}`")),
            inner.clone().prop_map(|c| format!("cat <( {c} )")),
            inner.clone().prop_map(|c| format!("if {c}; then {c}; fi")),
            inner
                .clone()
                .prop_map(|c| format!("while false; do {c}; done")),
            inner
                .clone()
                .prop_map(|c| format!("sh -c '{}'", c.replace('\'', "'\\''"))),
            inner
                .clone()
                .prop_map(|c| format!("bash -c \"{}\"", c.replace(['"', '\\', '$', '`'], ""))),
            inner
                .clone()
                .prop_map(|c| format!("dash -ec '{}'", c.replace('\'', ""))),
            inner
                .clone()
                .prop_map(|c| format!("eval '{}'", c.replace('\'', ""))),
            inner
                .clone()
                .prop_map(|c| format!("trap '{}' EXIT", c.replace('\'', ""))),
            inner.clone().prop_map(|c| format!(
                "find . -name a -exec {} \\;",
                c.replace(['\n', ';', '&', '|'], " ")
            )),
            inner
                .clone()
                .prop_map(|c| format!("{c} # ; touch COMMENTED")),
            inner.prop_map(|c| format!("cat <<EOF\n{}\nEOF\nid", c.replace(['$', '`'], ""))),
        ]
    })
}

/// A generated line with stray characters inserted: quotes, backslashes,
/// `$`, `#`, operators — what makes two parsers part ways.
fn mutated() -> impl Strategy<Value = String> {
    (
        command(),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop::sample::select(
                    &[
                        "'", "\"", "\\", "$", "#", ";", "&", "|", "`", "(", ")", "{", "}", " ",
                        "\n", "$'", "\\'", "$\"", "<", ">", "!", "*", "~", "=", "$(", "'\\''",
                        "\r", "$[", "<<", "\\\n", "[", "]",
                    ][..],
                ),
            ),
            0..4,
        ),
    )
        .prop_map(|(mut line, inserts)| {
            for (at, text) in inserts {
                let boundaries: Vec<usize> = (0..=line.len())
                    .filter(|i| line.is_char_boundary(*i))
                    .collect();
                let at = boundaries[at.index(boundaries.len())];
                line.insert_str(at, text);
            }
            line
        })
}

/// Lines from the issue reports and their siblings, checked every time.
const KNOWN: &[&str] = &[
    r"echo $'\' ; touch /tmp/w/PWNED ; id ; # '",
    r#"sh -c "echo \$'\\' ; touch /tmp/w/PWNED ; id ; # '""#,
    "time -p touch F",
    "/usr/bin/time -p touch F",
    "nice -n 5 touch F",
    "timeout -k 1 5 touch F",
    "timeout --k=1 5 touch F",
    "env -u HOME -- touch F",
    "stdbuf -o 0 touch F",
    "setarch -R touch F",
    "setarch x86_64 -R touch F",
    "flock -w 1 /tmp/l touch F",
    "xargs -n 1 touch < a",
    "find . -name a -exec touch {} \\;",
    "find . -name a -exec touch {} +",
    "echo x &> f; touch F",
    "a=$(id) ; touch F",
    "command -p touch F",
    "builtin exec -a x touch F",
    "! time -p -- touch F",
    "eval 'touch F; id'",
    "trap 'touch F' EXIT; id",
    "dash -c 'echo $'\"'\"'\\'\"'\"' ; id'",
    "cat <<EOF\n$(id)\nEOF",
    "cat <<'EOF'\n$(id)\nEOF\ntouch F",
    "echo \\\n; id",
    "echo hi\r# ; touch F",
    "TERM=xterm\recho touch F",
    "cat <<X\r\nX\r\ntouch F\nX",
    "echo \"$\\\n(touch F)\"",
    "trap -- '-x; touch F' EXIT",
    "env --split-s='touch F' x",
    "env -- A=1 touch F",
    "eval -- touch F",
    "find . -name a -exec touch + \\; -o -exec touch G {} +",
    "xargs --max-lines touch echo pwn < a",
    "strace --summary touch true -rf x",
    "cargo test $(: <<EOF)\n: <<Z\nEOF\ntouch F\nZ",
    // A line continuation inside backquotes goes before the body is read
    // again, even inside its single quotes.
    "( echo `r\\m '\\\nb.txt' 'dir/*'` )",
];

#[test]
fn known_lines_start_only_what_the_splitter_reports() {
    let mut compared = 0;
    for line in KNOWN {
        for dialect in [Dialect::Bash, Dialect::Posix] {
            if check(line, dialect).unwrap() {
                compared += 1;
            }
        }
    }
    assert!(
        compared >= KNOWN.len(),
        "only {compared} lines were compared"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_lines_start_only_what_the_splitter_reports(line in command(), posix in any::<bool>()) {
        let dialect = if posix { Dialect::Posix } else { Dialect::Bash };
        check(&line, dialect)?;
    }

    #[test]
    fn mutated_lines_start_only_what_the_splitter_reports(line in mutated(), posix in any::<bool>()) {
        let dialect = if posix { Dialect::Posix } else { Dialect::Bash };
        check(&line, dialect)?;
    }
}
