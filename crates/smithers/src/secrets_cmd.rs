//! `smithers secrets …`: set, read under a grant, list, rotate, destroy,
//! rewrap, key usage and grants. Values come in on stdin or a prompt
//! without echo (never an argument) and go out only to a pipe or with
//! `--reveal`.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use smithers_secrets::{KEYRING_ENV, Keyring, SecretValue};
use smithers_store::{
    Actor, Grant, GrantBinding, GrantFilter, GrantRequest, KeyUsage, ReadRequest, RewrapSummary,
    SecretRef, SecretSummary, SecretVersion, Secrets,
};
use zeroize::Zeroizing;

use crate::context::{self, ActorArgs, StateArgs};
use crate::render::{print_json, rfc3339};

/// The largest value accepted, so a stray pipe cannot fill the database.
const MAX_VALUE_BYTES: usize = 1 << 20;

#[derive(Debug, Args)]
#[command(after_help = "\
The keyring comes from SECRET_ENCRYPTION_KEYS=\"id:base64-32-byte-key,…\" (the first key encrypts).
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

/// The keyring from `SECRET_ENCRYPTION_KEYS`; any problem stops everything.
pub fn keyring_from_env() -> Result<Keyring> {
    let spec = std::env::var(KEYRING_ENV).unwrap_or_default();
    Ok(Keyring::parse(&spec)?)
}

pub fn run(args: SecretsArgs, state: &StateArgs) -> Result<ExitCode> {
    let keyring = Arc::new(keyring_from_env()?);
    let actor = Actor::new(&args.actor.org, &args.actor.user);
    // Refuse before anything is read or spent.
    if let SecretsCommand::Get(get) = &args.command
        && std::io::stdout().is_terminal()
        && !get.reveal
    {
        bail!("stdout is a terminal: pipe the value somewhere, or pass --reveal to show it");
    }
    let outcome = context::runtime()?.block_on(async {
        let (dir, store) = state.open().await?;
        let signer = Arc::new(context::signer(&dir)?);
        let secrets = Secrets::new(store.clone(), keyring, signer);
        if !matches!(args.command, SecretsCommand::Keys(_)) {
            warn_missing_keys(&secrets).await?;
        }
        let outcome = dispatch(args.command, &secrets, &actor).await;
        context::deliver_to_nats(&store).await;
        store.close().await;
        outcome
    });
    context::refusal_exit(outcome)
}

async fn warn_missing_keys(secrets: &Secrets) -> Result<()> {
    for key in secrets.missing_keys().await? {
        eprintln!(
            "warning: key {:?} wraps {} secret version(s) but is not in {KEYRING_ENV}; \
             they cannot be read until it is put back (then run `smithers secrets rewrap`)",
            key.key_id, key.versions
        );
    }
    Ok(())
}

async fn dispatch(command: SecretsCommand, secrets: &Secrets, actor: &Actor) -> Result<ExitCode> {
    match command {
        SecretsCommand::Set(args) => write(secrets, actor, args, false).await,
        SecretsCommand::Rotate(args) => write(secrets, actor, args, true).await,
        SecretsCommand::Get(args) => get(secrets, actor, args).await,
        SecretsCommand::List(args) => list(secrets, actor, args).await,
        SecretsCommand::Versions(args) => versions(secrets, actor, args).await,
        SecretsCommand::Destroy(args) => destroy(secrets, actor, args).await,
        SecretsCommand::Rewrap(args) => rewrap(secrets, actor, args).await,
        SecretsCommand::Keys(args) => keys(secrets, args).await,
        SecretsCommand::Grant(command) => grant(secrets, actor, command).await,
    }
}

/// The environment named, or the only one holding `name`.
async fn environment(
    secrets: &Secrets,
    actor: &Actor,
    name: &str,
    env: Option<String>,
) -> Result<String> {
    if let Some(env) = env {
        return Ok(env);
    }
    let mut found = secrets
        .environments_of(&actor.organization_id, name)
        .await?;
    match found.len() {
        0 => Err(smithers_store::Error::NotFound(format!(
            "no secret {name:?} in {:?}",
            actor.organization_id
        ))
        .into()),
        1 => Ok(found.remove(0)),
        _ => bail!(
            "{name:?} exists in several environments ({}); say which with --env",
            found.join(", ")
        ),
    }
}

