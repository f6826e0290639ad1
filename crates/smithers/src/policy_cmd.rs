//! `smithers policy …`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use smithers_policy::{Bounded, PolicySet, Request, Subject};

use crate::context::{self, StateArgs};
use crate::render;

/// Exit code for a policy that does not load.
const INVALID: u8 = 2;
/// Exit code for inline tests that fail or, with `--strict`, analysis findings.
const FINDINGS: u8 = 1;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file and run its inline tests.
    ///
    /// Exits 0 when the policy is valid and its tests pass, 1 when a test
    /// fails, 2 when the policy is invalid.
    Check(FileArgs),
    /// Print the decision for one tool call (exit 0 whatever the decision).
    Eval(EvalArgs),
    /// Show every matching rule, its specificity, and why the winner won.
    Explain(EvalArgs),
    /// Report rules that never decide, rules that conflict, and who can reach a call.
    Analyze(AnalyzeArgs),
    /// Run the policy's inline `test` lines (exit 1 when one fails).
    Test(FileArgs),
    /// Publish a policy file as the organization's policy (a new version;
    /// an admin's to do). It bounds every repository's policy in the
    /// organization's runs: a call is decided by both, the more
    /// restrictive wins.
    Publish(crate::org_policy_cmd::PublishArgs),
    /// Print the organization's policy in force (or `--version N`).
    #[command(disable_version_flag = true)]
    Show(crate::org_policy_cmd::ShowArgs),
    /// The organization's policy versions: who published or unpublished what, when.
    History(crate::org_policy_cmd::OrgArgs),
    /// Unpublish the organization's policy (a new version without text;
    /// an admin's to do): repositories' policies decide alone again.
    Unpublish(crate::org_policy_cmd::OrgArgs),
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// The policy file.
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The policy file.
    pub file: PathBuf,
    /// Who asks: a role name, or `user:NAME`.
    #[arg(long)]
    pub subject: String,
    /// The user asking, when `--subject` is a role.
    #[arg(long)]
    pub user: Option<String>,
    /// The tool: read_file, write_file, run_command, push_branch, …
    #[arg(long)]
    pub action: String,
    /// What the tool acts on: a path, a command line, a branch name.
    #[arg(long, allow_hyphen_values = true)]
    pub resource: String,
    /// Where the workspace is mounted: absolute paths under it are workspace-relative.
    #[arg(long, default_value = smithers_policy::path::DEFAULT_WORKSPACE_ROOT)]
    pub workspace_root: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Record the decision in the audit log as a `capability_check` event
    /// (nothing is printed if it cannot be recorded).
    #[arg(long)]
    pub audit: bool,
    /// Bound the decision by the organization's policy in force, as its
    /// runs are: both decide, the more restrictive holds, and both are shown.
    #[arg(long)]
    pub org_policy: bool,
    /// The organization: whose audit log records the decision (`--audit`),
    /// whose policy bounds it (`--org-policy`).
    #[arg(long, default_value = smithers_store::DEFAULT_ORGANIZATION)]
    pub org: String,
    /// Read the organization's policy (--org-policy) and record the
    /// decision (--audit) as this user of it.
    #[arg(
        long = "as",
        env = "SMITHERS_USER",
        default_value = "admin",
        value_name = "USER"
    )]
    pub reader: String,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The policy file.
    pub file: PathBuf,
    /// Which subjects can reach ACTION on RESOURCE, and with what effect?
    #[arg(long, num_args = 2, value_names = ["ACTION", "RESOURCE"], allow_hyphen_values = true)]
    pub who_can: Option<Vec<String>>,
    /// Exit 1 when a rule is shadowed or two rules conflict.
    #[arg(long)]
    pub strict: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: PolicyCommand, state: &StateArgs) -> Result<ExitCode> {
    match command {
        PolicyCommand::Check(args) => check(&args),
        PolicyCommand::Eval(args) => eval(&args, false, state),
        PolicyCommand::Explain(args) => eval(&args, true, state),
        PolicyCommand::Analyze(args) => analyze(&args),
        PolicyCommand::Test(args) => test(&args),
        PolicyCommand::Publish(args) => crate::org_policy_cmd::publish(args, state),
        PolicyCommand::Show(args) => crate::org_policy_cmd::show(args, state),
        PolicyCommand::History(args) => crate::org_policy_cmd::history(args, state),
        PolicyCommand::Unpublish(args) => crate::org_policy_cmd::unpublish(args, state),
    }
}

