//! Splits a shell command line into the simple commands it would run.
//!
//! The kernel decides every part of a compound command, so this module's
//! job is to find every program a line could start: the members of lists
//! and pipelines (`&&`, `||`, `;`, `|`, `&`, newlines), subshells and
//! groups, command and process substitutions (`$(…)`, backticks, `<(…)`),
//! the bodies of `sh -c`/`bash -c`, `eval` and `env -S`, and the commands
//! behind wrappers such as `env`, `timeout`, `sudo`, `xargs` or
//! `find -exec`. Quotes and escapes are removed the way the shell removes
//! them, leading `NAME=value` assignments and redirections are dropped.
//!
//! Anything this module does not understand for certain (loops with `for`
//! and `case`, arithmetic, functions, unterminated quotes) is an error: the
//! kernel then asks a human rather than guess.

use std::fmt;

/// How deeply substitutions, subshells and `sh -c` bodies may nest.
const MAX_DEPTH: usize = 16;
/// Longest command line analysed.
const MAX_LEN: usize = 64 * 1024;
/// Most simple commands one line may expand to.
const MAX_PARTS: usize = 256;

/// One program the command line would start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandPart {
    /// The words after quote removal; the first is the program.
    pub words: Vec<String>,
    /// The program name is computed when the shell runs (`$CMD`, `$(…)`),
    /// so the words do not say what will run.
    pub dynamic_program: bool,
}

impl CommandPart {
    /// The words joined for display, each quoted when the shell would need it.
    pub fn display(&self) -> String {
        self.words
            .iter()
            .map(|w| quote_word(w))
            .collect::<Vec<_>>()
            .join(" ")
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

/// Splits `line` into the simple commands it would run, in order.
pub fn split_command(line: &str) -> Result<Vec<CommandPart>, ShellError> {
    if line.len() > MAX_LEN {
        return Err(ShellError {
            offset: MAX_LEN,
            message: format!("the command is longer than {MAX_LEN} bytes"),
        });
    }
    let mut out = Vec::new();
    split_into(line, 0, &mut out)?;
    Ok(out.into_iter().map(Word::into_part).collect())
}

fn split_into(line: &str, depth: usize, out: &mut Vec<Vec<Word>>) -> Result<(), ShellError> {
    if depth > MAX_DEPTH {
        return Err(ShellError {
            offset: 0,
            message: "the command nests too deeply".into(),
        });
    }
    let mut lexer = Lexer {
        src: line,
        pos: 0,
        depth,
        out,
        heredocs: Vec::new(),
    };
    lexer.list(None)
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Word {
    text: String,
    /// Holds an expansion whose value is only known when the shell runs.
    dynamic: bool,
    /// Byte index in `text` of the first quoted, escaped or expanded
    /// character, which decides whether `NAME=` is an assignment.
    first_special: Option<usize>,
}

impl Word {
    fn mark_special(&mut self) {
        self.first_special.get_or_insert(self.text.len());
    }

    fn is_assignment(&self) -> bool {
        let Some(eq) = self.text.find('=') else {
            return false;
        };
        let name = &self.text[..eq];
        self.first_special.is_none_or(|s| s > eq)
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    fn into_part(words: Vec<Word>) -> CommandPart {
        CommandPart {
            dynamic_program: words.first().is_some_and(|w| w.dynamic),
            words: words.into_iter().map(|w| w.text).collect(),
        }
    }
}

struct Heredoc {
    delimiter: String,
    strip_tabs: bool,
    expands: bool,
}

struct Lexer<'a, 'o> {
    src: &'a str,
    pos: usize,
    depth: usize,
    out: &'o mut Vec<Vec<Word>>,
    heredocs: Vec<Heredoc>,
}

/// Reserved words that only introduce or close a compound command whose
/// members are still simple commands we see.
const TRANSPARENT_KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time",
];
/// Reserved words whose constructs are not analysed.
const UNSUPPORTED_KEYWORDS: &[&str] = &["for", "case", "select", "function", "[[", "((", "coproc"];

impl Lexer<'_, '_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn error(&self, message: impl Into<String>) -> ShellError {
        ShellError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn skip_blanks(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r') => {
                    self.bump();
                }
                Some('\\') if self.peek_at(1) == Some('\n') => {
                    self.bump();
                    self.bump();
                }
                _ => return,
            }
        }
    }

