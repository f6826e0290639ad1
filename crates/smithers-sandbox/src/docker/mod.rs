//! The Docker provider: each sandbox is two named volumes (its workspace
//! and its `/tmp`) and each command is its own container over them, with
//! no network, a read-only root, every capability dropped,
//! no-new-privileges, the same seccomp deny list as the native provider,
//! and memory, PID and CPU limits. A command's container is removed when
//! the command ends, so nothing it started outlives it.
//!
//! With the helper configured (bound read-only at `/.smithers/init`), the
//! command starts under it as in the native provider: Landlock confines
//! writes to the workspace and `/tmp`, and a sandbox with egress reaches
//! the proxy through the bridge and a Unix socket bound in from this host.

mod engine;
mod files;
pub mod image;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerSummary, HostConfig, Mount, MountTypeEnum, Volume,
    VolumeCreateOptions,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder,
};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

pub use engine::engine_socket;

use crate::egress::{Allowlist, EgressProxy, EgressSettings};
use crate::helper::{BridgePlan, ENV_PREFIX, InitPlan};
use crate::native::{PROXY_PORT, PROXY_SOCKET, WRITABLE, command_env, stage_helper};
use crate::patch::{Change, ParsedPatch};
use crate::provider::{
    ExecOutcome, ExecRequest, OutputChunk, PurgeReport, Resolved, SandboxId, SandboxStatus, Stream,
};
use crate::rootfs::SANDBOX_OWNER;
use crate::table::SandboxTable;
use crate::{Error, Provider, Root, SandboxSpec};
use files::Files;

/// The image sandboxes run unless configured otherwise (made by
/// `smithers sandbox image build`).
pub const DEFAULT_IMAGE: &str = "smithers-sandbox:latest";
/// The label every container and volume of a sandbox carries.
pub const SANDBOX_LABEL: &str = "dev.smithers.sandbox";
/// The label naming the Smithers process that made it (see `owner`).
const OWNER_LABEL: &str = "dev.smithers.owner";
/// Who commands run as: the owner of `/workspace` and `/tmp` in the image.
fn user() -> String {
    format!("{SANDBOX_OWNER}:{SANDBOX_OWNER}")
}
/// How long after Smithers' own time limit the helper ends a command.
const DEADLINE_GRACE: Duration = Duration::from_secs(2);
/// Where the helper is bound in the container.
const HELPER_IN_CONTAINER: &str = "/.smithers/init";

/// How the Docker provider reaches the engine and what it runs.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The engine's Unix socket.
    pub socket: PathBuf,
    pub image: String,
    /// The helper binary and the arguments that reach its `main`; when set,
    /// commands start under it (Landlock, and egress through its bridge).
    /// Egress needs it.
    pub helper: Option<(PathBuf, Vec<String>)>,
    /// Staged helper copies and egress sockets go here (created 0711).
    pub state_dir: PathBuf,
    pub egress: EgressSettings,
}

impl DockerConfig {
    /// The engine from `DOCKER_HOST` (or the default socket), the default
    /// image, no helper, state under the system's temp directory.
    pub fn from_env() -> Result<DockerConfig, Error> {
        DockerConfig::for_host(std::env::var("DOCKER_HOST").ok().as_deref())
    }

    /// The engine at `docker_host` (`unix:///path`, as `DOCKER_HOST` names
    /// it; `None`: the default socket), the default image, no helper,
    /// state under the system's temp directory.
    ///
    /// Errors: `Invalid` for an engine address that is not a unix socket.
    pub fn for_host(docker_host: Option<&str>) -> Result<DockerConfig, Error> {
        let euid = rustix::process::geteuid().as_raw();
        Ok(DockerConfig {
            socket: engine_socket(docker_host)?,
            image: DEFAULT_IMAGE.to_string(),
            helper: None,
            state_dir: std::env::temp_dir().join(format!("smithers-docker-{euid}")),
            egress: EgressSettings::default(),
        })
    }
}

