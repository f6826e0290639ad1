//! What one simple command starts besides itself: the bodies of shells,
//! `eval` and `trap`, the programs behind wrappers and `find -exec`; the
//! variables builtins set; and the builtins whose effect on what runs is
//! not analysed (which make the whole line unanalysable).

use super::lexer::split_into;
use super::word::{Word, is_name};
use super::{
    Assignment, AssignmentKind, CommandPart, Dialect, MAX_DEPTH, Redirect, program_name, wrappers,
};

const DYNAMIC: &str = "the program name is only known when the shell runs";
const PATTERN: &str = "the program name is a pattern the shell expands (a glob, braces or `~`)";

/// One simple command as read, before it becomes a [`CommandPart`].
#[derive(Debug, Clone)]
pub(crate) struct Simple {
    pub words: Vec<Word>,
    pub assignments: Vec<Assignment>,
    pub redirects: Vec<Redirect>,
    pub dialect: Dialect,
    /// Why the program is only known at run time, when its word alone does
    /// not say (`find -exec {}`, a wrapper's computed option).
    pub computed: Option<&'static str>,
    pub changes_directory: bool,
    /// The program also gets arguments read from input or found when it
    /// runs (`xargs`, `find -exec … {}`).
    pub args_from_input: bool,
    /// The text `find -exec` or `xargs -I` replaces in these words with
    /// file names or input (`{}`).
    pub fill: Option<String>,
}

impl Simple {
    pub fn new(
        words: Vec<Word>,
        assignments: Vec<Assignment>,
        redirects: Vec<Redirect>,
        dialect: Dialect,
    ) -> Simple {
        Simple {
            words,
            assignments,
            redirects,
            dialect,
            computed: None,
            changes_directory: false,
            args_from_input: false,
            fill: None,
        }
    }

    /// A command a wrapper or `find -exec` runs: its words only.
    pub fn wrapped(words: Vec<Word>, dialect: Dialect, computed: Option<&'static str>) -> Simple {
        Simple {
            computed,
            ..Simple::new(words, Vec::new(), Vec::new(), dialect)
        }
    }

    pub fn into_part(self) -> CommandPart {
        let dynamic_program = self.computed.or_else(|| match self.words.first() {
            Some(w) if w.dynamic => Some(DYNAMIC),
            Some(w) if w.pattern => Some(PATTERN),
            _ => None,
        });
        CommandPart {
            computed_args: self.args_from_input || self.words.iter().skip(1).any(Word::computed),
            words: self.words.into_iter().map(|w| w.text).collect(),
            dynamic_program,
            assignments: self.assignments,
            redirects: self.redirects,
            changes_directory: self.changes_directory,
            dialect: self.dialect,
        }
    }
}

/// Shells whose `-c` body is split, and in which dialect.
fn shell_dialect(name: &str) -> Option<Option<Dialect>> {
    match name {
        "bash" | "rbash" => Some(Some(Dialect::Bash)),
        "sh" | "dash" => Some(Some(Dialect::Posix)),
        // Shells whose language is not modelled: a `-c` body is refused.
        "zsh" | "ksh" | "ksh93" | "mksh" | "lksh" | "pdksh" | "ash" | "yash" | "posh" | "fish"
        | "csh" | "tcsh" | "es" | "rc" | "elvish" | "nu" | "xonsh" | "pwsh" => Some(None),
        _ => None,
    }
}

/// Builtins that change what later words run or run code the line does
/// not show, with why they are not analysed.
const UNANALYSED_BUILTINS: &[(&str, &str)] = &[
    (
        "source",
        "`source` runs the commands of a file the kernel cannot see",
    ),
    (".", "`.` runs the commands of a file the kernel cannot see"),
    (
        "alias",
        "an alias changes what a later command name runs; `alias` is not analysed",
    ),
    (
        "enable",
        "`enable` loads or disables builtins, changing what a name runs",
    ),
    (
        "shopt",
        "`shopt` changes how the shell reads and expands later lines",
    ),
    ("fc", "`fc` runs commands from the history"),
    ("history", "`history` edits the commands `fc` can run again"),
    (
        "compgen",
        "`compgen -C`/`-F` runs commands to complete words",
    ),
    ("complete", "`complete -C` registers commands to run"),
    ("bind", "`bind -x` registers commands to run"),
    (
        "let",
        "`let` evaluates arithmetic, which runs command substitutions found in variables",
    ),
    (
        "caller",
        "`caller` only has meaning in functions, which are not analysed",
    ),
];

