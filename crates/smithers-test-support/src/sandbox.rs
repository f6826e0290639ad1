//! Sandbox providers for tests, each with its state in a temporary
//! directory: the native provider and the Docker provider (over a test
//! image built once per process), the macros that run one test body
//! against every provider, commands run to the end with what they printed,
//! and a fixed DNS table for egress tests.
//!
//! The sandbox helper program is a binary of the crate under test, so its
//! path comes from the caller: `env!("CARGO_BIN_EXE_smithers-sandbox-helper")`
//! in the sandbox crate's tests.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use smithers_sandbox::egress::{BoxFuture, Resolve, address_refusal};
use smithers_sandbox::{
    DockerConfig, DockerProvider, ExecOutcome, ExecRequest, NativeConfig, NativeProvider, Provider,
    SandboxId, SandboxSpec, Stream,
};
use tokio::sync::mpsc;

/// A native provider with the temporary directory its state lives in.
pub struct NativeFixture {
    /// The provider.
    pub provider: NativeProvider,
    /// Holds the provider's state directory, `sandboxes`.
    pub state: tempfile::TempDir,
}

/// A native provider running `helper`, with a warm pool of two.
pub fn native(helper: impl AsRef<Path>) -> NativeFixture {
    native_with(helper, |_| {})
}

/// [`native`], with its configuration changed by `adjust` first.
pub fn native_with(
    helper: impl AsRef<Path>,
    adjust: impl FnOnce(&mut NativeConfig),
) -> NativeFixture {
    let state = tempfile::Builder::new()
        .prefix("smithers-sbx-")
        .tempdir()
        .unwrap();
    // The sandbox user must be able to walk to its directory.
    std::fs::set_permissions(
        state.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let mut config = NativeConfig::with_helper(helper.as_ref().to_path_buf(), Vec::new());
    config.state_dir = state.path().join("sandboxes");
    config.warm_pool = 2;
    adjust(&mut config);
    NativeFixture {
        provider: NativeProvider::new(config).unwrap(),
        state,
    }
}

/// Runs each named `async fn name<P: Provider>(provider: &P)` as a test
/// against the native provider (module `native`) and the Docker provider
/// (module `docker`), both running the helper program at `helper`:
/// `against_every_provider!(env!("CARGO_BIN_EXE_smithers-sandbox-helper"); a, b)`.
/// `helper` is expanded inside those modules, so it names nothing of the
/// calling module.
#[macro_export]
macro_rules! against_every_provider {
    ($helper:expr; $($name:ident),* $(,)?) => {
        mod native {
            $(
                #[tokio::test]
                async fn $name() {
                    let fixture = $crate::sandbox::native($helper);
                    super::$name(&fixture.provider).await;
                }
            )*
        }
        mod docker {
            $(
                #[tokio::test]
                async fn $name() {
                    let fixture = $crate::sandbox::docker($helper).await;
                    super::$name(&fixture.provider).await;
                }
            )*
        }
    };
}

/// Runs each named `async fn name<F: HasProvider>(make: impl AsyncFn(EgressSettings) -> F)`
/// as a test against every provider, made with the egress settings the
/// test chooses; `helper` as in [`crate::against_every_provider!`].
#[macro_export]
macro_rules! against_every_provider_with_egress {
    ($helper:expr; $($name:ident),* $(,)?) => {
        mod native {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(async |settings| {
                        $crate::sandbox::native_with($helper, |config| config.egress = settings)
                    })
                    .await;
                }
            )*
        }
        mod docker {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(async |settings| {
                        $crate::sandbox::docker_with($helper, |config| config.egress = settings).await
                    })
                    .await;
                }
            )*
        }
    };
}

/// A provider with the state it lives in.
pub trait HasProvider {
    /// The provider's type.
    type P: Provider;
    /// The provider.
    fn provider(&self) -> &Self::P;
}

impl HasProvider for NativeFixture {
    type P = NativeProvider;
    fn provider(&self) -> &NativeProvider {
        &self.provider
    }
}

impl HasProvider for DockerFixture {
    type P = DockerProvider;
    fn provider(&self) -> &DockerProvider {
        &self.provider
    }
}

/// The image the Docker tests run: the default programs and what the
/// hostile suite uses, with `su` and `mount` setuid root so that the suite
/// shows that such binaries grant nothing.
pub const TEST_IMAGE: &str = "smithers-sandbox-test:latest";

