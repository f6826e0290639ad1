//! `smithers audit …`.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use ed25519_dalek::VerifyingKey;
use serde_json::{Value, json};
use smithers_audit::merkle::{MerkleTree, verify_inclusion};
use smithers_audit::{Checkpoint, Hash, SealedEvent};
use smithers_store::{AuditQuery, DEFAULT_ORGANIZATION, DataDir, Store};

use crate::context::{self, StateArgs};
use crate::render::{self, print_json};

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
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The NATS server.
    #[arg(long, env = "SMITHERS_NATS_URL", value_name = "URL")]
    pub nats_url: String,
    /// Keep delivering new events until interrupted (Ctrl-C).
    #[arg(long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// The organization.
    #[arg(long, default_value = DEFAULT_ORGANIZATION)]
    pub org: String,
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
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only this organization (default: every organization with a log).
    #[arg(long)]
    pub org: Option<String>,
    /// Another public key (hex) to trust for older checkpoints, e.g. before a key rotation.
    #[arg(long, value_name = "HEX")]
    pub trusted_key: Vec<String>,
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
    /// The organization.
    #[arg(long, default_value = DEFAULT_ORGANIZATION)]
    pub org: String,
    /// Start at this sequence number.
    #[arg(long, value_name = "SEQ", default_value_t = 1)]
    pub since: u64,
}

#[derive(Debug, Args)]
pub struct ProveArgs {
    /// The event's sequence number.
    pub seq: u64,
    #[arg(long, default_value = DEFAULT_ORGANIZATION)]
    pub org: String,
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: AuditCommand, state: &StateArgs) -> Result<ExitCode> {
    context::runtime()?.block_on(async {
        match command {
            AuditCommand::Pubkey(args) => pubkey(&args, state),
            AuditCommand::Log(args) => log(&args, state).await,
            AuditCommand::Verify(args) => verify(&args, state).await,
            AuditCommand::Export(args) => export(&args, state).await,
            AuditCommand::Prove(args) => prove(&args, state).await,
            AuditCommand::Publish(args) => publish(&args, state).await,
        }
    })
}