/// Builtins the splitter reads for what they set or run.
const READ_BUILTINS: &[&str] = &[
    "eval",
    "trap",
    "set",
    "hash",
    "cd",
    "pushd",
    "popd",
    "export",
    "readonly",
    "declare",
    "typeset",
    "local",
    "read",
    "printf",
    "mapfile",
    "readarray",
    "getopts",
    "unset",
    "find",
];

/// Whether a program of this name is read specially (shells, builtins).
pub(crate) fn interprets(name: &str) -> bool {
    READ_BUILTINS.contains(&name)
        || UNANALYSED_BUILTINS.iter().any(|(n, _)| *n == name)
        || shell_dialect(name).is_some()
}

/// `set` options (single letters and `-o` names) that do not change how
/// the shell reads lines or what a name runs.
const SET_FLAGS: &str = "abefhmnuvxCEPT";
const SET_OPTIONS: &[&str] = &[
    "allexport",
    "braceexpand",
    "errexit",
    "errtrace",
    "functrace",
    "hashall",
    "ignoreeof",
    "monitor",
    "noclobber",
    "noexec",
    "noglob",
    "nolog",
    "notify",
    "nounset",
    "onecmd",
    "physical",
    "pipefail",
    "verbose",
    "xtrace",
];

/// The commands `simple` starts besides itself; may also record the
/// variables it sets and whether it changes directory. `Err` says why
/// the line cannot be analysed.
pub(crate) fn inner_commands(simple: &mut Simple, depth: usize) -> Result<Vec<Simple>, String> {
    let mut found = Vec::new();
    let Some(program) = simple.words.first() else {
        return Ok(found);
    };
    if program.computed() || simple.computed.is_some() {
        return Ok(found);
    }
    let by_name = !program.text.contains('/');
    let name = program_name(&program.text).to_string();
    let args: Vec<Word> = simple.words[1..].to_vec();
    let dialect = simple.dialect;
    let from_input = || {
        format!(
            "`{name}` gets arguments from input or file names, and runs what they say; not analysed"
        )
    };
    // `xargs eval`, `xargs sh` (no `-c` body), `xargs env` (no program):
    // what runs comes from input or file names.
    if simple.args_from_input
        && (matches!(name.as_str(), "eval" | "trap" | "source" | ".")
            || (shell_dialect(&name).is_some() && !has_c_body(&args)))
    {
        return Err(from_input());
    }
    if by_name {
        if let Some((_, why)) = UNANALYSED_BUILTINS.iter().find(|(n, _)| *n == name) {
            return Err((*why).to_string());
        }
        match name.as_str() {
            "eval" => {
                filled(simple.fill.as_deref(), &args, "eval")?;
                // `eval -- cmd`: the `--` ends eval's options.
                let args = match args.first() {
                    Some(first) if first.text == "--" && !first.computed() => &args[1..],
                    _ => &args[..],
                };
                let body = joined(args, "eval")?;
                split(&body, depth, dialect, &mut found)?;
                return Ok(found);
            }
            "trap" => {
                trap(&args, depth, dialect, &mut found)?;
                return Ok(found);
            }
            "set" => {
                set_options(&args)?;
                return Ok(found);
            }
            "hash"
                if args
                    .iter()
                    .any(|a| a.text.starts_with('-') && a.text.contains('p')) =>
            {
                return Err("`hash -p` changes which file a command name runs".into());
            }
            "cd" | "pushd" | "popd" => simple.changes_directory = true,
            "export" | "readonly" | "declare" | "typeset" | "local" => {
                declared(&name, &args, &mut simple.assignments)?;
            }
            "read" => read_names(&args, &mut simple.assignments)?,
            "printf" => {
                // `printf -v NAME` or `printf -vNAME`: the first word that
                // is not an option is the format.
                for (at, arg) in args.iter().enumerate() {
                    if arg.computed() {
                        return Err("`printf` with an expanded option is not analysed".into());
                    }
                    match arg.text.strip_prefix("-v") {
                        Some("") => {
                            builtin_name(args.get(at + 1), "printf -v", &mut simple.assignments)?;
                            break;
                        }
                        Some(name) => {
                            builtin_name(
                                Some(&Word::plain(name)),
                                "printf -v",
                                &mut simple.assignments,
                            )?;
                            break;
                        }
                        None if arg.text == "--" || !arg.text.starts_with('-') => break,
                        None => {}
                    }
                }
            }
            // `-v NAME[SUBSCRIPT]` evaluates the subscript as arithmetic.
            "test" | "["
                if args.iter().any(|a| a.text == "-v")
                    && args.iter().any(|a| a.text.contains('[') && a.text != "[") =>
            {
                return Err(
                    "`test -v` of an array element evaluates arithmetic; not analysed".into(),
                );
            }
            "wait"
                if args
                    .iter()
                    .any(|a| a.text.starts_with('-') && a.text.contains('p')) =>
            {
                return Err("`wait -p` sets a variable; not analysed".into());
            }
            "jobs"
                if args
                    .iter()
                    .any(|a| a.text.starts_with('-') && a.text.contains('x')) =>
            {
                return Err("`jobs -x` runs a command; not analysed".into());
            }
            "mapfile" | "readarray" => mapfile(&args, &mut simple.assignments)?,
            "getopts" => {
                builtin_name(args.get(1), "getopts", &mut simple.assignments)?;
            }
            "unset" => unset(&args, &mut simple.assignments)?,
            _ => {}
        }
    }
    if name == "ssh" {
        ssh_options(&args)?;
    }
    if let Some(shell) = shell_dialect(&name) {
        filled(simple.fill.as_deref(), &args, &format!("{name} -c"))?;
        shell_body(&name, shell, &args, depth, &mut found)?;
    } else if name == "find" {
        find_exec(&args, depth, dialect, &mut found)?;
    } else if let Some(known) = wrappers::lookup(&name, &args) {
        let (wrapper, skip) = match known {
            wrappers::Found::Refused(why) => return Err(why.to_string()),
            wrappers::Found::Wrapper(wrapper, skip) => (wrapper, skip),
        };
        let unwrapped = wrappers::unwrap(wrapper, &args[skip..], dialect)?;
        // On the wrapper's own part they are arguments it acts on.
        simple
            .assignments
            .extend(unwrapped.assignments.iter().cloned().map(|mut a| {
                a.kind = AssignmentKind::Builtin;
                a
            }));
        simple.changes_directory |= unwrapped.changes_directory;
        match unwrapped.run {
            wrappers::Runs::Nothing if simple.args_from_input => return Err(from_input()),
            wrappers::Runs::Nothing => {}
            wrappers::Runs::Command(mut inner) => {
                inner.args_from_input |= simple.args_from_input;
                if inner.fill.is_none() {
                    inner.fill = simple.fill.clone();
                }
                push_with_inner(inner, depth, &mut found)?;
            }
            wrappers::Runs::ShellLine(body) => split(&body, depth, Dialect::Posix, &mut found)?,
        }
    }
    Ok(found)
}