fn test_image_programs() -> Vec<String> {
    smithers_sandbox::docker::image::DEFAULT_PROGRAMS
        .iter()
        .chain(&[
            "perl", "curl", "getent", "mount", "umount", "su", "unshare", "nohup", "setsid",
        ])
        .map(|p| (*p).to_string())
        .collect()
}

/// Builds the test image, with `helper` in it, once per test process.
async fn ensure_test_image(socket: &Path, helper: &Path) {
    static BUILT: std::sync::OnceLock<tokio::sync::Mutex<bool>> = std::sync::OnceLock::new();
    let mut built = BUILT
        .get_or_init(|| tokio::sync::Mutex::new(false))
        .lock()
        .await;
    if *built {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    smithers_sandbox::docker::image::build(
        socket,
        TEST_IMAGE,
        &test_image_programs(),
        helper,
        work.path(),
        |root| {
            for setuid in ["usr/bin/su", "usr/bin/mount"] {
                std::fs::set_permissions(
                    root.join(setuid),
                    std::os::unix::fs::PermissionsExt::from_mode(0o4755),
                )
                .unwrap();
            }
            Ok(())
        },
    )
    .await
    .expect("the Docker engine must run for these tests (scripts/lib.sh ensure_docker)");
    *built = true;
}

/// A Docker provider with the temporary directory its state lives in.
pub struct DockerFixture {
    /// The provider.
    pub provider: DockerProvider,
    /// Holds the provider's state directory, `docker`.
    pub state: tempfile::TempDir,
}

/// A Docker provider over [`TEST_IMAGE`] (built with `helper` in it if
/// this process has not yet), running `helper` in its containers.
pub async fn docker(helper: impl AsRef<Path>) -> DockerFixture {
    docker_with(helper, |_| {}).await
}

/// [`docker`], with its configuration changed by `adjust` first.
pub async fn docker_with(
    helper: impl AsRef<Path>,
    adjust: impl FnOnce(&mut DockerConfig),
) -> DockerFixture {
    let helper = helper.as_ref();
    let state = tempfile::Builder::new()
        .prefix("smithers-docker-")
        .tempdir()
        .unwrap();
    let mut config = DockerConfig::from_env().unwrap();
    ensure_test_image(&config.socket, helper).await;
    config.image = TEST_IMAGE.to_string();
    config.state_dir = state.path().join("docker");
    config.helper = Some((helper.to_path_buf(), Vec::new()));
    adjust(&mut config);
    DockerFixture {
        provider: DockerProvider::connect(config).await.unwrap(),
        state,
    }
}

/// What a command printed and how it ended.
pub struct Ran {
    /// Standard output, decoded lossily.
    pub stdout: String,
    /// Standard error, decoded lossily.
    pub stderr: String,
    /// How the command ended.
    pub outcome: ExecOutcome,
}

/// Runs `request` in sandbox `id` to its end, collecting its output.
pub async fn run<P: Provider>(provider: &P, id: &SandboxId, request: ExecRequest) -> Ran {
    let (tx, mut rx) = mpsc::channel::<smithers_sandbox::OutputChunk>(64);
    let collect = tokio::spawn(async move {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(chunk) = rx.recv().await {
            match chunk.stream {
                Stream::Stdout => out.extend(chunk.bytes),
                Stream::Stderr => err.extend(chunk.bytes),
            }
        }
        (out, err)
    });
    let outcome = provider.exec(id, request, tx).await.unwrap();
    let (out, err) = collect.await.unwrap();
    Ran {
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        outcome,
    }
}

/// Runs `script` with `/bin/sh -c` in sandbox `id` to its end.
pub async fn sh<P: Provider>(provider: &P, id: &SandboxId, script: &str) -> Ran {
    run(provider, id, ExecRequest::new(["/bin/sh", "-c", script])).await
}

/// The default sandbox specification.
pub fn spec() -> SandboxSpec {
    SandboxSpec::default()
}

/// Names resolved from a fixed table, so no name is looked up anywhere.
pub struct Table(pub HashMap<String, Vec<IpAddr>>);

impl Resolve for Table {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'_, std::io::Result<Vec<SocketAddr>>> {
        let found = self
            .0
            .get(host)
            .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
        Box::pin(async move { found.ok_or_else(|| std::io::Error::other("no such host")) })
    }
}

/// The address check of tests: `127.0.0.1` plays the internet, every other
/// address is judged as in production.
pub fn loopback_is_the_internet(ip: IpAddr) -> Option<&'static str> {
    if ip == IpAddr::from([127, 0, 0, 1]) {
        None
    } else {
        address_refusal(ip)
    }
}
