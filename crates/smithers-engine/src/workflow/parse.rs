//! `smithers.toml` to [`WorkflowFile`]: the TOML is read with every value's
//! span, then walked by hand so that every problem, not only the first, is
//! reported at its line and column, and an unknown key comes with the key
//! it was probably meant to be.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use smithers_policy::Diagnostic;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::check::CheckContext;
use super::named;
use super::source::Source;
use super::{
    AgentStep, Condition, DEFAULT_APPROVAL_TIMEOUT, DEFAULT_MAX_TURNS, DEFAULT_TIMEOUT, Driver,
    MAX_RETRIES, Outcome, ProviderKind, SecretRef, Step, StepKind, Trigger, Workflow, WorkflowFile,
};

type Value<'i> = Spanned<DeValue<'i>>;

/// The longest wall-clock limit a workflow or step may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

const WORKFLOW_KEYS: &[&str] = &[
    "description",
    "on",
    "schedule",
    "egress",
    "secrets",
    "timeout",
    "approval_timeout",
    "provider",
    "policy",
    "steps",
];
const STEP_KINDS: &[&str] = &["agent", "run", "approval", "commit"];
const STEP_KEYS: &[&str] = &[
    "id",
    "agent",
    "run",
    "approval",
    "commit",
    "needs_approval",
    "timeout",
    "retries",
    "continue_on_error",
    "if",
];
const AGENT_KEYS: &[&str] = &[
    "role",
    "driver",
    "model",
    "prompt",
    "max_turns",
    "script",
    "base_url",
    "key",
    "secrets",
];

/// Parses `text` (the contents of `file`); every problem found is returned,
/// each at its line and column.
pub fn parse(file: &str, text: &str) -> Result<WorkflowFile, Vec<Diagnostic>> {
    parse_in(file, text, None)
}

/// What a check in a repository consults besides the file itself.
pub(super) struct Repository<'c> {
    pub root: &'c Path,
    pub context: &'c CheckContext,
}

/// [`parse`], and with a repository the files the workflows name must exist
/// (a policy must also parse) and, when the context knows them, the
/// secrets too.
pub(super) fn parse_in(
    file: &str,
    text: &str,
    repository: Option<Repository<'_>>,
) -> Result<WorkflowFile, Vec<Diagnostic>> {
    let source = Source::new(file, text);
    let (document, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        // What follows a syntax error is guesswork: report only those.
        return Err(errors
            .iter()
            .map(|e| {
                let span = e.span().unwrap_or(0..0);
                source.error(&span, e.message().trim().to_string())
            })
            .collect());
    }
    let mut walker = Walker {
        source: &source,
        repository,
        diagnostics: Vec::new(),
        warnings: Vec::new(),
    };
    let file = walker.document(&document);
    if walker.diagnostics.is_empty() {
        Ok(file)
    } else {
        walker.diagnostics.sort_by_key(|d| (d.line, d.column));
        Err(walker.diagnostics)
    }
}

struct Walker<'s, 't> {
    source: &'s Source<'t>,
    repository: Option<Repository<'s>>,
    diagnostics: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

/// The known keys of a table that are present, with their values.
type Fields<'a, 'i> = HashMap<&'static str, &'a Value<'i>>;

/// A suggestion for a misspelt key or name.
fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The prefix of every branch Smithers commits to and pushes.
pub const SMITHERS_BRANCH_PREFIX: &str = "smithers/";

/// Why `branch` cannot be a branch Smithers commits to, if it cannot:
/// only `smithers/…`, and a name git accepts.
pub fn branch_problem(branch: &str) -> Option<String> {
    let Some(rest) = branch.strip_prefix(SMITHERS_BRANCH_PREFIX) else {
        return Some(format!(
            "branch {branch:?} is not under `smithers/`: Smithers commits and pushes only to its own branches"
        ));
    };
    if rest.is_empty() {
        return Some(format!("{branch:?} is not a valid branch name"));
    }
    ref_name_problem(branch)
}

/// Why `branch` is not a branch name git and a refspec take as one ref
/// (after `git check-ref-format --branch`, and no option or refspec
/// syntax), if it is not.
pub fn ref_name_problem(branch: &str) -> Option<String> {
    let bad = branch.is_empty()
        || branch.len() > 200
        || branch.starts_with('-')
        || branch.starts_with('/')
        || branch.contains("..")
        || branch.contains("//")
        || branch.contains("@{")
        || branch.ends_with('/')
        || branch.ends_with('.')
        || branch.ends_with(".lock")
        || branch.split('/').any(|part| part.starts_with('.'))
        || branch
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || " ~^:?*[\\".contains(c));
    bad.then(|| format!("{branch:?} is not a valid branch name"))
}

