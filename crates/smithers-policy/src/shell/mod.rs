//! Splits a shell command line into every program it would start.
//!
//! The kernel decides every part of a compound command, so this module's
//! job is to find every program a line could start: the members of lists
//! and pipelines (`&&`, `||`, `;`, `|`, `&`, newlines), subshells and
//! groups, command and process substitutions (`$(…)`, backticks, `<(…)`),
//! the bodies of `bash -c`/`sh -c`, `eval` and `trap`, and the commands
//! behind wrappers such as `env`, `timeout`, `nice`, `sudo`, `xargs` or
//! `find -exec` (each wrapper's own options skipped the way it parses
//! them). Quotes and escapes are removed the way the shell removes them.
//! Alongside each program it reports what the kernel also decides on: the
//! variables the command runs with or sets ([`Assignment`]), the files its
//! redirections open ([`Redirect`]), whether the program name is only
//! computed when the shell runs, and whether it changes the directory.
//!
//! Two dialects are modelled exactly where they differ in what runs:
//! [`Dialect::Bash`] (how Smithers runs every command) and
//! [`Dialect::Posix`] (Debian's `/bin/sh`, dash, for `sh -c` bodies). The
//! bodies of other shells are not analysed. Anything this module does not
//! understand for certain (loops with `for` and `case`, arithmetic,
//! functions, aliases, `source`, unterminated quotes, …) is an error: the
//! kernel then asks a human rather than guess. The claim that the programs
//! the shell really starts are among those reported is tested against the
//! real bash and dash (`tests/shell_oracle.rs`).

mod commands;
mod lexer;
mod word;
mod wrappers;

use std::fmt;

pub use wrappers::wrapper_names;

/// How deeply substitutions, subshells and `sh -c` bodies may nest.
const MAX_DEPTH: usize = 16;
/// Longest command line analysed.
const MAX_LEN: usize = 64 * 1024;
/// Most simple commands one line may expand to.
const MAX_PARTS: usize = 256;

/// The shell language a line is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// GNU bash, as `bash -c` runs a line (no aliases, no history).
    Bash,
    /// A POSIX shell as Debian's `/bin/sh` (dash 0.5) reads a line: no
    /// `$'…'`, `&>`, `<(…)`, brace expansion, arrays or `time` keyword.
    Posix,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Bash => "bash",
            Dialect::Posix => "sh (dash)",
        }
    }
}

/// How a variable comes to be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentKind {
    /// `NAME=value cmd`, or `env`/`sudo`'s `NAME=value` arguments: the
    /// command runs with it.
    Prefix,
    /// A line of assignments only: set for the rest of the line.
    Statement,
    /// Set (or unset) by a builtin: `export`, `declare`, `local`, `read`,
    /// `printf -v`, `unset`, `env -u`, …
    Builtin,
}

/// A variable the command runs with, or sets for what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub name: String,
    /// The word as written, quotes removed (`PATH=/x:$PATH`), or the
    /// name alone when the value is not given on the line (`read NAME`,
    /// `unset NAME`).
    pub text: String,
    /// The value as written, `None` when it comes from input or the
    /// variable is unset.
    pub value: Option<String>,
    pub kind: AssignmentKind,
}

/// What a redirection does to its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `<`, `<&FILE`: the file is read.
    Read,
    /// `>`, `>>`, `>|`, `&>`, `&>>`, `>&FILE`, `<>`: the file is written
    /// (created, truncated or appended to).
    Write,
}

/// A file a redirection opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The operator as written, with its file descriptor (`2>`, `&>>`).
    pub operator: String,
    /// The target, quotes removed.
    pub target: String,
    pub access: Access,
    /// The target holds an expansion, a glob or a `~`: the file is only
    /// known when the shell runs.
    pub computed: bool,
}

/// One program the command line would start (or one builtin it runs, or
/// a line of assignments or redirections only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandPart {
    /// The words after quote removal; the first is the program. Empty for
    /// a part that only assigns or redirects.
    pub words: Vec<String>,
    /// Why the program is only known when the shell runs (`$CMD`, a glob,
    /// `find -exec {}`, …), if it is.
    pub dynamic_program: Option<&'static str>,
    /// Some argument holds an expansion or a glob, or the program gets
    /// arguments from input (`xargs`, `find -exec … {}`): the arguments it
    /// receives are only known when it runs.
    pub computed_args: bool,
    /// Variables the command runs with or sets.
    pub assignments: Vec<Assignment>,
    /// Files its redirections open.
    pub redirects: Vec<Redirect>,
    /// It changes the working directory (`cd`, `pushd`, `env -C`, …), so
    /// relative paths elsewhere on the line are not known.
    pub changes_directory: bool,
    /// The dialect the part was read in.
    pub dialect: Dialect,
}

impl CommandPart {
    /// The words joined for display, each quoted when the shell would need
    /// it, with the assignments first.
    pub fn display(&self) -> String {
        self.assignments
            .iter()
            .filter(|a| a.kind != AssignmentKind::Builtin)
            .map(|a| a.text.as_str())
            .chain(self.words.iter().map(String::as_str))
            .map(quote_word)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The program's name (last path component), if it has a program.
    pub fn program(&self) -> Option<&str> {
        self.words.first().map(|w| program_name(w))
    }
}

fn quote_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%*?{}[]~^".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A command line the splitter cannot analyse with certainty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellError {
    /// Byte offset in the command line where the problem was found.
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for ShellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

/// Splits `line`, read as bash reads it, into the simple commands it
/// would run, in order.
pub fn split_command(line: &str) -> Result<Vec<CommandPart>, ShellError> {
    split_command_as(line, Dialect::Bash)
}

/// Splits `line`, read in `dialect`, into the simple commands it would run.
pub fn split_command_as(line: &str, dialect: Dialect) -> Result<Vec<CommandPart>, ShellError> {
    if line.len() > MAX_LEN {
        return Err(ShellError {
            offset: MAX_LEN,
            message: format!("the command is longer than {MAX_LEN} bytes"),
        });
    }
    let mut out = Vec::new();
    lexer::split_into(line, 0, dialect, &mut out)?;
    Ok(out.into_iter().map(commands::Simple::into_part).collect())
}

/// Whether the splitter reads a program of this name specially: a shell,
/// a wrapper, `find`, or a builtin that runs, sets or refuses something.
pub fn interprets(name: &str) -> bool {
    commands::interprets(name) || wrapper_names().any(|w| w.split(' ').next() == Some(name))
}

/// The last path component of a program word: `/usr/bin/rm` runs `rm`.
pub fn program_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

#[cfg(test)]
mod tests;