struct Sandbox {
    spec: SandboxSpec,
    workspace: String,
    tmp: String,
    /// Never started; the archive API reads and writes the volumes through it.
    holder: String,
    /// The proxy socket on this host and the proxy's task, with egress.
    proxy: Option<(PathBuf, tokio::task::JoinHandle<()>)>,
    running: bool,
}

struct Inner {
    docker: Docker,
    config: DockerConfig,
    /// The staged helper and its arguments, if commands start under it.
    helper: Option<(PathBuf, Vec<String>)>,
    /// The path stat bollard lacks (and the API version agreed).
    stats: engine::PathStats,
    /// `seccomp=<profile>` without and with internet sockets.
    seccomp: [String; 2],
    sandboxes: SandboxTable<Sandbox>,
    /// Numbers command containers within the provider.
    counter: AtomicU64,
    /// This process's owner mark, on everything it makes.
    owner: String,
}

/// Runs sandboxes as containers of the local Docker engine.
#[derive(Clone)]
pub struct DockerProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DockerProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerProvider")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn labels(id: &SandboxId, role: &str, owner: &str) -> HashMap<String, String> {
    HashMap::from([
        (SANDBOX_LABEL.to_string(), id.0.clone()),
        ("dev.smithers.role".to_string(), role.to_string()),
        (OWNER_LABEL.to_string(), owner.to_string()),
    ])
}

fn volume(source: &str, target: &str) -> Mount {
    Mount {
        typ: Some(MountTypeEnum::VOLUME),
        source: Some(source.to_string()),
        target: Some(target.to_string()),
        read_only: Some(false),
        ..Mount::default()
    }
}

fn bind(source: &Path, target: &str, read_only: bool) -> Mount {
    Mount {
        typ: Some(MountTypeEnum::BIND),
        source: Some(source.display().to_string()),
        target: Some(target.to_string()),
        read_only: Some(read_only),
        ..Mount::default()
    }
}

/// Whether an engine error is a 404.
fn not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// What `smithers sandbox check` says of the engine: reachable, its
/// version and API, seccomp, and whether the image exists.
pub async fn probe(config: &DockerConfig) -> Result<String, String> {
    let docker = engine::connect(&config.socket)
        .await
        .map_err(|e| e.to_string())?;
    let version = docker.version().await.map_err(|e| e.to_string())?;
    let client = docker.client_version();
    let engine = format!(
        "engine {} (API {}.{} agreed)",
        version.version.unwrap_or_default(),
        client.major_version,
        client.minor_version
    );
    check_engine(&docker, &config.image)
        .await
        .map_err(|e| format!("{engine}: {e}"))?;
    Ok(format!("{engine}, seccomp; image {} present", config.image))
}

/// What every Docker sandbox needs of the engine: seccomp, and the image.
async fn check_engine(docker: &Docker, image: &str) -> Result<(), Error> {
    let info = docker
        .info()
        .await
        .map_err(Error::engine("cannot read the engine's information"))?;
    let security = info.security_options.unwrap_or_default();
    if !security.iter().any(|o| o.contains("name=seccomp")) {
        return Err(Error::Unsupported(
            "the Docker engine has no seccomp support".into(),
        ));
    }
    match docker.inspect_image(image).await {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) => Err(Error::Unsupported(format!(
            "the Docker image {image} does not exist; build it with `smithers sandbox image build`"
        ))),
        Err(e) => Err(Error::engine("cannot inspect the sandbox image")(e)),
    }
}