/// Splits a body (of `eval`, `trap`, `sh -c`, …) nested one level deeper.
fn split(
    body: &str,
    depth: usize,
    dialect: Dialect,
    found: &mut Vec<Simple>,
) -> Result<(), String> {
    split_into(body, depth + 1, dialect, found).map_err(|e| e.message)
}

/// The words of a command another command runs (`find -exec`, a wrapper),
/// with what they start in turn.
pub(crate) fn push_with_inner(
    mut command: Simple,
    depth: usize,
    found: &mut Vec<Simple>,
) -> Result<(), String> {
    if depth >= MAX_DEPTH {
        return Err("the command nests too deeply".into());
    }
    if command.computed.is_none()
        && let (Some(fill), Some(program)) = (command.fill.as_deref(), command.words.first())
        && program.text.contains(fill)
    {
        command.computed = Some("the program word is filled in with file names or input");
    }
    let inner = inner_commands(&mut command, depth + 1)?;
    found.push(command);
    found.extend(inner);
    Ok(())
}

/// A body another program fills in with file names or input (`find -exec
/// sh -c 'touch {}'`): what it runs depends on names the line does not show.
fn filled(fill: Option<&str>, args: &[Word], what: &str) -> Result<(), String> {
    match fill {
        Some(fill) if args.iter().any(|a| a.text.contains(fill)) => Err(format!(
            "the text `{what}` runs is filled in with file names or input (`{fill}`), so it is only known when it runs"
        )),
        _ => Ok(()),
    }
}