    /// Parses commands until the end of input or until `closer`.
    fn list(&mut self, closer: Option<char>) -> Result<(), ShellError> {
        let mut words: Vec<Word> = Vec::new();
        loop {
            self.skip_blanks();
            let Some(c) = self.peek() else {
                if closer.is_some() {
                    return Err(self.error("unterminated `(`"));
                }
                if !self.heredocs.is_empty() {
                    return Err(self.error("a here-document has no body"));
                }
                return self.finish(&mut words);
            };
            match c {
                '#' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                '\n' => {
                    self.bump();
                    self.finish(&mut words)?;
                    self.heredoc_bodies()?;
                }
                ';' | '&' | '|' => {
                    self.bump();
                    if c == ';' && self.peek() == Some(';') {
                        return Err(self.error("`;;` belongs to `case`, which is not analysed"));
                    }
                    if matches!(self.peek(), Some('&' | '|')) && c != ';' {
                        self.bump();
                    }
                    self.finish(&mut words)?;
                }
                '(' => {
                    if !words.is_empty() {
                        return Err(self.error(
                            "`(` inside a command (function definitions are not analysed)",
                        ));
                    }
                    if self.peek_at(1) == Some('(') {
                        return Err(self.error("arithmetic commands `((…))` are not analysed"));
                    }
                    self.bump();
                    self.nested(|lx| lx.list(Some(')')))?;
                }
                ')' => {
                    if closer == Some(')') {
                        self.bump();
                        return self.finish(&mut words);
                    }
                    return Err(self.error("unexpected `)`"));
                }
                '<' | '>' => {
                    if let Some(word) = self.redirection()? {
                        words.push(word);
                    }
                }
                _ => {
                    let word = self.word()?;
                    let is_fd = word.first_special.is_none()
                        && !word.text.is_empty()
                        && word.text.bytes().all(|b| b.is_ascii_digit())
                        && matches!(self.peek(), Some('<' | '>'));
                    if !is_fd {
                        words.push(word);
                    }
                }
            }
        }
    }

