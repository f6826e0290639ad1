//! The providers under test, each with its state in a temporary
//! directory, and the macro that runs a test body against every one.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use smithers_sandbox::egress::{BoxFuture, Resolve, address_refusal};

use smithers_sandbox::{
    DockerConfig, DockerProvider, ExecOutcome, ExecRequest, NativeConfig, NativeProvider, Provider,
    SandboxId, SandboxSpec, Stream,
};
use tokio::sync::mpsc;

pub struct Fixture {
    pub provider: NativeProvider,
    pub state: tempfile::TempDir,
}

pub fn native() -> Fixture {
    native_with(|_| {})
}

pub fn native_with(adjust: impl FnOnce(&mut NativeConfig)) -> Fixture {
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
    let mut config = NativeConfig::with_helper(
        PathBuf::from(env!("CARGO_BIN_EXE_smithers-sandbox-helper")),
        Vec::new(),
    );
    config.state_dir = state.path().join("sandboxes");
    config.warm_pool = 2;
    adjust(&mut config);
    Fixture {
        provider: NativeProvider::new(config).unwrap(),
        state,
    }
}

/// Runs each named `async fn name<P: Provider>(provider: &P)` as a test
/// against the native provider (module `native`) and the Docker provider
/// (module `docker`).
#[macro_export]
macro_rules! against_every_provider {
    ($($name:ident),* $(,)?) => {
        mod native {
            $(
                #[tokio::test]
                async fn $name() {
                    let fixture = $crate::common::native();
                    super::$name(&fixture.provider).await;
                }
            )*
        }
        mod docker {
            $(
                #[tokio::test]
                async fn $name() {
                    let fixture = $crate::common::docker().await;
                    super::$name(&fixture.provider).await;
                }
            )*
        }
    };
}

/// Runs each named `async fn name<F: HasProvider>(make: impl AsyncFn(EgressSettings) -> F)`
/// as a test against every provider, made with the egress settings the
/// test chooses.
#[macro_export]
macro_rules! against_every_provider_with_egress {
    ($($name:ident),* $(,)?) => {
        mod native {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(async |settings| {
                        $crate::common::native_with(|config| config.egress = settings)
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
                        $crate::common::docker_with(|config| config.egress = settings).await
                    })
                    .await;
                }
            )*
        }
    };
}

/// A provider with the state it lives in.
pub trait HasProvider {
    type P: Provider;
    fn provider(&self) -> &Self::P;
}

impl HasProvider for Fixture {
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

/// Builds the test image once per test process.
async fn ensure_test_image(socket: &std::path::Path) {
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
        std::path::Path::new(env!("CARGO_BIN_EXE_smithers-sandbox-helper")),
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

pub struct DockerFixture {
    pub provider: DockerProvider,
    pub state: tempfile::TempDir,
}

pub async fn docker() -> DockerFixture {
    docker_with(|_| {}).await
}

pub async fn docker_with(adjust: impl FnOnce(&mut DockerConfig)) -> DockerFixture {
    let state = tempfile::Builder::new()
        .prefix("smithers-docker-")
        .tempdir()
        .unwrap();
    let mut config = DockerConfig::from_env().unwrap();
    ensure_test_image(&config.socket).await;
    config.image = TEST_IMAGE.to_string();
    config.state_dir = state.path().join("docker");
    config.helper = Some((
        PathBuf::from(env!("CARGO_BIN_EXE_smithers-sandbox-helper")),
        Vec::new(),
    ));
    adjust(&mut config);
    DockerFixture {
        provider: DockerProvider::connect(config).await.unwrap(),
        state,
    }
}

/// What a command printed and how it ended.
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
    pub outcome: ExecOutcome,
}

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

pub async fn sh<P: Provider>(provider: &P, id: &SandboxId, script: &str) -> Ran {
    run(provider, id, ExecRequest::new(["/bin/sh", "-c", script])).await
}

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
