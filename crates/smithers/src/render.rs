//! Text and JSON renderings of the kernel's answers.

use serde_json::{Value, json};
use smithers_policy::{
    Analysis, Decision, Explanation, PatternClass, PolicySet, Reach, Request, Rule, ShadowCause,
    Specificity, TestOutcome, Tripwire, why_wins,
};
use std::time::{Duration, UNIX_EPOCH};

/// The exit status of a command whose standard output was closed under it
/// (`smithers runs list --json | head -c1`): 128 + SIGPIPE, what a shell
/// reports for any filter its reader left.
const CLOSED_OUTPUT: i32 = 128 + 13;

/// Ends the command quietly when `e` says its reader went away, as a Unix
/// filter ends (no message, status 141); anything else is returned.
pub fn closed_quietly(e: std::io::Error) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(CLOSED_OUTPUT);
    }
    e
}

/// Writes to standard output, for [`out!`] and [`outln!`]: a closed
/// output ends the command quietly ([`closed_quietly`]); any other failure
/// (a full disk under a redirection) is reported and ends it with status 2.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let result = {
        let mut out = std::io::stdout().lock();
        out.write_fmt(args).and_then(|()| out.flush())
    };
    if let Err(e) = result.map_err(closed_quietly) {
        let _ = writeln!(
            std::io::stderr(),
            "error: cannot write to standard output: {e}"
        );
        std::process::exit(2);
    }
}

/// `print!` that ends the command quietly when its output is closed.
macro_rules! out {
    ($($arg:tt)*) => { $crate::render::write_out(format_args!($($arg)*)) };
}

/// `println!` that ends the command quietly when its output is closed.
macro_rules! outln {
    () => { $crate::render::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::render::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Prints a wire type (`smithers-api`) as pretty JSON: the shape the HTTP
/// API returns.
pub fn print_json_of<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => outln!("{text}"),
        // The API's types serialize infallibly (no maps with non-string keys).
        Err(e) => tracing::error!(error = %e, "a response did not serialize"),
    }
}