fn pubkey(args: &JsonArg, state: &StateArgs) -> Result<ExitCode> {
    let signer = context::signer(&state.data_dir()?)?;
    let key = hex::encode(signer.verifying_key().as_bytes());
    if args.json {
        print_json(&json!({"key_id": signer.key_id(), "algorithm": "ed25519", "public_key": key}));
    } else {
        outln!("ed25519 {key} (key id {})", signer.key_id());
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_since(text: &str) -> Result<i64> {
    let time = match humantime::parse_rfc3339_weak(text) {
        Ok(t) => t,
        Err(_) => {
            let ago = humantime::parse_duration(text).with_context(|| {
                format!(
                    "--since {text:?} is neither an RFC 3339 time nor a duration like 15m or 2h"
                )
            })?;
            SystemTime::now()
                .checked_sub(ago)
                .context("--since reaches before the epoch")?
        }
    };
    let micros = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
    Ok(i64::try_from(micros)?)
}

pub fn event_json(e: &SealedEvent) -> Value {
    json!({
        "seq": e.seq,
        "id": e.event.id.to_string(),
        "organization_id": e.event.organization_id,
        "actor_type": e.event.actor_type.as_str(),
        "actor_id": e.event.actor_id,
        "action": e.event.action,
        "resource_type": e.event.resource_type,
        "resource_id": e.event.resource_id,
        "details": e.event.details,
        "ip_address": e.event.ip_address.map(|ip| ip.to_string()),
        "timestamp": e.event.timestamp,
        "time": render::rfc3339(e.event.timestamp),
        "prev_hash": hex::encode(e.prev_hash),
        "hash": hex::encode(e.hash),
    })
}

async fn log(args: &LogArgs, state: &StateArgs) -> Result<ExitCode> {
    let (_, store) = state.open().await?;
    let query = AuditQuery {
        organization_id: args.org.clone(),
        action: args.action.clone(),
        actor_id: args.actor.clone(),
        since: args.since.as_deref().map(parse_since).transpose()?,
        after_seq: None,
        limit: args.limit,
    };
    let events = store.audit().query(&query).await?;
    if args.json {
        print_json(&Value::Array(events.iter().map(event_json).collect()));
    } else {
        for e in &events {
            outln!(
                "{:>6}  {}  {}:{}  {}  {}:{}  {}",
                e.seq,
                render::rfc3339(e.event.timestamp),
                e.event.actor_type,
                e.event.actor_id,
                e.event.action,
                e.event.resource_type,
                e.event.resource_id,
                e.event.details
            );
        }
        if events.is_empty() {
            eprintln!("no audit events match");
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn trusted_keys(dir: &DataDir, extra: &[String]) -> Result<Vec<VerifyingKey>> {
    let mut keys = vec![context::signer(dir)?.verifying_key()];
    for text in extra {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .with_context(|| format!("--trusted-key {text:?} is not 64 hex digits"))?;
        keys.push(
            VerifyingKey::from_bytes(&bytes)
                .with_context(|| format!("--trusted-key {text:?} is not an Ed25519 key"))?,
        );
    }
    Ok(keys)
}

async fn verify(args: &VerifyArgs, state: &StateArgs) -> Result<ExitCode> {
    let (dir, store) = state.open().await?;
    let keys = trusted_keys(&dir, &args.trusted_key)?;
    let orgs = match &args.org {
        Some(org) => vec![org.clone()],
        None => store.audit().organizations().await?,
    };
    let mut results = Vec::new();
    let mut intact = true;
    let (mut events, mut checkpoints) = (0u64, 0u64);
    for org in &orgs {
        match store.audit().verify(org, &keys).await? {
            Ok(report) => {
                events += report.events;
                checkpoints += report.checkpoints;
                results.push(
                    json!({"organization": org, "intact": true, "events": report.events,
                    "checkpoints": report.checkpoints, "root": hex::encode(report.root)}),
                );
            }
            Err(failure) => {
                intact = false;
                results.push(
                    json!({"organization": org, "intact": false, "seq": failure.seq,
                    "problem": failure.problem.to_string()}),
                );
                if !args.json {
                    eprintln!("audit log of {org} is NOT intact: {failure}");
                }
            }
        }
    }
    store.close().await;
    if args.json {
        print_json(&json!({"intact": intact, "organizations": results}));
    } else if intact {
        outln!("verified {events} events, {checkpoints} checkpoints");
    }
    Ok(if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Every leaf of an organization's log, read a page at a time, and its checkpoints.
async fn tree(store: &Store, org: &str) -> Result<(Vec<SealedEvent>, MerkleTree, Vec<Checkpoint>)> {
    let mut events = Vec::new();
    let mut after = 0u64;
    loop {
        let page = store
            .audit()
            .query(&AuditQuery {
                organization_id: org.to_string(),
                after_seq: Some(after),
                limit: Some(10_000),
                ..AuditQuery::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        events.extend(page);
    }
    for (i, e) in events.iter().enumerate() {
        if e.seq != i as u64 + 1 {
            bail!(
                "the log of {org} has a gap at sequence {}: run `smithers audit verify`",
                i + 1
            );
        }
    }
    let tree = MerkleTree::new(events.iter().map(SealedEvent::leaf).collect());
    let checkpoints = store.audit().checkpoints(org).await?;
    Ok((events, tree, checkpoints))
}

/// The first checkpoint covering event `seq`, and the inclusion proof of
/// the event in the tree that checkpoint signed.
fn covering_proof<'c>(
    tree: &MerkleTree,
    checkpoints: &'c [Checkpoint],
    seq: u64,
) -> Option<(&'c Checkpoint, Vec<Hash>)> {
    let checkpoint = checkpoints.iter().find(|c| c.tree_size >= seq)?;
    let size = usize::try_from(checkpoint.tree_size).ok()?;
    let proof = tree.proof(usize::try_from(seq.checked_sub(1)?).ok()?, size)?;
    Some((checkpoint, proof))
}

fn proof_json(checkpoint: &Checkpoint, seq: u64, proof: &[Hash]) -> Value {
    json!({
        "tree_size": checkpoint.tree_size,
        "leaf_index": seq - 1,
        "inclusion": proof.iter().map(hex::encode).collect::<Vec<_>>(),
        "checkpoint": serde_json::to_value(checkpoint).unwrap_or(Value::Null),
    })
}

async fn export(args: &ExportArgs, state: &StateArgs) -> Result<ExitCode> {
    let ExportFormat::Jsonl = args.format;
    let (_, store) = state.open().await?;
    let (events, tree, checkpoints) = tree(&store, &args.org).await?;
    store.close().await;
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (i, e) in events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.seq >= args.since)
    {
        let mut line = event_json(e);
        line["leaf"] = json!(tree.leaf(i).map(hex::encode));
        line["proof"] = covering_proof(&tree, &checkpoints, e.seq)
            .map_or(Value::Null, |(c, proof)| proof_json(c, e.seq, &proof));
        writeln!(out, "{line}").map_err(render::closed_quietly)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

async fn prove(args: &ProveArgs, state: &StateArgs) -> Result<ExitCode> {
    let (dir, store) = state.open().await?;
    let keys = trusted_keys(&dir, &[])?;
    let (events, tree, checkpoints) = tree(&store, &args.org).await?;
    store.close().await;
    let Some(event) = usize::try_from(args.seq)
        .ok()
        .and_then(|s| s.checked_sub(1))
        .and_then(|i| events.get(i))
    else {
        bail!(
            "the log of {} has no event {} (it holds {})",
            args.org,
            args.seq,
            events.len()
        );
    };
    let Some((checkpoint, proof)) = covering_proof(&tree, &checkpoints, args.seq) else {
        bail!(
            "no checkpoint covers event {} yet; one is signed every {} events or {} seconds while the log is written",
            args.seq,
            smithers_store::AuditLogConfig::default().checkpoint_every,
            smithers_store::AuditLogConfig::default()
                .checkpoint_interval
                .as_secs()
        );
    };
    let leaf = event.leaf();
    let signed = keys.iter().any(|k| checkpoint.signature_is_valid(k));
    let included = verify_inclusion(
        &leaf,
        args.seq - 1,
        checkpoint.tree_size,
        &proof,
        &checkpoint.root,
    );
    if !(signed && included) {
        eprintln!(
            "event {} is NOT proven: {}; run `smithers audit verify`",
            args.seq,
            if signed {
                "the inclusion proof does not reach the signed root"
            } else {
                "the checkpoint's signature is not valid"
            }
        );
        return Ok(ExitCode::from(1));
    }
    if args.json {
        let mut out = proof_json(checkpoint, args.seq, &proof);
        out["seq"] = json!(args.seq);
        out["leaf"] = json!(hex::encode(leaf));
        out["event"] = event_json(event);
        print_json(&out);
    } else {
        outln!(
            "event {} ({}) is in the log of {}",
            args.seq,
            event.event.id,
            args.org
        );
        outln!("  leaf        {}", hex::encode(leaf));
        outln!(
            "  checkpoint  size {}, root {}, signed {} by key {} (signature valid)",
            checkpoint.tree_size,
            hex::encode(checkpoint.root),
            render::rfc3339(checkpoint.timestamp),
            checkpoint.key_id
        );
        outln!(
            "  inclusion proof ({} hashes, RFC 9162 section 2.1.3.2):",
            proof.len()
        );
        for h in &proof {
            outln!("    {}", hex::encode(h));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn publish(args: &PublishArgs, state: &StateArgs) -> Result<ExitCode> {
    let (_, store) = state.open().await?;
    let publisher = smithers_store::AuditPublisher::connect(store.clone(), &args.nats_url).await?;
    if args.follow {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(publisher.run(Duration::from_millis(200), stopped));
        tokio::signal::ctrl_c().await?;
        let _ = stop.send(true);
        task.await?;
    } else {
        let delivered = tokio::time::timeout(Duration::from_secs(30), async {
            publisher.ensure_stream().await?;
            publisher.publish_pending().await
        })
        .await
        .context("NATS did not answer within 30 seconds; the events stay queued")??;
        outln!(
            "delivered {delivered} events to the {} stream",
            smithers_store::AUDIT_STREAM
        );
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
