//! The policy model: rules, subjects, actions, requests and the compiled
//! [`PolicySet`].

use std::fmt;
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Severity};
use crate::glob::SegmentGlob;
use crate::index::Index;
use crate::parser::{ParsedSource, parse_source};
use crate::path::DEFAULT_WORKSPACE_ROOT;
use crate::pattern::{ResourcePattern, ResourceSpecificity};
use crate::runners::{self, TestRunner};
use crate::shell::CommandPart;
use crate::tool::{self, ResourceKind};
use crate::{Effect, Error, Verdict};

/// Where a rule, test or directive was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    /// 1-based line number.
    pub line: u32,
    /// The line as written, without surrounding whitespace.
    pub text: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Who a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectPattern {
    /// `*`: everyone.
    Any,
    /// A role name such as `planner`.
    Role(String),
    /// `user:NAME`: one user, whatever their role.
    User(String),
}

impl SubjectPattern {
    /// `user:NAME` beats a role beats `*`.
    pub fn specificity(&self) -> u8 {
        match self {
            SubjectPattern::Any => 0,
            SubjectPattern::Role(_) => 1,
            SubjectPattern::User(_) => 2,
        }
    }

    pub fn matches(&self, subject: Subject<'_>) -> bool {
        match self {
            SubjectPattern::Any => true,
            SubjectPattern::Role(r) => subject.role == Some(r.as_str()),
            SubjectPattern::User(u) => subject.user == Some(u.as_str()),
        }
    }

    /// Whether everyone this pattern names, `other` names too.
    pub fn covers(&self, other: &SubjectPattern) -> bool {
        *self == SubjectPattern::Any || self == other
    }
}

impl fmt::Display for SubjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectPattern::Any => f.write_str("*"),
            SubjectPattern::Role(r) => f.write_str(r),
            SubjectPattern::User(u) => write!(f, "user:{u}"),
        }
    }
}

/// Which tool a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ActionPattern {
    Any,
    Tool(String),
}

impl ActionPattern {
    pub fn matches(&self, action: &str) -> bool {
        match self {
            ActionPattern::Any => true,
            ActionPattern::Tool(t) => t == action,
        }
    }

    pub fn covers(&self, other: &ActionPattern) -> bool {
        *self == ActionPattern::Any || self == other
    }

    /// The kinds of resource the rule's pattern must be compiled for.
    pub fn resource_kinds(&self) -> Vec<ResourceKind> {
        match self {
            ActionPattern::Any => ResourceKind::ALL.to_vec(),
            ActionPattern::Tool(t) => vec![tool::resource_kind(t)],
        }
    }
}

impl fmt::Display for ActionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionPattern::Any => f.write_str("*"),
            ActionPattern::Tool(t) => f.write_str(t),
        }
    }
}

/// How specific a rule is. Compared field by field in declaration order:
/// the action first, then the resource, then the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Specificity {
    /// 1 for a named tool, 0 for `*`.
    pub action: u8,
    pub resource: ResourceSpecificity,
    /// 2 for a user, 1 for a role, 0 for `*`.
    pub subject: u8,
}

/// One line `SUBJECT ACTION RESOURCE -> EFFECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub subject: SubjectPattern,
    pub action: ActionPattern,
    pub resource: ResourcePattern,
    pub effect: Effect,
    pub origin: Origin,
    /// Position among all rules of the set: earlier wins a complete tie.
    pub(crate) order: u32,
}

impl Rule {
    pub fn specificity(&self) -> Specificity {
        Specificity {
            action: u8::from(self.action != ActionPattern::Any),
            resource: self.resource.specificity(),
            subject: self.subject.specificity(),
        }
    }

    /// The rule in canonical form, as it would be written in a policy.
    pub fn canonical(&self) -> String {
        let raw = self.resource.as_str();
        let resource = if raw.is_empty() || raw.contains([' ', '\t', '"', '#']) {
            format!("\"{}\"", raw.replace('\\', "\\\\").replace('"', "\\\""))
        } else {
            raw.to_string()
        };
        format!(
            "{} {} {} -> {}",
            self.subject, self.action, resource, self.effect
        )
    }

    /// Position of the rule in the policy set (file order).
    pub fn order(&self) -> u32 {
        self.order
    }
}

/// A `protect PATTERN` line: branches matching it are protected like `main`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectRule {
    pub pattern: String,
    pub(crate) glob: SegmentGlob,
    pub origin: Origin,
}

impl ProtectRule {
    pub fn matches(&self, branch_parts: &[&str]) -> bool {
        self.glob.matches(branch_parts)
    }
}

/// A `test SUBJECT ACTION RESOURCE -> DECISION` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineTest {
    pub subject: String,
    pub action: String,
    pub resource: String,
    pub expected: Verdict,
    pub origin: Origin,
}

/// Who is asking: a role, a user, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Subject<'a> {
    pub role: Option<&'a str>,
    pub user: Option<&'a str>,
}