impl DockerProvider {
    /// Connects to the engine and checks that it can give the provider's
    /// guarantees: seccomp support and the image.
    pub async fn connect(config: DockerConfig) -> Result<DockerProvider, Error> {
        let docker = engine::connect(&config.socket).await?;
        check_engine(&docker, &config.image).await?;
        crate::native::make_dir(&config.state_dir, 0o711)?;
        match purge_orphans(&docker).await {
            Ok(purged) if !purged.is_empty() => {
                tracing::warn!(
                    count = purged.len(),
                    "purged sandboxes a killed Smithers left"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for sandboxes a killed Smithers left")
            }
        }
        let helper = match &config.helper {
            Some((path, args)) => Some((stage_helper(path, &config.state_dir)?, args.clone())),
            None => None,
        };
        let version = docker.client_version();
        let stats = engine::PathStats::new(
            &config.socket,
            format!("{}.{}", version.major_version, version.minor_version),
        );
        let seccomp =
            [false, true].map(|inet| format!("seccomp={}", crate::helper::docker_profile(inet)));
        Ok(DockerProvider {
            inner: Arc::new(Inner {
                docker,
                config,
                helper,
                stats,
                seccomp,
                sandboxes: SandboxTable::new(),
                counter: AtomicU64::new(0),
                owner: crate::owner::current(),
            }),
        })
    }

    /// Purges the engine's sandboxes whose Smithers process is gone (also
    /// done when a provider connects).
    pub async fn purge_orphans(
        config: &DockerConfig,
    ) -> Result<Vec<(SandboxId, PurgeReport)>, Error> {
        purge_orphans(&engine::connect(&config.socket).await?).await
    }

    /// The API version agreed with the engine.
    pub fn api_version(&self) -> &str {
        self.inner.stats.api_version()
    }

    fn docker(&self) -> &Docker {
        &self.inner.docker
    }

    fn with_sandbox<T>(
        &self,
        id: &SandboxId,
        f: impl FnOnce(&mut Sandbox) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.inner.sandboxes.with(id, f)
    }

    fn files(&self, holder: &str) -> Files<'_> {
        Files {
            docker: self.docker(),
            stats: &self.inner.stats,
            holder: holder.to_string(),
        }
    }

    fn holder(&self, id: &SandboxId) -> Result<String, Error> {
        self.with_sandbox(id, |s| Ok(s.holder.clone()))
    }

