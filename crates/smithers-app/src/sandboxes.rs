//! The sandbox providers runs are carried out in, built from the
//! application's settings; the recorder that puts every egress decision
//! of a sandbox into the audit log; and the machine's own sandbox
//! operations (one command in a fresh sandbox, purging what a killed
//! process left), which touch no organization's data.

use std::path::PathBuf;
use std::sync::Arc;

use smithers_api::Error;
use smithers_audit::ActorType;
use smithers_sandbox::egress::{BoxFuture, EgressEvent, EgressRecorder};
use smithers_sandbox::{
    DockerConfig, DockerProvider, ExecOutcome, ExecRequest, NativeConfig, NativeProvider,
    OutputChunk, Provider, PurgeReport, SandboxId, SandboxSpec,
};
use smithers_store::AuditLog;

use crate::{App, Config};

/// The program sandboxes start first (their init, the egress bridge): the
/// `smithers` binary itself with the argument that makes it the helper,
/// or a `smithers-sandbox-helper`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxHelper {
    pub program: PathBuf,
    /// Put before the helper's own arguments.
    pub args: Vec<String>,
}

/// What a front end sees of each egress decision besides the audit log
/// (the command line prints it).
pub type EgressObserver = Arc<dyn Fn(&EgressEvent) + Send + Sync>;

impl Config {
    fn helper(&self) -> Result<&SandboxHelper, Error> {
        self.sandbox_helper.as_ref().ok_or_else(|| {
            Error::unavailable("no sandbox helper is configured, so no sandbox can be made")
        })
    }

    /// The native provider's settings (bubblewrap, cgroups), with the
    /// configured helper.
    ///
    /// Errors: `unavailable` without a helper.
    pub fn native_config(&self) -> Result<NativeConfig, Error> {
        let helper = self.helper()?;
        Ok(NativeConfig::with_helper(
            helper.program.clone(),
            helper.args.clone(),
        ))
    }

    /// The Docker provider's settings: the engine from `DOCKER_HOST` (read
    /// when the application opened) or the default socket, with the
    /// configured helper.
    ///
    /// Errors: `invalid` for a `DOCKER_HOST` that is not a unix socket;
    /// `unavailable` without a helper.
    pub fn docker_config(&self) -> Result<DockerConfig, Error> {
        let helper = self.helper()?;
        let mut config = DockerConfig::for_host(self.docker_host.as_deref())
            .map_err(|e| Error::invalid(format!("DOCKER_HOST: {e}")))?;
        config.helper = Some((helper.program.clone(), helper.args.clone()));
        Ok(config)
    }

    /// A native provider whose egress decisions go to `egress`.
    ///
    /// Errors: `unavailable` when this host cannot make native sandboxes
    /// (no bubblewrap, no delegated cgroup) or without a helper.
    pub fn native_provider(
        &self,
        egress: Option<Arc<dyn EgressRecorder>>,
    ) -> Result<NativeProvider, Error> {
        let mut config = self.native_config()?;
        if let Some(recorder) = egress {
            config.egress.events = recorder;
        }
        NativeProvider::new(config)
            .map_err(|e| Error::unavailable(format!("the native sandbox provider: {e}")))
    }

    /// A Docker provider running `image` (default: the configured one),
    /// whose egress decisions go to `egress`.
    ///
    /// Errors: `unavailable` when the engine cannot be reached or the
    /// image is missing.
    pub async fn docker_provider(
        &self,
        egress: Option<Arc<dyn EgressRecorder>>,
        image: Option<&str>,
    ) -> Result<DockerProvider, Error> {
        let mut config = self.docker_config()?;
        if let Some(image) = image {
            config.image = image.to_string();
        }
        if let Some(recorder) = egress {
            config.egress.events = recorder;
        }
        DockerProvider::connect(config)
            .await
            .map_err(|e| Error::unavailable(format!("the Docker sandbox provider: {e}")))
    }
}

impl App {
    /// The settings the application opened with: sandbox providers are
    /// built from them ([`Config::native_provider`],
    /// [`Config::docker_provider`]).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// An audit log writer committing events in batches, signing
    /// checkpoints with the application's key, for as long as the caller
    /// keeps it ([`AuditLog::start`]); join the writer to flush.
    pub fn audit_log(&self) -> (AuditLog, smithers_store::AuditWriter) {
        AuditLog::start(
            self.store().clone(),
            self.signer_arc(),
            smithers_store::AuditLogConfig::default(),
        )
    }
}

/// Egress decisions of one organization's sandboxes into the audit log
/// (an allowed connection that cannot be recorded is refused by the
/// proxy), shown to an observer besides.
struct AuditedEgress {
    log: AuditLog,
    organization: String,
    observer: Option<EgressObserver>,
}

/// A recorder writing each egress decision of `organization`'s sandboxes
/// to the audit log as `sandbox.egress.allowed` or
/// `sandbox.egress.refused` (resource: `host:port`), after showing it to
/// `observer`.
pub fn audited_egress(
    log: AuditLog,
    organization: &str,
    observer: Option<EgressObserver>,
) -> Arc<dyn EgressRecorder> {
    Arc::new(AuditedEgress {
        log,
        organization: organization.to_string(),
        observer,
    })
}

