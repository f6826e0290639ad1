//! The policy file parser: one statement per line, errors with line and
//! column.
//!
//! ```text
//! # comment
//! SUBJECT ACTION RESOURCE -> EFFECT        a rule
//! test SUBJECT ACTION RESOURCE -> DECISION an inline test
//! protect BRANCH-PATTERN                   a protected branch
//! test-runner COMMAND-PATTERN              a command that runs tests
//! ```
//!
//! A field holding spaces is double-quoted; inside quotes `\"` is a quote
//! and `\\` a backslash, other backslashes are kept for the glob.

use std::collections::HashMap;
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Severity};
use crate::glob::{SegmentGlob, SegmentMode};
use crate::pattern::CommandPattern;
use crate::pattern::ResourcePattern;
use crate::policy::{
    ActionPattern, InlineTest, Origin, ProtectRule, Rule, SubjectPattern, is_name, is_name_char,
};
use crate::runners::TestRunner;
use crate::tool::{self, TOOLS};
use crate::{Effect, Verdict};

pub(crate) struct ParsedSource {
    pub rules: Vec<Rule>,
    pub protected: Vec<ProtectRule>,
    pub tests: Vec<InlineTest>,
    pub runners: Vec<TestRunner>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Clone)]
struct Token {
    text: String,
    /// 1-based column of the token's first character (its quote, if quoted).
    column: u32,
    quoted: bool,
}

impl Token {
    fn is(&self, word: &str) -> bool {
        !self.quoted && self.text == word
    }

    /// Column of a character inside the token, given its byte offset in
    /// the token's text.
    fn column_at(&self, byte_offset: usize) -> u32 {
        let chars = self
            .text
            .get(..byte_offset)
            .map_or(0, |s| s.chars().count());
        self.column + u32::from(self.quoted) + to_u32(chars)
    }

    /// The column just past the token.
    fn end_column(&self) -> u32 {
        self.column + to_u32(self.text.chars().count()) + if self.quoted { 2 } else { 0 }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

struct LineError {
    column: u32,
    message: String,
}

fn err<T>(column: u32, message: impl Into<String>) -> Result<T, LineError> {
    Err(LineError {
        column,
        message: message.into(),
    })
}

fn tokenize(line: &str) -> Result<Vec<Token>, LineError> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    let mut column = 0u32;
    let mut next = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        let c = chars.next();
        if c.is_some() {
            column += 1;
        }
        (c, column)
    };
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            next(&mut chars);
        }
        let Some(&first) = chars.peek() else {
            return Ok(tokens);
        };
        let (_, start) = next(&mut chars);
        if first == '#' {
            return Ok(tokens);
        }
        let mut text = String::new();
        if first == '"' {
            loop {
                match next(&mut chars) {
                    (None, _) => return err(start, "unterminated quote: expected a closing `\"`"),
                    (Some('"'), _) => break,
                    (Some('\\'), _) => match chars.peek() {
                        Some(&c @ ('"' | '\\')) => {
                            next(&mut chars);
                            text.push(c);
                        }
                        _ => text.push('\\'),
                    },
                    (Some(c), _) => text.push(c),
                }
            }
            if let Some(&c) = chars.peek()
                && !c.is_whitespace()
            {
                let (_, at) = next(&mut chars);
                return err(
                    at,
                    format!("expected a space after the closing quote, found `{c}`"),
                );
            }
            tokens.push(Token {
                text,
                column: start,
                quoted: true,
            });
        } else {
            text.push(first);
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                let (_, at) = next(&mut chars);
                if c == '"' {
                    return err(
                        at,
                        "a `\"` may only start a field: quote the whole field, e.g. \"cargo test *\"",
                    );
                }
                text.push(c);
            }
            tokens.push(Token {
                text,
                column: start,
                quoted: false,
            });
        }
    }
}

const EFFECTS_EXPECTED: &str = "one of allow, ask, admin-only, deny, forbid";
const VERDICTS_EXPECTED: &str = "one of allow, ask, admin-only, deny";

enum Statement {
    Rule(Rule),
    Test(InlineTest),
    Protect(ProtectRule),
    TestRunner(TestRunner),
}