    /// The two volumes, the holder and the proxy; whatever was made is
    /// removed again if a later part fails.
    async fn make(&self, id: &SandboxId, spec: &SandboxSpec) -> Result<Sandbox, Error> {
        let workspace = format!("smithers-{id}-workspace");
        let tmp = format!("smithers-{id}-tmp");
        for name in [&workspace, &tmp] {
            self.docker()
                .create_volume(VolumeCreateOptions {
                    name: Some(name.clone()),
                    labels: Some(labels(id, "volume", &self.inner.owner)),
                    ..VolumeCreateOptions::default()
                })
                .await
                .map_err(Error::engine(format!("cannot create volume {name}")))?;
        }
        let holder = format!("smithers-{id}-holder");
        let body = ContainerCreateBody {
            image: Some(self.inner.config.image.clone()),
            cmd: Some(vec!["/nonexistent".to_string()]),
            user: Some(user()),
            network_disabled: Some(true),
            labels: Some(labels(id, "holder", &self.inner.owner)),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                readonly_rootfs: Some(true),
                cap_drop: Some(vec!["ALL".into()]),
                mounts: Some(vec![volume(&workspace, "/workspace"), volume(&tmp, "/tmp")]),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        self.docker()
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&holder).build()),
                body,
            )
            .await
            .map_err(Error::engine(
                "cannot create the sandbox's holder container",
            ))?;
        if let Some(from) = &spec.workspace_from {
            if !from.is_dir() {
                return Err(Error::Invalid(format!(
                    "{} is not a directory",
                    from.display()
                )));
            }
            self.files(&holder).upload_tree(from).await?;
        }
        let proxy = self.start_proxy(id, spec)?;
        Ok(Sandbox {
            spec: spec.clone(),
            workspace,
            tmp,
            holder,
            proxy,
            running: false,
        })
    }

    fn start_proxy(
        &self,
        id: &SandboxId,
        spec: &SandboxSpec,
    ) -> Result<Option<(PathBuf, tokio::task::JoinHandle<()>)>, Error> {
        let allowlist = Allowlist::parse(&spec.egress)?;
        if allowlist.is_empty() {
            return Ok(None);
        }
        if self.inner.helper.is_none() {
            return Err(Error::Unsupported(
                "egress with the docker provider needs the helper (its bridge reaches the proxy)"
                    .into(),
            ));
        }
        let socket = self.inner.config.state_dir.join(format!("{id}.sock"));
        // The sandbox user (uid 1000 in the container) must reach it.
        let task = EgressProxy::with_settings(allowlist, self.inner.config.egress.clone())
            .for_sandbox(&id.0)
            .listen(&socket, Some((SANDBOX_OWNER, SANDBOX_OWNER)))?;
        Ok(Some((socket, task)))
    }

    /// The command container's configuration.
    fn command_body(
        &self,
        id: &SandboxId,
        sandbox: &Sandbox,
        request: &ExecRequest,
        timeout: Duration,
    ) -> Result<ContainerCreateBody, Error> {
        let spec = &sandbox.spec;
        let egress = sandbox.proxy.is_some();
        let env = command_env(spec, request, egress);
        let mut mounts = vec![
            volume(&sandbox.workspace, "/workspace"),
            volume(&sandbox.tmp, "/tmp"),
        ];
        let (cmd, env) = match &self.inner.helper {
            Some((helper, helper_args)) => {
                mounts.push(bind(helper, HELPER_IN_CONTAINER, true));
                if let Some((socket, _)) = &sandbox.proxy {
                    mounts.push(bind(socket, PROXY_SOCKET, false));
                }
                let plan = InitPlan {
                    writable: WRITABLE.iter().map(|p| (*p).to_string()).collect(),
                    inet: egress,
                    bridge: egress.then(|| BridgePlan {
                        socket: PathBuf::from(PROXY_SOCKET),
                        port: PROXY_PORT,
                    }),
                    helper_args: helper_args.clone(),
                    argv: request.argv.clone(),
                    // The engine, not Smithers, holds the container: the
                    // limit must hold if Smithers dies. A little later than
                    // Smithers' own kill, which reports it.
                    deadline_ms: Some(
                        u64::try_from(timeout.saturating_add(DEADLINE_GRACE).as_millis())
                            .unwrap_or(u64::MAX),
                    ),
                };
                let plan = serde_json::to_string(&plan)
                    .map_err(|e| Error::Invalid(format!("cannot write the init plan: {e}")))?;
                let mut cmd = vec![HELPER_IN_CONTAINER.to_string()];
                cmd.extend(helper_args.iter().cloned());
                cmd.extend(["init".to_string(), plan]);
                // `init` makes these the command's whole environment.
                let env = env
                    .iter()
                    .map(|(k, v)| format!("{ENV_PREFIX}{k}={v}"))
                    .chain(std::iter::once("PATH=/usr/bin:/bin".to_string()))
                    .collect();
                (cmd, env)
            }
            None => (
                request.argv.clone(),
                env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            ),
        };
        let limits = spec.limits;
        let memory = i64::try_from(limits.memory)
            .map_err(|_| Error::Invalid("the memory limit is too large".into()))?;
        Ok(ContainerCreateBody {
            image: Some(self.inner.config.image.clone()),
            // The image's entrypoint is not ours to run.
            entrypoint: Some(Vec::new()),
            cmd: Some(cmd),
            env: Some(env),
            user: Some(user()),
            working_dir: Some("/workspace".into()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            attach_stdin: Some(false),
            open_stdin: Some(false),
            tty: Some(false),
            network_disabled: Some(true),
            labels: Some(labels(id, "command", &self.inner.owner)),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                readonly_rootfs: Some(true),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec![
                    "no-new-privileges".into(),
                    self.inner.seccomp[usize::from(egress)].clone(),
                ]),
                // A private IPC namespace without a writable /dev/shm.
                ipc_mode: Some("none".into()),
                memory: Some(memory),
                memory_swap: Some(memory),
                pids_limit: Some(i64::from(limits.pids)),
                nano_cpus: Some(i64::from(limits.millicpus) * 1_000_000),
                mounts: Some(mounts),
                init: Some(false),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        })
    }

    /// Runs one command container to its end (or its time limit) and
    /// removes it.
    async fn run(
        &self,
        name: &str,
        body: ContainerCreateBody,
        timeout: Duration,
        output: mpsc::Sender<OutputChunk>,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<ExecOutcome, Error> {
        let started = Instant::now();
        let docker = self.docker();
        docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(name).build()),
                body,
            )
            .await
            .map_err(Error::engine("cannot create the command's container"))?;
        let result = self.attach_and_wait(name, timeout, output, stop).await;
        let removed = docker
            .remove_container(
                name,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
        let (exit_code, timed_out, oom_killed) = result?;
        if let Err(e) = removed
            && !not_found(&e)
        {
            return Err(Error::engine("cannot remove the command's container")(e));
        }
        Ok(ExecOutcome {
            exit_code,
            timed_out,
            oom_killed,
            duration: started.elapsed(),
        })
    }

    async fn attach_and_wait(
        &self,
        name: &str,
        timeout: Duration,
        output: mpsc::Sender<OutputChunk>,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<(i32, bool, bool), Error> {
        let docker = self.docker();
        let attached = docker
            .attach_container(
                name,
                Some(
                    AttachContainerOptionsBuilder::new()
                        .stream(true)
                        .stdout(true)
                        .stderr(true)
                        .build(),
                ),
            )
            .await
            .map_err(Error::engine("cannot attach to the command's container"))?;
        let mut stream = attached.output;
        let pump = tokio::spawn(async move {
            while let Some(Ok(log)) = stream.next().await {
                let (stream, bytes) = match log {
                    bollard::container::LogOutput::StdOut { message } => (Stream::Stdout, message),
                    bollard::container::LogOutput::StdErr { message } => (Stream::Stderr, message),
                    _ => continue,
                };
                // Nobody listening is no reason to stop draining.
                let _ = output
                    .send(OutputChunk {
                        stream,
                        bytes: bytes.to_vec(),
                    })
                    .await;
            }
        });
        docker
            .start_container(
                name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(Error::engine("cannot start the command's container"))?;
        let mut wait = docker.wait_container(
            name,
            None::<bollard::query_parameters::WaitContainerOptions>,
        );
        // The time limit, or the caller going away, stops it.
        let (timed_out, called_off) = tokio::select! {
            waited = tokio::time::timeout(timeout, wait.next()) => (waited.is_err(), false),
            _ = stop => (false, true),
        };
        drop(wait);
        if timed_out || called_off {
            // PID 1 of the container's namespace dies, and every process with it.
            let kill = docker
                .kill_container(
                    name,
                    Some(KillContainerOptionsBuilder::new().signal("KILL").build()),
                )
                .await;
            if let Err(e) = kill {
                tracing::debug!(container = name, error = %e, "kill after the time limit");
            }
            let _ = docker
                .wait_container(
                    name,
                    None::<bollard::query_parameters::WaitContainerOptions>,
                )
                .next()
                .await;
        }
        let _ = pump.await;
        if called_off {
            return Err(Error::Invalid("the command was called off".into()));
        }
        let state = docker
            .inspect_container(
                name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(Error::engine("cannot inspect the command's container"))?
            .state
            .unwrap_or_default();
        let oom_killed = state.oom_killed.unwrap_or(false);
        let code = i32::try_from(state.exit_code.unwrap_or(137)).unwrap_or(137);
        let exit_code = if timed_out {
            124
        } else if oom_killed {
            137
        } else {
            code
        };
        Ok((exit_code, timed_out, oom_killed && !timed_out))
    }

    /// Removes `paths` of the workspace with `rm` run in the sandbox itself
    /// (as its user, so the modes its code set apply): every directory is
    /// checked writable first, in the same command, so it removes all of
    /// them or none.
    async fn remove_files(&self, id: &SandboxId, paths: &[&str]) -> Result<(), Error> {
        let files = self.files(&self.holder(id)?);
        let mut argv: Vec<String> = [
            "sh",
            "-c",
            r#"for f do d=${f%/*}; [ -w "$d" ] && [ -x "$d" ] || { echo "$d is not writable" >&2; exit 1; }; done; exec rm -f -- "$@""#,
            "sh",
        ]
        .map(str::to_string)
        .to_vec();
        for path in paths {
            argv.push(files.removable(path).await?);
        }
        let path = paths.join(", ");
        let request = ExecRequest {
            argv,
            env: Vec::new(),
            timeout: Some(Duration::from_secs(60)),
        };
        let (tx, mut rx) = mpsc::channel::<OutputChunk>(16);
        let collect = tokio::spawn(async move {
            let mut err = Vec::new();
            while let Some(chunk) = rx.recv().await {
                err.extend(chunk.bytes);
            }
            err
        });
        let outcome = self.exec(id, request, tx).await?;
        let said = collect.await.unwrap_or_default();
        if outcome.exit_code == 0 {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "cannot remove {path:?}: {}",
                String::from_utf8_lossy(&said).trim()
            )))
        }
    }

    /// Removes everything labelled with the sandbox and looks again.
    async fn purge(&self, id: &SandboxId) -> PurgeReport {
        purge(self.docker(), id).await
    }
}