impl<'a> Subject<'a> {
    /// `user:NAME` names a user; anything else names a role.
    pub fn parse(text: &'a str) -> Result<Subject<'a>, Error> {
        if let Some(user) = text.strip_prefix("user:") {
            if is_name(user) {
                return Ok(Subject {
                    role: None,
                    user: Some(user),
                });
            }
        } else if is_name(text) {
            return Ok(Subject {
                role: Some(text),
                user: None,
            });
        }
        Err(Error::InvalidRequest(format!(
            "subject {text:?} is not a role name or `user:NAME` (letters, digits, `_`, `-`, `.`, `@`)"
        )))
    }
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.user, self.role) {
            (Some(u), Some(r)) => write!(f, "user:{u} (role {r})"),
            (Some(u), None) => write!(f, "user:{u}"),
            (None, Some(r)) => f.write_str(r),
            (None, None) => f.write_str("any other subject"),
        }
    }
}

/// Characters allowed in role and user names.
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')
}

pub(crate) fn is_name(text: &str) -> bool {
    !text.is_empty() && text.chars().all(is_name_char)
}

/// One tool call to decide.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub subject: Subject<'a>,
    pub action: &'a str,
    pub resource: &'a str,
}

/// A compiled, indexed policy: every rule of every source, the protected
/// branches and the inline tests. Built whole or not at all.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub(crate) rules: Vec<Rule>,
    pub(crate) protected: Vec<ProtectRule>,
    pub(crate) tests: Vec<InlineTest>,
    /// The built-in test runners, then the policy's own.
    pub(crate) runners: Vec<TestRunner>,
    pub(crate) warnings: Vec<Diagnostic>,
    pub(crate) workspace_root: String,
    pub(crate) index: Index,
    pub(crate) forbid_index: Index,
}

impl PolicySet {
    /// Parses one policy source. `file` names it in diagnostics and decisions.
    pub fn parse(file: &str, text: &str) -> Result<PolicySet, Error> {
        PolicySet::from_sources([(file, text)])
    }

    /// Parses several sources into one set; rules keep their file order, the
    /// sources their given order. Any error in any source loads nothing.
    pub fn from_sources<'s>(
        sources: impl IntoIterator<Item = (&'s str, &'s str)>,
    ) -> Result<PolicySet, Error> {
        let mut rules = Vec::new();
        let mut protected = Vec::new();
        let mut tests = Vec::new();
        let mut runners = Vec::new();
        let mut diagnostics = Vec::new();
        for (file, text) in sources {
            let ParsedSource {
                rules: r,
                protected: p,
                tests: t,
                runners: n,
                diagnostics: d,
            } = parse_source(file, text, rules.len());
            rules.extend(r);
            protected.extend(p);
            tests.extend(t);
            runners.extend(n);
            diagnostics.extend(d);
        }
        if diagnostics.iter().any(|d| d.severity == Severity::Error) {
            diagnostics.retain(|d| d.severity == Severity::Error);
            return Err(Error::InvalidPolicy(diagnostics));
        }
        Ok(PolicySet::assemble(
            rules,
            protected,
            tests,
            runners,
            diagnostics,
        ))
    }

    /// A set with no rules: every call gets its tool's default.
    pub fn empty() -> PolicySet {
        PolicySet::assemble(Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new())
    }

    fn assemble(
        rules: Vec<Rule>,
        protected: Vec<ProtectRule>,
        tests: Vec<InlineTest>,
        declared_runners: Vec<TestRunner>,
        warnings: Vec<Diagnostic>,
    ) -> PolicySet {
        let mut all_runners = runners::builtin();
        all_runners.extend(declared_runners);
        let index = Index::build(&rules, |r| r.effect != Effect::Forbid);
        let forbid_index = Index::build(&rules, |r| r.effect == Effect::Forbid);
        PolicySet {
            rules,
            protected,
            tests,
            runners: all_runners,
            warnings,
            workspace_root: DEFAULT_WORKSPACE_ROOT.to_string(),
            index,
            forbid_index,
        }
    }

    /// Where absolute paths must point to be inside the workspace
    /// (default `/workspace`).
    pub fn with_workspace_root(mut self, root: &str) -> PolicySet {
        self.workspace_root = root.to_string();
        self
    }

    pub fn workspace_root(&self) -> &str {
        &self.workspace_root
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn protected_branches(&self) -> &[ProtectRule] {
        &self.protected
    }

    pub fn tests(&self) -> &[InlineTest] {
        &self.tests
    }

    /// The test runners: the built-in ones, then the policy's
    /// `test-runner` lines.
    pub fn test_runners(&self) -> &[TestRunner] {
        &self.runners
    }

    /// `Ok` when every program `parts` start is a test runner, so that a
    /// `run_tests` call is decided as `run_tests`; otherwise why not.
    pub fn test_command(&self, parts: &[CommandPart]) -> Result<(), String> {
        runners::test_command(&self.runners, parts)
    }

    /// Whether `line` (read as bash reads it) only runs test runners: the
    /// one classification of both the kernel and a workflow's `run` steps.
    pub fn is_test_command(&self, line: &str) -> bool {
        crate::shell::split_command(line).is_ok_and(|parts| self.test_command(&parts).is_ok())
    }

    /// Problems that did not stop the policy from loading (duplicate rules,
    /// unknown tools).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }
}