    fn nested(
        &mut self,
        body: impl FnOnce(&mut Self) -> Result<(), ShellError>,
    ) -> Result<(), ShellError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error("the command nests too deeply"));
        }
        self.depth += 1;
        let result = body(self);
        self.depth -= 1;
        result
    }

    /// Ends the simple command in `words`, if any.
    fn finish(&mut self, words: &mut Vec<Word>) -> Result<(), ShellError> {
        let mut start = 0;
        while start < words.len() {
            let w = &words[start];
            if w.is_assignment() {
                start += 1;
                continue;
            }
            if w.first_special.is_none() {
                if TRANSPARENT_KEYWORDS.contains(&w.text.as_str()) {
                    start += 1;
                    continue;
                }
                if UNSUPPORTED_KEYWORDS.contains(&w.text.as_str()) {
                    return Err(self.error(format!("`{}` is not analysed", w.text)));
                }
            }
            break;
        }
        let command: Vec<Word> = words.drain(..).skip(start).collect();
        if !command.is_empty() {
            self.push(command)?;
        }
        Ok(())
    }

    fn push(&mut self, command: Vec<Word>) -> Result<(), ShellError> {
        let inner = inner_commands(&command, self.depth)?;
        if self.out.len() + 1 + inner.len() > MAX_PARTS {
            return Err(self.error(format!("the command runs more than {MAX_PARTS} programs")));
        }
        self.out.push(command);
        self.out.extend(inner);
        Ok(())
    }

    /// A redirection operator and its target. Process substitutions yield a
    /// word (the file name the program receives).
    fn redirection(&mut self) -> Result<Option<Word>, ShellError> {
        let Some(first) = self.bump() else {
            return Ok(None);
        };
        if self.peek() == Some('(') {
            self.bump();
            self.nested(|lx| lx.list(Some(')')))?;
            return Ok(Some(Word {
                text: format!("{first}(…)"),
                dynamic: true,
                first_special: Some(0),
            }));
        }
        let mut heredoc = false;
        let mut strip_tabs = false;
        match (first, self.peek()) {
            ('<', Some('<')) => {
                self.bump();
                if self.peek() == Some('<') {
                    self.bump();
                } else {
                    heredoc = true;
                    if self.peek() == Some('-') {
                        self.bump();
                        strip_tabs = true;
                    }
                }
            }
            ('<', Some('&' | '>')) | ('>', Some('>' | '&' | '|')) => {
                self.bump();
            }
            _ => {}
        }
        self.skip_blanks();
        if matches!(
            self.peek(),
            None | Some('\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>')
        ) {
            return Err(self.error("a redirection has no target"));
        }
        let target = self.word()?;
        if heredoc {
            self.heredocs.push(Heredoc {
                expands: target.first_special.is_none(),
                delimiter: target.text,
                strip_tabs,
            });
        }
        Ok(None)
    }

    fn heredoc_bodies(&mut self) -> Result<(), ShellError> {
        for doc in std::mem::take(&mut self.heredocs) {
            loop {
                if self.pos >= self.src.len() {
                    return Err(
                        self.error(format!("the here-document ends before `{}`", doc.delimiter))
                    );
                }
                let rest = &self.src[self.pos..];
                let line_len = rest.find('\n').unwrap_or(rest.len());
                let line = &rest[..line_len];
                let candidate = if doc.strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line
                };
                if doc.expands && (line.contains("$(") || line.contains('`')) {
                    return Err(
                        self.error("command substitution inside a here-document is not analysed")
                    );
                }
                self.pos += (line_len + 1).min(rest.len());
                if candidate == doc.delimiter {
                    break;
                }
            }
        }
        Ok(())
    }

    fn word(&mut self) -> Result<Word, ShellError> {
        let mut word = Word::default();
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>' => break,
                '\\' => {
                    self.bump();
                    match self.bump() {
                        Some('\n') => {}
                        Some(escaped) => {
                            word.mark_special();
                            word.text.push(escaped);
                        }
                        None => word.text.push('\\'),
                    }
                }
                '\'' => {
                    word.mark_special();
                    self.bump();
                    let start = self.pos;
                    let Some(len) = self.src[start..].find('\'') else {
                        return Err(ShellError {
                            offset: start - 1,
                            message: "unterminated single quote".into(),
                        });
                    };
                    word.text.push_str(&self.src[start..start + len]);
                    self.pos = start + len + 1;
                }
                '"' => self.double_quoted(&mut word)?,
                '$' => self.dollar(&mut word, false)?,
                '`' => self.backtick(&mut word)?,
                _ => {
                    self.bump();
                    word.text.push(c);
                }
            }
        }
        Ok(word)
    }

    fn double_quoted(&mut self, word: &mut Word) -> Result<(), ShellError> {
        let open = self.pos;
        word.mark_special();
        self.bump();
        loop {
            let Some(c) = self.peek() else {
                return Err(ShellError {
                    offset: open,
                    message: "unterminated double quote".into(),
                });
            };
            match c {
                '"' => {
                    self.bump();
                    return Ok(());
                }
                '\\' => {
                    self.bump();
                    match self.bump() {
                        Some('\n') => {}
                        Some(e @ ('$' | '`' | '"' | '\\')) => word.text.push(e),
                        Some(other) => {
                            word.text.push('\\');
                            word.text.push(other);
                        }
                        None => {
                            return Err(ShellError {
                                offset: open,
                                message: "unterminated double quote".into(),
                            });
                        }
                    }
                }
                '$' => self.dollar(word, true)?,
                '`' => self.backtick(word)?,
                _ => {
                    self.bump();
                    word.text.push(c);
                }
            }
        }
    }

    fn dollar(&mut self, word: &mut Word, in_quotes: bool) -> Result<(), ShellError> {
        let at = self.pos;
        self.bump();
        match self.peek() {
            Some('(') => {
                if self.peek_at(1) == Some('(') {
                    return Err(self.error("arithmetic expansion `$((…))` is not analysed"));
                }
                self.bump();
                word.mark_special();
                self.nested(|lx| {
                    // A substitution's own heredocs and words are its own.
                    let outer = std::mem::take(&mut lx.heredocs);
                    let result = lx.list(Some(')'));
                    lx.heredocs = outer;
                    result
                })?;
                word.text.push_str("$(…)");
                word.dynamic = true;
            }
            Some('{') => {
                word.mark_special();
                let start = self.pos;
                let Some(len) = self.src[start..].find('}') else {
                    return Err(ShellError {
                        offset: at,
                        message: "unterminated `${`".into(),
                    });
                };
                let inner = &self.src[start..start + len];
                if inner.contains("$(") || inner.contains('`') || inner.contains('{') {
                    return Err(self.error("substitutions inside `${…}` are not analysed"));
                }
                word.text.push('$');
                word.text.push_str(&self.src[start..=start + len]);
                self.pos = start + len + 1;
                word.dynamic = true;
            }
            Some('\'') if !in_quotes => {
                word.mark_special();
                self.bump();
                self.ansi_c_string(word, at)?;
            }
            Some('"') if !in_quotes => {
                // `$"…"` is a translatable string: the same as `"…"` here.
                self.double_quoted(word)?;
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                word.mark_special();
                word.text.push('$');
                while let Some(c) = self
                    .peek()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    self.bump();
                    word.text.push(c);
                }
                word.dynamic = true;
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                word.mark_special();
                self.bump();
                word.text.push('$');
                word.text.push(c);
                word.dynamic = true;
            }
            _ => word.text.push('$'),
        }
        Ok(())
    }

    /// `$'…'`: decodes the escapes that could spell a program name.
    fn ansi_c_string(&mut self, word: &mut Word, open: usize) -> Result<(), ShellError> {
        let unterminated = || ShellError {
            offset: open,
            message: "unterminated `$'`".into(),
        };
        loop {
            let c = self.bump().ok_or_else(unterminated)?;
            match c {
                '\'' => return Ok(()),
                '\\' => {
                    let e = self.bump().ok_or_else(unterminated)?;
                    let decoded = match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'a' => '\x07',
                        'b' => '\x08',
                        'e' | 'E' => '\x1b',
                        'f' => '\x0c',
                        'v' => '\x0b',
                        '\\' | '\'' | '"' | '?' => e,
                        'x' => self.radix_escape(16, 2)?,
                        '0'..='7' => {
                            self.pos -= 1;
                            self.radix_escape(8, 3)?
                        }
                        _ => {
                            return Err(
                                self.error(format!("the escape `\\{e}` in `$'…'` is not analysed"))
                            );
                        }
                    };
                    word.text.push(decoded);
                }
                other => word.text.push(other),
            }
        }
    }

    fn radix_escape(&mut self, radix: u32, max_digits: usize) -> Result<char, ShellError> {
        let mut value = 0u32;
        let mut digits = 0;
        while digits < max_digits {
            let Some(d) = self.peek().and_then(|c| c.to_digit(radix)) else {
                break;
            };
            self.bump();
            value = value * radix + d;
            digits += 1;
        }
        if digits == 0 || value > 0x7f {
            return Err(self.error("a numeric escape in `$'…'` is not analysed"));
        }
        Ok(char::from(value as u8))
    }

    fn backtick(&mut self, word: &mut Word) -> Result<(), ShellError> {
        let open = self.pos;
        word.mark_special();
        self.bump();
        let mut body = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(ShellError {
                    offset: open,
                    message: "unterminated backquote".into(),
                });
            };
            match c {
                '`' => break,
                '\\' => match self.bump() {
                    Some(e @ ('`' | '\\' | '$')) => body.push(e),
                    Some(other) => {
                        body.push('\\');
                        body.push(other);
                    }
                    None => {
                        return Err(ShellError {
                            offset: open,
                            message: "unterminated backquote".into(),
                        });
                    }
                },
                other => body.push(other),
            }
        }
        split_into(&body, self.depth + 1, self.out).map_err(|e| ShellError {
            offset: open,
            message: format!("inside backquotes: {}", e.message),
        })?;
        word.text.push_str("`…`");
        word.dynamic = true;
        Ok(())
    }
}