/// Purges the sandboxes whose Smithers process is gone (killed mid-run:
/// the engine keeps containers and volumes that nobody will destroy).
async fn purge_orphans(docker: &Docker) -> Result<Vec<(SandboxId, PurgeReport)>, Error> {
    let (containers, volumes) = labelled(docker, OWNER_LABEL)
        .await
        .map_err(Error::engine("cannot list sandbox containers and volumes"))?;
    let owners: HashMap<String, String> = containers
        .into_iter()
        .filter_map(|c| c.labels)
        .chain(volumes.into_iter().map(|v| v.labels))
        .filter_map(|labels| {
            Some((
                labels.get(SANDBOX_LABEL)?.clone(),
                labels.get(OWNER_LABEL)?.clone(),
            ))
        })
        .collect();
    let mut purged = Vec::new();
    for (id, owner) in owners {
        if crate::owner::is_gone(&owner) {
            let id = SandboxId(id);
            let report = purge(docker, &id).await;
            // Empty: a purge elsewhere took it all first.
            if report != PurgeReport::default() {
                purged.push((id, report));
            }
        }
    }
    purged.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(purged)
}

/// Removes a sandbox's containers (killing what runs) and volumes by label,
/// then lists again what carries the label. A purge running elsewhere at
/// the same moment (another provider starting) can make a removal fail
/// while the thing goes anyway, so failures are retried a few times and
/// only what the last listing still shows remains.
async fn purge(docker: &Docker, id: &SandboxId) -> PurgeReport {
    let mut report = PurgeReport::default();
    let mut failures: HashMap<String, String> = HashMap::new();
    let mut left = Vec::new();
    for attempt in 0..4 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 * attempt)).await;
        }
        let (containers, volumes) = match sandbox_things(docker, id).await {
            Ok(found) => found,
            Err(e) => {
                left = vec![e];
                continue;
            }
        };
        if containers.is_empty() && volumes.is_empty() {
            left.clear();
            break;
        }
        // Containers first: a volume in use cannot go.
        for (name, running) in &containers {
            let what = format!("container {name}");
            let removed = docker
                .remove_container(
                    name,
                    Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                )
                .await;
            match removed {
                Ok(()) => {
                    report.processes_killed += usize::from(*running);
                    report.removed.push(what);
                }
                Err(e) if not_found(&e) => {}
                Err(e) => {
                    failures.insert(what, e.to_string());
                }
            }
        }
        for name in &volumes {
            let what = format!("volume {name}");
            let removed = docker
                .remove_volume(
                    name,
                    Some(RemoveVolumeOptionsBuilder::new().force(true).build()),
                )
                .await;
            match removed {
                Ok(()) => report.removed.push(what),
                Err(e) if not_found(&e) => {}
                Err(e) => {
                    failures.insert(what, e.to_string());
                }
            }
        }
        // The check: look again.
        left = match sandbox_things(docker, id).await {
            Ok((containers, volumes)) => containers
                .into_iter()
                .map(|(name, _)| format!("container {name}"))
                .chain(volumes.into_iter().map(|name| format!("volume {name}")))
                .collect(),
            Err(e) => vec![e],
        };
        if left.is_empty() {
            break;
        }
    }
    report.remaining = left
        .into_iter()
        .map(|what| match failures.get(&what) {
            Some(why) => format!("{what}: {why}"),
            None => what,
        })
        .collect();
    report.remaining.sort();
    report
}

