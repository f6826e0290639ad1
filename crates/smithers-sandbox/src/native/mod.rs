//! The native provider: bubblewrap, Landlock, seccomp and cgroups on this
//! host, no daemon.

mod bwrap;
pub(crate) use bwrap::etc_files;
pub(crate) mod cgroup;
mod orphans;
mod parked;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;

use crate::egress::{Allowlist, EgressProxy, EgressSettings};
use crate::helper::{BridgePlan, InitPlan, LaunchPlan};
use crate::patch::{Change, ParsedPatch};
use crate::provider::{
    ExecOutcome, ExecRequest, OutputChunk, PurgeReport, Resolved, SandboxId, SandboxStatus, Stream,
};
use crate::table::SandboxTable;
use crate::workspace::blocking;
use crate::{Error, Provider, SandboxSpec, workspace};
use cgroup::{Cgroup, CgroupLayout};
use parked::{Launched, Parked, Slot, park, park_later};

/// Where sandboxed commands may write (Landlock); the device files are
/// the harmless ones every shell redirects to.
pub(crate) const WRITABLE: &[&str] = &[
    "/workspace",
    "/tmp",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/tty",
];

/// Where programs in a sandbox with egress find the proxy (each sandbox
/// has its own network namespace, so the port never clashes).
pub(crate) const PROXY_PORT: u16 = 3128;
/// The proxy's socket inside the sandbox.
pub(crate) const PROXY_SOCKET: &str = "/.smithers/proxy.sock";

/// The PATH of sandboxed commands unless the spec sets one.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/// Where the native provider finds its tools and keeps sandboxes.
#[derive(Debug, Clone)]
pub struct NativeConfig {
    /// The `smithers-sandbox-helper` binary (or anything that runs
    /// [`crate::helper::main`] with the same arguments).
    pub helper: PathBuf,
    /// Arguments put before `launch`/`init` when calling the helper.
    pub helper_args: Vec<String>,
    pub bwrap: PathBuf,
    /// Sandboxes' directories go here (created 0711).
    pub state_dir: PathBuf,
    /// The host uid and gid sandboxed processes run as when Smithers runs
    /// as root (otherwise they run as Smithers' own user).
    pub sandbox_user: (u32, u32),
    /// How many sandboxes (groups and a parked helper) to keep ready, so
    /// that `create` does not wait for the cgroup join. 0 for one-shot use.
    pub warm_pool: usize,
    /// How the egress proxy resolves, checks and reports.
    pub egress: EgressSettings,
}

impl NativeConfig {
    /// Defaults: `bwrap` from /usr/bin, state under the system's temp
    /// directory, sandbox user `nobody` (65534).
    pub fn with_helper(helper: PathBuf, helper_args: Vec<String>) -> NativeConfig {
        let euid = rustix::process::geteuid().as_raw();
        NativeConfig {
            helper,
            helper_args,
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            state_dir: std::env::temp_dir().join(format!("smithers-sandboxes-{euid}")),
            sandbox_user: (65534, 65534),
            warm_pool: 0,
            egress: EgressSettings::default(),
        }
    }
}

struct Sandbox {
    id: SandboxId,
    /// The provider's; the sandbox's directory is `<state_dir>/<id>`.
    state_dir: PathBuf,
    spec: SandboxSpec,
    cgroup: Cgroup,
    /// The helper that will start the next command, already in the groups.
    slot: Slot,
    /// The egress proxy serving this sandbox's socket, if it has egress.
    proxy: Option<tokio::task::JoinHandle<()>>,
    running: bool,
    purged: bool,
}

/// A sandbox's groups with a parked helper, made before anyone asks.
struct Warm {
    id: SandboxId,
    cgroup: Option<Cgroup>,
    parked: Option<Parked>,
    /// Where its groups are claimed.
    state_dir: PathBuf,
}

impl Drop for Warm {
    /// An unused warm sandbox (the provider went away) leaves nothing.
    fn drop(&mut self) {
        drop(self.parked.take());
        if let Some(cgroup) = self.cgroup.take() {
            // It has no directory yet; its groups and claim go.
            let dir = self.state_dir.join(&self.id.0);
            orphans::purge_sandbox(&self.state_dir, &self.id, &cgroup, &dir);
        }
    }
}

