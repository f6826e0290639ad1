//! A shell word as the lexer reads it: its text after quote removal, and
//! what in it the shell only computes when it runs.

use super::{Assignment, AssignmentKind, Dialect};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Word {
    pub text: String,
    /// Holds a parameter expansion or a command substitution: its value,
    /// and with word splitting how many words it makes, is only known when
    /// the shell runs.
    pub dynamic: bool,
    /// Holds an unquoted glob (`*`, `?`, `[…]`), a brace expansion (bash)
    /// or a leading `~`: the shell replaces it with names it finds.
    pub pattern: bool,
    /// Byte index in `text` of the first quoted, escaped or expanded
    /// character, which decides whether `NAME=` is an assignment.
    pub first_special: Option<usize>,
    /// Some part is quoted or escaped (which stops a here-document's
    /// body from being expanded).
    pub quoted: bool,
    /// An unquoted `[` was seen (a `]` after it makes a glob class).
    open_bracket: bool,
    /// Bash: an unquoted `{` was seen, and since then a `,` or `..`.
    open_brace: bool,
    brace_separator: bool,
}

impl Word {
    /// A word of plain text, as a program's own splitting makes (`env -S`).
    pub fn plain(text: impl Into<String>) -> Word {
        Word {
            text: text.into(),
            ..Word::default()
        }
    }

    /// The file name a process substitution (`<(…)`) stands for.
    pub fn substitution(text: String) -> Word {
        Word {
            text,
            dynamic: true,
            first_special: Some(0),
            ..Word::default()
        }
    }

    pub fn mark_special(&mut self) {
        self.first_special.get_or_insert(self.text.len());
    }

    pub fn mark_quoted(&mut self) {
        self.quoted = true;
        self.mark_special();
    }

    /// Whether the shell computes this word's value (or count) at run time.
    pub fn computed(&self) -> bool {
        self.dynamic || self.pattern
    }

    /// Records an unquoted character, noting globs and brace expansions.
    pub fn push_unquoted(&mut self, c: char, dialect: Dialect) {
        match c {
            '*' | '?' => self.pattern = true,
            '[' => self.open_bracket = true,
            ']' if self.open_bracket => self.pattern = true,
            '~' if self.text.is_empty() => self.pattern = true,
            '{' if dialect == Dialect::Bash => self.open_brace = true,
            ',' if self.open_brace => self.brace_separator = true,
            '.' if self.open_brace && self.text.ends_with('.') => self.brace_separator = true,
            '}' if self.open_brace && self.brace_separator => self.pattern = true,
            _ => {}
        }
        self.text.push(c);
    }

    /// Whether bash would evaluate an array subscript in this word as
    /// arithmetic (`NAME[SUBSCRIPT]…` where a variable is set or named):
    /// arithmetic runs command substitutions held in variables, so any
    /// subscript but plain digits is refused, as is `NAME[` with no `]`
    /// (bash reads such a word on across blanks).
    pub fn arithmetic_subscript(&self) -> bool {
        let Some(open) = self.text.find('[') else {
            return false;
        };
        if !is_name(&self.text[..open]) {
            return false;
        }
        match self.text[open + 1..].find(']') {
            None => true,
            Some(close) => {
                let subscript = &self.text[open + 1..open + 1 + close];
                subscript.is_empty() || !subscript.bytes().all(|b| b.is_ascii_digit())
            }
        }
    }

    /// The assignment this word makes when it stands where the shell takes
    /// assignments (`NAME=value`; in bash also `NAME+=value` and
    /// `NAME[subscript]=value`): the name must be written plainly, with
    /// nothing quoted or expanded before the `=`.
    pub fn assignment(&self, dialect: Dialect, kind: AssignmentKind) -> Option<Assignment> {
        let eq = self.text.find('=')?;
        if self.first_special.is_some_and(|s| s <= eq) {
            return None;
        }
        let target = &self.text[..eq];
        let target = match dialect {
            Dialect::Bash => target.strip_suffix('+').unwrap_or(target),
            Dialect::Posix => target,
        };
        let name = match (dialect, target.find('[')) {
            (Dialect::Bash, Some(open)) if target.ends_with(']') => &target[..open],
            (_, Some(_)) => return None,
            (_, None) => target,
        };
        is_name(name).then(|| Assignment {
            name: name.to_string(),
            text: self.text.clone(),
            value: Some(self.text[eq + 1..].to_string()),
            kind,
        })
    }
}

/// A shell variable name: a letter or `_`, then letters, digits and `_`.
pub(crate) fn is_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, special: Option<usize>) -> Word {
        Word {
            text: text.into(),
            first_special: special,
            ..Word::default()
        }
    }

    #[test]
    fn assignments() {
        let kind = AssignmentKind::Prefix;
        let name = |w: &Word, d| w.assignment(d, kind).map(|a| a.name);
        assert_eq!(
            name(&word("PATH=/x", None), Dialect::Bash).as_deref(),
            Some("PATH")
        );
        assert_eq!(
            name(&word("PATH+=/x", None), Dialect::Bash).as_deref(),
            Some("PATH")
        );
        assert_eq!(name(&word("PATH+=/x", None), Dialect::Posix), None);
        assert_eq!(
            name(&word("PATH[0]=/x", None), Dialect::Bash).as_deref(),
            Some("PATH")
        );
        assert_eq!(name(&word("PATH[0]=/x", None), Dialect::Posix), None);
        assert_eq!(
            name(&word("X=a b", Some(2)), Dialect::Bash).as_deref(),
            Some("X")
        );
        assert_eq!(name(&word("X=1", Some(0)), Dialect::Bash), None, "\"X\"=1");
        assert_eq!(name(&word("1X=1", None), Dialect::Bash), None);
        assert_eq!(name(&word("=1", None), Dialect::Bash), None);
        assert_eq!(name(&word("echo", None), Dialect::Bash), None);
    }

    #[test]
    fn patterns() {
        let read = |text: &str, dialect| {
            let mut w = Word::default();
            for c in text.chars() {
                w.push_unquoted(c, dialect);
            }
            w.pattern
        };
        for glob in [
            "tou?h",
            "*",
            "/usr/bin/t*",
            "[ab]c",
            "~/bin/x",
            "{a,b}",
            "x{1..3}",
        ] {
            assert!(read(glob, Dialect::Bash), "{glob}");
        }
        for plain in ["[", "touch", "a]", "{}", "{a}", "x~", "a=b"] {
            assert!(!read(plain, Dialect::Bash), "{plain}");
        }
        assert!(
            !read("{a,b}", Dialect::Posix),
            "dash has no brace expansion"
        );
    }
}
