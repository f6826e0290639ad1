//! Evaluation: from a request to a decision.

use std::borrow::Cow;

use crate::Verdict;
use crate::branch::{self, BUILTIN_PROTECTED};
use crate::decision::{Basis, DecidingPart, Decision, Invariant, ProtectedBy};
use crate::index::Candidates;
use crate::path;
use crate::pattern::{Resource, split_parts};
use crate::policy::{PolicySet, Request};
use crate::shell;
use crate::tool::{self, ResourceKind};

/// The two candidate lists of one request.
struct Lookup<'p> {
    set: &'p PolicySet,
    rules: Candidates<'p>,
    forbids: Candidates<'p>,
    action: Cow<'static, str>,
    kind: ResourceKind,
}

impl<'p> Lookup<'p> {
    /// Normalizes the request's resource for its tool, applying the invariants.
    fn normalize<'r>(&self, request: &Request<'r>) -> Normalized<'p, 'r> {
        let set = self.set;
        let refuse = |invariant| Normalized::Refused(self.invariant(invariant));
        match self.kind {
            ResourceKind::Path => match path::normalize(request.resource, &set.workspace_root) {
                Ok(normal) => Normalized::Path(normal),
                Err(problem) => refuse(Invariant::PathOutsideWorkspace {
                    path: request.resource.to_string(),
                    problem,
                }),
            },
            ResourceKind::Branch => match branch::normalize(request.resource) {
                Ok(name) => match set.protection(&name, &split_parts(&name)) {
                    Some(by) => refuse(Invariant::ProtectedBranch {
                        branch: name.into_owned(),
                        by,
                    }),
                    None => Normalized::Branch(name),
                },
                Err(problem) => refuse(Invariant::InvalidBranch {
                    branch: request.resource.to_string(),
                    problem,
                }),
            },
            ResourceKind::Opaque => Normalized::Opaque(request.resource),
            ResourceKind::Command => {
                Normalized::Command(shell::split_command(request.resource).map_err(|e| e.message))
            }
        }
    }

    fn decision(&self, verdict: Verdict, basis: Basis<'p>) -> Decision<'p> {
        Decision {
            verdict,
            basis,
            part: None,
            action: self.action.clone(),
        }
    }

    /// Forbid rules first, then the most specific rule, then the default.
    fn decide(&self, resource: Resource<'_>, only_any_resource: bool) -> Decision<'p> {
        let rules = &self.set.rules;
        if let Some(rule) = self.forbids.best(rules, resource, only_any_resource) {
            return self.decision(Verdict::Deny, Basis::Rule(rule));
        }
        if let Some(rule) = self.rules.best(rules, resource, only_any_resource) {
            return self.decision(rule.effect.verdict(), Basis::Rule(rule));
        }
        match tool::lookup(&self.action) {
            Some(t) => self.decision(t.default, Basis::Default { known_tool: true }),
            None => self.decision(Verdict::Ask, Basis::Default { known_tool: false }),
        }
    }

    /// A command the kernel cannot see into asks, unless a rule on every
    /// command (`*`) is stricter.
    fn unanalysable(&self, why: String) -> Decision<'p> {
        let by_any = self.decide(Resource::Command(&[]), true);
        if by_any.verdict > Verdict::Ask && by_any.rule().is_some() {
            by_any
        } else {
            self.decision(Verdict::Ask, Basis::Unanalysable { why })
        }
    }

    fn invariant(&self, invariant: Invariant<'p>) -> Decision<'p> {
        self.decision(Verdict::Deny, Basis::Invariant(invariant))
    }
}

/// What one request's resource turned out to be once normalized.
pub(crate) enum Normalized<'p, 'r> {
    /// Refused by an invariant before any rule.
    Refused(Decision<'p>),
    Path(Cow<'r, str>),
    Branch(Cow<'r, str>),
    Opaque(&'r str),
    /// The simple commands, or why the line cannot be analysed.
    Command(Result<Vec<shell::CommandPart>, String>),
}

impl PolicySet {
    fn lookup<'p>(&'p self, request: &Request<'_>) -> Lookup<'p> {
        let tool = tool::lookup(request.action);
        Lookup {
            set: self,
            rules: self.index.candidates(request.subject, request.action),
            forbids: self
                .forbid_index
                .candidates(request.subject, request.action),
            action: tool.map_or_else(
                || Cow::Owned(request.action.to_string()),
                |t| Cow::Borrowed(t.name),
            ),
            kind: tool.map_or(ResourceKind::Opaque, |t| t.kind),
        }
    }

    /// Decides one normalized resource (one simple command, for commands).
    pub(crate) fn decide_resource<'p>(
        &'p self,
        request: &Request<'_>,
        resource: Resource<'_>,
    ) -> Decision<'p> {
        self.lookup(request).decide(resource, false)
    }

    pub(crate) fn decide_unanalysable<'p>(
        &'p self,
        request: &Request<'_>,
        why: String,
    ) -> Decision<'p> {
        self.lookup(request).unanalysable(why)
    }

    /// Normalizes a request's resource for its tool, applying the invariants.
    pub(crate) fn normalize<'p, 'r>(&'p self, request: &Request<'r>) -> Normalized<'p, 'r> {
        self.lookup(request).normalize(request)
    }

    /// Decides one tool call.
    pub fn evaluate<'p>(&'p self, request: &Request<'_>) -> Decision<'p> {
        let lookup = self.lookup(request);
        match lookup.normalize(request) {
            Normalized::Refused(decision) => decision,
            Normalized::Path(p) => lookup.decide(Resource::Path(&split_parts(&p)), false),
            Normalized::Branch(b) => lookup.decide(Resource::Branch(&split_parts(&b)), false),
            Normalized::Opaque(o) => lookup.decide(Resource::Opaque(o), false),
            Normalized::Command(Err(why)) => lookup.unanalysable(why),
            Normalized::Command(Ok(parts)) => {
                let count = parts.len();
                let mut worst: Option<(usize, Decision<'p>)> = None;
                for (index, part) in parts.iter().enumerate() {
                    let decision = if part.dynamic_program {
                        lookup.unanalysable(DYNAMIC_PROGRAM.into())
                    } else {
                        lookup.decide(Resource::Command(&part.words), false)
                    };
                    if worst
                        .as_ref()
                        .is_none_or(|(_, w)| decision.verdict > w.verdict)
                    {
                        worst = Some((index, decision));
                    }
                }
                match worst {
                    Some((index, mut decision)) => {
                        if count > 1 {
                            decision.part = Some(DecidingPart {
                                index,
                                count,
                                text: parts[index].display(),
                            });
                        }
                        decision
                    }
                    None => lookup.decide(Resource::Command(&[]), false),
                }
            }
        }
    }

    /// Why a valid branch name is protected, if it is.
    pub(crate) fn protection(&self, name: &str, parts: &[&str]) -> Option<ProtectedBy<'_>> {
        let lower = name.to_ascii_lowercase();
        if let Some(builtin) = BUILTIN_PROTECTED.iter().find(|b| **b == lower) {
            return Some(ProtectedBy::BuiltIn(builtin));
        }
        let lower_parts = split_parts(&lower);
        self.protected
            .iter()
            .find(|p| p.matches(parts) || p.matches(&lower_parts))
            .map(ProtectedBy::Configured)
    }
}

pub(crate) const DYNAMIC_PROGRAM: &str = "the program name is only known when the shell runs";
