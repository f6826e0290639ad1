//! `smithers secrets …`: set, read under a grant, list, rotate, destroy,
//! rewrap, key usage and grants. Values come in on stdin or a prompt
//! without echo (never an argument) and go out only to a pipe or with
//! `--reveal`.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use smithers_api::{
    Error, Grant, GrantBinding, GrantRequest, KeyUsage, RewrapSummary, SecretVersion,
};
use smithers_app::authz::{Operation, authorize};
use smithers_app::{Principal, SecretReadOptions, SecretsService, Via};
use smithers_secrets::{KEYRING_ENV, SecretValue};
use zeroize::Zeroizing;

use crate::context::{self, ActorArgs, StateArgs};
use crate::render::print_json_of;

/// The largest value accepted, so a stray pipe cannot fill the database.
const MAX_VALUE_BYTES: usize = 1 << 20;

#[derive(Debug, Args)]
#[command(after_help = "\
The keyring comes from SECRET_ENCRYPTION_KEYS=\"id:base64-32-byte-key,…\" (the first key encrypts).
Destroying versions, keys, rewrap and deciding grants need an admin of the organization.
Exit status: 0 done, 2 error, 3 access denied (no usable grant, not an admin), 4 conflict
(--expect-version did not match, already exists, grant already decided).")]
pub struct SecretsArgs {
    #[command(flatten)]
    actor: ActorArgs,
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Create a secret at version 1; the value is read from stdin or prompted for without echo.
    Set(WriteArgs),
    /// Print a value: needs an approved grant; only to a pipe, or to a terminal with --reveal.
    Get(GetArgs),
    /// List secrets (names, versions, dates, key ids; never values).
    List(ListArgs),
    /// Every version of a secret and its state.
    Versions(VersionsArgs),
    /// Add a new active version (read like `set`); the previous one is deactivated and kept.
    Rotate(WriteArgs),
    /// Erase one version's ciphertext for good (the metadata stays).
    Destroy(DestroyArgs),
    /// Re-wrap every version still wrapped by an older key under the first key.
    Rewrap(JsonArg),
    /// Key ids of the keyring and of stored versions, with how many versions each wraps.
    Keys(JsonArg),
    /// Request, approve, deny and list grants to read values.
    #[command(subcommand)]
    Grant(GrantCommand),
}

