//! Evaluation: from a request to a decision.

use std::borrow::Cow;

use crate::Verdict;
use crate::branch::{self, BUILTIN_PROTECTED};
use crate::decision::{Basis, DecidingPart, Decision, Invariant, ProtectedBy, Relabel};
use crate::env;
use crate::index::Candidates;
use crate::path;
use crate::pattern::{Resource, split_parts};
use crate::policy::{PolicySet, Request, Subject};
use crate::shell::{self, Access, AssignmentKind, CommandPart, Redirect};
use crate::tool::{self, ResourceKind};

/// The two candidate lists of one request.
pub(crate) struct Lookup<'p> {
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
                Ok(name) => {
                    let lower = name.to_ascii_lowercase();
                    match set.protection(&lower) {
                        Some(by) => refuse(Invariant::ProtectedBranch {
                            branch: name.into_owned(),
                            by,
                        }),
                        None => Normalized::Branch(Cow::Owned(lower)),
                    }
                }
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
            relabeled: None,
            action: self.action.clone(),
        }
    }

    /// Forbid rules first, then the most specific rule, then the default.
    pub(crate) fn decide(&self, resource: Resource<'_>, only_any_resource: bool) -> Decision<'p> {
        self.decide_by_rules(resource, only_any_resource)
            .unwrap_or_else(|| match tool::lookup(&self.action) {
                Some(t) => self.decision(t.default, Basis::Default { known_tool: true }),
                None => self.decision(Verdict::Ask, Basis::Default { known_tool: false }),
            })
    }

    /// The decision of a rule, if one matches.
    fn decide_by_rules(
        &self,
        resource: Resource<'_>,
        only_any_resource: bool,
    ) -> Option<Decision<'p>> {
        let rules = &self.set.rules;
        if let Some(rule) = self.forbids.best(rules, resource, only_any_resource) {
            return Some(self.decision(Verdict::Deny, Basis::Rule(rule)));
        }
        self.rules
            .best(rules, resource, only_any_resource)
            .map(|rule| self.decision(rule.effect.verdict(), Basis::Rule(rule)))
    }

    /// A command the kernel cannot see into asks, unless a rule on every
    /// command (`*`) is stricter.
    pub(crate) fn unanalysable(&self, why: String) -> Decision<'p> {
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

    /// One program of a command line: its words, and the variables it
    /// runs with that can change what runs.
    fn decide_program(&self, part: &CommandPart, line_changes_directory: bool) -> Decision<'p> {
        if let Some(why) = part.dynamic_program {
            return self.unanalysable(why.to_string());
        }
        if line_changes_directory
            && part
                .words
                .first()
                .is_some_and(|w| w.contains('/') && !w.starts_with('/'))
        {
            return self.unanalysable(format!(
                "the line changes directory, so which file `{}` runs is only known when the shell runs",
                part.words[0]
            ));
        }
        let significant = significant(part);
        let plain = self.decide(Resource::Command(&part.words), false);
        if significant.is_empty() {
            return plain;
        }
        // A forbid on the program holds whatever variables it runs with.
        if plain
            .rule()
            .is_some_and(|r| r.effect == crate::Effect::Forbid)
        {
            return plain;
        }
        let assignments = prefix_assignments(part);
        let named = self.decide_by_rules(
            Resource::Assigned {
                assignments: &assignments,
                significant: &significant,
                words: &part.words,
            },
            false,
        );
        if let Some(named) = named {
            return named;
        }
        if plain.verdict > Verdict::Ask {
            return plain;
        }
        self.decision(Verdict::Ask, Basis::Assignment { names: significant })
    }
}

/// The variables `part` runs with or sets that can change what runs.
fn significant(part: &CommandPart) -> Vec<String> {
    part.assignments
        .iter()
        .filter(|a| !env::is_inert(&a.name, a.value.as_deref()))
        .map(|a| a.name.clone())
        .collect()
}