pub(crate) fn parse_source(file: &str, text: &str, first_order: usize) -> ParsedSource {
    let file: Arc<str> = Arc::from(file);
    let mut out = ParsedSource {
        rules: Vec::new(),
        protected: Vec::new(),
        tests: Vec::new(),
        runners: Vec::new(),
        diagnostics: Vec::new(),
    };
    let mut seen: HashMap<String, u32> = HashMap::new();
    for (number, raw_line) in text.lines().enumerate() {
        let line_no = to_u32(number + 1);
        let origin = Origin {
            file: file.clone(),
            line: line_no,
            text: raw_line.trim().to_string(),
        };
        let diagnostic = |severity, column, message: String| Diagnostic {
            severity,
            file: file.to_string(),
            line: line_no,
            column,
            message,
            source_line: raw_line.to_string(),
        };
        let order = to_u32(first_order + out.rules.len());
        match parse_line(raw_line, origin, order) {
            Ok(None) => {}
            Ok(Some(Statement::Rule(rule))) => {
                let key = rule.canonical();
                if let Some(first) = seen.get(&key) {
                    out.diagnostics.push(diagnostic(
                        Severity::Warning,
                        1,
                        format!("duplicate rule: the same rule is on line {first}"),
                    ));
                } else {
                    seen.insert(key, line_no);
                }
                if let ActionPattern::Tool(name) = &rule.action
                    && tool::lookup(name).is_none()
                {
                    let known: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
                    let column = raw_line
                        .find(name.as_str())
                        .map_or(1, |b| to_u32(raw_line[..b].chars().count() + 1));
                    out.diagnostics.push(diagnostic(
                            Severity::Warning,
                            column,
                            format!(
                                "unknown tool `{name}`: the rule only applies to a tool of that name (known tools: {})",
                                known.join(", ")
                            ),
                        ));
                }
                out.rules.push(rule);
            }
            Ok(Some(Statement::Test(test))) => out.tests.push(test),
            Ok(Some(Statement::Protect(p))) => out.protected.push(p),
            Ok(Some(Statement::TestRunner(r))) => out.runners.push(r),
            Err(e) => out
                .diagnostics
                .push(diagnostic(Severity::Error, e.column, e.message)),
        }
    }
    out
}