/// Shells whose `-c` argument is itself a command line.
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "yash", "posh",
];

/// Programs that run another program given in their arguments: the options
/// that take a value (so the value is not mistaken for the program), and
/// how many positional words come before the program.
struct Wrapper {
    name: &'static str,
    options_with_value: &'static [&'static str],
    positionals: usize,
}

const WRAPPERS: &[Wrapper] = &[
    wrapper("env", &["-u", "--unset", "-C", "--chdir"], 0),
    wrapper("command", &[], 0),
    wrapper("builtin", &[], 0),
    wrapper("exec", &["-a"], 0),
    wrapper("nohup", &[], 0),
    wrapper("setsid", &[], 0),
    wrapper("time", &["-f", "--format", "-o", "--output"], 0),
    wrapper("nice", &["-n", "--adjustment"], 0),
    wrapper(
        "ionice",
        &["-c", "--class", "-n", "--classdata", "-p", "--pid"],
        0,
    ),
    wrapper("timeout", &["-s", "--signal", "-k", "--kill-after"], 1),
    wrapper(
        "stdbuf",
        &["-i", "--input", "-o", "--output", "-e", "--error"],
        0,
    ),
    wrapper(
        "sudo",
        &[
            "-u",
            "--user",
            "-g",
            "--group",
            "-p",
            "--prompt",
            "-C",
            "--close-from",
            "-D",
            "--chdir",
            "-r",
            "--role",
            "-t",
            "--type",
            "-U",
            "--other-user",
            "-h",
            "--host",
        ],
        0,
    ),
    wrapper("doas", &["-u", "-C"], 0),
    wrapper(
        "xargs",
        &[
            "-I",
            "-L",
            "-n",
            "--max-args",
            "-P",
            "--max-procs",
            "-s",
            "--max-chars",
            "-d",
            "--delimiter",
            "-E",
            "-a",
            "--arg-file",
        ],
        0,
    ),
    wrapper("busybox", &[], 0),
    wrapper("watch", &["-n", "--interval", "-d"], 0),
    wrapper("strace", &["-e", "-o", "-p", "-s", "-u"], 0),
    wrapper("chroot", &[], 1),
];