/// The words joined with spaces as `eval` does; a computed word makes the
/// text unknown.
fn joined(args: &[Word], what: &str) -> Result<String, String> {
    if args.iter().any(Word::computed) {
        return Err(format!(
            "the text `{what}` runs holds an expansion, so it is only known when the shell runs"
        ));
    }
    Ok(args
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" "))
}

/// `trap ACTION CONDITION…`: the action is a command line run later.
fn trap(
    args: &[Word],
    depth: usize,
    dialect: Dialect,
    found: &mut Vec<Simple>,
) -> Result<(), String> {
    let mut args = args;
    let mut ended = false;
    if args.first().is_some_and(|a| a.text == "--") {
        args = &args[1..];
        ended = true;
    }
    let Some(action) = args.first() else {
        return Ok(());
    };
    if !ended && action.text.starts_with('-') && !action.computed() && action.text != "-" {
        // `-p`, `-l`, `-P`: print only.
        return Ok(());
    }
    if args.len() < 2 || action.text == "-" || (action.text.is_empty() && !action.computed()) {
        return Ok(());
    }
    let body = joined(std::slice::from_ref(action), "trap")?;
    split(&body, depth, dialect, found)
}

/// `set`'s options must not change how lines are read.
fn set_options(args: &[Word]) -> Result<(), String> {
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.computed() {
            return Err("`set` with an expanded option is not analysed".into());
        }
        let text = arg.text.as_str();
        if text == "--" || text == "-" || !(text.starts_with('-') || text.starts_with('+')) {
            return Ok(());
        }
        for (j, flag) in text[1..].char_indices() {
            if flag == 'o' {
                let value = if j + 2 < text.len() {
                    None
                } else {
                    i += 1;
                    args.get(i)
                };
                match value {
                    // `set -o` alone lists the options.
                    None if j + 2 >= text.len() => {}
                    Some(v) if !v.computed() && SET_OPTIONS.contains(&v.text.as_str()) => {}
                    _ => {
                        return Err(format!(
                            "`set -o {}` is not analysed (it may change how the shell reads lines)",
                            value.map_or("", |v| v.text.as_str())
                        ));
                    }
                }
                break;
            }
            if !SET_FLAGS.contains(flag) {
                return Err(format!(
                    "`set -{flag}` is not analysed (it may change how the shell reads lines)"
                ));
            }
        }
        i += 1;
    }
    Ok(())
}

/// A variable a builtin sets, named by `word`.
fn builtin_name(
    word: Option<&Word>,
    builtin: &str,
    out: &mut Vec<Assignment>,
) -> Result<(), String> {
    let Some(word) = word else {
        return Ok(());
    };
    if word.computed() || !is_name(&word.text) {
        return Err(format!(
            "the variable `{builtin}` sets is only known when the shell runs, or is an array element"
        ));
    }
    out.push(Assignment {
        name: word.text.clone(),
        text: word.text.clone(),
        value: None,
        kind: AssignmentKind::Builtin,
    });
    Ok(())
}

/// `export`, `declare`, `local`, …: `NAME=value` arguments set variables;
/// integer (`-i`) and reference (`-n`) attributes make later assignments
/// evaluate arithmetic or write another variable, so they are refused.
fn declared(builtin: &str, args: &[Word], out: &mut Vec<Assignment>) -> Result<(), String> {
    let mut options = true;
    for arg in args {
        let text = arg.text.as_str();
        if options && !arg.computed() && (text.starts_with('-') || text.starts_with('+')) {
            if text == "--" {
                options = false;
                continue;
            }
            if text[1..].contains(['i', 'n', 'I']) && builtin != "export" {
                return Err(format!(
                    "`{builtin} {text}` gives a variable an attribute that runs code or writes another variable; not analysed"
                ));
            }
            continue;
        }
        options = false;
        if arg.arithmetic_subscript() {
            return Err(format!(
                "`{builtin}` of an array element evaluates its subscript as arithmetic; not analysed"
            ));
        }
        if let Some(mut a) = arg.assignment(Dialect::Bash, AssignmentKind::Builtin) {
            a.kind = AssignmentKind::Builtin;
            out.push(a);
        } else if arg.computed() || !is_name(text) {
            return Err(format!(
                "the variable `{builtin}` sets is only known when the shell runs, or is an array element"
            ));
        }
    }
    Ok(())
}

