//! The lexer: reads a line into simple commands — their words, their
//! redirections, their leading assignments — and the commands nested in
//! substitutions, subshells and groups.

use super::commands::{self, Simple};
use super::word::Word;
use super::{Access, AssignmentKind, Dialect, MAX_DEPTH, MAX_PARTS, Redirect, ShellError};

/// Splits `line` (read in `dialect`) into `out`.
pub(crate) fn split_into(
    line: &str,
    depth: usize,
    dialect: Dialect,
    out: &mut Vec<Simple>,
) -> Result<(), ShellError> {
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
        dialect,
        out,
        heredocs: Vec::new(),
    };
    lexer.list(None)
}

/// Whether `word`, where the shell takes assignments, sets an array element
/// through an arithmetic subscript (bash only: dash has no arrays).
fn sets_array_element(dialect: Dialect, word: &Word) -> bool {
    dialect == Dialect::Bash
        && word.first_special.is_none_or(|s| s > 0)
        && word.arithmetic_subscript()
}

/// Whether every `${…}` in `line` is a plain `${NAME}` (the operators can
/// run command substitutions found in values).
fn plain_braces(line: &str) -> bool {
    let mut rest = line;
    while let Some(at) = rest.find("${") {
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            return false;
        };
        let name = &after[..end];
        if name.is_empty()
            || !(super::word::is_name(name) || name.bytes().all(|b| b.is_ascii_digit()))
        {
            return false;
        }
        rest = &after[end + 1..];
    }
    true
}

struct Heredoc {
    delimiter: String,
    strip_tabs: bool,
    expands: bool,
}

/// The simple command being read.
#[derive(Default)]
struct Pending {
    words: Vec<Word>,
    redirects: Vec<Redirect>,
}

struct Lexer<'a, 'o> {
    src: &'a str,
    pos: usize,
    depth: usize,
    dialect: Dialect,
    out: &'o mut Vec<Simple>,
    heredocs: Vec<Heredoc>,
}

/// Reserved words that only introduce or close a compound command whose
/// members are still simple commands we see.
const TRANSPARENT_KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}",
];
/// Reserved words (and, in dash, words bash reserves) whose constructs are
/// not analysed.
const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "for", "case", "esac", "in", "select", "function", "[[", "]]", "((", "coproc",
];

impl Lexer<'_, '_> {
    /// Where reading goes on from: past any line continuations
    /// (backslash-newline), which the shell removes before it reads a
    /// token — inside operators and after `$` too.
    fn cursor(&self) -> usize {
        let mut at = self.pos;
        while self.src[at..].starts_with("\\\n") {
            at += 2;
        }
        at
    }