fn parse_line(line: &str, origin: Origin, order: u32) -> Result<Option<Statement>, LineError> {
    let tokens = tokenize(line)?;
    let Some(first) = tokens.first() else {
        return Ok(None);
    };
    let arrow = tokens.iter().position(|t| t.is("->"));
    if first.is("protect") && arrow.is_none() {
        return parse_protect(&tokens, origin).map(|p| Some(Statement::Protect(p)));
    }
    if first.is("test-runner") && arrow.is_none() {
        return parse_test_runner(&tokens, origin).map(|r| Some(Statement::TestRunner(r)));
    }
    let Some(arrow) = arrow else {
        if let Some(glued) = tokens.iter().find(|t| !t.quoted && t.text.contains("->")) {
            let at = glued.text.find("->").unwrap_or(0);
            return err(glued.column_at(at), "put spaces around `->`");
        }
        let end = tokens.last().map_or(1, |t| t.end_column() + 1);
        return if tokens.len() < 3 {
            err(end, "expected `SUBJECT ACTION RESOURCE -> EFFECT`")
        } else {
            err(
                end,
                format!("expected `->` and an effect ({EFFECTS_EXPECTED})"),
            )
        };
    };
    let fields = &tokens[..arrow];
    let after = &tokens[arrow + 1..];
    let arrow_col = tokens[arrow].column;
    let is_test = fields.len() == 4 && fields[0].is("test");
    let fields = if is_test { &fields[1..] } else { fields };
    if fields.len() < 3 {
        let missing = ["subject", "action", "resource"][fields.len()];
        return err(
            arrow_col,
            format!("missing {missing}: expected `SUBJECT ACTION RESOURCE -> EFFECT`"),
        );
    }
    if fields.len() > 3 {
        return err(
            fields[3].column,
            format!(
                "unexpected `{}`: a rule has three fields before `->` (quote a resource that contains spaces)",
                fields[3].text
            ),
        );
    }
    let Some(effect_token) = after.first() else {
        let expected = if is_test {
            VERDICTS_EXPECTED
        } else {
            EFFECTS_EXPECTED
        };
        return err(
            arrow_col + 3,
            format!("expected an effect after `->`: {expected}"),
        );
    };
    if let Some(extra) = after.get(1) {
        return err(
            extra.column,
            format!("unexpected `{}` after the effect", extra.text),
        );
    }
    for (token, what) in fields.iter().zip(["subject", "action", "resource"]) {
        if token.text.is_empty() {
            return err(token.column, format!("empty {what}"));
        }
    }
    let subject = parse_subject(&fields[0], is_test)?;
    let action = parse_action(&fields[1], is_test)?;
    if is_test {
        let expected = Verdict::from_keyword(&effect_token.text).ok_or_else(|| LineError {
            column: effect_token.column,
            message: format!(
                "unknown decision `{}`: a test expects {VERDICTS_EXPECTED}",
                effect_token.text
            ),
        })?;
        return Ok(Some(Statement::Test(InlineTest {
            subject: subject.to_string(),
            action: action.to_string(),
            resource: fields[2].text.clone(),
            expected,
            origin,
        })));
    }
    let effect = Effect::from_keyword(&effect_token.text).ok_or_else(|| LineError {
        column: effect_token.column,
        message: format!(
            "unknown effect `{}`: expected {EFFECTS_EXPECTED}",
            effect_token.text
        ),
    })?;
    let resource_token = &fields[2];
    let resource = ResourcePattern::compile(&resource_token.text, &action.resource_kinds())
        .map_err(|e| LineError {
            column: resource_token.column_at(e.offset),
            message: format!("invalid resource pattern: {}", e.message),
        })?;
    Ok(Some(Statement::Rule(Rule {
        subject,
        action,
        resource,
        effect,
        origin,
        order,
    })))
}

fn parse_subject(token: &Token, is_test: bool) -> Result<SubjectPattern, LineError> {
    let text = token.text.as_str();
    if text == "*" {
        if is_test {
            return err(token.column, "a test names one subject, not `*`");
        }
        return Ok(SubjectPattern::Any);
    }
    if let Some(user) = text.strip_prefix("user:") {
        if is_name(user) {
            return Ok(SubjectPattern::User(user.to_string()));
        }
        return err(token.column_at(5), "expected a user name after `user:`");
    }
    if is_name(text) {
        return Ok(SubjectPattern::Role(text.to_string()));
    }
    let bad = text
        .char_indices()
        .find(|&(_, c)| !is_name_char(c))
        .map_or(0, |(i, _)| i);
    err(
        token.column_at(bad),
        format!(
            "invalid subject `{text}`: expected `*`, a role name or `user:NAME` (letters, digits, `_`, `-`, `.`, `@`)"
        ),
    )
}

fn parse_action(token: &Token, is_test: bool) -> Result<ActionPattern, LineError> {
    let text = token.text.as_str();
    if text == "*" {
        if is_test {
            return err(token.column, "a test names one tool, not `*`");
        }
        return Ok(ActionPattern::Any);
    }
    let valid = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(ActionPattern::Tool(text.to_string()))
    } else {
        err(
            token.column,
            format!("invalid action `{text}`: expected `*` or a tool name such as read_file"),
        )
    }
}

fn parse_protect(tokens: &[Token], origin: Origin) -> Result<ProtectRule, LineError> {
    let Some(pattern) = tokens.get(1) else {
        return err(
            tokens[0].end_column() + 1,
            "expected a branch pattern after `protect`",
        );
    };
    if let Some(extra) = tokens.get(2) {
        return err(
            extra.column,
            format!(
                "unexpected `{}`: `protect` takes one branch pattern",
                extra.text
            ),
        );
    }
    let name = pattern
        .text
        .strip_prefix("refs/heads/")
        .unwrap_or(&pattern.text);
    // Branch names are compared without case: `protect Release/*` also
    // protects `release/1` and `RELEASE/1`.
    let glob =
        SegmentGlob::parse(&name.to_ascii_lowercase(), SegmentMode::Anchored).map_err(|e| {
            LineError {
                column: pattern.column_at(e.offset),
                message: format!("invalid branch pattern: {}", e.message),
            }
        })?;
    Ok(ProtectRule {
        pattern: pattern.text.clone(),
        glob,
        origin,
    })
}