impl<'t> Walker<'_, 't> {
    fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.diagnostics.push(self.source.error(span, message));
    }

    fn warning(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let mut warning = self.source.error(span, message);
        warning.severity = smithers_policy::Severity::Warning;
        self.warnings.push(warning);
    }

    /// The fields of `table`, with an error for each key not in `allowed`.
    fn fields<'a, 'i>(
        &mut self,
        table: &'a DeTable<'i>,
        allowed: &[&'static str],
        what: &str,
    ) -> Fields<'a, 'i> {
        let mut fields = HashMap::new();
        for (key, value) in table.iter() {
            let name: &str = key.get_ref().as_ref();
            match allowed.iter().find(|k| **k == name) {
                Some(known) => {
                    fields.insert(*known, value);
                }
                None => {
                    let hint = did_you_mean(name, allowed);
                    self.error(
                        &key.span(),
                        format!(
                            "unknown key `{name}` in {what}{hint} (known: {})",
                            allowed.join(", ")
                        ),
                    );
                }
            }
        }
        fields
    }

    fn table<'a, 'i>(&mut self, value: &'a Value<'i>, what: &str) -> Option<&'a DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            other => {
                self.error(
                    &value.span(),
                    format!("{what} must be a table, not {}", other.type_str()),
                );
                None
            }
        }
    }

    fn string(&mut self, value: &Value<'_>, what: &str) -> Option<String> {
        match value.get_ref() {
            DeValue::String(text) => Some(text.to_string()),
            other => {
                self.error(
                    &value.span(),
                    format!("{what} must be a string, not {}", other.type_str()),
                );
                None
            }
        }
    }

    fn non_empty(&mut self, value: &Value<'_>, what: &str) -> Option<String> {
        let text = self.string(value, what)?;
        if text.trim().is_empty() {
            self.error(&value.span(), format!("{what} is empty"));
            return None;
        }
        Some(text)
    }

    fn boolean(&mut self, value: &Value<'_>, what: &str) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.error(
                    &value.span(),
                    format!("{what} must be true or false, not {}", other.type_str()),
                );
                None
            }
        }
    }

    fn integer(&mut self, value: &Value<'_>, what: &str, range: Range<u32>) -> Option<u32> {
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            other => {
                self.error(
                    &value.span(),
                    format!("{what} must be a whole number, not {}", other.type_str()),
                );
                return None;
            }
        };
        match parsed.and_then(|n| u32::try_from(n).ok()) {
            Some(n) if range.contains(&n) => Some(n),
            _ => {
                self.error(
                    &value.span(),
                    format!(
                        "{what} must be between {} and {}",
                        range.start,
                        range.end - 1
                    ),
                );
                None
            }
        }
    }

    /// A string, or an array of strings; each with its span.
    fn strings(&mut self, value: &Value<'_>, what: &str) -> Vec<(String, Range<usize>)> {
        match value.get_ref() {
            DeValue::String(text) => vec![(text.to_string(), value.span())],
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| {
                    self.string(item, &format!("each of {what}"))
                        .map(|s| (s, item.span()))
                })
                .collect(),
            other => {
                self.error(
                    &value.span(),
                    format!(
                        "{what} must be a string or a list of strings, not {}",
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        }
    }

    fn duration(&mut self, value: &Value<'_>, what: &str) -> Option<Duration> {
        let text = self.string(value, what)?;
        match smithers_sandbox::parse_duration(&text) {
            Ok(d) if !d.is_zero() && d <= MAX_TIMEOUT => Some(d),
            Ok(_) => {
                self.error(
                    &value.span(),
                    format!("{what} must be more than 0 and at most 7 days"),
                );
                None
            }
            Err(e) => {
                self.error(&value.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    /// With a repository: `path` must be a file in it.
    fn repository_file(&mut self, path: &str, span: &Range<usize>, what: &str) -> Option<String> {
        let root = self.repository.as_ref()?.root;
        if path.starts_with('/') || path.split('/').any(|part| part == "..") {
            self.error(
                span,
                format!("{what} {path:?} must be a path inside the repository"),
            );
            return None;
        }
        match std::fs::read_to_string(root.join(path)) {
            Ok(text) => Some(text),
            Err(e) => {
                self.error(span, format!("{what} {path:?} cannot be read: {e}"));
                None
            }
        }
    }

    /// With a repository: the policy file must exist and parse; its own
    /// problems are reported at its own lines.
    fn policy_file(&mut self, path: &str, span: &Range<usize>) {
        let Some(text) = self.repository_file(path, span, "policy") else {
            return;
        };
        match smithers_policy::PolicySet::parse(path, &text) {
            Ok(_) => {}
            Err(smithers_policy::Error::InvalidPolicy(diagnostics)) => {
                self.error(span, format!("policy {path:?} has errors (below)"));
                self.diagnostics.extend(diagnostics);
            }
            Err(e) => self.error(span, format!("policy {path:?}: {e}")),
        }
    }

    fn document(&mut self, document: &Spanned<DeTable<'t>>) -> WorkflowFile {
        let fields = self.fields(document.get_ref(), &["workflows"], "the file");
        let Some(workflows) = fields.get("workflows") else {
            self.error(
                &(0..0),
                "no workflow: declare one as a [workflows.NAME] table",
            );
            return WorkflowFile {
                workflows: Vec::new(),
                warnings: Vec::new(),
            };
        };
        let Some(table) = self.table(workflows, "`workflows`") else {
            return WorkflowFile {
                workflows: Vec::new(),
                warnings: Vec::new(),
            };
        };
        if table.is_empty() {
            self.error(
                &workflows.span(),
                "no workflow: declare one as a [workflows.NAME] table",
            );
        }
        let mut parsed = Vec::new();
        for (name, value) in table.iter() {
            let name_text: &str = name.get_ref().as_ref();
            if !is_identifier(name_text) {
                self.error(
                    &name.span(),
                    format!(
                        "workflow name {name_text:?} must be letters, digits, `-` and `_` (at most 64)"
                    ),
                );
            }
            let what = format!("workflow `{name_text}`");
            if let Some(table) = self.table(value, &what) {
                parsed.push(self.workflow(name_text, &name.span(), table));
            }
        }
        WorkflowFile {
            workflows: parsed,
            warnings: std::mem::take(&mut self.warnings),
        }
    }

    fn workflow(&mut self, name: &str, span: &Range<usize>, table: &DeTable<'t>) -> Workflow {
        let what = format!("workflow `{name}`");
        let fields = self.fields(table, WORKFLOW_KEYS, &what);
        let description = fields
            .get("description")
            .and_then(|v| self.string(v, "`description`"));
        let triggers = match fields.get("on") {
            Some(v) => self.triggers(v),
            None => vec![Trigger::Manual],
        };
        let schedule = self.schedule(&fields, &triggers, span);
        let egress = fields
            .get("egress")
            .map(|v| self.egress(v))
            .unwrap_or_default();
        let secrets = fields
            .get("secrets")
            .map(|v| self.secrets(v))
            .unwrap_or_default();
        let timeout = fields
            .get("timeout")
            .and_then(|v| self.duration(v, "`timeout`"))
            .unwrap_or(DEFAULT_TIMEOUT);
        let approval_timeout = fields
            .get("approval_timeout")
            .and_then(|v| self.duration(v, "`approval_timeout`"))
            .unwrap_or(DEFAULT_APPROVAL_TIMEOUT);
        let provider = match fields.get("provider") {
            Some(v) => match self.string(v, "`provider`").as_deref() {
                Some("native") | None => ProviderKind::Native,
                Some("docker") => ProviderKind::Docker,
                Some(other) => {
                    self.error(
                        &v.span(),
                        format!("unknown provider {other:?}: `native` or `docker`"),
                    );
                    ProviderKind::Native
                }
            },
            None => ProviderKind::Native,
        };
        let policy = fields.get("policy").and_then(|v| {
            let path = self.non_empty(v, "`policy`")?;
            if path.starts_with('/') || path.split('/').any(|part| part == "..") {
                self.error(
                    &v.span(),
                    format!("policy {path:?} must be a path inside the repository"),
                );
                return None;
            }
            self.policy_file(&path, &v.span());
            Some(path)
        });
        let steps = match fields.get("steps") {
            Some(v) => self.steps(v, &secrets),
            None => {
                self.error(
                    span,
                    format!("{what} has no steps: add [[workflows.{name}.steps]] tables"),
                );
                Vec::new()
            }
        };
        Workflow {
            name: name.to_string(),
            description,
            triggers,
            schedule,
            egress,
            secrets,
            timeout,
            approval_timeout,
            provider,
            policy,
            steps,
            line: self.source.line_of(span.start),
        }
    }

    fn triggers(&mut self, value: &Value<'_>) -> Vec<Trigger> {
        let names: Vec<&str> = Trigger::ALL.iter().map(|(n, _)| *n).collect();
        let mut triggers = Vec::new();
        for (text, span) in self.strings(value, "`on`") {
            match named(&Trigger::ALL, &text) {
                Some(trigger) if triggers.contains(&trigger) => {
                    self.error(&span, format!("trigger {text:?} is listed twice"));
                }
                Some(trigger) => triggers.push(trigger),
                None => {
                    let hint = did_you_mean(&text, &names);
                    self.error(
                        &span,
                        format!(
                            "unknown trigger {text:?}{hint} (known: {})",
                            names.join(", ")
                        ),
                    );
                }
            }
        }
        if triggers.is_empty() && value.get_ref().as_array().is_some_and(|a| a.is_empty()) {
            self.error(
                &value.span(),
                "`on` names no trigger (use [\"manual\"] to run it by hand only)",
            );
        }
        triggers
    }

    fn schedule(
        &mut self,
        fields: &Fields<'_, 't>,
        triggers: &[Trigger],
        span: &Range<usize>,
    ) -> Option<String> {
        let scheduled = triggers.contains(&Trigger::Schedule);
        match fields.get("schedule") {
            None if scheduled => {
                self.error(
                    span,
                    "the `schedule` trigger needs `schedule = \"MIN HOUR DOM MON DOW\"`",
                );
                None
            }
            None => None,
            Some(v) => {
                let cron = self.string(v, "`schedule`")?;
                if !scheduled {
                    self.error(
                        &v.span(),
                        "`schedule` is set but `on` does not list \"schedule\"",
                    );
                }
                let fields = cron.split_whitespace().count();
                let alias = cron.trim_start().starts_with('@');
                if !alias && fields != 5 {
                    self.error(
                        &v.span(),
                        format!(
                            "schedule {cron:?} has {fields} fields; cron takes five: minute hour day-of-month month day-of-week"
                        ),
                    );
                    return None;
                }
                match cron.parse::<croner::Cron>() {
                    Ok(_) => Some(cron),
                    Err(e) => {
                        self.error(
                            &v.span(),
                            format!("schedule {cron:?} is not valid cron: {e}"),
                        );
                        None
                    }
                }
            }
        }
    }

    fn egress(&mut self, value: &Value<'_>) -> Vec<String> {
        let mut hosts = Vec::new();
        for (host, span) in self.strings(value, "`egress`") {
            match smithers_sandbox::egress::Allowlist::parse(std::slice::from_ref(&host)) {
                Ok(_) => hosts.push(host),
                Err(e) => self.error(&span, e.to_string()),
            }
        }
        hosts
    }

    fn secrets(&mut self, value: &Value<'_>) -> Vec<SecretRef> {
        let DeValue::Array(items) = value.get_ref() else {
            self.error(
                &value.span(),
                "`secrets` must be a list like [{ name = \"API_KEY\", env = \"dev\" }]",
            );
            return Vec::new();
        };
        let mut secrets: Vec<SecretRef> = Vec::new();
        for item in items.iter() {
            let Some(table) = self.table(item, "each secret") else {
                continue;
            };
            let fields = self.fields(table, &["name", "env"], "a secret");
            let name = fields
                .get("name")
                .and_then(|v| self.string(v, "a secret's `name`").map(|n| (n, v.span())));
            let env = fields
                .get("env")
                .and_then(|v| self.string(v, "a secret's `env`").map(|e| (e, v.span())));
            let (Some((name, name_span)), Some((env, env_span))) = (name, env) else {
                if !fields.contains_key("name") || !fields.contains_key("env") {
                    self.error(&item.span(), "a secret needs `name` and `env`");
                }
                continue;
            };
            if let Some(problem) = smithers_secrets::names::name_problem(&name) {
                self.error(&name_span, problem);
                continue;
            }
            if let Some(problem) = smithers_secrets::names::environment_problem(&env) {
                self.error(&env_span, problem);
                continue;
            }
            if let Some(known) = self
                .repository
                .as_ref()
                .and_then(|r| r.context.known_secrets.as_ref())
                && !known.contains(&(name.clone(), env.clone()))
            {
                self.error(
                        &name_span,
                        format!(
                            "secret {name} does not exist in environment {env} (add it with `smithers secrets set --env {env} {name}`)"
                        ),
                    );
            }
            if secrets.iter().any(|s| s.name == name) {
                self.error(
                    &name_span,
                    format!("secret {name} is listed twice (one environment per name: it becomes ${name})"),
                );
                continue;
            }
            secrets.push(SecretRef { name, env });
        }
        secrets
    }

    fn steps(&mut self, value: &Value<'t>, secrets: &[SecretRef]) -> Vec<Step> {
        let DeValue::Array(items) = value.get_ref() else {
            self.error(
                &value.span(),
                "`steps` must be a list of [[workflows.NAME.steps]] tables",
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.error(&value.span(), "`steps` is empty");
        }
        let mut steps: Vec<Step> = Vec::new();
        // Every id seen with its line, also of steps with other problems,
        // so that one mistake does not make others up.
        let mut seen: Vec<(String, u32)> = Vec::new();
        for item in items.iter() {
            let Some(table) = self.table(item, "each step") else {
                continue;
            };
            if let Some(step) = self.step(&item.span(), table, &mut seen, secrets) {
                steps.push(step);
            }
        }
        steps
    }

    fn step(
        &mut self,
        span: &Range<usize>,
        table: &DeTable<'t>,
        seen: &mut Vec<(String, u32)>,
        secrets: &[SecretRef],
    ) -> Option<Step> {
        let line = self.source.line_of(span.start);
        let fields = self.fields(table, STEP_KEYS, "a step");
        // A bad id is reported, and the rest of the step is checked all the same.
        let (id, id_ok) = match fields.get("id") {
            Some(v) => match self.string(v, "a step's `id`") {
                Some(id) if !is_identifier(&id) => {
                    self.error(
                        &v.span(),
                        format!("step id {id:?} must be letters, digits, `-` and `_` (at most 64)"),
                    );
                    (id, false)
                }
                Some(id) => match seen.iter().find(|(s, _)| *s == id) {
                    Some((_, first)) => {
                        self.error(
                            &v.span(),
                            format!("step id {id:?} is used twice (first at line {first})"),
                        );
                        (id, false)
                    }
                    None => (id, true),
                },
                None => (String::new(), false),
            },
            None => {
                self.error(span, "a step needs an `id`");
                (String::new(), false)
            }
        };
        // `if` may refer to the steps before this one only.
        let condition = match fields.get("if") {
            Some(v) => self.condition(v, seen),
            None => None,
        };
        let condition_failed = fields.contains_key("if") && condition.is_none();
        if id_ok {
            seen.push((id.clone(), line));
        }
        let kinds: Vec<&str> = STEP_KINDS
            .iter()
            .copied()
            .filter(|k| fields.contains_key(k))
            .collect();
        let kind = match kinds.as_slice() {
            [one] => {
                let value = fields.get(one).copied()?;
                self.step_kind(one, value, secrets)?
            }
            [] => {
                self.error(
                    span,
                    format!(
                        "step {id:?} says nothing to do: give one of {}",
                        STEP_KINDS.join(", ")
                    ),
                );
                return None;
            }
            several => {
                self.error(
                    span,
                    format!(
                        "step {id:?} has {}: a step does one thing",
                        several.join(" and ")
                    ),
                );
                return None;
            }
        };
        let needs_approval = fields
            .get("needs_approval")
            .and_then(|v| self.boolean(v, "`needs_approval`"))
            .unwrap_or(false);
        let timeout = fields
            .get("timeout")
            .and_then(|v| self.duration(v, "a step's `timeout`"));
        let retries = fields
            .get("retries")
            .and_then(|v| self.integer(v, "`retries`", 0..MAX_RETRIES + 1))
            .unwrap_or(0);
        let continue_on_error = fields
            .get("continue_on_error")
            .and_then(|v| self.boolean(v, "`continue_on_error`"))
            .unwrap_or(false);
        if condition_failed || !id_ok {
            return None;
        }
        Some(Step {
            id,
            kind,
            needs_approval,
            timeout,
            retries,
            continue_on_error,
            condition,
            line,
        })
    }

    fn step_kind(
        &mut self,
        kind: &str,
        value: &Value<'t>,
        secrets: &[SecretRef],
    ) -> Option<StepKind> {
        match kind {
            "run" => Some(StepKind::Run {
                command: self.non_empty(value, "`run`")?,
            }),
            "approval" => {
                let message = match value.get_ref() {
                    DeValue::Table(table) => {
                        let fields = self.fields(table, &["message"], "`approval`");
                        match fields.get("message") {
                            Some(v) => self.non_empty(v, "an approval's `message`")?,
                            None => {
                                self.error(&value.span(), "`approval` needs a `message`");
                                return None;
                            }
                        }
                    }
                    _ => self.non_empty(value, "`approval`")?,
                };
                Some(StepKind::Approval { message })
            }
            "commit" => {
                let table = self.table(value, "`commit`")?;
                let fields = self.fields(table, &["branch", "message"], "`commit`");
                let branch = match fields.get("branch") {
                    Some(v) => {
                        let branch = self.string(v, "a commit's `branch`")?;
                        if let Some(problem) = branch_problem(&branch) {
                            self.error(&v.span(), problem);
                            return None;
                        }
                        Some(branch)
                    }
                    None => None,
                };
                let message = match fields.get("message") {
                    Some(v) => self.non_empty(v, "a commit's `message`")?,
                    None => {
                        self.error(&value.span(), "`commit` needs a `message`");
                        return None;
                    }
                };
                Some(StepKind::Commit { branch, message })
            }
            _ => self.agent(value, secrets).map(StepKind::Agent),
        }
    }

    fn agent(&mut self, value: &Value<'t>, secrets: &[SecretRef]) -> Option<AgentStep> {
        let table = self.table(value, "`agent`")?;
        let fields = self.fields(table, AGENT_KEYS, "`agent`");
        let mut missing = Vec::new();
        for required in ["role", "driver", "prompt"] {
            if !fields.contains_key(required) {
                missing.push(format!("`{required}`"));
            }
        }
        if !missing.is_empty() {
            self.error(
                &value.span(),
                format!("`agent` needs {}", missing.join(" and ")),
            );
            return None;
        }
        let role_value = fields.get("role").copied()?;
        let role = self.non_empty(role_value, "an agent's `role`")?;
        if !is_identifier(&role) {
            self.error(
                &role_value.span(),
                format!("role {role:?} must be letters, digits, `-` and `_`"),
            );
            return None;
        }
        let driver_value = fields.get("driver").copied()?;
        let driver_name = self.string(driver_value, "an agent's `driver`")?;
        let names: Vec<&str> = Driver::ALL.iter().map(|(n, _)| *n).collect();
        let Some(driver) = named(&Driver::ALL, &driver_name) else {
            let hint = did_you_mean(&driver_name, &names);
            self.error(
                &driver_value.span(),
                format!(
                    "unknown driver {driver_name:?}{hint} (known: {})",
                    names.join(", ")
                ),
            );
            return None;
        };
        let prompt = self.non_empty(fields.get("prompt").copied()?, "an agent's `prompt`")?;
        let model = fields
            .get("model")
            .and_then(|v| self.non_empty(v, "an agent's `model`"));
        let max_turns = fields
            .get("max_turns")
            .and_then(|v| self.integer(v, "`max_turns`", 1..1001))
            .unwrap_or(DEFAULT_MAX_TURNS);
        let script = fields
            .get("script")
            .and_then(|v| self.non_empty(v, "an agent's `script`"));
        let base_url = fields.get("base_url").and_then(|v| {
            let url = self.non_empty(v, "`base_url`")?;
            match base_url_problem(&url) {
                Some(problem) => {
                    self.error(&v.span(), format!("base_url {url:?} {problem}"));
                    None
                }
                None => Some(url),
            }
        });
        let key = fields
            .get("key")
            .and_then(|v| self.non_empty(v, "an agent's `key`"));
        let mut command_secrets = Vec::new();
        if let Some(v) = fields.get("secrets") {
            for (name, span) in self.strings(v, "an agent's `secrets`") {
                if !secrets.iter().any(|s| s.name == name) {
                    self.error(
                        &span,
                        format!(
                            "secret {name} is not among this workflow's `secrets`; an agent's commands can only get the workflow's own"
                        ),
                    );
                } else if !command_secrets.contains(&name) {
                    command_secrets.push(name);
                }
            }
            if !command_secrets.is_empty() {
                self.warning(
                    &v.span(),
                    format!(
                        "the agent's commands get {} in their environment: the model is shown what those commands print (masked where the redactor recognizes a value, but a command can re-encode it beyond recognition)",
                        command_secrets.join(", ")
                    ),
                );
            }
        }
        match driver {
            Driver::Scripted => {
                if script.is_none() {
                    self.error(
                        &value.span(),
                        "the scripted driver needs `script`, the file of its tool calls",
                    );
                    return None;
                }
                if let (Some(script), Some(v)) = (&script, fields.get("script")) {
                    self.repository_file(script, &v.span(), "script");
                }
                for key in ["model", "base_url", "key"] {
                    if let Some(v) = fields.get(key) {
                        self.error(&v.span(), format!("the scripted driver takes no `{key}`"));
                    }
                }
            }
            Driver::OpenAi | Driver::Anthropic => {
                if model.is_none() {
                    self.error(
                        &value.span(),
                        format!("the {} driver needs `model`", driver.as_str()),
                    );
                    return None;
                }
                if let Some(v) = fields.get("script") {
                    self.error(
                        &v.span(),
                        format!("the {} driver takes no `script`", driver.as_str()),
                    );
                }
                let key_name = key.clone().or(driver.default_key().map(str::to_string));
                if let Some(key_name) = key_name
                    && !secrets.iter().any(|s| s.name == key_name)
                {
                    let span = fields.get("key").map_or(value.span(), |v| v.span());
                    self.error(
                            &span,
                            format!(
                                "the {} driver reads its API key from secret {key_name}, which this workflow's `secrets` does not list",
                                driver.as_str()
                            ),
                        );
                    return None;
                }
            }
        }
        Some(AgentStep {
            role,
            driver,
            model,
            prompt,
            max_turns,
            script,
            base_url,
            key,
            secrets: command_secrets,
        })
    }

    fn condition(&mut self, value: &Value<'_>, earlier: &[(String, u32)]) -> Option<Condition> {
        let text = self.string(value, "`if`")?;
        let outcomes: Vec<&str> = Outcome::ALL.iter().map(|(n, _)| *n).collect();
        let Some((step, outcome)) = text.trim().rsplit_once('.') else {
            self.error(
                &value.span(),
                format!(
                    "`if = {text:?}` must be STEP.OUTCOME, the outcome one of {}",
                    outcomes.join(", ")
                ),
            );
            return None;
        };
        let Some(outcome) = named(&Outcome::ALL, outcome) else {
            let hint = did_you_mean(outcome, &outcomes);
            self.error(
                &value.span(),
                format!(
                    "unknown outcome {outcome:?} in `if`{hint} (known: {})",
                    outcomes.join(", ")
                ),
            );
            return None;
        };
        if !earlier.iter().any(|(id, _)| id == step) {
            let ids: Vec<&str> = earlier.iter().map(|(id, _)| id.as_str()).collect();
            let hint = did_you_mean(step, &ids);
            self.error(
                &value.span(),
                format!("`if` refers to step {step:?}, which is not an earlier step of this workflow{hint}"),
            );
            return None;
        }
        Some(Condition {
            step: step.to_string(),
            outcome,
        })
    }
}

/// What is wrong with an HTTP driver's base URL: not an http(s) URL with
/// a host, or plain http to anything but this machine (the API key would
/// cross the network in the clear).
fn base_url_problem(url: &str) -> Option<String> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => return Some(format!("is not a URL: {e}")),
    };
    let host = match parsed.host_str() {
        Some(host) if !host.is_empty() => host,
        _ => return Some("has no host".into()),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some("must not hold credentials: the key comes from the workflow's secrets".into());
    }
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => None,
        "http" if loopback => None,
        "http" => Some(
            "would send the API key in the clear: use https (plain http is for this machine only)"
                .into(),
        ),
        other => Some(format!("must be an http(s) URL, not {other}")),
    }
}