/// Loads a policy, printing its warnings; `Err` holds the exit code after
/// the diagnostics have been printed.
fn load(file: &Path) -> Result<std::result::Result<PolicySet, ExitCode>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the policy file {}", file.display()))?;
    match PolicySet::parse(&file.display().to_string(), &text) {
        Ok(policy) => {
            for warning in policy.warnings() {
                eprintln!("{warning}");
            }
            Ok(Ok(policy))
        }
        Err(smithers_policy::Error::InvalidPolicy(diagnostics)) => {
            eprintln!("{}", smithers_policy::render_diagnostics(&diagnostics));
            eprintln!(
                "{}: invalid policy ({} error{}); nothing was loaded",
                file.display(),
                diagnostics.len(),
                if diagnostics.len() == 1 { "" } else { "s" }
            );
            Ok(Err(ExitCode::from(INVALID)))
        }
        Err(e) => Err(e.into()),
    }
}

macro_rules! load_or_exit {
    ($file:expr) => {
        match load($file)? {
            Ok(policy) => policy,
            Err(code) => return Ok(code),
        }
    };
}

fn check(args: &FileArgs) -> Result<ExitCode> {
    let policy = load_or_exit!(&args.file);
    let outcomes = policy.run_tests();
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    if args.json {
        render::print_json(&render::check_json(&policy, &outcomes));
    } else {
        for outcome in outcomes.iter().filter(|o| !o.passed()) {
            outln!("{}", outcome.report());
        }
        outln!(
            "{}: valid: {} rules, {} protected branch patterns, {} tests ({} passed, {} failed)",
            args.file.display(),
            policy.rules().len(),
            policy.protected_branches().len(),
            outcomes.len(),
            outcomes.len() - failed,
            failed
        );
    }
    Ok(exit_for(failed > 0))
}

fn test(args: &FileArgs) -> Result<ExitCode> {
    let policy = load_or_exit!(&args.file);
    let outcomes = policy.run_tests();
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    if args.json {
        render::print_json(&render::tests_json(&outcomes));
    } else {
        for outcome in &outcomes {
            outln!("{}", outcome.report());
        }
        outln!("{} passed, {} failed", outcomes.len() - failed, failed);
    }
    Ok(exit_for(failed > 0))
}