/// A sandbox's group, claimed in the state directory for a later purge
/// should this process be killed.
fn make_group(
    layout: &CgroupLayout,
    state_dir: &Path,
    id: &SandboxId,
    limits: &crate::Limits,
) -> Result<Cgroup, Error> {
    let cgroup = Cgroup::create(layout, &format!("smithers-{}", id.0), limits)?;
    if let Err(e) = orphans::claim(state_dir, id, &cgroup) {
        let _ = cgroup.remove();
        return Err(e);
    }
    Ok(cgroup)
}

/// A warm sandbox on its way.
type WarmTask = tokio::task::JoinHandle<Result<Warm, Error>>;

/// How long after a command the next command's helper is parked.
const NEXT_PARK_DELAY: Duration = Duration::from_millis(20);

/// Runs sandboxes with bubblewrap on this host.
#[derive(Clone)]
pub struct NativeProvider {
    config: Arc<NativeConfig>,
    /// The helper as copied into the state directory, where the sandbox
    /// user can read it whatever the permissions of its original place.
    helper: PathBuf,
    /// The generated `/etc` every host-rooted sandbox sees (the same for all).
    etc: PathBuf,
    layout: CgroupLayout,
    /// `Some` when Smithers runs as root: who sandboxed processes become.
    drop_to: Option<(u32, u32)>,
    sandboxes: Arc<SandboxTable<Sandbox>>,
    /// Warm sandboxes on their way or ready, oldest first.
    warm: Arc<Mutex<Vec<WarmTask>>>,
}

impl std::fmt::Debug for NativeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeProvider")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

pub(crate) fn make_dir(path: &Path, mode: u32) -> Result<(), Error> {
    std::fs::create_dir_all(path)
        .map_err(Error::io(format!("cannot create {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(Error::io(
        format!("cannot set the mode of {}", path.display()),
    ))
}

/// Copies a directory tree (no symlinks followed out of it; special files skipped).
fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    for entry in
        std::fs::read_dir(from).map_err(Error::io(format!("cannot read {}", from.display())))?
    {
        let entry = entry.map_err(Error::io(format!("cannot read {}", from.display())))?;
        let kind = entry.file_type().map_err(Error::io("cannot stat"))?;
        let target = to.join(entry.file_name());
        if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).map_err(Error::io("cannot read a link"))?;
            std::os::unix::fs::symlink(link, &target).map_err(Error::io("cannot copy a link"))?;
        } else if kind.is_dir() {
            std::fs::create_dir(&target)
                .map_err(Error::io(format!("cannot create {}", target.display())))?;
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)
                .map_err(Error::io(format!("cannot copy {}", entry.path().display())))?;
        }
    }
    Ok(())
}

/// Gives a tree to the sandbox user, without following links.
fn chown_tree(path: &Path, owner: (u32, u32)) -> Result<(), Error> {
    std::os::unix::fs::lchown(path, Some(owner.0), Some(owner.1))
        .map_err(Error::io(format!("cannot chown {}", path.display())))?;
    let meta = std::fs::symlink_metadata(path).map_err(Error::io("cannot stat"))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(Error::io("cannot read a directory"))? {
            let entry = entry.map_err(Error::io("cannot read a directory"))?;
            chown_tree(&entry.path(), owner)?;
        }
    }
    Ok(())
}

/// Copies the helper into the state directory (once per build of it), where
/// the sandbox user can read it whatever the permissions of its original
/// place; returns the copy.
pub(crate) fn stage_helper(helper: &Path, state_dir: &Path) -> Result<PathBuf, Error> {
    let meta = std::fs::metadata(helper).map_err(Error::io(format!(
        "cannot find the helper {}",
        helper.display()
    )))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let staged = state_dir.join(format!("helper-{}-{modified}", meta.len()));
    if staged.exists() {
        return Ok(staged);
    }
    let partial = state_dir.join(format!(".helper-{}", uuid::Uuid::now_v7()));
    std::fs::copy(helper, &partial).map_err(Error::io(format!(
        "cannot stage the helper {}",
        helper.display()
    )))?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
        .map_err(Error::io("cannot set the helper's mode"))?;
    std::fs::rename(&partial, &staged).map_err(Error::io("cannot stage the helper"))?;
    remove_stale_helpers(state_dir, &staged);
    Ok(staged)
}