/// `read [-a NAME] [options] [NAME…]`.
fn read_names(args: &[Word], out: &mut Vec<Assignment>) -> Result<(), String> {
    const WITH_VALUE: &str = "adinNptu";
    let mut i = 0;
    while i < args.len() {
        let text = args[i].text.as_str();
        if text == "--" {
            i += 1;
            break;
        }
        if !text.starts_with('-') || text.len() < 2 || args[i].computed() {
            break;
        }
        let flags = &text[1..];
        if let Some(pos) = flags.find(|c| WITH_VALUE.contains(c)) {
            let attached = pos + 1 < flags.len();
            if flags.as_bytes()[pos] == b'a' {
                let name = if attached { None } else { args.get(i + 1) };
                if attached {
                    return Err("`read -aNAME` is not analysed".into());
                }
                builtin_name(name, "read -a", out)?;
            }
            i += if attached { 1 } else { 2 };
        } else {
            i += 1;
        }
    }
    for name in &args[i.min(args.len())..] {
        builtin_name(Some(name), "read", out)?;
    }
    Ok(())
}

/// `mapfile [options] [NAME]`; `-C` runs a callback.
fn mapfile(args: &[Word], out: &mut Vec<Assignment>) -> Result<(), String> {
    const WITH_VALUE: &str = "dnOsuCc";
    let mut i = 0;
    while i < args.len() {
        let text = args[i].text.as_str();
        if args[i].computed() {
            return Err("`mapfile` with an expanded option is not analysed".into());
        }
        if !text.starts_with('-') || text.len() < 2 {
            break;
        }
        if text.contains('C') {
            return Err("`mapfile -C` runs a callback; not analysed".into());
        }
        let flags = &text[1..];
        i += match flags.find(|c| WITH_VALUE.contains(c)) {
            Some(pos) if pos + 1 == flags.len() => 2,
            _ => 1,
        };
    }
    builtin_name(args.get(i), "mapfile", out)
}

/// `unset [-v|-f|-n] NAME…`: unsetting a variable changes the environment
/// as setting it does.
fn unset(args: &[Word], out: &mut Vec<Assignment>) -> Result<(), String> {
    let mut functions = false;
    for arg in args {
        match arg.text.as_str() {
            "-f" => functions = true,
            "-v" | "--" => {}
            "-n" => {
                return Err("`unset -n` writes through a reference; not analysed".into());
            }
            _ if functions => {}
            _ => builtin_name(Some(arg), "unset", out)?,
        }
    }
    Ok(())
}

/// `ssh`: the remote command runs remotely, but options can run local
/// commands (`-o ProxyCommand=…`, `LocalCommand`, `KnownHostsCommand`) or
/// read a configuration that does (`-F`), bundled (`-vo`) and even after
/// the destination: any `-o` or `-F`, anywhere, is not analysed.
fn ssh_options(args: &[Word]) -> Result<(), String> {
    for arg in args {
        let text = arg.text.as_str();
        let option = text.starts_with('-') && !text.starts_with("--");
        if arg.computed()
            || text.to_ascii_lowercase().contains("command")
            || (option && text[1..].contains(['o', 'F']))
        {
            return Err(format!(
                "`ssh {text}` can run local commands through its configuration; not analysed"
            ));
        }
    }
    Ok(())
}

/// Shell options that make a shell run files besides its `-c` body.
fn shell_option_refused(option: &str) -> bool {
    matches!(
        option,
        "--login" | "--rcfile" | "--init-file" | "--posix" | "--debugger" | "--dump-po-strings"
    )
}

/// Whether a shell's words give it a `-c` body of their own.
fn has_c_body(args: &[Word]) -> bool {
    args.iter()
        .position(|a| a.text.starts_with('-') && !a.text.starts_with("--") && a.text.contains('c'))
        .is_some_and(|at| at + 1 < args.len())
}

