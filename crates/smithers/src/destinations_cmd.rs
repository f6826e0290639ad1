//! `smithers audit destinations add s3|datadog | list | remove | test`
//! and `smithers audit verify --from-s3`: where the audit log is streamed
//! besides NATS, through the audit destinations service.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use smithers_api::{AuditDestination, Error, S3Verification};
use smithers_app::Via;
use smithers_app::destinations::{NewDatadog, NewS3};

use crate::context::{self, ActorArgs, StateArgs};
use crate::render::{print_json_of, rfc3339};

#[derive(Debug, Args)]
#[command(after_help = "\
Each destination has its own cursor over the audit log: delivery is at least once and in order
(duplicates carry the same event id and sequence number), a destination that is down only grows
its lag, and nothing waits for it. `smithers serve` delivers; `list` shows how far each is.
Credentials are Smithers secrets of environment audit-destinations named here (never their
values): `smithers secrets set NAME --env audit-destinations`.
Exit status: 0 done, 1 a test that did not pass, 2 error, 3 not allowed, 4 name in use.")]
pub struct DestinationsArgs {
    #[command(flatten)]
    actor: ActorArgs,
    #[command(subcommand)]
    command: DestinationsCommand,
}

#[derive(Debug, Subcommand)]
enum DestinationsCommand {
    /// Add a destination.
    #[command(subcommand)]
    Add(AddCommand),
    /// Each destination, its lag, last success, last error and whether it stopped.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop delivering to a destination and forget it.
    Remove {
        /// The destination's id (dst_…).
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Send a marked test event; a pass starts a stopped destination again.
    Test {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AddCommand {
    /// An S3 bucket with Object Lock in compliance mode (checked now and whenever delivery starts).
    S3 {
        /// A name for it, unique in the organization.
        #[arg(long, default_value = "s3")]
        name: String,
        #[arg(long)]
        bucket: String,
        /// Written under this prefix.
        #[arg(long)]
        prefix: Option<String>,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// An S3-compatible server instead of AWS.
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// The secret (of environment audit-destinations) holding `ACCESS_KEY_ID:SECRET_ACCESS_KEY`.
        #[arg(long, value_name = "NAME")]
        credentials_secret: String,
        #[arg(long)]
        json: bool,
    },
    /// Datadog's Logs intake (events appended from now on; it drops entries older than 18 hours).
    Datadog {
        #[arg(long, default_value = "datadog")]
        name: String,
        /// datadoghq.com, us3.datadoghq.com, us5.datadoghq.com, datadoghq.eu, ap1.datadoghq.com, ap2.datadoghq.com or ddog-gov.com.
        #[arg(long)]
        site: String,
        /// Send to this intake URL instead of the site's (a proxy).
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// The secret (of environment audit-destinations) holding the API key.
        #[arg(long, value_name = "NAME")]
        api_key_secret: String,
        #[arg(long)]
        json: bool,
    },
}

/// Carries out `audit destinations …`.
pub async fn act(args: DestinationsArgs, state: &StateArgs) -> Result<ExitCode, Error> {
    let app = context::open_app(state).await?;
    let principal = app
        .principal(&args.actor.org, &args.actor.user, Via::Cli)
        .await?;
    let service = app.audit_destinations();
    let code = match args.command {
        DestinationsCommand::Add(AddCommand::S3 {
            name,
            bucket,
            prefix,
            region,
            endpoint,
            credentials_secret,
            json,
        }) => {
            let added = service
                .add_s3(
                    &principal,
                    NewS3 {
                        name,
                        bucket,
                        prefix,
                        region,
                        endpoint,
                        credentials_secret,
                    },
                )
                .await?;
            shown(&added, json, "added");
            ExitCode::SUCCESS
        }
        DestinationsCommand::Add(AddCommand::Datadog {
            name,
            site,
            endpoint,
            api_key_secret,
            json,
        }) => {
            let added = service
                .add_datadog(
                    &principal,
                    NewDatadog {
                        name,
                        site,
                        endpoint,
                        api_key_secret,
                    },
                )
                .await?;
            shown(&added, json, "added");
            ExitCode::SUCCESS
        }
        DestinationsCommand::List { json } => {
            let list = service.list(&principal).await?;
            if json {
                print_json_of(&list);
            } else if list.is_empty() {
                eprintln!(
                    "no audit destinations (`smithers audit destinations add s3|datadog` adds one)"
                );
            } else {
                for d in &list {
                    render(d);
                }
            }
            ExitCode::SUCCESS
        }
        DestinationsCommand::Remove { id, json } => {
            let removed = service.remove(&principal, &id).await?;
            shown(&removed, json, "removed");
            ExitCode::SUCCESS
        }
        DestinationsCommand::Test { id, json } => {
            let test = service.test(&principal, &id).await?;
            if json {
                print_json_of(&test);
            } else if test.delivered {
                outln!(
                    "the test event reached {} ({})",
                    test.destination.name,
                    test.destination.id
                );
            } else {
                eprintln!(
                    "the test event did not reach {}: {}",
                    test.destination.name,
                    test.error.as_deref().unwrap_or("unknown error")
                );
            }
            if test.delivered {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    };
    app.close().await;
    Ok(code)
}

fn shown(d: &AuditDestination, json: bool, what: &str) {
    if json {
        print_json_of(d);
    } else {
        outln!("{what} {} {} ({})", d.kind, d.name, d.id);
    }
}

fn render(d: &AuditDestination) {
    let state = match &d.stopped {
        Some(why) => format!("STOPPED: {why}"),
        None => "delivering".into(),
    };
    outln!("{}  {} {}  {state}", d.id, d.kind, d.name);
    outln!(
        "  delivered through {} of {} (lag {}), last success {}",
        d.delivered_seq,
        d.log_seq,
        d.lag,
        d.last_success_at
            .map_or_else(|| "never".to_string(), |t| rfc3339(t.0))
    );
    if let Some(e) = &d.last_error {
        outln!("  last error: {e}");
    }
    if let Some(gap) = &d.last_gap {
        outln!("  gap: {gap}");
    }
}

/// `audit verify --from-s3 DESTINATION`.
pub async fn verify_from_s3(
    state: &StateArgs,
    org: &str,
    user: &str,
    destination: &str,
    json: bool,
) -> Result<ExitCode, Error> {
    let app = context::open_app(state).await?;
    let principal = app.principal(org, user, Via::Cli).await?;
    let report: Result<S3Verification, Error> = app
        .audit_destinations()
        .verify_s3(&principal, destination)
        .await;
    app.close().await;
    let report = report?;
    if json {
        print_json_of(&report);
    } else if report.intact {
        outln!(
            "verified the bucket of {}: events {}..={} in {} object(s), {} checkpoint(s){}",
            report.destination,
            report.first_seq.unwrap_or(0),
            report.last_seq.unwrap_or(0),
            report.objects,
            report.checkpoints,
            report
                .pruned
                .map(|p| format!(", from a signed prune base at {p}"))
                .unwrap_or_default()
        );
    } else {
        eprintln!(
            "the bucket of {} is NOT intact: sequence {}: {}{}",
            report.destination,
            report.seq.unwrap_or(0),
            report.problem.as_deref().unwrap_or("unknown problem"),
            report
                .object
                .as_deref()
                .map(|o| format!(" (object {o})"))
                .unwrap_or_default()
        );
    }
    Ok(if report.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