/// The `NAME=value` assignments written in front of `part` (or alone).
fn prefix_assignments(part: &CommandPart) -> Vec<String> {
    part.assignments
        .iter()
        .filter(|a| a.kind != AssignmentKind::Builtin)
        .map(|a| a.text.clone())
        .collect()
}

/// What one request's resource turned out to be once normalized.
pub(crate) enum Normalized<'p, 'r> {
    /// Refused by an invariant before any rule.
    Refused(Decision<'p>),
    Path(Cow<'r, str>),
    Branch(Cow<'r, str>),
    Opaque(&'r str),
    /// The simple commands, or why the line cannot be analysed.
    Command(Result<Vec<CommandPart>, String>),
}

/// One thing a command line does that is decided on its own.
pub(crate) struct Item<'p> {
    /// The program as it will run, or the redirection.
    pub text: String,
    pub what: ItemKind,
    pub decision: Decision<'p>,
}

/// What an [`Item`] is, with what it was matched against.
pub(crate) enum ItemKind {
    /// A program (or assignments), under the command's tool, with the
    /// `NAME=value` assignments it runs with and the names that matter.
    Program {
        words: Vec<String>,
        assignments: Vec<String>,
        significant: Vec<String>,
    },
    /// A file a redirection opens, as `read_file`/`write_file` of the
    /// normalized path; `None` when the path is not known.
    File {
        action: &'static str,
        path: Option<String>,
    },
}

/// Files a redirection names that are no file of anyone's: the terminal,
/// the null device, the shell's own descriptors.
fn is_device(target: &str) -> bool {
    matches!(
        target,
        "/dev/null"
            | "/dev/zero"
            | "/dev/full"
            | "/dev/random"
            | "/dev/urandom"
            | "/dev/tty"
            | "/dev/stdin"
            | "/dev/stdout"
            | "/dev/stderr"
    ) || target
        .strip_prefix("/dev/fd/")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl PolicySet {
    fn lookup_action<'p>(&'p self, subject: Subject<'_>, action: &str) -> Lookup<'p> {
        let tool = tool::lookup(action);
        Lookup {
            set: self,
            rules: self.index.candidates(subject, action),
            forbids: self.forbid_index.candidates(subject, action),
            action: tool.map_or_else(|| Cow::Owned(action.to_string()), |t| Cow::Borrowed(t.name)),
            kind: tool.map_or(ResourceKind::Opaque, |t| t.kind),
        }
    }

    fn lookup<'p>(&'p self, request: &Request<'_>) -> Lookup<'p> {
        self.lookup_action(request.subject, request.action)
    }

    /// Decides one normalized resource (one simple command, for commands).
    pub(crate) fn decide_resource<'p>(
        &'p self,
        request: &Request<'_>,
        resource: Resource<'_>,
    ) -> Decision<'p> {
        self.lookup(request).decide(resource, false)
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
            Normalized::Command(Err(why)) => {
                let (lookup, relabeled) = self.command_lookup(request, None);
                let mut decision = lookup.unanalysable(why);
                decision.relabeled = relabeled;
                decision
            }
            Normalized::Command(Ok(parts)) => {
                let (relabeled, items) = self.command_items(request, &parts);
                let count = items.len();
                let worst = items.into_iter().enumerate().fold(
                    None::<(usize, Item<'p>)>,
                    |worst, (index, item)| match worst {
                        Some((_, ref w)) if item.decision.verdict <= w.decision.verdict => worst,
                        _ => Some((index, item)),
                    },
                );
                let mut decision = match worst {
                    Some((index, item)) => {
                        let mut decision = item.decision;
                        if count > 1 {
                            decision.part = Some(DecidingPart {
                                index,
                                count,
                                text: item.text,
                            });
                        }
                        decision
                    }
                    None => self
                        .command_lookup(request, Some(&parts))
                        .0
                        .decide(Resource::Command(&[]), false),
                };
                decision.relabeled = relabeled;
                decision
            }
        }
    }

    /// The lookup a command request is decided under: `run_tests` is
    /// decided as `run_command` unless every program of the line is a test
    /// runner (`parts` is `None` when the line cannot be analysed).
    fn command_lookup<'p>(
        &'p self,
        request: &Request<'_>,
        parts: Option<&[CommandPart]>,
    ) -> (Lookup<'p>, Option<Relabel>) {
        if request.action != "run_tests" {
            return (self.lookup(request), None);
        }
        let why = match parts {
            None => Err("the line cannot be analysed".to_string()),
            Some(parts) => self.test_command(parts),
        };
        match why {
            Ok(()) => (self.lookup(request), None),
            Err(why) => (
                self.lookup_action(request.subject, "run_command"),
                Some(Relabel {
                    from: "run_tests",
                    why,
                }),
            ),
        }
    }

    /// Every program of the line, and every file its redirections open,
    /// each decided.
    pub(crate) fn command_items<'p>(
        &'p self,
        request: &Request<'_>,
        parts: &[CommandPart],
    ) -> (Option<Relabel>, Vec<Item<'p>>) {
        let (lookup, relabeled) = self.command_lookup(request, Some(parts));
        let changes_directory = parts.iter().any(|p| p.changes_directory);
        let mut items = Vec::new();
        for part in parts {
            let decides = !part.words.is_empty()
                || part
                    .assignments
                    .iter()
                    .any(|a| !env::is_inert(&a.name, a.value.as_deref()));
            if decides {
                items.push(Item {
                    text: part.display(),
                    what: ItemKind::Program {
                        words: part.words.clone(),
                        assignments: prefix_assignments(part),
                        significant: significant(part),
                    },
                    decision: lookup.decide_program(part, changes_directory),
                });
            }
            for redirect in &part.redirects {
                if let Some(item) = self.redirect_item(request.subject, redirect, changes_directory)
                {
                    items.push(item);
                }
            }
        }
        (relabeled, items)
    }

