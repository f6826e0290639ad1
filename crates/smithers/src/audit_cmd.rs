//! `smithers audit …`: the audit log through the audit service
//! (`smithers_app::AuditService`), rendered as text, `--json` or JSON lines.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use smithers_api::{AuditEvent, AuditVerification, Error, Timestamp};
use smithers_app::{App, AuditFilter, Principal, Via};
use smithers_store::DEFAULT_ORGANIZATION;

use crate::context::{self, ActorArgs, StateArgs};
use crate::render::{self, print_json_of};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, oldest first.
    Log(LogArgs),
    /// Recompute the chain, Merkle roots and checkpoint signatures (exit 1 when tampered).
    Verify(VerifyArgs),
    /// Write the log as JSON lines, each with its inclusion proof and checkpoint.
    Export(ExportArgs),
    /// Prove that event SEQ is in the log signed by a checkpoint.
    Prove(ProveArgs),
    /// Print the public key that verifies checkpoints.
    Pubkey(JsonArg),
    /// Deliver the events not yet acknowledged to the NATS JetStream stream AUDIT.
    Publish(PublishArgs),
    /// Where the log is streamed besides NATS: S3 (Object Lock) and Datadog.
    Destinations(crate::destinations_cmd::DestinationsArgs),
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The NATS server.
    #[arg(long, env = "SMITHERS_NATS_URL", value_name = "URL")]
    pub nats_url: String,
    /// Keep delivering new events until interrupted (Ctrl-C).
    #[arg(long)]
    pub follow: bool,
    #[command(flatten)]
    pub who: ActorArgs,
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only this action (e.g. capability_check).
    #[arg(long)]
    pub action: Option<String>,
    /// Only this actor id.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only events at or after T: an RFC 3339 time or a duration ago (`15m`, `2h`, `7d`).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// At most N events.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub who: ActorArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only this organization (default: every organization with a log, which
    /// needs the acting user to be an admin of each).
    #[arg(long)]
    pub org: Option<String>,
    /// Act as this user of the organization (an admin).
    #[arg(
        long = "as",
        env = "SMITHERS_USER",
        default_value = "admin",
        value_name = "USER"
    )]
    pub user: String,
    /// Another public key (hex) to trust for older checkpoints, e.g. before a key rotation.
    #[arg(long, value_name = "HEX")]
    pub trusted_key: Vec<String>,
    /// Verify the log as this S3 destination's bucket holds it, from the bucket alone
    /// (exit 1 names the tampered object).
    #[arg(long, value_name = "DESTINATION")]
    pub from_s3: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    /// Start at this sequence number.
    #[arg(long, value_name = "SEQ", default_value_t = 1)]
    pub since: u64,
    #[command(flatten)]
    pub who: ActorArgs,
}

#[derive(Debug, Args)]
pub struct ProveArgs {
    /// The event's sequence number.
    pub seq: u64,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub who: ActorArgs,
}

pub fn run(command: AuditCommand, state: &StateArgs) -> Result<ExitCode> {
    context::serve(async move {
        match command {
            AuditCommand::Pubkey(args) => pubkey(&args, state).await,
            AuditCommand::Log(args) => log(&args, state).await,
            AuditCommand::Verify(args) => verify(&args, state).await,
            AuditCommand::Export(args) => export(&args, state).await,
            AuditCommand::Prove(args) => prove(&args, state).await,
            AuditCommand::Publish(args) => publish(&args, state).await,
            AuditCommand::Destinations(args) => crate::destinations_cmd::act(args, state).await,
        }
    })
}

/// The application and who acts in it.
async fn open(state: &StateArgs, org: &str, user: &str) -> Result<(App, Principal), Error> {
    let app = context::open_app(state).await?;
    let principal = app.principal(org, user, Via::Cli).await?;
    Ok((app, principal))
}