#[derive(Debug, Args)]
struct JsonArg {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct WriteArgs {
    /// The secret's name, as workflows refer to it (`secrets.NAME`).
    name: String,
    /// The environment (dev, staging, prod, …). For rotate, optional when the name exists in one only.
    #[arg(long)]
    env: Option<String>,
    /// Fail unless the secret is at this version now (0: must not exist yet).
    #[arg(long, value_name = "N")]
    expect_version: Option<u32>,
    /// Keep a trailing newline of the input (by default one is dropped).
    #[arg(long)]
    keep_newline: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
struct GetArgs {
    name: String,
    #[arg(long)]
    env: String,
    /// A version other than the active one.
    #[arg(long, value_name = "N")]
    version: Option<u32>,
    /// The grant to read under (default: your approved grant on this secret that expires first).
    #[arg(long, value_name = "ID")]
    grant: Option<String>,
    /// The run reading, for grants bound to a run.
    #[arg(long, value_name = "RUN")]
    run: Option<String>,
    /// Print the value even though stdout is a terminal.
    #[arg(long)]
    reveal: bool,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[arg(long)]
    env: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct VersionsArgs {
    name: String,
    /// Only this environment (default: every environment holding the name).
    #[arg(long)]
    env: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
struct DestroyArgs {
    name: String,
    #[arg(long, value_name = "N")]
    version: u32,
    #[arg(long)]
    env: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum GrantCommand {
    /// Ask to read a secret, for one run or a stated purpose.
    Request(RequestArgs),
    /// Approve a pending grant (an admin other than the requester).
    Approve(DecideArgs),
    /// Deny a pending grant.
    Deny(DenyArgs),
    /// Grants, newest first.
    List(GrantListArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("binding").required(true).args(["run", "purpose"]))]
struct RequestArgs {
    name: String,
    #[arg(long)]
    env: String,
    /// Bind the grant to this run: only it can read with the grant.
    #[arg(long, value_name = "RUN")]
    run: Option<String>,
    /// Why the value is needed.
    #[arg(long, value_name = "TEXT")]
    purpose: Option<String>,
    /// How long the grant lives once approved (e.g. 15m, 2h; at most 7 days).
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// The grant is spent by one read.
    #[arg(long)]
    single_use: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DecideArgs {
    id: String,
    #[arg(long)]
    comment: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DenyArgs {
    id: String,
    #[arg(long)]
    reason: String,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct GrantListArgs {
    #[arg(long)]
    env: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// Also decided, spent and expired grants (default: pending and usable ones).
    #[arg(long)]
    all: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(args: SecretsArgs, state: &StateArgs) -> Result<ExitCode> {
    // Refuse before anything is read or spent.
    if let SecretsCommand::Get(get) = &args.command
        && std::io::stdout().is_terminal()
        && !get.reveal
    {
        return Ok(context::exit(Err(Error::invalid(
            "stdout is a terminal: pipe the value somewhere, or pass --reveal to show it",
        ))));
    }
    context::serve(secrets(args, state))
}

async fn secrets(args: SecretsArgs, state: &StateArgs) -> Result<ExitCode, Error> {
    let app = context::open_app(state).await?;
    let principal = app
        .principal(&args.actor.org, &args.actor.user, Via::Cli)
        .await?;
    let secrets = app.secrets();
    let outcome = async {
        if !matches!(args.command, SecretsCommand::Keys(_)) {
            for key in secrets.missing_keys(&principal).await? {
                warn_missing(&key);
            }
        }
        dispatch(args.command, &secrets, &principal).await
    }
    .await;
    app.close().await;
    outcome
}

fn warn_missing(key: &KeyUsage) {
    eprintln!(
        "warning: key {:?} wraps {} secret version(s) and the history keys of {} run(s) \
         but is not in {KEYRING_ENV}; they cannot be read until it is put back (then run \
         `smithers secrets rewrap`)",
        key.key_id, key.versions, key.history_keys
    );
}

async fn dispatch(
    command: SecretsCommand,
    secrets: &SecretsService<'_>,
    principal: &Principal,
) -> Result<ExitCode, Error> {
    match command {
        SecretsCommand::Set(args) => write(secrets, principal, args, false).await,
        SecretsCommand::Rotate(args) => write(secrets, principal, args, true).await,
        SecretsCommand::Get(args) => get(secrets, principal, args).await,
        SecretsCommand::List(args) => list(secrets, principal, args).await,
        SecretsCommand::Versions(args) => versions(secrets, principal, args).await,
        SecretsCommand::Destroy(args) => destroy(secrets, principal, args).await,
        SecretsCommand::Rewrap(args) => rewrap(secrets, principal, args).await,
        SecretsCommand::Keys(args) => keys(secrets, principal, args).await,
        SecretsCommand::Grant(command) => grant(secrets, principal, command).await,
    }
}

/// The value, from stdin when it is not a terminal, else from a prompt
/// without echo (asked twice).
fn read_value(label: &str, keep_newline: bool) -> Result<SecretValue, Error> {
    let from_terminal = |e: std::io::Error| {
        Error::unavailable(format!("cannot read the value from the terminal: {e}"))
    };
    let stdin = std::io::stdin();
    let mut bytes = if stdin.is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("Value for {label}: ")).map_err(from_terminal)?,
        );
        let again = Zeroizing::new(rpassword::prompt_password("Again: ").map_err(from_terminal)?);
        if first != again {
            return Err(Error::invalid("the two values differ; nothing was stored"));
        }
        Zeroizing::new(first.as_bytes().to_vec())
    } else {
        let mut buffer = Zeroizing::new(Vec::with_capacity(4096));
        let limit = u64::try_from(MAX_VALUE_BYTES).unwrap_or(u64::MAX) + 1;
        stdin
            .lock()
            .take(limit)
            .read_to_end(&mut buffer)
            .map_err(|e| Error::unavailable(format!("cannot read the value from stdin: {e}")))?;
        if buffer.len() > MAX_VALUE_BYTES {
            return Err(Error::invalid(format!(
                "the value is larger than {MAX_VALUE_BYTES} bytes"
            )));
        }
        buffer
    };
    if !keep_newline {
        let newline = if bytes.ends_with(b"\r\n") {
            2
        } else {
            usize::from(bytes.ends_with(b"\n"))
        };
        let len = bytes.len() - newline;
        bytes.truncate(len);
    }
    if bytes.is_empty() {
        return Err(Error::invalid("the value is empty; nothing was stored"));
    }
    Ok(SecretValue::new(std::mem::take(&mut *bytes)))
}

async fn write(
    secrets: &SecretsService<'_>,
    principal: &Principal,
    args: WriteArgs,
    rotate: bool,
) -> Result<ExitCode, Error> {
    let env = if rotate {
        secrets
            .environment_of(principal, &args.name, args.env.as_deref())
            .await?
    } else {
        args.env.ok_or_else(|| {
            Error::invalid("say which environment with --env (dev, staging, prod, …)")
        })?
    };
    let value = read_value(&format!("{env}/{}", args.name), args.keep_newline)?;
    let version = if rotate {
        secrets
            .rotate(principal, &env, &args.name, &value, args.expect_version)
            .await?
    } else {
        secrets
            .set(principal, &env, &args.name, &value, args.expect_version)
            .await?
    };
    drop(value);
    if args.json {
        print_json_of(&version);
    } else {
        outln!(
            "{} {env}/{} version {} (key {})",
            if rotate { "rotated" } else { "set" },
            args.name,
            version.version,
            version.key_id.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn get(
    secrets: &SecretsService<'_>,
    principal: &Principal,
    args: GetArgs,
) -> Result<ExitCode, Error> {
    let read = secrets
        .get(
            principal,
            &args.env,
            &args.name,
            &SecretReadOptions {
                version: args.version,
                grant: args.grant.as_deref(),
                run: args.run.as_deref(),
            },
        )
        .await?;
    let mut out = std::io::stdout().lock();
    out.write_all(read.value.expose())
        .and_then(|()| {
            if out.is_terminal() {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush())
        .map_err(crate::render::closed_quietly)
        .map_err(|e| Error::unavailable(format!("cannot write the value to stdout: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

async fn list(
    secrets: &SecretsService<'_>,
    principal: &Principal,
    args: ListArgs,
) -> Result<ExitCode, Error> {
    let all = secrets.list(principal, args.env.as_deref()).await?;
    if args.json {
        print_json_of(&all);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        outln!("no secrets in {:?}", principal.organization);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<12} {:<32} {:>7} {:>8} {:<12} UPDATED",
        "ENV",
        "NAME",
        "ACTIVE",
        "VERSIONS",
        "KEY"
    );
    for s in &all {
        outln!(
            "{:<12} {:<32} {:>7} {:>8} {:<12} {}",
            s.environment,
            s.name,
            s.active_version.map_or("-".to_string(), |v| v.to_string()),
            s.versions,
            s.key_id.as_deref().unwrap_or("-"),
            s.updated_at
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn versions(
    secrets: &SecretsService<'_>,
    principal: &Principal,
    args: VersionsArgs,
) -> Result<ExitCode, Error> {
    let all = secrets
        .versions(principal, &args.name, args.env.as_deref())
        .await?;
    if args.json {
        print_json_of(&all);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<12} {:>7} {:<10} {:<12} {:<28} {:<12} CHANGED",
        "ENV",
        "VERSION",
        "STATE",
        "KEY",
        "CREATED",
        "BY"
    );
    for v in &all {
        version_line(v);
    }
    Ok(ExitCode::SUCCESS)
}

fn version_line(v: &SecretVersion) {
    let changed = v
        .destroyed_at
        .or(v.deactivated_at)
        .map(|t| t.to_string())
        .unwrap_or_default();
    outln!(
        "{:<12} {:>7} {:<10} {:<12} {:<28} {:<12} {}",
        v.environment,
        v.version,
        v.state.as_str(),
        v.key_id.as_deref().unwrap_or("-"),
        v.created_at.to_string(),
        v.created_by,
        changed
    );
}

async fn destroy(
    secrets: &SecretsService<'_>,
    principal: &Principal,
    args: DestroyArgs,
) -> Result<ExitCode, Error> {
    // Refused before anyone is asked to confirm; the service decides again.
    authorize(
        principal,
        &principal.organization,
        Operation::SecretsDestroy,
    )?;
    let env = secrets
        .environment_of(principal, &args.name, args.env.as_deref())
        .await?;
    let label = format!("{env}/{} version {}", args.name, args.version);
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::invalid(format!(
                "destroying {label} cannot be undone: pass --yes to confirm"
            )));
        }
        eprint!("Destroy {label} for good? Type the secret's name to confirm: ");
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .map_err(|e| Error::unavailable(format!("cannot read the confirmation: {e}")))?;
        if answer.trim() != args.name {
            return Err(Error::invalid("not confirmed; nothing was destroyed"));
        }
    }
    let version = secrets
        .destroy(principal, &env, &args.name, args.version)
        .await?;
    if args.json {
        print_json_of(&version);
    } else {
        outln!("destroyed {label}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn rewrap(
    secrets: &SecretsService<'_>,
    principal: &Principal,
    args: JsonArg,
) -> Result<ExitCode, Error> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("rewrap {bar:40} {pos}/{len} versions ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let summary = secrets
        .rewrap(principal, &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await;
    bar.finish_and_clear();
    let summary = summary?;
    if args.json {
        print_json_of(&summary);
    } else {
        rewrap_text(&summary);
    }
    Ok(if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn rewrap_text(summary: &RewrapSummary) {
    outln!(
        "rewrapped {} version(s) under key {:?}; {} already on it",
        summary.rewrapped,
        summary.primary_key,
        summary.already_current
    );
    if summary.history_keys > 0 {
        outln!(
            "rewrapped the history keys of {} run(s) not yet ended",
            summary.history_keys
        );
    }
    for (key, n) in &summary.by_old_key {
        outln!("  {n} moved off {key:?}");
    }
    for failed in &summary.failed {
        outln!("  FAILED {}: {}", failed.version, failed.error);
    }
}

async fn keys(
    secrets: &SecretsService<'_>,
    principal: &Principal,
    args: JsonArg,
) -> Result<ExitCode, Error> {
    let usage = secrets.keys(principal).await?;
    if args.json {
        print_json_of(&usage);
    } else {
        outln!("{:<24} {:>8}  STATUS", "KEY", "VERSIONS");
        for k in &usage {
            let status = if !k.in_keyring {
                "MISSING from the keyring: put it back, run rewrap"
            } else if k.primary {
                "primary (wraps new secrets)"
            } else if k.removable {
                "unused: can be removed from the keyring"
            } else {
                "in use: run rewrap before removing it"
            };
            outln!("{:<24} {:>8}  {status}", k.key_id, k.versions);
        }
    }
    Ok(if usage.iter().any(|k| !k.in_keyring) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn grant_line(g: &Grant) -> String {
    let until = g
        .expires_at
        .map(|t| format!(" until {t}"))
        .unwrap_or_default();
    format!(
        "{}  {:<9} {}/{} for {:?} by {}{}{}",
        g.id,
        g.state.as_str(),
        g.environment,
        g.name,
        g.purpose,
        g.requested_by,
        if g.single_use { " (single use)" } else { "" },
        until
    )
}

fn print_grant(g: &Grant, as_json: bool, verb: &str) {
    if as_json {
        print_json_of(g);
    } else {
        outln!("{verb} {}", grant_line(g));
    }
}

/// A TTL in whole seconds as the store keeps it: a fraction of a second
/// counts as one, zero stays zero (and is refused).
fn ttl_seconds(ttl: Duration) -> u64 {
    ttl.as_secs().max(u64::from(!ttl.is_zero()))
}

async fn grant(
    secrets: &SecretsService<'_>,
    principal: &Principal,
    command: GrantCommand,
) -> Result<ExitCode, Error> {
    match command {
        GrantCommand::Request(args) => {
            let binding = match (args.run, args.purpose) {
                (Some(run), _) => GrantBinding::Run(run),
                (None, Some(purpose)) => GrantBinding::Purpose(purpose),
                (None, None) => {
                    return Err(Error::invalid(
                        "say what the grant is for with --run or --purpose",
                    ));
                }
            };
            let request = GrantRequest {
                environment: args.env,
                name: args.name,
                binding,
                ttl_seconds: ttl_seconds(args.ttl),
                single_use: args.single_use,
            };
            let g = secrets.request_grant(principal, &request).await?;
            print_grant(&g, args.json, "requested");
            if !args.json {
                outln!(
                    "another admin approves it with: smithers secrets grant approve {}",
                    g.id
                );
            }
        }
        GrantCommand::Approve(args) => {
            let g = secrets
                .decide_grant(principal, &args.id, true, args.comment.as_deref())
                .await?;
            print_grant(&g, args.json, "approved");
        }
        GrantCommand::Deny(args) => {
            let g = secrets
                .decide_grant(principal, &args.id, false, Some(&args.reason))
                .await?;
            print_grant(&g, args.json, "denied");
        }
        GrantCommand::List(args) => {
            let grants = secrets
                .grants(
                    principal,
                    args.env.as_deref(),
                    args.name.as_deref(),
                    args.all,
                )
                .await?;
            if args.json {
                print_json_of(&grants);
            } else if grants.is_empty() {
                outln!(
                    "no grants{}",
                    if args.all {
                        ""
                    } else {
                        " pending or usable (--all for every grant)"
                    }
                );
            } else {
                for g in &grants {
                    outln!("{}", grant_line(g));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