pub fn print_json(value: &Value) {
    // Serializing a `Value` cannot fail.
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn rule_json(rule: &Rule) -> Value {
    json!({
        "file": &*rule.origin.file,
        "line": rule.origin.line,
        "text": rule.origin.text,
    })
}

/// `{"decision", "rule", "source", "reason", "decided_as"}`, in that
/// order: the shape scripts rely on. `decided_as` is the tool the request
/// was decided as (`run_command` for a `run_tests` line that starts
/// something other than test runners).
#[derive(serde::Serialize)]
struct DecisionJson {
    decision: &'static str,
    rule: Option<Value>,
    source: &'static str,
    reason: String,
    decided_as: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    relabeled: Option<Value>,
}

fn decision_shape(decision: &Decision<'_>) -> DecisionJson {
    DecisionJson {
        decision: decision.verdict.keyword(),
        rule: decision.rule().map(rule_json),
        source: decision.source().as_str(),
        reason: decision.reason(),
        decided_as: decision.action().to_string(),
        relabeled: decision
            .relabeled
            .as_ref()
            .map(|r| json!({"from": r.from, "why": r.why})),
    }
}

/// Prints a decision in its documented shape, with the organization's
/// side (`{"version", "decides", "decision"}`) after it when a policy of
/// the organization bounds it.
pub fn print_decision(decision: &Decision<'_>, organization: Option<Value>) {
    #[derive(serde::Serialize)]
    struct Shape {
        #[serde(flatten)]
        decision: DecisionJson,
        #[serde(skip_serializing_if = "Option::is_none")]
        organization: Option<Value>,
    }
    print_json_of(&Shape {
        decision: decision_shape(decision),
        organization,
    });
}

pub fn decision_json(decision: &Decision<'_>) -> Value {
    serde_json::to_value(decision_shape(decision)).unwrap_or(Value::Null)
}

pub fn decision_text(decision: &Decision<'_>) -> String {
    let mut out = format!("{}\n", decision.verdict);
    if let Some(relabel) = &decision.relabeled {
        out += &format!(
            "  decided as: {} (not {}: {})\n",
            decision.action(),
            relabel.from,
            relabel.why
        );
    }
    out += &format!("  source: {}\n", decision.source().as_str());
    if let Some(rule) = decision.rule() {
        out += &format!("  rule:   {}: {}\n", rule.origin, rule.origin.text);
    }
    out += &format!("  reason: {}\n", decision.reason());
    out
}

fn specificity_words(s: Specificity) -> String {
    let resource = match s.resource.class {
        PatternClass::Literal => format!("literal ({} chars)", s.resource.literal_prefix),
        PatternClass::Glob => format!("glob, prefix {} chars", s.resource.literal_prefix),
        PatternClass::Any => "*".to_string(),
    };
    let subject = match s.subject {
        2 => "user",
        1 => "role",
        _ => "*",
    };
    let action = if s.action == 1 { "tool" } else { "*" };
    format!("action {action}, resource {resource}, subject {subject}")
}

fn specificity_json(s: Specificity) -> Value {
    json!({
        "action": if s.action == 1 { "tool" } else { "any" },
        "resource": match s.resource.class {
            PatternClass::Literal => "literal",
            PatternClass::Glob => "glob",
            PatternClass::Any => "any",
        },
        "literal_prefix": s.resource.literal_prefix,
        "subject": match s.subject { 2 => "user", 1 => "role", _ => "any" },
    })
}

pub fn explanation_text(request: &Request<'_>, explanation: &Explanation<'_>) -> String {
    let mut out = format!(
        "request:  {} {} {:?} ({})\n",
        request.subject,
        request.action,
        request.resource,
        explanation.kind.name()
    );
    out += &format!("decision: {}\n", explanation.decision.verdict);
    if let Some(relabel) = &explanation.decision.relabeled {
        out += &format!(
            "decided as: run_command, not {}: {}\n",
            relabel.from, relabel.why
        );
    }
    out += &format!("source:   {}\n", explanation.decision.source().as_str());
    out += &format!("reason:   {}\n", explanation.decision.reason());
    if explanation.parts.is_empty() {
        out += "\nrefused by a built-in invariant before any rule was consulted\n";
    }
    let count = explanation.parts.len();
    for (i, part) in explanation.parts.iter().enumerate() {
        out += "\n";
        if count > 1 {
            out += &format!(
                "part {} of {count}: {} (as {})\n",
                i + 1,
                part.text,
                part.action
            );
        } else {
            out += &format!("resource: {:?}\n", part.text);
        }
        out += &format!(
            "  decides: {} ({})\n",
            part.decision.verdict,
            part.decision.reason()
        );
        if part.matches.is_empty() {
            out += "  no rule matches\n";
            continue;
        }
        out += "  matching rules, the deciding one first:\n";
        for m in &part.matches {
            out += &format!(
                "    {}  {}\n      {}\n",
                m.rule.origin,
                m.rule.origin.text,
                specificity_words(m.specificity)
            );
        }
        if let (Some(winner), true) = (part.decision.rule(), part.matches.len() > 1) {
            for m in part
                .matches
                .iter()
                .filter(|m| m.rule.order() != winner.order())
            {
                out += &format!(
                    "  line {} wins over line {}: {}\n",
                    winner.origin.line,
                    m.rule.origin.line,
                    why_wins(winner, m.rule)
                );
            }
        }
    }
    out
}

pub fn explanation_json(explanation: &Explanation<'_>) -> Value {
    let parts: Vec<Value> = explanation
        .parts
        .iter()
        .map(|part| {
            let winner = part.decision.rule();
            json!({
                "resource": part.text,
                "decided_as": part.action,
                "decision": decision_json(&part.decision),
                "matches": part.matches.iter().map(|m| json!({
                    "rule": rule_json(m.rule),
                    "effect": m.rule.effect.keyword(),
                    "specificity": specificity_json(m.specificity),
                    "loses_because": winner
                        .filter(|w| w.order() != m.rule.order())
                        .map(|w| why_wins(w, m.rule)),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "kind": explanation.kind.name(),
        "decision": decision_json(&explanation.decision),
        "parts": parts,
    })
}

pub fn tests_json(outcomes: &[TestOutcome<'_>]) -> Value {
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    json!({
        "passed": outcomes.len() - failed,
        "failed": failed,
        "tests": outcomes.iter().map(|o| json!({
            "file": &*o.test.origin.file,
            "line": o.test.origin.line,
            "text": o.test.origin.text,
            "expected": o.test.expected.keyword(),
            "passed": o.passed(),
            "decision": decision_json(&o.decision),
        })).collect::<Vec<_>>(),
    })
}

pub fn check_json(policy: &PolicySet, outcomes: &[TestOutcome<'_>]) -> Value {
    json!({
        "valid": true,
        "rules": policy.rules().len(),
        "protected_branches": policy.protected_branches().iter().map(|p| p.pattern.clone()).collect::<Vec<_>>(),
        "warnings": policy.warnings().iter().map(|w| json!({
            "file": w.file, "line": w.line, "column": w.column, "message": w.message,
        })).collect::<Vec<_>>(),
        "tests": tests_json(outcomes),
    })
}

fn shadow_cause_text(cause: &ShadowCause<'_>) -> String {
    match cause {
        ShadowCause::Rule(by) => format!(
            "`{}` ({}) always wins where it matches",
            by.origin.text, by.origin
        ),
        ShadowCause::Invariant(why) => why.clone(),
    }
}

pub fn analysis_text(analysis: &Analysis<'_>) -> String {
    let mut out = String::new();
    for s in &analysis.shadowed {
        out += &format!(
            "{}: shadowed: `{}` never decides: {}\n",
            s.rule.origin,
            s.rule.origin.text,
            shadow_cause_text(&s.cause)
        );
    }
    for c in &analysis.conflicts {
        out += &format!(
            "{}: conflict: `{}` and `{}` ({}) are equally specific and both match {:?}; `{}` wins there\n",
            c.loser.origin,
            c.loser.origin.text,
            c.winner.origin.text,
            c.winner.origin,
            c.witness,
            c.winner.effect
        );
    }
    for t in &analysis.tripwires {
        out += &format!("{}: tripwire: {}\n", t.refusal.origin, tripwire_text(t));
    }
    out += &format!(
        "{} shadowed, {} conflicts, {} tripwires\n",
        analysis.shadowed.len(),
        analysis.conflicts.len(),
        analysis.tripwires.len()
    );
    out
}

fn tripwire_text(t: &Tripwire<'_>) -> String {
    format!(
        "`{}` refuses a program by name while `{}` ({}) allows any command: the program can run under another name (a copy, a link, `busybox`, an interpreter, a wrapper the kernel does not know), so this refusal is a tripwire, not a boundary; allow only the commands you mean instead",
        t.refusal.origin.text, t.allow.origin.text, t.allow.origin
    )
}

pub fn reach_text(action: &str, resource: &str, reach: &[Reach<'_>]) -> String {
    let mut out = format!("\nwho can {action} {resource:?}:\n");
    let width = reach.iter().map(|r| r.subject.len()).max().unwrap_or(0);
    for r in reach {
        let label = if r.subject == "*" {
            "any other subject"
        } else {
            &r.subject
        };
        out += &format!(
            "  {label:width$}  {:10}  {}\n",
            r.decision.verdict.keyword(),
            r.decision.reason(),
            width = width.max(17)
        );
    }
    out
}

pub fn analysis_json(analysis: &Analysis<'_>, reach: Option<&[Reach<'_>]>) -> Value {
    json!({
        "shadowed": analysis.shadowed.iter().map(|s| json!({
            "rule": rule_json(s.rule),
            "by": match &s.cause {
                ShadowCause::Rule(by) => rule_json(by),
                ShadowCause::Invariant(_) => Value::Null,
            },
            "reason": shadow_cause_text(&s.cause),
        })).collect::<Vec<_>>(),
        "conflicts": analysis.conflicts.iter().map(|c| json!({
            "winner": rule_json(c.winner),
            "loser": rule_json(c.loser),
            "witness": c.witness,
        })).collect::<Vec<_>>(),
        "tripwires": analysis.tripwires.iter().map(|t| json!({
            "refusal": rule_json(t.refusal),
            "allow": rule_json(t.allow),
            "reason": tripwire_text(t),
        })).collect::<Vec<_>>(),
        "who_can": reach.map(|reach| reach.iter().map(|r| json!({
            "subject": r.subject,
            "decision": decision_json(&r.decision),
        })).collect::<Vec<_>>()),
    })
}

/// Microseconds since the epoch as an RFC 3339 time, UTC.
pub fn rfc3339(micros: i64) -> String {
    let time = if micros >= 0 {
        UNIX_EPOCH + Duration::from_micros(micros.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    };
    humantime::format_rfc3339_micros(time).to_string()
}
