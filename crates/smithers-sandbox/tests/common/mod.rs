//! A native provider for tests, with its state in a temporary directory.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use smithers_sandbox::egress::{BoxFuture, Resolve, address_refusal};

use smithers_sandbox::{
    ExecOutcome, ExecRequest, NativeConfig, NativeProvider, Provider, SandboxId, SandboxSpec,
    Stream,
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