/// `bash -c BODY`, `sh -c BODY`: the body is split in the shell's dialect;
/// other shells' bodies are refused.
fn shell_body(
    name: &str,
    dialect: Option<Dialect>,
    args: &[Word],
    depth: usize,
    found: &mut Vec<Simple>,
) -> Result<(), String> {
    let mut has_c = false;
    let mut refused: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let text = arg.text.as_str();
        if arg.computed() {
            refused.get_or_insert_with(|| format!("`{name}` has an expanded option"));
            i += 1;
            continue;
        }
        if text == "--" || text == "-" {
            i += 1;
            break;
        }
        if text.starts_with("--") {
            if shell_option_refused(text) {
                refused.get_or_insert_with(|| format!("`{name} {text}` reads start-up files"));
            }
            // `--rcfile FILE`, `--init-file FILE` take a value.
            i += if matches!(text, "--rcfile" | "--init-file") {
                2
            } else {
                1
            };
            continue;
        }
        if (text.starts_with('-') || text.starts_with('+')) && text.len() > 1 {
            let mut values = Vec::new();
            for flag in text[1..].chars() {
                match flag {
                    'c' if text.starts_with('-') => has_c = true,
                    'o' | 'O' => values.push(flag),
                    'l' | 'i' => {
                        refused.get_or_insert_with(|| {
                            format!("`{name} -{flag}` reads start-up files the kernel cannot see")
                        });
                    }
                    's' | 'c' => {}
                    f if SET_FLAGS.contains(f) => {}
                    _ => {
                        refused.get_or_insert_with(|| {
                            format!(
                                "`{name} -{flag}` is not analysed (it may change how the shell reads lines)"
                            )
                        });
                    }
                }
            }
            for (k, flag) in values.iter().enumerate() {
                let option = args.get(i + 1 + k);
                // `-o NAME` sets a `set` option; `-O NAME` a `shopt` one.
                let known = *flag == 'o'
                    && option
                        .is_some_and(|o| !o.computed() && SET_OPTIONS.contains(&o.text.as_str()));
                if !known {
                    refused.get_or_insert_with(|| {
                        format!(
                            "`{name} -{flag} {}` is not analysed (it may change how the shell reads lines)",
                            option.map_or("", |o| o.text.as_str())
                        )
                    });
                }
            }
            i += 1 + values.len();
            continue;
        }
        break;
    }
    if !has_c {
        // A script file or standard input: decided as the program itself.
        return Ok(());
    }
    if let Some(why) = refused {
        return Err(why);
    }
    let Some(dialect) = dialect else {
        return Err(format!(
            "the body of `{name} -c` is not analysed: only bash and sh (dash) are modelled"
        ));
    };
    let Some(body) = args.get(i) else {
        return Ok(());
    };
    let body = joined(std::slice::from_ref(body), &format!("{name} -c"))?;
    split(&body, depth, dialect, found)
}

/// `find … -exec CMD … ;` (and `-execdir`, `-ok`, `-okdir`).
fn find_exec(
    args: &[Word],
    depth: usize,
    dialect: Dialect,
    found: &mut Vec<Simple>,
) -> Result<(), String> {
    let mut i = 0;
    while i < args.len() {
        if matches!(
            args[i].text.as_str(),
            "-exec" | "-execdir" | "-ok" | "-okdir"
        ) {
            // `;` ends the command; `+` only right after `{}`.
            let end = (i + 1..args.len())
                .find(|&k| {
                    args[k].text == ";"
                        || (args[k].text == "+" && k > i + 1 && args[k - 1].text == "{}")
                })
                .unwrap_or(args.len());
            let inner = args[i + 1..end].to_vec();
            if let Some(program) = inner.first() {
                let computed = program
                    .text
                    .contains("{}")
                    .then_some("`{}` in the program is replaced by each file `find` finds");
                let mut inner = Simple::wrapped(inner, dialect, computed);
                if inner.words.iter().any(|w| w.text.contains("{}")) {
                    inner.args_from_input = true;
                    inner.fill = Some("{}".into());
                }
                push_with_inner(inner, depth, found)?;
            }
            i = end;
        }
        i += 1;
    }
    Ok(())
}