async fn pubkey(args: &JsonArg, state: &StateArgs) -> Result<ExitCode, Error> {
    let app = context::open_app(state).await?;
    let key = app.audit().public_key();
    app.close().await;
    if args.json {
        print_json_of(&key);
    } else {
        outln!("ed25519 {} (key id {})", key.public_key, key.key_id);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--since`: an RFC 3339 time, or a duration before now.
fn parse_since(text: &str) -> Result<Timestamp, Error> {
    let time = match humantime::parse_rfc3339_weak(text) {
        Ok(t) => t,
        Err(_) => {
            let ago = humantime::parse_duration(text).map_err(|_| {
                Error::invalid(format!(
                    "--since {text:?} is neither an RFC 3339 time nor a duration like 15m or 2h"
                ))
            })?;
            SystemTime::now()
                .checked_sub(ago)
                .ok_or_else(|| Error::invalid("--since reaches before the epoch"))?
        }
    };
    let micros = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let micros = i64::try_from(micros)
        .map_err(|_| Error::invalid(format!("--since {text:?} is too far in the future")))?;
    Ok(Timestamp(micros))
}

async fn log(args: &LogArgs, state: &StateArgs) -> Result<ExitCode, Error> {
    let filter = AuditFilter {
        action: args.action.clone(),
        actor: args.actor.clone(),
        since: args.since.as_deref().map(parse_since).transpose()?,
        limit: args.limit,
    };
    let (app, principal) = open(state, &args.who.org, &args.who.user).await?;
    let events = app.audit().log(&principal, &filter).await?;
    app.close().await;
    if args.json {
        print_json_of(&events);
    } else {
        for e in &events {
            print_event(e);
        }
        if events.is_empty() {
            eprintln!("no audit events match");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_event(e: &AuditEvent) {
    outln!(
        "{:>6}  {}  {}:{}  {}  {}:{}  {}",
        e.seq,
        e.time,
        e.actor_type,
        e.actor_id,
        e.action,
        e.resource_type,
        e.resource_id,
        e.details
    );
}

async fn verify(args: &VerifyArgs, state: &StateArgs) -> Result<ExitCode, Error> {
    let org = args.org.as_deref().unwrap_or(DEFAULT_ORGANIZATION);
    if let Some(destination) = &args.from_s3 {
        return crate::destinations_cmd::verify_from_s3(
            state,
            org,
            &args.user,
            destination,
            args.json,
        )
        .await;
    }
    let (app, principal) = open(state, org, &args.user).await?;
    let report = match args.org {
        Some(_) => app.audit().verify(&principal, &args.trusted_key).await,
        None => app.audit().verify_all(&principal, &args.trusted_key).await,
    };
    app.close().await;
    let report = report?;
    if args.json {
        print_json_of(&report);
    } else {
        print_verification(&report);
    }
    // A tampered log is a finding: exit 1, not an error.
    Ok(if report.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_verification(report: &AuditVerification) {
    let (mut events, mut checkpoints, mut pruned) = (0u64, 0u64, 0u64);
    for o in &report.organizations {
        if o.intact {
            let dropped = o.pruned.unwrap_or(0);
            events += o.events.unwrap_or(0).saturating_sub(dropped);
            pruned += dropped;
            checkpoints += o.checkpoints.unwrap_or(0);
        } else {
            eprintln!(
                "audit log of {} is NOT intact: sequence {}: {}",
                o.organization,
                o.seq.unwrap_or(0),
                o.problem.as_deref().unwrap_or("unknown problem")
            );
        }
    }
    if report.intact {
        if pruned > 0 {
            outln!(
                "verified {events} events, {checkpoints} checkpoints, from a signed prune base \
                 ({pruned} older events dropped by retention)"
            );
        } else {
            outln!("verified {events} events, {checkpoints} checkpoints");
        }
    }
}

async fn export(args: &ExportArgs, state: &StateArgs) -> Result<ExitCode, Error> {
    use std::io::Write as _;
    let ExportFormat::Jsonl = args.format;
    let (app, principal) = open(state, &args.who.org, &args.who.user).await?;
    let written = async {
        let audit = app.audit();
        let mut export = audit.export(&principal, args.since).await?;
        while let Some(lines) = export.next_page().await? {
            // A page at a time, with standard output locked only while it
            // is written.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for line in &lines {
                let text = serde_json::to_string(line)
                    .map_err(|e| Error::internal(format!("an export line: {e}")))?;
                writeln!(out, "{text}")
                    .map_err(render::closed_quietly)
                    .map_err(write_error)?;
            }
            out.flush()
                .map_err(render::closed_quietly)
                .map_err(write_error)?;
        }
        Ok::<(), Error>(())
    }
    .await;
    app.close().await;
    written?;
    Ok(ExitCode::SUCCESS)
}

fn write_error(e: std::io::Error) -> Error {
    Error::unavailable(format!("cannot write to standard output: {e}"))
}

async fn prove(args: &ProveArgs, state: &StateArgs) -> Result<ExitCode, Error> {
    let (app, principal) = open(state, &args.who.org, &args.who.user).await?;
    let checked = app.audit().prove(&principal, args.seq).await;
    app.close().await;
    let checked = checked?;
    if let Some(problem) = &checked.problem {
        eprintln!(
            "event {} is NOT proven: {problem}; run `smithers audit verify`",
            args.seq
        );
        return Ok(ExitCode::from(1));
    }
    let p = &checked.proof;
    if args.json {
        print_json_of(p);
    } else {
        let checkpoint = &p.proof.checkpoint;
        outln!(
            "event {} ({}) is in the log of {}",
            p.seq,
            p.event.id,
            principal.organization
        );
        outln!("  leaf        {}", p.leaf);
        outln!(
            "  checkpoint  size {}, root {}, signed {} by key {} (signature valid)",
            checkpoint.tree_size,
            checkpoint.root,
            Timestamp(checkpoint.timestamp),
            checkpoint.key_id
        );
        outln!(
            "  inclusion proof ({} hashes, RFC 9162 section 2.1.3.2):",
            p.proof.inclusion.len()
        );
        for h in &p.proof.inclusion {
            outln!("    {h}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn publish(args: &PublishArgs, state: &StateArgs) -> Result<ExitCode, Error> {
    let (app, principal) = open(state, &args.who.org, &args.who.user).await?;
    let outcome = if args.follow {
        follow(&app, &principal, &args.nats_url).await
    } else {
        app.audit()
            .publish(&principal, &args.nats_url)
            .await
            .map(|d| {
                outln!(
                    "delivered {} events to the {} stream",
                    d.delivered,
                    d.stream
                );
            })
    };
    app.close().await;
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// Delivers events as they come until Ctrl-C.
async fn follow(app: &App, principal: &Principal, url: &str) -> Result<(), Error> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let audit = app.audit();
    let delivering = audit.follow(principal, url, stopped);
    tokio::pin!(delivering);
    tokio::select! {
        outcome = &mut delivering => outcome,
        signal = tokio::signal::ctrl_c() => {
            let _ = stop.send(true);
            let outcome = delivering.await;
            signal.map_err(|e| Error::internal(format!("cannot wait for Ctrl-C: {e}")))?;
            outcome
        }
    }
}
