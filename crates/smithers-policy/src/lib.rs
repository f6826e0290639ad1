//! The capability kernel: it decides every tool call an agent makes.
//!
//! A policy is a list of lines `SUBJECT ACTION RESOURCE -> EFFECT`. For a
//! request (who, which tool, on what) the kernel returns a [`Decision`]:
//! `allow`, `ask` (a human approves), `admin-only` (an org admin approves) or
//! `deny`, with the rule, default or invariant that made it and a reason a
//! person can read.
//!
//! Precedence, in order:
//! 1. built-in invariants (a path leaving the workspace, a write to a
//!    protected branch) and `forbid` rules deny, whatever else matches;
//! 2. otherwise the most specific matching rule decides: the action (a named
//!    tool beats `*`), then the resource (a literal beats a glob, a longer
//!    literal prefix beats a shorter one, `*` comes last), then the subject
//!    (`user:NAME` beats a role beats `*`);
//! 3. among equally specific rules the most restrictive effect wins
//!    (`deny > admin-only > ask > allow`);
//! 4. when no rule matches, the tool's built-in default applies.
//!
//! A shell command is split into every program it would start and each is
//! decided; the most restrictive part decides the whole command.
//!
//! This crate is pure: no I/O, no clock, no async. Reading files and
//! printing belong to its callers.

mod analysis;
mod bounded;
pub mod branch;
mod decision;
mod diagnostic;
mod effect;
pub mod env;
mod eval;
mod explain;
pub mod glob;
mod index;
mod parser;
pub mod path;
mod pattern;
mod policy;
mod runners;
pub mod shell;
mod testing;
pub mod tool;

pub use analysis::{Analysis, Conflict, Reach, ShadowCause, Shadowed, Tripwire};
pub use bounded::Bounded;
pub use decision::{Basis, DecidingPart, Decision, Invariant, ProtectedBy, Relabel, Source};
pub use diagnostic::{Diagnostic, Severity, render as render_diagnostics};
pub use effect::{Effect, Verdict};
pub use explain::{Explanation, PartExplanation, RuleMatch, why_wins};
pub use pattern::{PatternClass, Resource, ResourcePattern, ResourceSpecificity};
pub use policy::{
    ActionPattern, InlineTest, Origin, PolicySet, ProtectRule, Request, Rule, Specificity, Subject,
    SubjectPattern,
};
pub use runners::TestRunner;
pub use testing::TestOutcome;
pub use tool::ResourceKind;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy has errors; nothing of it was loaded.
    #[error("{}", render_diagnostics(.0))]
    InvalidPolicy(Vec<Diagnostic>),
    /// A request's subject or action is malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}