/// Writes the generated `/etc` once per provider into the state directory
/// (each file replaced whole, so a sandbox starting meanwhile never reads
/// a half-written one); returns it.
fn write_etc(state_dir: &Path) -> Result<PathBuf, Error> {
    let etc = state_dir.join("etc");
    make_dir(&etc, 0o755)?;
    for (name, contents) in bwrap::etc_files() {
        let partial = etc.join(format!(".{name}-{}", uuid::Uuid::now_v7()));
        std::fs::write(&partial, contents).map_err(Error::io("cannot write /etc"))?;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o644))
            .map_err(Error::io("cannot set the mode of /etc"))?;
        std::fs::rename(&partial, etc.join(name)).map_err(Error::io("cannot write /etc"))?;
    }
    Ok(etc)
}

/// Copies of other builds of the helper staged over a day ago are removed
/// (a running sandbox keeps its bound copy whatever happens to the name,
/// and a provider whose copy went away stages it again).
fn remove_stale_helpers(state_dir: &Path, current: &Path) {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return;
    };
    let day = Duration::from_secs(24 * 3600);
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = entry.file_name().to_string_lossy().starts_with("helper-")
            && path != current
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > day);
        if stale {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl NativeProvider {
    /// Checks that this host can give the native provider's guarantees.
    pub fn new(config: NativeConfig) -> Result<NativeProvider, Error> {
        if !config.bwrap.exists() {
            return Err(Error::Unsupported(format!(
                "bubblewrap is not installed at {} (Debian package `bubblewrap`)",
                config.bwrap.display()
            )));
        }
        // As the provider will make them: a host without unprivileged user
        // namespaces fails here, with the reason, not at the first command.
        crate::check::namespaces(&config.bwrap, config.sandbox_user).map_err(Error::Unsupported)?;
        let layout = CgroupLayout::detect()?;
        make_dir(&config.state_dir, 0o711)?;
        let helper = stage_helper(&config.helper, &config.state_dir)?;
        let etc = write_etc(&config.state_dir)?;
        let purged = orphans::purge(&config.state_dir);
        if !purged.is_empty() {
            tracing::warn!(
                count = purged.len(),
                "purged sandboxes a killed Smithers left"
            );
        }
        let drop_to = rustix::process::geteuid()
            .is_root()
            .then_some(config.sandbox_user);
        Ok(NativeProvider {
            config: Arc::new(config),
            helper,
            etc,
            layout,
            drop_to,
            sandboxes: Arc::new(SandboxTable::new()),
            warm: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Purges the sandboxes under `config`'s state directory whose Smithers
    /// process is gone (also done when a provider starts).
    pub fn purge_orphans(config: &NativeConfig) -> Vec<(SandboxId, PurgeReport)> {
        orphans::purge(&config.state_dir)
    }

    pub fn cgroup_version(&self) -> &'static str {
        self.layout.version.as_str()
    }

    fn with_sandbox<T>(
        &self,
        id: &SandboxId,
        f: impl FnOnce(&mut Sandbox) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.sandboxes.with(id, f)
    }

    /// The host directory of a sandbox's `/workspace`.
    fn workspace_dir(&self, id: &SandboxId) -> Result<PathBuf, Error> {
        self.with_sandbox(id, |s| Ok(s.dir().join("workspace")))
    }

    fn owner(&self) -> Option<(u32, u32)> {
        self.drop_to
    }
}

/// The sandbox's directory: its workspace (a copy of `workspace_from`, if
/// any), its `tmp`, owned by `owner` when the commands run as another user.
/// Blocking file work: called through [`blocking`].
fn create_dirs(
    root: Option<PathBuf>,
    workspace_from: Option<PathBuf>,
    dir: &Path,
    owner: Option<(u32, u32)>,
) -> Result<(), Error> {
    if let Some(root) = &root
        && let Some(why) = crate::rootfs::missing_mount_points(root)
    {
        return Err(Error::Invalid(why));
    }
    make_dir(dir, 0o700)?;
    let workspace = dir.join("workspace");
    make_dir(&workspace, 0o755)?;
    if let Some(from) = &workspace_from {
        if !from.is_dir() {
            return Err(Error::Invalid(format!(
                "{} is not a directory",
                from.display()
            )));
        }
        copy_tree(from, &workspace)?;
    }
    make_dir(&dir.join("tmp"), 0o1777)?;
    if let Some(owner) = owner {
        chown_tree(dir, owner)?;
    }
    Ok(())
}

/// A command's whole environment: the defaults, the proxy variables when
/// the sandbox has egress, then the spec's and the request's (later wins).
pub(crate) fn command_env(
    spec: &SandboxSpec,
    request: &ExecRequest,
    egress: bool,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), "/tmp".into()),
        ("USER".into(), "sandbox".into()),
        ("LANG".into(), "C.UTF-8".into()),
    ];
    if egress {
        let url = format!("http://127.0.0.1:{PROXY_PORT}");
        for name in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            env.push((name.into(), url.clone()));
        }
        for name in ["NO_PROXY", "no_proxy"] {
            env.push((name.into(), "localhost,127.0.0.1,::1".into()));
        }
    }
    for (k, v) in spec.env.iter().chain(request.env.iter()) {
        env.retain(|(key, _)| key != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// Kills a slot's helper and removes what a create that failed had made:
/// groups, directory, claim.
async fn slot_cleanup(slot: Slot, cgroup: &Cgroup, state_dir: &Path, id: &SandboxId) {
    slot.discard().await;
    orphans::purge_sandbox(state_dir, id, cgroup, &state_dir.join(&id.0));
}

impl NativeProvider {
    /// A warm sandbox, if one is ready or on its way.
    async fn take_warm(&self) -> Option<(SandboxId, Cgroup, Parked)> {
        loop {
            let next = self.warm.lock().ok()?.pop()?;
            // One that failed (e.g. cgroups went away) is skipped.
            if let Ok(Ok(mut warm)) = next.await
                && let (Some(cgroup), Some(parked)) = (warm.cgroup.take(), warm.parked.take())
            {
                return Some((warm.id.clone(), cgroup, parked));
            }
        }
    }

    /// Starts warm sandboxes until the pool is full again.
    fn top_up_warm(&self) {
        let Ok(mut warm) = self.warm.lock() else {
            return;
        };
        while warm.len() < self.config.warm_pool {
            let (layout, helper, args, state_dir) = (
                self.layout.clone(),
                self.helper.clone(),
                self.config.helper_args.clone(),
                self.config.state_dir.clone(),
            );
            warm.insert(
                0,
                tokio::spawn(async move {
                    let id = SandboxId(uuid::Uuid::now_v7().to_string());
                    let cgroup = make_group(&layout, &state_dir, &id, &crate::Limits::default())?;
                    let mut warm = Warm {
                        id,
                        cgroup: Some(cgroup),
                        parked: None,
                        state_dir,
                    };
                    let procs = warm
                        .cgroup
                        .as_ref()
                        .map(Cgroup::procs_files)
                        .unwrap_or_default();
                    warm.parked = Some(park(helper, args, procs).await?);
                    Ok(warm)
                }),
            );
        }
    }
}

/// Reads one pipe into the output channel until it closes.
async fn pump(
    mut pipe: impl tokio::io::AsyncRead + Unpin,
    stream: Stream,
    output: mpsc::Sender<OutputChunk>,
) {
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let chunk = OutputChunk {
                    stream,
                    bytes: buffer[..n].to_vec(),
                };
                if output.send(chunk).await.is_err() {
                    // Nobody listens; keep draining so the command never blocks.
                    continue;
                }
            }
        }
    }
}