fn parse_test_runner(tokens: &[Token], origin: Origin) -> Result<TestRunner, LineError> {
    let Some(pattern) = tokens.get(1) else {
        return err(
            tokens[0].end_column() + 1,
            "expected a command pattern after `test-runner`, e.g. test-runner \"python3 -m unittest *\"",
        );
    };
    if let Some(extra) = tokens.get(2) {
        return err(
            extra.column,
            format!(
                "unexpected `{}`: `test-runner` takes one command pattern (quote one with spaces)",
                extra.text
            ),
        );
    }
    if pattern.text.trim().is_empty() || pattern.text.trim() == "*" {
        return err(
            pattern.column,
            "a test runner names a program: `*` would make every command a test run",
        );
    }
    let command = CommandPattern::parse(&pattern.text).map_err(|e| LineError {
        column: pattern.column_at(e.offset),
        message: format!("invalid command pattern: {}", e.message),
    })?;
    Ok(TestRunner {
        pattern: pattern.text.clone(),
        command,
        refused_args: Vec::new(),
        origin: Some(origin),
    })
}

#[cfg(test)]
mod tests {
    use crate::{Error, PolicySet, Severity};

    fn errors(text: &str) -> Vec<(u32, u32, String)> {
        match PolicySet::parse("p", text) {
            Err(Error::InvalidPolicy(d)) => d
                .into_iter()
                .map(|d| (d.line, d.column, d.message))
                .collect(),
            Ok(_) => panic!("{text:?} should not parse"),
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    fn one_error(text: &str) -> (u32, u32, String) {
        let mut e = errors(text);
        assert_eq!(e.len(), 1, "{e:?}");
        e.remove(0)
    }

    #[test]
    fn rules_and_comments() {
        let p = PolicySet::parse(
            "p",
            "# c\n\nplanner read_file * -> allow # trailing\n  implementer run_command \"cargo test *\" -> ask\n",
        )
        .unwrap();
        assert_eq!(p.rules().len(), 2);
        assert_eq!(p.rules()[1].resource.as_str(), "cargo test *");
        assert_eq!(p.rules()[1].origin.line, 4);
        assert_eq!(
            p.rules()[1].origin.text,
            "implementer run_command \"cargo test *\" -> ask"
        );
    }

    #[test]
    fn quoting_escapes() {
        let p = PolicySet::parse("p", r#"* run_command "echo \"hi\" \\* x" -> deny"#).unwrap();
        assert_eq!(p.rules()[0].resource.as_str(), r#"echo "hi" \* x"#);
        assert_eq!(
            p.rules()[0].canonical(),
            r#"* run_command "echo \"hi\" \\* x" -> deny"#
        );
    }

    #[test]
    fn unknown_effect() {
        let (line, col, msg) = one_error("a read_file * -> alow");
        assert_eq!((line, col), (1, 18));
        assert!(msg.contains("unknown effect `alow`"), "{msg}");
        assert!(msg.contains("admin-only"), "{msg}");
    }

    #[test]
    fn missing_and_extra_fields() {
        let (_, col, msg) = one_error("a read_file -> allow");
        assert_eq!(col, 13);
        assert!(msg.contains("missing resource"), "{msg}");
        let (_, col, msg) = one_error("a read_file cargo test -> allow");
        assert_eq!(col, 19);
        assert!(msg.contains("quote a resource"), "{msg}");
        let (_, col, msg) = one_error("a read_file * ->");
        assert_eq!(col, 18);
        assert!(msg.contains("expected an effect"), "{msg}");
        let (_, col, msg) = one_error("a read_file * -> allow now");
        assert_eq!(col, 24);
        assert!(msg.contains("after the effect"), "{msg}");
        let (_, _, msg) = one_error("a read_file * allow");
        assert!(msg.contains("expected `->`"), "{msg}");
        let (_, col, msg) = one_error("a read_file *->allow");
        assert_eq!(col, 14);
        assert!(msg.contains("spaces around"), "{msg}");
        let (_, _, msg) = one_error("planner");
        assert!(msg.contains("SUBJECT ACTION RESOURCE"), "{msg}");
    }

    #[test]
    fn empty_fields_and_quotes() {
        let (_, col, msg) = one_error(r#"a read_file "" -> allow"#);
        assert_eq!(col, 13);
        assert!(msg.contains("empty resource"), "{msg}");
        let (_, col, msg) = one_error(r#"a run_command "cargo test -> allow"#);
        assert_eq!(col, 15);
        assert!(msg.contains("unterminated quote"), "{msg}");
        let (_, col, _) = one_error(r#"a run_command "x"y -> allow"#);
        assert_eq!(col, 18);
        let (_, col, _) = one_error(r#"a run_command x"y" -> allow"#);
        assert_eq!(col, 16);
    }

    #[test]
    fn bad_names_and_patterns() {
        let (_, col, msg) = one_error("pl$nner read_file * -> allow");
        assert_eq!(col, 3);
        assert!(msg.contains("invalid subject"), "{msg}");
        let (_, col, _) = one_error("user: read_file * -> allow");
        assert_eq!(col, 6);
        let (_, _, msg) = one_error("a Read/File * -> allow");
        assert!(msg.contains("invalid action"), "{msg}");
        let (_, col, msg) = one_error("a read_file src/[ab -> allow");
        assert_eq!(col, 17);
        assert!(msg.contains("unclosed"), "{msg}");
        let (_, col, msg) = one_error(r#"a read_file "src/../x" -> allow"#);
        assert_eq!(col, 18);
        assert!(msg.contains("`..`"), "{msg}");
    }

    #[test]
    fn every_error_is_reported_and_nothing_loads() {
        let e =
            errors("a read_file * -> allow\nb x * -> nope\nc read_file\nd read_file * -> deny\n");
        assert_eq!(e.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn warnings_do_not_stop_loading() {
        let p = PolicySet::parse(
            "p",
            "a read_file * -> allow\na  read_file  *  ->  allow\nb reed_file * -> allow\n",
        )
        .unwrap();
        let w = p.warnings();
        assert_eq!(w.len(), 2);
        assert!(w.iter().all(|d| d.severity == Severity::Warning));
        assert!(w[0].message.contains("duplicate rule") && w[0].message.contains("line 1"));
        assert_eq!(w[0].line, 2);
        assert!(w[1].message.contains("unknown tool `reed_file`"));
        assert_eq!(w[1].column, 3);
    }

    #[test]
    fn tests_and_protect_lines() {
        let p = PolicySet::parse(
            "p",
            "protect release/*\ntest implementer run_command \"cargo test && rm -rf /\" -> ask\ntest read_file x -> allow\n",
        )
        .unwrap();
        assert_eq!(p.protected_branches()[0].pattern, "release/*");
        assert_eq!(p.tests().len(), 1);
        assert_eq!(
            p.rules().len(),
            1,
            "`test` with three fields is a rule for role `test`"
        );
        let (_, _, msg) = one_error("test a read_file x -> forbid");
        assert!(msg.contains("a test expects"), "{msg}");
        let (_, _, msg) = one_error("test * read_file x -> deny");
        assert!(msg.contains("one subject"), "{msg}");
        let (_, _, msg) = one_error("protect");
        assert!(msg.contains("branch pattern"), "{msg}");
        let (_, _, msg) = one_error("protect a b");
        assert!(msg.contains("one branch pattern"), "{msg}");
    }

    #[test]
    fn diagnostics_render_with_a_caret() {
        let Err(e) = PolicySet::parse("team.policy", "a read_file * -> alow") else {
            panic!("should fail")
        };
        let text = e.to_string();
        assert!(
            text.starts_with("team.policy:1:18: error: unknown effect"),
            "{text}"
        );
        assert!(text.contains("1 | a read_file * -> alow"), "{text}");
        assert!(text.ends_with("  |                  ^"), "{text:?}");
    }
}