/// A sandbox's containers (id, running) and volume names.
async fn sandbox_things(
    docker: &Docker,
    id: &SandboxId,
) -> Result<(Vec<(String, bool)>, Vec<String>), String> {
    let (containers, volumes) = labelled(docker, &format!("{SANDBOX_LABEL}={id}"))
        .await
        .map_err(|e| format!("cannot list the sandbox's containers and volumes: {e}"))?;
    let containers = containers
        .into_iter()
        .filter_map(|c| {
            let running = c.state.as_ref().is_some_and(|s| s.to_string() == "running");
            c.id.map(|id| (id, running))
        })
        .collect();
    Ok((containers, volumes.into_iter().map(|v| v.name).collect()))
}

/// The containers (all, running or not) and volumes carrying `label`
/// (`key` or `key=value`).
async fn labelled(
    docker: &Docker,
    label: &str,
) -> Result<(Vec<ContainerSummary>, Vec<Volume>), bollard::errors::Error> {
    let filter = HashMap::from([("label", vec![label.to_string()])]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await?;
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::new().filters(&filter).build(),
        ))
        .await?
        .volumes
        .unwrap_or_default();
    Ok((containers, volumes))
}

impl Provider for DockerProvider {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn create(&self, spec: SandboxSpec) -> Result<SandboxId, Error> {
        spec.validate()?;
        if let Root::Directory(root) = &spec.root {
            return Err(Error::Invalid(format!(
                "the docker provider takes its root from an image, not from {}",
                root.display()
            )));
        }
        let id = SandboxId(uuid::Uuid::now_v7().to_string());
        match self.make(&id, &spec).await {
            Ok(sandbox) => {
                self.inner.sandboxes.insert(id.clone(), sandbox)?;
                Ok(id)
            }
            Err(e) => {
                let report = self.purge(&id).await;
                if !report.is_clean() {
                    tracing::error!(sandbox = %id, remaining = ?report.remaining, "a failed create left things behind");
                }
                let _ =
                    std::fs::remove_file(self.inner.config.state_dir.join(format!("{id}.sock")));
                Err(e)
            }
        }
    }