    /// A redirection decided as `write_file`/`read_file` of its target.
    fn redirect_item<'p>(
        &'p self,
        subject: Subject<'_>,
        redirect: &Redirect,
        changes_directory: bool,
    ) -> Option<Item<'p>> {
        let target = redirect.target.as_str();
        if !redirect.computed && is_device(target) {
            return None;
        }
        let action = match redirect.access {
            Access::Read => "read_file",
            Access::Write => "write_file",
        };
        let lookup = self.lookup_action(subject, action);
        let text = format!("{} {target}", redirect.operator);
        let unknown = |why: String| Item {
            text: text.clone(),
            what: ItemKind::File { action, path: None },
            decision: lookup.unanalysable(why),
        };
        if redirect.computed {
            return Some(unknown(format!(
                "the file `{text}` opens is only known when the shell runs"
            )));
        }
        if changes_directory && !target.starts_with('/') {
            return Some(unknown(format!(
                "the line changes directory, so which file `{text}` opens is only known when the shell runs"
            )));
        }
        let decision = match path::normalize(target, &self.workspace_root) {
            Err(problem) => lookup.invariant(Invariant::PathOutsideWorkspace {
                path: target.to_string(),
                problem,
            }),
            Ok(normal) => {
                let decision = lookup.decide(Resource::Path(&split_parts(&normal)), false);
                return Some(Item {
                    text,
                    what: ItemKind::File {
                        action,
                        path: Some(normal.into_owned()),
                    },
                    decision,
                });
            }
        };
        Some(Item {
            text,
            what: ItemKind::File { action, path: None },
            decision,
        })
    }

    /// Why a valid, lower-cased branch name is protected, if it is.
    pub(crate) fn protection(&self, lower: &str) -> Option<ProtectedBy<'_>> {
        if let Some(builtin) = BUILTIN_PROTECTED.iter().find(|b| **b == lower) {
            return Some(ProtectedBy::BuiltIn(builtin));
        }
        let parts = split_parts(lower);
        self.protected
            .iter()
            .find(|p| p.matches(&parts))
            .map(ProtectedBy::Configured)
    }
}