    fn peek(&self) -> Option<char> {
        self.src[self.cursor()..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        let mut at = self.cursor();
        for _ in 0..n {
            let c = self.src[at..].chars().next()?;
            at += c.len_utf8();
            while self.src[at..].starts_with("\\\n") {
                at += 2;
            }
        }
        self.src[at..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        self.pos = self.cursor();
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// The next character as written: what a backslash escapes is taken
    /// before any line continuation is looked for.
    fn bump_raw(&mut self) -> Option<char> {
        let c = self.src[self.pos..].chars().next()?;
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
        // A carriage return is an ordinary character to the shell.
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    /// Parses commands until the end of input or until `closer`.
    fn list(&mut self, closer: Option<char>) -> Result<(), ShellError> {
        let mut pending = Pending::default();
        loop {
            self.skip_blanks();
            let Some(c) = self.peek() else {
                if closer.is_some() {
                    return Err(self.error("unterminated `(`"));
                }
                if !self.heredocs.is_empty() {
                    return Err(self.error("a here-document has no body"));
                }
                return self.finish(&mut pending);
            };
            match c {
                '#' => {
                    // A comment runs to the end of the line as written: a
                    // backslash before the newline does not continue it.
                    self.pos = self.cursor();
                    let rest = &self.src[self.pos..];
                    self.pos += rest.find('\n').unwrap_or(rest.len());
                }
                '\n' => {
                    self.bump();
                    self.finish(&mut pending)?;
                    self.heredoc_bodies()?;
                }
                '&' if self.dialect == Dialect::Bash && self.peek_at(1) == Some('>') => {
                    self.redirection(&mut pending, String::new())?;
                }
                ';' | '&' | '|' => {
                    self.bump();
                    if c == ';' && matches!(self.peek(), Some(';' | '&')) {
                        return Err(
                            self.error("`;;` and `;&` belong to `case`, which is not analysed")
                        );
                    }
                    if c == '|' && self.peek() == Some('&') && self.dialect == Dialect::Posix {
                        return Err(self.error("`|&` is not sh syntax"));
                    }
                    if matches!(self.peek(), Some('&' | '|')) && c != ';' {
                        self.bump();
                    }
                    self.finish(&mut pending)?;
                }
                '(' => {
                    if !pending.words.is_empty() {
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
                        return self.finish(&mut pending);
                    }
                    return Err(self.error("unexpected `)`"));
                }
                '<' | '>' => self.redirection(&mut pending, String::new())?,
                _ => {
                    let word = self.word()?;
                    if matches!(self.peek(), Some('<' | '>'))
                        && !word.computed()
                        && let Some(fd) = self.fd_prefix(&word)
                    {
                        self.redirection(&mut pending, fd)?;
                        continue;
                    }
                    pending.words.push(word);
                }
            }
        }
    }

    /// A word directly before `<`/`>` that names the file descriptor:
    /// digits, or in bash `{NAME}` (a descriptor the shell allocates).
    fn fd_prefix(&self, word: &Word) -> Option<String> {
        let text = &word.text;
        let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        let named = self.dialect == Dialect::Bash
            && text.len() > 2
            && text.starts_with('{')
            && text.ends_with('}')
            && super::word::is_name(&text[1..text.len() - 1]);
        (word.first_special.is_none() && (digits || named)).then(|| text.clone())
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

    /// Ends the simple command in `pending`, if any: leading assignments
    /// and reserved words are taken off, the rest is the command.
    fn finish(&mut self, pending: &mut Pending) -> Result<(), ShellError> {
        let words = std::mem::take(&mut pending.words);
        let redirects = std::mem::take(&mut pending.redirects);
        let mut assignments = Vec::new();
        let mut start = 0;
        // Reserved words are only recognized before any assignment.
        let mut keywords = true;
        while start < words.len() {
            let w = &words[start];
            if sets_array_element(self.dialect, w) {
                return Err(self.error(
                    "an array subscript is evaluated as arithmetic, which can run commands; not analysed",
                ));
            }
            if let Some(a) = w.assignment(self.dialect, AssignmentKind::Prefix) {
                assignments.push(a);
                keywords = false;
                start += 1;
                continue;
            }
            if keywords && w.first_special.is_none() {
                let text = w.text.as_str();
                if TRANSPARENT_KEYWORDS.contains(&text) {
                    start += 1;
                    continue;
                }
                if text == "time" && self.dialect == Dialect::Bash {
                    // The keyword takes `-p`, then `--` ends its options.
                    start += 1;
                    for option in ["-p", "--"] {
                        if words.get(start).is_some_and(|w| w.text == option) {
                            start += 1;
                        }
                    }
                    continue;
                }
                if UNSUPPORTED_KEYWORDS.contains(&text) {
                    return Err(self.error(format!("`{text}` is not analysed")));
                }
            }
            break;
        }
        let command: Vec<Word> = words.into_iter().skip(start).collect();
        if command.is_empty() {
            for a in &mut assignments {
                a.kind = AssignmentKind::Statement;
            }
            if assignments.is_empty() && redirects.is_empty() {
                return Ok(());
            }
        }
        self.push(Simple::new(command, assignments, redirects, self.dialect))
    }

    fn push(&mut self, simple: Simple) -> Result<(), ShellError> {
        let mut simple = simple;
        let inner =
            commands::inner_commands(&mut simple, self.depth).map_err(|message| ShellError {
                offset: self.pos,
                message,
            })?;
        if self.out.len() + 1 + inner.len() > MAX_PARTS {
            return Err(self.error(format!("the command runs more than {MAX_PARTS} programs")));
        }
        self.out.push(simple);
        self.out.extend(inner);
        Ok(())
    }

    /// A redirection operator (after its descriptor `fd`, if any) and its
    /// target, recorded in `pending`. A process substitution is a word
    /// (the file name the program receives).
    fn redirection(&mut self, pending: &mut Pending, fd: String) -> Result<(), ShellError> {
        let Some(first) = self.bump() else {
            return Ok(());
        };
        if first != '&' && self.peek() == Some('(') {
            if self.dialect == Dialect::Posix {
                return Err(self.error("process substitution `<(…)` is not sh syntax"));
            }
            self.bump();
            self.nested(|lx| lx.list(Some(')')))?;
            if !matches!(
                self.peek(),
                None | Some(' ' | '\t' | '\n' | ';' | '&' | '|' | ')' | '<' | '>')
            ) {
                // The shell goes on with the same word (`<(…)x`).
                return Err(self.error("a word joined to a process substitution is not analysed"));
            }
            pending
                .words
                .push(Word::substitution(format!("{first}(…)")));
            return Ok(());
        }
        let mut operator = fd;
        operator.push(first);
        let mut heredoc = false;
        let mut here_string = false;
        let mut strip_tabs = false;
        match (first, self.peek()) {
            ('&', Some('>')) => {
                self.bump();
                operator.push('>');
                if self.peek() == Some('>') {
                    self.bump();
                    operator.push('>');
                }
            }
            ('<', Some('<')) => {
                self.bump();
                operator.push('<');
                if self.peek() == Some('<') {
                    if self.dialect == Dialect::Posix {
                        return Err(self.error("here-strings `<<<` are not sh syntax"));
                    }
                    self.bump();
                    here_string = true;
                } else {
                    heredoc = true;
                    if self.peek() == Some('-') {
                        self.bump();
                        strip_tabs = true;
                    }
                }
            }
            ('<', Some(c @ ('&' | '>'))) | ('>', Some(c @ ('>' | '&' | '|'))) => {
                self.bump();
                operator.push(c);
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
            if target.text.contains("$(…)") || target.text.contains("`…`") {
                return Err(
                    self.error("a here-document delimiter holding a substitution is not analysed")
                );
            }
            // Any quoting in the delimiter keeps the body as it is;
            // otherwise the shell expands it.
            self.heredocs.push(Heredoc {
                expands: !target.quoted,
                delimiter: target.text,
                strip_tabs,
            });
            return Ok(());
        }
        if here_string {
            return Ok(());
        }
        let duplicates = operator.ends_with("<&") || operator.ends_with(">&");
        if duplicates && !target.computed() {
            // `2>&1`, `<&0`, `>&-`: another descriptor, not a file.
            let fd = target.text.strip_suffix('-').unwrap_or(&target.text);
            if fd.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(());
            }
        }
        let access = if operator.ends_with('<') || operator.ends_with("<&") {
            Access::Read
        } else {
            Access::Write
        };
        pending.redirects.push(Redirect {
            operator,
            computed: target.computed(),
            target: target.text,
            access,
        });
        Ok(())
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
                if candidate == doc.delimiter {
                    self.pos += (line_len + 1).min(rest.len());
                    break;
                }
                if doc.expands {
                    let trailing = line.len() - line.trim_end_matches('\\').len();
                    if trailing % 2 == 1 {
                        // bash joins the next line to it (dash does not),
                        // which can also end the document early.
                        return Err(self
                            .error("a line continuation inside a here-document is not analysed"));
                    }
                    if line.contains("$(") || line.contains("$[") || line.contains('`') {
                        return Err(self.error(
                            "command substitution or arithmetic inside a here-document is not analysed",
                        ));
                    }
                    if !plain_braces(line) {
                        return Err(self.error(
                            "only `${NAME}` expansions are analysed inside a here-document",
                        ));
                    }
                }
                self.pos += (line_len + 1).min(rest.len());
            }
        }
        Ok(())
    }

    fn word(&mut self) -> Result<Word, ShellError> {
        let mut word = Word::default();
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>' => break,
                '\\' => {
                    self.bump();
                    match self.bump_raw() {
                        Some('\n') => {}
                        Some(escaped) => {
                            word.mark_quoted();
                            word.text.push(escaped);
                        }
                        None => word.text.push('\\'),
                    }
                }
                '\'' => {
                    word.mark_quoted();
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
                '`' => self.backtick(&mut word, false)?,
                _ => {
                    self.bump();
                    word.push_unquoted(c, self.dialect);
                }
            }
        }
        Ok(word)
    }

    fn double_quoted(&mut self, word: &mut Word) -> Result<(), ShellError> {
        let open = self.pos;
        word.mark_quoted();
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
                    match self.bump_raw() {
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
                '`' => self.backtick(word, true)?,
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
            Some('[') => {
                return Err(self.error("arithmetic expansion `$[…]` is not analysed"));
            }
            Some('(') => {
                if self.peek_at(1) == Some('(') {
                    return Err(self.error("arithmetic expansion `$((…))` is not analysed"));
                }
                self.bump();
                word.mark_special();
                self.nested(|lx| {
                    // A substitution's words are its own; a here-document
                    // it opens without a newline of its own takes its body
                    // from the lines after the current one.
                    let outer = std::mem::take(&mut lx.heredocs);
                    let result = lx.list(Some(')'));
                    let pending = std::mem::replace(&mut lx.heredocs, outer);
                    lx.heredocs.extend(pending);
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
                let name = &self.src[start + 1..start + len];
                // Only `${NAME}`: the operators (`${x@P}` expands a prompt,
                // `${!x}` and subscripts evaluate arithmetic) can run
                // command substitutions found in values.
                if name.is_empty()
                    || !(super::word::is_name(name) || name.bytes().all(|b| b.is_ascii_digit()))
                {
                    return Err(self.error("only `${NAME}` expansions are analysed"));
                }
                word.text.push('$');
                word.text.push_str(&self.src[start..=start + len]);
                self.pos = start + len + 1;
                word.dynamic = true;
            }
            Some('\'') if !in_quotes && self.dialect == Dialect::Bash => {
                word.mark_quoted();
                self.bump();
                self.ansi_c_string(word, at)?;
            }
            Some('"') if !in_quotes && self.dialect == Dialect::Bash => {
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
            // A lone `$` (and, in sh, `$'`/`$"`) is a literal dollar sign.
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
            let c = self.bump_raw().ok_or_else(unterminated)?;
            match c {
                '\'' => return Ok(()),
                '\\' => {
                    let e = self.bump_raw().ok_or_else(unterminated)?;
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
            let Some(d) = self.src[self.pos..]
                .chars()
                .next()
                .and_then(|c| c.to_digit(radix))
            else {
                break;
            };
            self.bump_raw();
            value = value * radix + d;
            digits += 1;
        }
        if digits == 0 || value == 0 || value > 0x7f {
            return Err(self.error("a numeric escape in `$'…'` is not analysed"));
        }
        Ok(char::from(value as u8))
    }

    fn backtick(&mut self, word: &mut Word, in_quotes: bool) -> Result<(), ShellError> {
        let open = self.pos;
        word.mark_special();
        self.bump();
        let mut body = String::new();
        loop {
            let Some(c) = self.bump_raw() else {
                return Err(ShellError {
                    offset: open,
                    message: "unterminated backquote".into(),
                });
            };
            match c {
                '`' => break,
                '\\' => match self.bump_raw() {
                    Some(e @ ('`' | '\\' | '$')) => body.push(e),
                    // A line continuation, dropped before the body is read
                    // again as a command (bash and dash both), even where
                    // the body then puts it inside single quotes.
                    Some('\n') => {}
                    // Inside double quotes the shell also drops the
                    // backslash before a double quote.
                    Some('"') if in_quotes => body.push('"'),
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
        split_into(&body, self.depth + 1, self.dialect, self.out).map_err(|e| ShellError {
            offset: open,
            message: format!("inside backquotes: {}", e.message),
        })?;
        word.text.push_str("`…`");
        word.dynamic = true;
        Ok(())
    }
}