const fn wrapper(
    name: &'static str,
    options_with_value: &'static [&'static str],
    positionals: usize,
) -> Wrapper {
    Wrapper {
        name,
        options_with_value,
        positionals,
    }
}

/// The last path component of a program word: `/usr/bin/rm` runs `rm`.
pub fn program_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// The commands a simple command starts besides itself.
fn inner_commands(command: &[Word], depth: usize) -> Result<Vec<Vec<Word>>, ShellError> {
    let mut found = Vec::new();
    let Some(program) = command.first() else {
        return Ok(found);
    };
    if program.dynamic {
        return Ok(found);
    }
    let name = program_name(&program.text);
    let args = &command[1..];
    if SHELLS.contains(&name) {
        if let Some(body) = shell_c_body(args) {
            split_into(body, depth + 1, &mut found)?;
        }
    } else if name == "eval" {
        let body: Vec<&str> = args.iter().map(|w| w.text.as_str()).collect();
        split_into(&body.join(" "), depth + 1, &mut found)?;
    } else if name == "find" {
        let mut i = 0;
        while i < args.len() {
            if matches!(
                args[i].text.as_str(),
                "-exec" | "-execdir" | "-ok" | "-okdir"
            ) {
                let end = args[i + 1..]
                    .iter()
                    .position(|w| w.text == ";" || w.text == "+")
                    .map_or(args.len(), |p| i + 1 + p);
                let inner = args[i + 1..end].to_vec();
                if !inner.is_empty() {
                    push_with_inner(inner, depth, &mut found)?;
                }
                i = end;
            }
            i += 1;
        }
    } else if let Some(w) = WRAPPERS.iter().find(|w| w.name == name) {
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i].text;
            if arg == "--" {
                i += 1;
                break;
            }
            if name == "env" && (arg == "-S" || arg == "--split-string") {
                if let Some(body) = args.get(i + 1) {
                    split_into(&body.text, depth + 1, &mut found)?;
                }
                return Ok(found);
            }
            if name == "env" {
                if let Some(body) = arg
                    .strip_prefix("--split-string=")
                    .or_else(|| arg.strip_prefix("-S").filter(|b| !b.is_empty()))
                {
                    split_into(body, depth + 1, &mut found)?;
                    return Ok(found);
                }
            }
            if arg.len() > 1 && arg.starts_with('-') {
                i += if w.options_with_value.contains(&arg.as_str()) {
                    2
                } else {
                    1
                };
                continue;
            }
            if name == "env" && args[i].is_assignment() {
                i += 1;
                continue;
            }
            break;
        }
        let start = i + w.positionals;
        if start < args.len() {
            push_with_inner(args[start..].to_vec(), depth, &mut found)?;
        }
    }
    Ok(found)
}