impl Provider for NativeProvider {
    fn name(&self) -> &'static str {
        "native"
    }

    async fn create(&self, spec: SandboxSpec) -> Result<SandboxId, Error> {
        spec.validate()?;
        let (id, cgroup, parked) = match self.take_warm().await {
            Some((id, cgroup, parked)) => {
                let slot = Slot::Ready(Box::new(parked));
                if let Err(e) = cgroup.set_limits(&spec.limits) {
                    slot_cleanup(slot, &cgroup, &self.config.state_dir, &id).await;
                    return Err(e);
                }
                (id, cgroup, slot)
            }
            None => {
                let id = SandboxId(uuid::Uuid::now_v7().to_string());
                let cgroup = make_group(&self.layout, &self.config.state_dir, &id, &spec.limits)?;
                let slot = Slot::Pending(park_later(
                    &self.helper,
                    &self.config.helper_args,
                    cgroup.procs_files(),
                    Duration::ZERO,
                ));
                (id, cgroup, slot)
            }
        };
        self.top_up_warm();
        let dir = self.config.state_dir.join(&id.0);
        let root = match &spec.root {
            crate::Root::Directory(root) => Some(root.clone()),
            _ => None,
        };
        let made = {
            let (from, dir, owner) = (spec.workspace_from.clone(), dir.clone(), self.owner());
            blocking(move || create_dirs(root, from, &dir, owner)).await
        };
        let proxy = match made.and_then(|()| self.start_proxy(&id, &spec, &dir)) {
            Ok(proxy) => proxy,
            Err(e) => {
                slot_cleanup(parked, &cgroup, &self.config.state_dir, &id).await;
                return Err(e);
            }
        };
        let sandbox = Sandbox {
            id: id.clone(),
            state_dir: self.config.state_dir.clone(),
            spec,
            cgroup,
            slot: parked,
            proxy,
            running: false,
            purged: false,
        };
        self.sandboxes.insert(id.clone(), sandbox)?;
        Ok(id)
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
        let helper = self.helper()?;
        // Take what the command needs and mark the sandbox busy; the rest
        // (plans, file reads, the command itself) happens outside the lock.
        let (spec, dir, egress, cgroup, slot) = self.with_sandbox(id, |sandbox| {
            if sandbox.running {
                return Err(Error::Invalid(format!(
                    "sandbox {id} is already running a command"
                )));
            }
            sandbox.running = true;
            Ok((
                sandbox.spec.clone(),
                sandbox.dir(),
                sandbox.proxy.is_some(),
                sandbox.cgroup.clone(),
                std::mem::replace(&mut sandbox.slot, Slot::Empty),
            ))
        })?;
        // The command is carried out by a task of its own, so that a caller
        // who goes away (a cancelled run drops this future, even while the
        // command starts) stops it in order: killed, reaped, its group
        // swept, its output closed, the sandbox ready again.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let provider = self.clone();
        let id = id.clone();
        let carried = tokio::spawn(async move {
            provider
                .carry_out(
                    &id, &helper, spec, dir, egress, cgroup, slot, request, output, stopped,
                )
                .await
        });
        let result = carried
            .await
            .map_err(|e| Error::Invalid(format!("the command's task failed: {e}")));
        drop(stop);
        result?
    }

    async fn resolve(&self, id: &SandboxId, path: &str) -> Result<Resolved, Error> {
        let dir = self.workspace_dir(id)?;
        crate::resolve::resolve(path, |parts| {
            let dir = dir.clone();
            blocking(move || workspace::entry(&dir, &parts))
        })
        .await
    }

    async fn read_file(&self, id: &SandboxId, path: &str) -> Result<Vec<u8>, Error> {
        let dir = self.workspace_dir(id)?;
        let path = path.to_string();
        blocking(move || workspace::read(&dir, &path)).await
    }

    async fn write_file(&self, id: &SandboxId, path: &str, contents: &[u8]) -> Result<(), Error> {
        let dir = self.workspace_dir(id)?;
        let (path, contents, owner) = (path.to_string(), contents.to_vec(), self.owner());
        blocking(move || workspace::write(&dir, &path, &contents, None, owner)).await
    }

    async fn apply_patch(
        &self,
        id: &SandboxId,
        patch: &ParsedPatch<'_>,
    ) -> Result<Vec<String>, Error> {
        let dir = self.workspace_dir(id)?;
        let changes = crate::patch::plan_with(patch, |path| {
            let dir = dir.clone();
            blocking(move || workspace::read_if_exists(&dir, &path))
        })
        .await?;
        let owner = self.owner();
        blocking(move || {
            for (path, change) in &changes {
                match change {
                    Change::Write {
                        contents,
                        executable,
                    } => workspace::write(&dir, path, contents, *executable, owner)?,
                    Change::Delete => workspace::remove(&dir, path)?,
                }
            }
            Ok(changes.into_keys().collect())
        })
        .await
    }

    async fn status(&self, id: &SandboxId) -> Result<SandboxStatus, Error> {
        self.with_sandbox(id, |s| {
            // The group also holds the parked helper of the next command,
            // so it is not a sign of anything running; every command's
            // leftovers are swept when it ends.
            Ok(if s.running {
                SandboxStatus::Running
            } else {
                SandboxStatus::Idle
            })
        })
    }

    async fn destroy(&self, id: &SandboxId) -> Result<PurgeReport, Error> {
        let mut sandbox = self.sandboxes.remove(id)?;
        std::mem::replace(&mut sandbox.slot, Slot::Empty)
            .discard()
            .await;
        Ok(sandbox.purge())
    }
}