fn exit_for(findings: bool) -> ExitCode {
    if findings {
        ExitCode::from(FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

fn eval(args: &EvalArgs, explain: bool, state: &StateArgs) -> Result<ExitCode> {
    let mut subject = Subject::parse(&args.subject)?;
    if let Some(user) = &args.user {
        if subject.user.is_some() {
            bail!("--user cannot be combined with a `user:` subject");
        }
        Subject::parse(&format!("user:{user}")).map(|_| ())?;
        subject.user = Some(user.as_str());
    }
    let policy = load_or_exit!(&args.file).with_workspace_root(&args.workspace_root);
    let request = Request {
        subject,
        action: &args.action,
        resource: &args.resource,
    };
    let org = if args.org_policy {
        match org_policy(args, state) {
            Ok(org) => org,
            Err(e) => return Ok(context::exit(Err(e))),
        }
    } else {
        None
    };
    let org_set = org.as_ref().map(|(_, set)| set);
    let bounded = Bounded::decide(&policy, org_set, &request);
    if args.audit {
        let seq = match record_decision(args, bounded.winner(), state) {
            Ok(seq) => seq,
            Err(e) => return Ok(context::exit(Err(e))),
        };
        eprintln!("recorded in the audit log of {} as event {seq}", args.org);
    }
    let version = org.as_ref().map(|(v, _)| *v);
    if explain {
        let explanation = policy.explain(&request);
        match (org_set, version) {
            (Some(org_set), Some(version)) => {
                let org_explanation = org_set.explain(&request);
                if args.json {
                    render::print_json(&serde_json::json!({
                        "decision": bounded.verdict().keyword(),
                        "decided_by": decided_by(&bounded),
                        "repository": render::explanation_json(&explanation),
                        "organization": {
                            "version": version,
                            "explanation": render::explanation_json(&org_explanation),
                        },
                    }));
                } else {
                    outln!("repository policy {}:", args.file.display());
                    out!("{}", render::explanation_text(&request, &explanation));
                    outln!("organization policy (version {version}) of {:?}:", args.org);
                    out!("{}", render::explanation_text(&request, &org_explanation));
                    outln!(
                        "→ {} (the {}'s decision holds: the more restrictive)",
                        bounded.verdict(),
                        decided_by(&bounded)
                    );
                }
            }
            _ if args.json => render::print_json(&render::explanation_json(&explanation)),
            _ => out!("{}", render::explanation_text(&request, &explanation)),
        }
    } else if args.json {
        let organization = match (&bounded.organization, version) {
            (Some(org_decision), Some(version)) => Some(serde_json::json!({
                "version": version,
                "decides": bounded.by_organization(),
                "decision": render::decision_json(org_decision),
            })),
            _ => None,
        };
        render::print_decision(bounded.winner(), organization);
    } else {
        out!("{}", render::decision_text(bounded.winner()));
        if let (Some(org_decision), Some(version)) = (&bounded.organization, version) {
            outln!(
                "  bounded by the organization's policy version {version}: {} ({})",
                org_decision.verdict,
                if bounded.by_organization() {
                    "stricter: it holds"
                } else {
                    "the repository's holds"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn decided_by(bounded: &Bounded<'_>) -> &'static str {
    if bounded.by_organization() {
        "organization"
    } else {
        "repository"
    }
}

/// The organization's policy in force (its version and the parsed set), or
/// `None` when it has none (said on stderr).
fn org_policy(
    args: &EvalArgs,
    state: &StateArgs,
) -> Result<Option<(u32, PolicySet)>, smithers_api::Error> {
    let shown = runtime()?.block_on(async {
        let app = context::open_app(state).await?;
        let principal = app
            .principal(&args.org, &args.reader, smithers_app::Via::Cli)
            .await?;
        let shown = app.policies().show(&principal, None).await;
        app.close().await;
        shown.map(Some).or_else(|e| match e.kind {
            smithers_api::ErrorKind::NotFound => Ok(None),
            _ => Err(e),
        })
    })?;
    let Some(version) = shown else {
        eprintln!(
            "{:?} has no policy in force: the repository's policy decides alone",
            args.org
        );
        return Ok(None);
    };
    // Named and parsed as a run bounded by it names and parses it.
    let org = smithers_engine::run::OrgPolicy {
        version: version.version,
        text: version.text.unwrap_or_default(),
    };
    let set = org.policy_set().map_err(smithers_app::engine_error)?;
    Ok(Some((org.version, set)))
}

/// A runtime for a service call, its failure as the service layer's error.
fn runtime() -> Result<tokio::runtime::Runtime, smithers_api::Error> {
    context::runtime().map_err(|e| smithers_api::Error::internal(format!("{e:#}")))
}

/// Records the decision as a `capability_check` event by the acting user;
/// fails closed (the command fails when it cannot be recorded).
fn record_decision(
    args: &EvalArgs,
    decision: &smithers_policy::Decision<'_>,
    state: &StateArgs,
) -> Result<u64, smithers_api::Error> {
    let check = smithers_app::CapabilityCheck {
        subject: &args.subject,
        user: args.user.as_deref(),
        tool: &args.action,
        resource: &args.resource,
        policy: &args.file.display().to_string(),
        decision: render::decision_json(decision),
    };
    runtime()?.block_on(async {
        let app = context::open_app(state).await?;
        let principal = app
            .principal(&args.org, &args.reader, smithers_app::Via::Cli)
            .await?;
        let seq = app.policies().record_check(&principal, check).await;
        app.close().await;
        seq
    })
}

fn analyze(args: &AnalyzeArgs) -> Result<ExitCode> {
    let policy = load_or_exit!(&args.file);
    let analysis = policy.analyze();
    let reach = args
        .who_can
        .as_deref()
        .map(|pair| match pair {
            [action, resource] => Ok(policy.who_can(action, resource)),
            _ => bail!("--who-can takes ACTION and RESOURCE"),
        })
        .transpose()?;
    if args.json {
        render::print_json(&render::analysis_json(&analysis, reach.as_deref()));
    } else {
        out!("{}", render::analysis_text(&analysis));
        if let (Some(reach), Some([action, resource])) = (&reach, args.who_can.as_deref()) {
            out!("{}", render::reach_text(action, resource, reach));
        }
    }
    Ok(exit_for(args.strict && !analysis.is_clean()))
}
