//! Decisions and the reasons behind them.

use std::borrow::Cow;

use crate::path::PathProblem;
use crate::policy::{ProtectRule, Rule};
use crate::{Effect, Verdict};

/// What made a decision, as reported to scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A rule of the policy.
    Rule,
    /// The tool's built-in default (no rule matched, or the command could
    /// not be analysed).
    Default,
    /// A built-in invariant that no policy can change.
    Invariant,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Rule => "rule",
            Source::Default => "default",
            Source::Invariant => "invariant",
        }
    }
}

/// Which protection a branch falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectedBy<'p> {
    BuiltIn(&'static str),
    Configured(&'p ProtectRule),
}

/// A built-in invariant that refused a request before any rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invariant<'p> {
    /// A file tool named a path outside the workspace.
    PathOutsideWorkspace { path: String, problem: PathProblem },
    /// A branch tool named something git would not accept as a branch.
    InvalidBranch { branch: String, problem: String },
    /// A branch tool named a protected branch.
    ProtectedBranch { branch: String, by: ProtectedBy<'p> },
}

/// Why a decision came out the way it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis<'p> {
    /// The most specific matching rule (or a matching `forbid` rule).
    Rule(&'p Rule),
    /// No rule matched: the tool's default. `known_tool` is false for a
    /// tool the kernel does not know, which asks.
    Default {
        known_tool: bool,
    },
    /// A command (or part of one) that cannot be analysed asks a human.
    Unanalysable {
        why: String,
    },
    /// A command runs with (or sets) variables that can change what runs,
    /// and no rule names them: a human decides.
    Assignment {
        names: Vec<String>,
    },
    Invariant(Invariant<'p>),
}

/// Which simple command of a compound command decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidingPart {
    /// 0-based position among the parts.
    pub index: usize,
    pub count: usize,
    pub text: String,
}

/// A request decided under another tool than the one it named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relabel {
    /// The tool the request named (`run_tests`).
    pub from: &'static str,
    /// Why it was not decided as that tool.
    pub why: String,
}

/// The kernel's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'p> {
    pub verdict: Verdict,
    pub basis: Basis<'p>,
    /// Set for commands of more than one decided part.
    pub part: Option<DecidingPart>,
    /// Set when the request was decided as another tool: a `run_tests`
    /// line that starts something other than test runners is decided as
    /// `run_command`.
    pub relabeled: Option<Relabel>,
    pub(crate) action: Cow<'static, str>,
}

impl<'p> Decision<'p> {
    pub fn source(&self) -> Source {
        match self.basis {
            Basis::Rule(_) => Source::Rule,
            Basis::Default { .. } | Basis::Unanalysable { .. } | Basis::Assignment { .. } => {
                Source::Default
            }
            Basis::Invariant(_) => Source::Invariant,
        }
    }

    /// The deciding rule, if a rule decided.
    pub fn rule(&self) -> Option<&'p Rule> {
        match self.basis {
            Basis::Rule(r) => Some(r),
            _ => None,
        }
    }

    /// The tool the request was decided as (the one it named, unless
    /// [`Decision::relabeled`]).
    pub fn action(&self) -> &str {
        &self.action
    }

    /// A sentence a person can read.
    pub fn reason(&self) -> String {
        let mut reason = match &self.basis {
            Basis::Rule(rule) if rule.effect == Effect::Forbid => format!(
                "`{}` ({}) forbids it; forbid rules override every other rule",
                rule.origin.text, rule.origin
            ),
            Basis::Rule(rule) => format!(
                "`{}` ({}) is the most specific matching rule",
                rule.origin.text, rule.origin
            ),
            Basis::Default { known_tool: true } => format!(
                "no rule matches; `{}` defaults to {}",
                self.action, self.verdict
            ),
            Basis::Default { known_tool: false } => format!(
                "no rule matches and `{}` is not a known tool; unknown tools ask",
                self.action
            ),
            Basis::Unanalysable { why } => {
                format!("the command cannot be analysed ({why}), so a human decides")
            }
            Basis::Assignment { names } => {
                let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                format!(
                    "it runs with or sets {} which can change what runs or what it loads, and no rule names {}; a human decides (a rule allows it only by naming it, e.g. `\"{}=* PROGRAM *\"`)",
                    list.join(", "),
                    if names.len() == 1 { "it" } else { "them" },
                    names.first().map_or("NAME", String::as_str)
                )
            }
            Basis::Invariant(Invariant::PathOutsideWorkspace { path, problem }) => {
                format!("`{path}` is refused before any rule: {problem}")
            }
            Basis::Invariant(Invariant::InvalidBranch { branch, problem }) => {
                format!("`{branch}` is refused before any rule: {problem}")
            }
            Basis::Invariant(Invariant::ProtectedBranch { branch, by }) => match by {
                ProtectedBy::BuiltIn(name) => format!(
                    "`{branch}` is a protected branch (`{name}` is always protected): only a human merges into it"
                ),
                ProtectedBy::Configured(p) => format!(
                    "`{branch}` is a protected branch (`protect {}` at {}): only a human merges into it",
                    p.pattern, p.origin
                ),
            },
        };
        if let Some(part) = &self.part {
            reason = format!(
                "part {} of {} (`{}`) is the most restrictive: {reason}",
                part.index + 1,
                part.count,
                part.text
            );
        }
        if let Some(relabel) = &self.relabeled {
            reason = format!(
                "decided as `{}`, not `{}`: {}; {reason}",
                self.action, relabel.from, relabel.why
            );
        }
        reason
    }
}