impl Sandbox {
    /// Kills what runs, removes the groups and the directory, then looks
    /// again for anything left. Once only.
    fn purge(&mut self) -> PurgeReport {
        if self.purged {
            return PurgeReport::default();
        }
        self.purged = true;
        if let Some(proxy) = self.proxy.take() {
            proxy.abort();
        }
        orphans::purge_sandbox(&self.state_dir, &self.id, &self.cgroup, &self.dir())
    }
}

impl Sandbox {
    fn dir(&self) -> PathBuf {
        self.state_dir.join(&self.id.0)
    }
}

impl Drop for Sandbox {
    /// A sandbox nobody destroyed (the provider went away, a caller
    /// panicked) is purged all the same.
    fn drop(&mut self) {
        drop(std::mem::replace(&mut self.slot, Slot::Empty));
        let report = self.purge();
        if !report.is_clean() {
            tracing::error!(remaining = ?report.remaining, "a dropped sandbox left things behind");
        }
    }
}

impl NativeProvider {
    /// Starts the egress proxy on the sandbox's socket if the spec names hosts.
    fn start_proxy(
        &self,
        id: &SandboxId,
        spec: &SandboxSpec,
        dir: &Path,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, Error> {
        let allowlist = Allowlist::parse(&spec.egress)?;
        if allowlist.is_empty() {
            return Ok(None);
        }
        let socket = dir.join(bwrap::PROXY_SOCKET_FILE);
        EgressProxy::with_settings(allowlist, self.config.egress.clone())
            .for_sandbox(&id.0)
            .listen(&socket, self.owner())
            .map(Some)
    }

    /// The helper's launch plan for one command: bubblewrap's arguments and
    /// the command's environment.
    fn launch_plan(
        &self,
        spec: &SandboxSpec,
        dir: &Path,
        egress: bool,
        helper: &Path,
        request: &ExecRequest,
    ) -> Result<LaunchPlan, Error> {
        let init = InitPlan {
            writable: WRITABLE.iter().map(|p| (*p).to_string()).collect(),
            inet: egress,
            bridge: egress.then(|| BridgePlan {
                socket: PathBuf::from(PROXY_SOCKET),
                port: PROXY_PORT,
            }),
            helper_args: self.config.helper_args.clone(),
            argv: request.argv.clone(),
            // bubblewrap's own PID 1 dies with Smithers (--die-with-parent).
            deadline_ms: None,
        };
        let args = bwrap::args(
            &spec.root,
            dir,
            &self.etc,
            helper,
            &self.config.helper_args,
            &init,
        )
        .map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(LaunchPlan {
            user: self.drop_to,
            bwrap: self.config.bwrap.clone(),
            args,
            env: command_env(spec, request, egress),
        })
    }

    /// The staged helper, staged again if something removed it.
    fn helper(&self) -> Result<PathBuf, Error> {
        if self.helper.exists() {
            Ok(self.helper.clone())
        } else {
            stage_helper(&self.config.helper, &self.config.state_dir)
        }
    }

    /// Starts the command with the sandbox's parked helper (or a new one).
    /// Starts `request` in the sandbox's parked helper and waits for it
    /// (see [`Provider::exec`]); a `stop` whose sender is dropped ends it as
    /// the time limit does. Then the next command's helper is parked.
    #[allow(clippy::too_many_arguments)] // one command's parts, taken apart under the table's lock
    async fn carry_out(
        &self,
        id: &SandboxId,
        helper: &Path,
        spec: SandboxSpec,
        dir: PathBuf,
        egress: bool,
        cgroup: Cgroup,
        slot: Slot,
        request: ExecRequest,
        output: mpsc::Sender<OutputChunk>,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<ExecOutcome, Error> {
        let result = match self.launch_plan(&spec, &dir, egress, helper, &request) {
            Ok(launch) => {
                let oom_before = cgroup.oom_kills();
                match self.start(slot, cgroup.procs_files(), &launch).await {
                    Ok(launched) => {
                        let timeout = request.timeout.unwrap_or(spec.timeout);
                        self.run(id, &cgroup, launched, timeout, oom_before, output, stop)
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => {
                slot.discard().await;
                Err(e)
            }
        };
        // The group is empty now (run swept it): park the next command's
        // helper while nobody waits, unless the sandbox is destroyed first
        // (the usual end of a one-command sandbox).
        let mut next = Some(park_later(
            helper,
            &self.config.helper_args,
            cgroup.procs_files(),
            NEXT_PARK_DELAY,
        ));
        let _ = self.with_sandbox(id, |sandbox| {
            sandbox.running = false;
            sandbox.slot = next.take().map_or(Slot::Empty, Slot::Pending);
            Ok(())
        });
        // Destroyed meanwhile (a cancelled run's end): no helper for it.
        if let Some(next) = next {
            next.abort();
        }
        result
    }

    async fn start(
        &self,
        slot: Slot,
        procs: Vec<PathBuf>,
        launch: &LaunchPlan,
    ) -> Result<Launched, Error> {
        let parked = match slot.take().await {
            Some(Ok(parked)) => parked,
            // A helper that failed to park is retried once, now.
            Some(Err(_)) | None => {
                park(
                    self.helper.clone(),
                    self.config.helper_args.clone(),
                    procs.clone(),
                )
                .await?
            }
        };
        parked.launch(launch).await
    }

    #[allow(clippy::too_many_arguments)] // one command's parts, as carry_out holds them
    async fn run(
        &self,
        id: &SandboxId,
        cgroup: &Cgroup,
        launched: Launched,
        timeout: Duration,
        oom_before: u64,
        output: mpsc::Sender<OutputChunk>,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<ExecOutcome, Error> {
        let started = Instant::now();
        let Launched {
            mut child,
            stdout,
            stderr,
        } = launched;
        let stdout = tokio::spawn(pump(stdout, Stream::Stdout, output.clone()));
        let stderr = tokio::spawn(pump(stderr, Stream::Stderr, output));
        // Either sender's end (the caller went away) or the time limit stops it.
        let waited = tokio::select! {
            waited = tokio::time::timeout(timeout, child.wait()) => waited.ok(),
            _ = stop => None,
        };
        let called_off = waited.is_none() && started.elapsed() < timeout;
        let (status, timed_out) = match waited {
            Some(status) => (
                status.map_err(Error::io("cannot wait for the sandbox"))?,
                false,
            ),
            None => {
                // Kill bubblewrap (its children follow: --die-with-parent
                // and the PID namespace), then anything left in the group.
                let _ = child.start_kill();
                cgroup.kill_all();
                (
                    child
                        .wait()
                        .await
                        .map_err(Error::io("cannot wait for the sandbox"))?,
                    true,
                )
            }
        };
        // Nothing outlives its command: sweep the group.
        let (stray, oom_after) = (cgroup.kill_all(), cgroup.oom_kills());
        if stray > 0 {
            tracing::debug!(sandbox = %id, stray, "killed processes left behind");
        }
        for pump in [stdout, stderr] {
            let _ = pump.await;
        }
        if called_off {
            return Err(Error::Invalid("the command was called off".into()));
        }
        let oom_killed = oom_after > oom_before;
        let exit_code = if timed_out {
            124
        } else if let Some(code) = status.code() {
            code
        } else {
            use std::os::unix::process::ExitStatusExt as _;
            128 + status.signal().unwrap_or(9)
        };
        Ok(ExecOutcome {
            exit_code: if oom_killed && !timed_out {
                137
            } else {
                exit_code
            },
            timed_out,
            oom_killed,
            duration: started.elapsed(),
        })
    }
}