/// The value, from stdin when it is not a terminal, else from a prompt
/// without echo (asked twice).
fn read_value(label: &str, keep_newline: bool) -> Result<SecretValue> {
    let stdin = std::io::stdin();
    let mut bytes = if stdin.is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("Value for {label}: "))
                .context("cannot read the value from the terminal")?,
        );
        let again = Zeroizing::new(
            rpassword::prompt_password("Again: ")
                .context("cannot read the value from the terminal")?,
        );
        if first != again {
            bail!("the two values differ; nothing was stored");
        }
        Zeroizing::new(first.as_bytes().to_vec())
    } else {
        let mut buffer = Zeroizing::new(Vec::with_capacity(4096));
        let limit = u64::try_from(MAX_VALUE_BYTES).unwrap_or(u64::MAX) + 1;
        stdin
            .lock()
            .take(limit)
            .read_to_end(&mut buffer)
            .context("cannot read the value from stdin")?;
        if buffer.len() > MAX_VALUE_BYTES {
            bail!("the value is larger than {MAX_VALUE_BYTES} bytes");
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
        bail!("the value is empty; nothing was stored");
    }
    Ok(SecretValue::new(std::mem::take(&mut *bytes)))
}

fn version_json(v: &SecretVersion) -> Value {
    json!({
        "organization": v.organization_id,
        "environment": v.environment,
        "name": v.name,
        "version": v.version,
        "state": v.state.as_str(),
        "key_id": v.key_id,
        "created_at": rfc3339(v.created_at),
        "created_by": v.created_by,
        "deactivated_at": v.deactivated_at.map(rfc3339),
        "destroyed_at": v.destroyed_at.map(rfc3339),
        "destroyed_by": v.destroyed_by,
    })
}