fn push_with_inner(
    command: Vec<Word>,
    depth: usize,
    found: &mut Vec<Vec<Word>>,
) -> Result<(), ShellError> {
    if depth >= MAX_DEPTH {
        return Err(ShellError {
            offset: 0,
            message: "the command nests too deeply".into(),
        });
    }
    let inner = inner_commands(&command, depth + 1)?;
    found.push(command);
    found.extend(inner);
    Ok(())
}

/// The command line given to a shell with `-c`, if any.
fn shell_c_body(args: &[Word]) -> Option<&str> {
    let mut has_c = false;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].text.as_str();
        if arg == "--" || arg == "-" {
            i += 1;
            break;
        }
        if arg.starts_with("--") {
            i += 1;
            continue;
        }
        if (arg.starts_with('-') || arg.starts_with('+')) && arg.len() > 1 {
            if arg.starts_with('-') && arg.contains('c') {
                has_c = true;
            }
            // `-o option` and `-O option` take the next word.
            let takes_value = arg.ends_with('o') || arg.ends_with('O');
            i += if takes_value { 2 } else { 1 };
            continue;
        }
        break;
    }
    if has_c {
        args.get(i).map(|w| w.text.as_str())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(line: &str) -> Vec<String> {
        split_command(line)
            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
            .iter()
            .map(CommandPart::display)
            .collect()
    }

    #[test]
    fn lists_and_pipelines() {
        assert_eq!(parts("cargo test && rm -rf /"), ["cargo test", "rm -rf /"]);
        assert_eq!(
            parts("a || b; c | d & e |& f"),
            ["a", "b", "c", "d", "e", "f"]
        );
        assert_eq!(parts("a\nb"), ["a", "b"]);
        assert_eq!(parts("  "), Vec::<String>::new());
        assert_eq!(parts("ls # rm -rf /"), ["ls"]);
    }

    #[test]
    fn quotes_are_removed() {
        assert_eq!(parts(r#"'r'"m" -rf /"#), ["rm -rf /"]);
        assert_eq!(parts(r"r\m -rf /"), ["rm -rf /"]);
        assert_eq!(parts(r#"echo "a b" 'c;d'"#), ["echo 'a b' 'c;d'"]);
        assert_eq!(parts(r"$'\x72\x6d' -rf /"), ["rm -rf /"]);
        assert_eq!(parts(r"$'\162m' x"), ["rm x"]);
    }

    #[test]
    fn substitutions_and_subshells() {
        assert_eq!(parts("echo $(rm -rf /)"), ["rm -rf /", "echo '$(…)'"]);
        assert_eq!(
            parts("echo \"$(curl x | sh)\""),
            ["curl x", "sh", "echo '$(…)'"]
        );
        assert_eq!(parts("echo `rm -rf /`"), ["rm -rf /", "echo '`…`'"]);
        assert_eq!(parts("(cd x && make)"), ["cd x", "make"]);
        assert_eq!(parts("{ a; b; }"), ["a", "b"]);
        assert_eq!(
            parts("diff <(ls a) >(cat)"),
            ["ls a", "cat", "diff '<(…)' '>(…)'"]
        );
        assert_eq!(parts("if test -f x; then rm x; fi"), ["test -f x", "rm x"]);
    }

    #[test]
    fn assignments_and_redirections_are_dropped() {
        assert_eq!(
            parts("FOO=1 BAR='x y' cargo test > out.txt 2>&1"),
            ["cargo test"]
        );
        assert_eq!(parts("X=$(rm -rf /)"), ["rm -rf /"]);
        assert_eq!(parts("cat <<EOF\nhello $x\nEOF\nls"), ["cat", "ls"]);
        assert_eq!(parts("cat <<-'E'\n\t$(x)\n\tE"), ["cat"]);
        assert_eq!(parts("tr a b <<< \"$(id)\""), ["id", "tr a b"]);
        assert_eq!(parts("echo x=1"), ["echo x=1"]);
        assert_eq!(parts("\"X\"=1 cmd"), ["X=1 cmd"]);
    }

    #[test]
    fn shell_bodies_and_wrappers() {
        assert_eq!(
            parts("bash -c 'rm -rf /'"),
            ["bash -c 'rm -rf /'", "rm -rf /"]
        );
        assert_eq!(parts("sh -ec \"a && b\""), ["sh -ec 'a && b'", "a", "b"]);
        assert_eq!(
            parts("/bin/sh -o pipefail -c x"),
            ["/bin/sh -o pipefail -c x", "x"]
        );
        assert_eq!(parts("bash script.sh"), ["bash script.sh"]);
        assert_eq!(parts("eval 'rm' -rf /"), ["eval rm -rf /", "rm -rf /"]);
        assert_eq!(parts("env -i A=1 rm x"), ["env -i A=1 rm x", "rm x"]);
        assert_eq!(parts("env -S 'rm x'"), ["env -S 'rm x'", "rm x"]);
        assert_eq!(
            parts("timeout -s KILL 10 rm x"),
            ["timeout -s KILL 10 rm x", "rm x"]
        );
        assert_eq!(parts("sudo -u root nice -n 5 rm x").last().unwrap(), "rm x");
        assert_eq!(
            parts(r"find . -name x -exec rm {} \;"),
            ["find . -name x -exec rm {} ';'", "rm {}"]
        );
        assert_eq!(parts("xargs -n 1 sh -c 'rm $0'").last().unwrap(), "rm '$0'");
    }

    #[test]
    fn dynamic_programs_are_flagged() {
        let p = split_command("$CMD -rf /").unwrap();
        assert!(p[0].dynamic_program);
        let p = split_command("\"$(echo rm)\" -rf /").unwrap();
        assert_eq!(p[0].words, ["echo", "rm"], "substitutions run first");
        assert!(p[1].dynamic_program);
        let p = split_command("echo $HOME").unwrap();
        assert!(!p[0].dynamic_program);
    }

    #[test]
    fn what_cannot_be_analysed_is_an_error() {
        for bad in [
            "echo 'unterminated",
            "echo \"unterminated",
            "echo `x",
            "echo $(x",
            "for f in *; do rm $f; done",
            "case x in a) b;; esac",
            "f() { rm x; }",
            "echo $((1+2))",
            "(( x++ ))",
            "echo )",
            "cat <<EOF\nno end",
            "cat <<EOF\n$(rm x)\nEOF",
            "echo ${x:-$(rm)}",
            "ls >",
            "[[ -f x ]]",
        ] {
            assert!(
                split_command(bad).is_err(),
                "{bad:?} should not be analysed"
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = "$(".repeat(10_000) + &")".repeat(10_000);
        assert!(split_command(&deep).is_err());
        let deep = "(".repeat(10_000);
        assert!(split_command(&deep).is_err());
        let nested = "eval ".repeat(40) + "x";
        assert!(split_command(&nested).is_err());
        let nested = "sh -c ".repeat(40) + "x";
        assert!(
            split_command(&nested).is_ok(),
            "only the first `-c` takes a body"
        );
    }
}