    async fn exec(
        &self,
        id: &SandboxId,
        request: ExecRequest,
        output: mpsc::Sender<OutputChunk>,
    ) -> Result<ExecOutcome, Error> {
        if request.argv.is_empty() {
            return Err(Error::Invalid("nothing to run".into()));
        }
        let (body, timeout) = self.with_sandbox(id, |sandbox| {
            if sandbox.running {
                return Err(Error::Invalid(format!(
                    "sandbox {id} is already running a command"
                )));
            }
            let timeout = request.timeout.unwrap_or(sandbox.spec.timeout);
            let body = self.command_body(id, sandbox, &request, timeout)?;
            sandbox.running = true;
            Ok((body, timeout))
        })?;
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("smithers-{id}-{n}");
        // The command is carried out by a task of its own, so that a caller
        // who goes away (a cancelled run drops this future, even while the
        // container is created or started) stops it in order: killed, its
        // output closed, its container removed.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let provider = self.clone();
        let id = id.clone();
        let carried = tokio::spawn(async move {
            let result = provider.run(&name, body, timeout, output, stopped).await;
            let _ = provider.with_sandbox(&id, |sandbox| {
                sandbox.running = false;
                Ok(())
            });
            result
        });
        let result = carried
            .await
            .map_err(|e| Error::Invalid(format!("the command's task failed: {e}")));
        drop(stop);
        result?
    }