async fn write(
    secrets: &Secrets,
    actor: &Actor,
    args: WriteArgs,
    rotate: bool,
) -> Result<ExitCode> {
    let env = if rotate {
        environment(secrets, actor, &args.name, args.env).await?
    } else {
        args.env
            .context("say which environment with --env (dev, staging, prod, …)")?
    };
    let secret = SecretRef {
        environment: &env,
        name: &args.name,
    };
    let value = read_value(&format!("{env}/{}", args.name), args.keep_newline)?;
    let version = if rotate {
        secrets
            .rotate(actor, secret, &value, args.expect_version)
            .await?
    } else {
        secrets
            .set(actor, secret, &value, args.expect_version)
            .await?
    };
    drop(value);
    if args.json {
        print_json(&version_json(&version));
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

async fn get(secrets: &Secrets, actor: &Actor, args: GetArgs) -> Result<ExitCode> {
    let secret = SecretRef {
        environment: &args.env,
        name: &args.name,
    };
    let read = secrets
        .read(
            actor,
            secret,
            &ReadRequest {
                version: args.version,
                grant_id: args.grant.as_deref(),
                run_id: args.run.as_deref(),
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
        .context("cannot write the value to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn summary_json(s: &SecretSummary) -> Value {
    json!({
        "environment": s.environment,
        "name": s.name,
        "active_version": s.active_version,
        "latest_version": s.latest_version,
        "versions": s.versions,
        "key_id": s.key_id,
        "updated_at": rfc3339(s.updated_at),
    })
}

async fn list(secrets: &Secrets, actor: &Actor, args: ListArgs) -> Result<ExitCode> {
    let all = secrets
        .list(&actor.organization_id, args.env.as_deref())
        .await?;
    if args.json {
        print_json(&Value::Array(all.iter().map(summary_json).collect()));
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        outln!("no secrets in {:?}", actor.organization_id);
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
            rfc3339(s.updated_at)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn versions(secrets: &Secrets, actor: &Actor, args: VersionsArgs) -> Result<ExitCode> {
    let all = secrets
        .versions(&actor.organization_id, args.env.as_deref(), &args.name)
        .await?;
    if all.is_empty() {
        return Err(smithers_store::Error::NotFound(format!(
            "no secret {:?} in {:?}",
            args.name, actor.organization_id
        ))
        .into());
    }
    if args.json {
        print_json(&Value::Array(all.iter().map(version_json).collect()));
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
        let changed = v
            .destroyed_at
            .or(v.deactivated_at)
            .map(rfc3339)
            .unwrap_or_default();
        outln!(
            "{:<12} {:>7} {:<10} {:<12} {:<28} {:<12} {}",
            v.environment,
            v.version,
            v.state.as_str(),
            v.key_id.as_deref().unwrap_or("-"),
            rfc3339(v.created_at),
            v.created_by,
            changed
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn destroy(secrets: &Secrets, actor: &Actor, args: DestroyArgs) -> Result<ExitCode> {
    let env = environment(secrets, actor, &args.name, args.env).await?;
    let label = format!("{env}/{} version {}", args.name, args.version);
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!("destroying {label} cannot be undone: pass --yes to confirm");
        }
        eprint!("Destroy {label} for good? Type the secret's name to confirm: ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != args.name {
            bail!("not confirmed; nothing was destroyed");
        }
    }
    let secret = SecretRef {
        environment: &env,
        name: &args.name,
    };
    let version = secrets.destroy(actor, secret, args.version).await?;
    if args.json {
        print_json(&version_json(&version));
    } else {
        outln!("destroyed {label}");
    }
    Ok(ExitCode::SUCCESS)
}

fn rewrap_json(s: &RewrapSummary, primary: &str) -> Value {
    json!({
        "primary_key": primary,
        "rewrapped": s.rewrapped,
        "already_current": s.already_current,
        "by_old_key": s.by_old_key,
        "failed": s.failed.iter().map(|(what, why)| json!({"version": what, "error": why})).collect::<Vec<_>>(),
    })
}

async fn rewrap(secrets: &Secrets, actor: &Actor, args: JsonArg) -> Result<ExitCode> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("rewrap {bar:40} {pos}/{len} versions ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let operator = format!("{}:{}", actor.organization_id, actor.user);
    let summary = secrets
        .rewrap(&operator, &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await?;
    bar.finish_and_clear();
    let primary = secrets.keyring().primary_id();
    if args.json {
        print_json(&rewrap_json(&summary, primary));
    } else {
        outln!(
            "rewrapped {} version(s) under key {primary:?}; {} already on it",
            summary.rewrapped,
            summary.already_current
        );
        for (key, n) in &summary.by_old_key {
            outln!("  {n} moved off {key:?}");
        }
        for (what, why) in &summary.failed {
            outln!("  FAILED {what}: {why}");
        }
    }
    Ok(if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn key_json(k: &KeyUsage) -> Value {
    json!({
        "key_id": k.key_id,
        "versions": k.versions,
        "in_keyring": k.in_keyring,
        "primary": k.primary,
        "removable": k.removable(),
    })
}

async fn keys(secrets: &Secrets, args: JsonArg) -> Result<ExitCode> {
    let usage = secrets.key_usage().await?;
    if args.json {
        print_json(&Value::Array(usage.iter().map(key_json).collect()));
    } else {
        outln!("{:<24} {:>8}  STATUS", "KEY", "VERSIONS");
        for k in &usage {
            let status = if !k.in_keyring {
                "MISSING from the keyring: put it back, run rewrap"
            } else if k.primary {
                "primary (wraps new secrets)"
            } else if k.versions == 0 {
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

fn grant_json(g: &Grant) -> Value {
    json!({
        "id": g.id,
        "organization": g.organization_id,
        "environment": g.environment,
        "name": g.name,
        "requested_by": g.requested_by,
        "run_id": g.run_id,
        "purpose": g.purpose,
        "ttl_seconds": g.ttl_seconds,
        "single_use": g.single_use,
        "state": g.state.as_str(),
        "requested_at": rfc3339(g.requested_at),
        "decided_by": g.decided_by,
        "decided_at": g.decided_at.map(rfc3339),
        "comment": g.comment,
        "expires_at": g.expires_at.map(rfc3339),
        "used_at": g.used_at.map(rfc3339),
    })
}

fn grant_line(g: &Grant) -> String {
    let until = g
        .expires_at
        .map(|t| format!(" until {}", rfc3339(t)))
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
        print_json(&grant_json(g));
    } else {
        outln!("{verb} {}", grant_line(g));
    }
}

async fn grant(secrets: &Secrets, actor: &Actor, command: GrantCommand) -> Result<ExitCode> {
    match command {
        GrantCommand::Request(args) => {
            let binding = match (args.run, args.purpose) {
                (Some(run), _) => GrantBinding::Run(run),
                (None, Some(purpose)) => GrantBinding::Purpose(purpose),
                (None, None) => bail!("say what the grant is for with --run or --purpose"),
            };
            let request = GrantRequest {
                secret: SecretRef {
                    environment: &args.env,
                    name: &args.name,
                },
                binding,
                ttl: args.ttl,
                single_use: args.single_use,
            };
            let g = secrets.request_grant(actor, &request).await?;
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
                .decide_grant(actor, &args.id, true, args.comment.as_deref())
                .await?;
            print_grant(&g, args.json, "approved");
        }
        GrantCommand::Deny(args) => {
            let g = secrets
                .decide_grant(actor, &args.id, false, Some(&args.reason))
                .await?;
            print_grant(&g, args.json, "denied");
        }
        GrantCommand::List(args) => {
            let grants = secrets
                .grants(
                    &actor.organization_id,
                    GrantFilter {
                        environment: args.env.as_deref(),
                        name: args.name.as_deref(),
                        open_only: !args.all,
                    },
                )
                .await?;
            if args.json {
                print_json(&Value::Array(grants.iter().map(grant_json).collect()));
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
