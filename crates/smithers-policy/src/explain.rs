//! Explanations: every rule that matched a request, how specific each one
//! is, and why the winner won.

use crate::Effect;
use crate::decision::Decision;
use crate::eval::{ItemKind, Normalized};
use crate::index::beats;
use crate::pattern::{PatternClass, Resource, split_parts};
use crate::policy::{PolicySet, Request, Rule, Specificity, Subject};
use crate::tool::{self, ResourceKind};

/// A rule that matched.
#[derive(Debug, Clone)]
pub struct RuleMatch<'p> {
    pub rule: &'p Rule,
    pub specificity: Specificity,
}

/// One resource decided: the whole resource, one program of a command
/// line, or one file a redirection opens.
#[derive(Debug, Clone)]
pub struct PartExplanation<'p> {
    /// The normalized resource, the program as it will run, or the
    /// redirection (`> .github/ci.yml`).
    pub text: String,
    /// The tool it was decided as (`write_file` for a redirection).
    pub action: String,
    /// Every matching rule, the deciding one first.
    pub matches: Vec<RuleMatch<'p>>,
    pub decision: Decision<'p>,
}

#[derive(Debug, Clone)]
pub struct Explanation<'p> {
    pub kind: ResourceKind,
    /// The decision for the whole request.
    pub decision: Decision<'p>,
    /// Empty when an invariant refused the request before any rule.
    pub parts: Vec<PartExplanation<'p>>,
}

impl PolicySet {
    /// Decides `request` and lists what went into the decision.
    pub fn explain<'p>(&'p self, request: &Request<'_>) -> Explanation<'p> {
        let decision = self.evaluate(request);
        let kind = tool::resource_kind(request.action);
        // The tool the command's programs were decided as (a redirection
        // may have decided the whole under `write_file`).
        let action = match (&decision.relabeled, kind) {
            (Some(_), _) => "run_command".to_string(),
            _ => request.action.to_string(),
        };
        let part = |text: String, resource: Resource<'_>| PartExplanation {
            matches: self.matching_rules(request.subject, request.action, resource),
            decision: self.decide_resource(request, resource),
            action: action.clone(),
            text,
        };
        let parts = match self.normalize(request) {
            Normalized::Refused(_) => Vec::new(),
            Normalized::Path(p) => vec![part(p.to_string(), Resource::Path(&split_parts(&p)))],
            Normalized::Branch(b) => vec![part(b.to_string(), Resource::Branch(&split_parts(&b)))],
            Normalized::Opaque(o) => vec![part(o.to_string(), Resource::Opaque(o))],
            Normalized::Command(Err(_)) => vec![PartExplanation {
                text: request.resource.to_string(),
                matches: self
                    .matching_rules(request.subject, &action, Resource::Command(&[]))
                    .into_iter()
                    .filter(|m| m.rule.resource.is_any())
                    .collect(),
                decision: decision.clone(),
                action: action.clone(),
            }],
            Normalized::Command(Ok(commands)) => {
                let (_, items) = self.command_items(request, &commands);
                items
                    .into_iter()
                    .map(|item| {
                        let (item_action, mut matches) = match &item.what {
                            ItemKind::Program {
                                words,
                                assignments,
                                significant,
                            } => {
                                let mut matches = Vec::new();
                                if !significant.is_empty() {
                                    matches = self.matching_rules(
                                        request.subject,
                                        &action,
                                        Resource::Assigned {
                                            assignments,
                                            significant,
                                            words,
                                        },
                                    );
                                }
                                for m in self.matching_rules(
                                    request.subject,
                                    &action,
                                    Resource::Command(words),
                                ) {
                                    if !matches.iter().any(|n| n.rule.order() == m.rule.order()) {
                                        matches.push(m);
                                    }
                                }
                                (action.clone(), matches)
                            }
                            ItemKind::File { action, path } => (
                                (*action).to_string(),
                                path.as_deref().map_or_else(Vec::new, |p| {
                                    self.matching_rules(
                                        request.subject,
                                        action,
                                        Resource::Path(&split_parts(p)),
                                    )
                                }),
                            ),
                        };
                        // The deciding rule first, whichever list it came from.
                        if let Some(rule) = item.decision.rule()
                            && let Some(at) =
                                matches.iter().position(|m| m.rule.order() == rule.order())
                        {
                            let deciding = matches.remove(at);
                            matches.insert(0, deciding);
                        }
                        PartExplanation {
                            text: item.text,
                            action: item_action,
                            matches,
                            decision: item.decision,
                        }
                    })
                    .collect()
            }
        };
        Explanation {
            kind,
            decision,
            parts,
        }
    }

    /// Every rule matching `subject`, `action` and `resource`, ordered so
    /// that the rule that decides comes first.
    fn matching_rules<'p>(
        &'p self,
        subject: Subject<'_>,
        action: &str,
        resource: Resource<'_>,
    ) -> Vec<RuleMatch<'p>> {
        let mut matches: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| {
                r.subject.matches(subject)
                    && r.action.matches(action)
                    && r.resource.matches(resource)
            })
            .collect();
        matches.sort_by(|a, b| {
            let forbid = |r: &Rule| r.effect == Effect::Forbid;
            forbid(b).cmp(&forbid(a)).then_with(|| {
                if beats(a, b) {
                    std::cmp::Ordering::Less
                } else if beats(b, a) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
        });
        matches
            .into_iter()
            .map(|rule| RuleMatch {
                rule,
                specificity: rule.specificity(),
            })
            .collect()
    }
}

/// Why `winner` decides rather than `other`, when both match.
pub fn why_wins(winner: &Rule, other: &Rule) -> String {
    let (w, o) = (winner.specificity(), other.specificity());
    if winner.effect == Effect::Forbid && other.effect != Effect::Forbid {
        return "it is a forbid rule, which overrides every other rule".into();
    }
    if w.action != o.action {
        return "it names the tool; the other applies to every tool (`*`)".into();
    }
    if w.resource != o.resource {
        let class = |c: PatternClass| match c {
            PatternClass::Literal => "a literal",
            PatternClass::Glob => "a glob",
            PatternClass::Any => "`*`",
        };
        if w.resource.class != o.resource.class {
            return format!(
                "its resource is {}, the other's is {}",
                class(w.resource.class),
                class(o.resource.class)
            );
        }
        return format!(
            "its resource has a longer literal prefix ({} characters against {})",
            w.resource.literal_prefix, o.resource.literal_prefix
        );
    }
    if w.subject != o.subject {
        let who = |s: u8| match s {
            2 => "a user",
            1 => "a role",
            _ => "everyone (`*`)",
        };
        return format!("it names {}, the other {}", who(w.subject), who(o.subject));
    }
    if winner.effect.verdict() != other.effect.verdict() {
        return format!(
            "equally specific, and `{}` is more restrictive than `{}`",
            winner.effect.verdict(),
            other.effect.verdict()
        );
    }
    "equally specific with the same effect; it comes first".into()
}