    async fn resolve(&self, id: &SandboxId, path: &str) -> Result<Resolved, Error> {
        let holder = self.holder(id)?;
        let files = self.files(&holder);
        crate::resolve::resolve(path, |parts| {
            let files = &files;
            async move { files.entry(&parts).await }
        })
        .await
    }

    async fn read_file(&self, id: &SandboxId, path: &str) -> Result<Vec<u8>, Error> {
        self.files(&self.holder(id)?).read(path).await
    }

    async fn write_file(&self, id: &SandboxId, path: &str, contents: &[u8]) -> Result<(), Error> {
        self.files(&self.holder(id)?)
            .write(path, contents, None)
            .await
    }

    async fn apply_patch(
        &self,
        id: &SandboxId,
        patch: &ParsedPatch<'_>,
    ) -> Result<Vec<String>, Error> {
        let holder = self.holder(id)?;
        let files = self.files(&holder);
        let changes = crate::patch::plan_with(patch, |path| {
            let files = &files;
            async move { files.read_if_exists(&path).await }
        })
        .await?;
        // Removals first, all in one command: the sandbox's user carries
        // them out and the modes its code set may refuse them, while the
        // writes go through the engine and do not fail that way. Refused,
        // nothing has been written yet.
        let removed: Vec<&str> = changes
            .iter()
            .filter(|(_, change)| matches!(change, Change::Delete))
            .map(|(path, _)| path.as_str())
            .collect();
        if !removed.is_empty() {
            self.remove_files(id, &removed).await?;
        }
        for (path, change) in &changes {
            if let Change::Write {
                contents,
                executable,
            } = change
            {
                files.write(path, contents, *executable).await?;
            }
        }
        Ok(changes.into_keys().collect())
    }

    async fn status(&self, id: &SandboxId) -> Result<SandboxStatus, Error> {
        self.with_sandbox(id, |s| {
            Ok(if s.running {
                SandboxStatus::Running
            } else {
                SandboxStatus::Idle
            })
        })
    }

    async fn destroy(&self, id: &SandboxId) -> Result<PurgeReport, Error> {
        let sandbox = self.inner.sandboxes.remove(id)?;
        let mut report = self.purge(id).await;
        if let Some((socket, task)) = sandbox.proxy {
            task.abort();
            match std::fs::remove_file(&socket) {
                Ok(()) => report.removed.push(format!("socket {}", socket.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => report
                    .remaining
                    .push(format!("socket {}: {e}", socket.display())),
            }
        }
        Ok(report)
    }
}

impl Drop for Inner {
    /// Sandboxes nobody destroyed (the provider went away, a caller
    /// panicked) are purged all the same, over a connection of their own:
    /// this may run while the runtime that made the provider shuts down.
    fn drop(&mut self) {
        let ids: Vec<SandboxId> = self
            .sandboxes
            .drain()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if ids.is_empty() {
            return;
        }
        let socket = self.config.socket.clone();
        let state_dir = self.config.state_dir.clone();
        let purging = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(docker) = engine::connect(&socket).await else {
                    tracing::error!(?ids, "cannot reach the engine to purge dropped sandboxes");
                    return;
                };
                for id in ids {
                    let report = purge(&docker, &id).await;
                    let _ = std::fs::remove_file(state_dir.join(format!("{id}.sock")));
                    if !report.is_clean() {
                        tracing::error!(sandbox = %id, remaining = ?report.remaining, "a dropped sandbox left things behind");
                    }
                }
            });
        });
        // The purge must end before the provider is gone (the process may
        // exit next). Dropped on a multi-threaded runtime's worker, the wait
        // is handed to the runtime as blocking, so the worker's other tasks
        // move elsewhere instead of stalling behind it.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| {
                    let _ = purging.join();
                });
            }
            _ => {
                let _ = purging.join();
            }
        }
    }
}