impl EgressRecorder for AuditedEgress {
    fn record(&self, e: EgressEvent) -> BoxFuture<'_, Result<(), String>> {
        if let Some(observer) = &self.observer {
            observer(&e);
        }
        tracing::info!(
            host = %e.host,
            port = e.port,
            allowed = e.allowed,
            reason = %e.reason,
            "egress decision"
        );
        let action = if e.allowed {
            "sandbox.egress.allowed"
        } else {
            "sandbox.egress.refused"
        };
        let event = smithers_store::audit_event(
            &self.organization,
            (
                ActorType::System,
                &format!("sandbox:{}", e.sandbox.as_deref().unwrap_or("?")),
            ),
            action,
            ("host", &format!("{}:{}", e.host, e.port)),
            serde_json::json!({
                "sandbox": e.sandbox,
                "reason": e.reason,
                "address": e.address.map(|a| a.to_string()),
            }),
            smithers_store::now_micros(),
        );
        Box::pin(async move {
            self.log
                .append(event)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// One command in a fresh sandbox, then the sandbox destroyed
/// (`smithers sandbox run`).
pub struct SandboxRun {
    pub provider: crate::ProviderKind,
    /// The Docker provider's image; `None`: its default.
    pub image: Option<String>,
    pub spec: SandboxSpec,
    /// The program and its arguments, not read by a shell.
    pub command: Vec<String>,
    /// Shown each egress decision besides the audit log.
    pub observer: Option<EgressObserver>,
}

/// How a sandboxed command ended, and what destroying its sandbox left.
#[derive(Debug)]
pub struct SandboxRunOutcome {
    pub exec: ExecOutcome,
    pub purge: PurgeReport,
}

/// One sandbox a killed process left, and what removing it did.
#[derive(Debug)]
pub struct PurgedSandbox {
    /// `native` or `docker`.
    pub provider: &'static str,
    pub sandbox: SandboxId,
    pub report: PurgeReport,
}

/// What a purge found and removed.
#[derive(Debug, Default)]
pub struct Purged {
    pub sandboxes: Vec<PurgedSandbox>,
    /// Why the Docker engine was not looked at, when it was asked for and
    /// could not be.
    pub docker_error: Option<String>,
}

impl Purged {
    /// Whether everything found was removed.
    pub fn is_clean(&self) -> bool {
        self.sandboxes.iter().all(|s| s.report.is_clean())
    }
}

impl Config {
    /// Runs `run.command` in a fresh sandbox of `run.provider`, its output
    /// sent to `output` as it comes, and destroys the sandbox whatever
    /// happened. A sandbox that names egress hosts has each decision
    /// audited through `app` (to the default organization, by the system):
    /// these are the machine's sandboxes, no organization's run.
    ///
    /// Errors: `invalid` when the spec names hosts and no `app` is given;
    /// `unavailable` when the sandbox cannot be made or the command
    /// started (the sandbox is destroyed first).
    pub async fn run_in_sandbox(
        &self,
        app: Option<&App>,
        run: SandboxRun,
        output: tokio::sync::mpsc::Sender<OutputChunk>,
    ) -> Result<SandboxRunOutcome, Error> {
        if !run.spec.egress.is_empty() && app.is_none() {
            return Err(Error::invalid(
                "a sandbox that reaches hosts needs the audit log, which needs the application",
            ));
        }
        let audit = app
            .filter(|_| !run.spec.egress.is_empty())
            .map(App::audit_log);
        let recorder = audit.as_ref().map(|(log, _)| {
            audited_egress(
                log.clone(),
                smithers_store::DEFAULT_ORGANIZATION,
                run.observer.clone(),
            )
        });
        let request = ExecRequest::new(run.command);
        let outcome = match run.provider {
            crate::ProviderKind::Native => {
                let provider = self.native_provider(recorder)?;
                run_once(&provider, run.spec, request, output).await
            }
            crate::ProviderKind::Docker => {
                let provider = self.docker_provider(recorder, run.image.as_deref()).await?;
                run_once(&provider, run.spec, request, output).await
            }
        };
        if let Some((log, writer)) = audit {
            drop(log);
            writer.join().await;
        }
        if let Some(app) = app {
            app.deliver_audit().await;
        }
        outcome
    }

    /// Removes what sandboxes of a killed process left: the native
    /// provider's directories, cgroups and processes, and with `docker`
    /// the Docker provider's containers and volumes.
    ///
    /// Errors: `unavailable` without a sandbox helper configured. A Docker
    /// engine that cannot be reached is reported in
    /// [`Purged::docker_error`], not as an error.
    pub async fn purge_orphaned_sandboxes(&self, docker: bool) -> Result<Purged, Error> {
        let native = self.native_config()?;
        let found = tokio::task::spawn_blocking(move || NativeProvider::purge_orphans(&native))
            .await
            .map_err(|e| Error::internal(format!("purging the native sandboxes stopped: {e}")))?;
        let mut purged = Purged {
            sandboxes: found
                .into_iter()
                .map(|(sandbox, report)| PurgedSandbox {
                    provider: "native",
                    sandbox,
                    report,
                })
                .collect(),
            docker_error: None,
        };
        if docker {
            let config = self.docker_config()?;
            match DockerProvider::purge_orphans(&config).await {
                Ok(found) => purged
                    .sandboxes
                    .extend(found.into_iter().map(|(sandbox, report)| PurgedSandbox {
                        provider: "docker",
                        sandbox,
                        report,
                    })),
                Err(e) => purged.docker_error = Some(e.to_string()),
            }
        }
        Ok(purged)
    }
}

/// Creates a sandbox, runs `request` in it, destroys it.
async fn run_once<P: Provider>(
    provider: &P,
    spec: SandboxSpec,
    request: ExecRequest,
    output: tokio::sync::mpsc::Sender<OutputChunk>,
) -> Result<SandboxRunOutcome, Error> {
    let unavailable = |e: smithers_sandbox::Error| Error::unavailable(e.to_string());
    let id = provider.create(spec).await.map_err(unavailable)?;
    let exec = provider.exec(&id, request, output).await;
    let purge = provider.destroy(&id).await.map_err(unavailable)?;
    Ok(SandboxRunOutcome {
        exec: exec.map_err(unavailable)?,
        purge,
    })
}
