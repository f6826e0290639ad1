//! Sandbox latency: create → first exec of `/bin/true` → destroy, for the
//! native provider against raw `bwrap --unshare-all … /bin/true` (the
//! limit), and for the Docker provider against raw `docker run --rm
//! --network none … /bin/true`; same process, same run. The Docker half
//! needs a running engine; it builds its image from this host's files.
//!
//! `cargo bench -p smithers-sandbox --bench lifecycle`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench's failure is a panic

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use smithers_sandbox::{
    DockerConfig, DockerProvider, ExecRequest, NativeConfig, NativeProvider, Provider, SandboxSpec,
};
use tokio::runtime::Runtime;

/// A provider with its state in a temporary directory the sandbox user can
/// walk into (kept alive by the returned guard).
fn provider() -> (tempfile::TempDir, NativeProvider) {
    let state = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        state.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let mut config = NativeConfig::with_helper(helper(), Vec::new());
    config.state_dir = state.path().join("sandboxes");
    config.warm_pool = 2;
    (state, NativeProvider::new(config).unwrap())
}

/// The image the Docker half runs, built once per bench run.
const BENCH_IMAGE: &str = "smithers-sandbox-bench:latest";

fn helper() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_smithers-sandbox-helper"))
}

/// A Docker provider configured as the command line configures it (the
/// helper bound in), over a freshly built image.
fn docker_provider(runtime: &Runtime) -> (tempfile::TempDir, DockerProvider) {
    let state = tempfile::tempdir().unwrap();
    let mut config = DockerConfig::from_env().unwrap();
    let programs: Vec<String> = smithers_sandbox::docker::image::DEFAULT_PROGRAMS
        .iter()
        .map(|p| (*p).to_string())
        .collect();
    runtime
        .block_on(smithers_sandbox::docker::image::build(
            &config.socket,
            BENCH_IMAGE,
            &programs,
            &helper(),
            state.path(),
            |_| Ok(()),
        ))
        .expect("the Docker half of this bench needs a running engine");
    config.image = BENCH_IMAGE.to_string();
    config.state_dir = state.path().join("docker");
    config.helper = Some((helper(), Vec::new()));
    let provider = runtime.block_on(DockerProvider::connect(config)).unwrap();
    (state, provider)
}

/// `docker run --rm` with the same isolation, through the engine's own client.
fn raw_docker() {
    let status = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--user",
            "1000:1000",
            BENCH_IMAGE,
            "/usr/bin/true",
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn lifecycle<P: Provider>(provider: &P) {
    let id = provider.create(SandboxSpec::default()).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let outcome = provider
        .exec(&id, ExecRequest::new(["/bin/true"]), tx)
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, 0);
    drain.await.unwrap();
    assert!(provider.destroy(&id).await.unwrap().is_clean());
}

/// The same isolation bubblewrap gives on its own, without Smithers.
fn raw_bwrap() {
    let status = Command::new("/usr/bin/bwrap")
        .args([
            "--unshare-all",
            "--unshare-user",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/bin",
            "/bin",
            "--symlink",
            "usr/lib",
            "/lib",
            "--symlink",
            "usr/lib64",
            "/lib64",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--",
            "/bin/true",
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

fn criterion_benches(c: &mut Criterion) {
    let (_state, provider) = provider();
    let runtime = Runtime::new().unwrap();
    let mut group = c.benchmark_group("sandbox");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("native_create_exec_destroy", |b| {
        b.iter(|| runtime.block_on(lifecycle(&provider)))
    });
    group.bench_function("raw_bwrap_true", |b| b.iter(raw_bwrap));
    let (_docker_state, docker) = docker_provider(&runtime);
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("docker_create_exec_destroy", |b| {
        b.iter(|| runtime.block_on(lifecycle(&docker)))
    });
    group.bench_function("raw_docker_run_true", |b| b.iter(raw_docker));
    group.finish();
}

criterion_group!(benches, criterion_benches);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs ours and the raw command alternately, so drift in the machine hits
/// both alike; prints both at p50 and p90 and the difference.
fn compare(what: &str, rounds: usize, target: &str, mut ours: impl FnMut(), mut raw: impl FnMut()) {
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let start = Instant::now();
        ours();
        mine.push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        raw();
        theirs.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    mine.sort_by(f64::total_cmp);
    theirs.sort_by(f64::total_cmp);
    let (o50, r50) = (percentile(&mine, 0.5), percentile(&theirs, 0.5));
    println!();
    println!(
        "{what} sandbox create -> first exec (/bin/true) -> destroy, {rounds} rounds, same process"
    );
    println!(
        "  smithers {what}: p50 {o50:.2} ms  p90 {:.2} ms",
        percentile(&mine, 0.9)
    );
    println!(
        "  raw:             p50 {r50:.2} ms  p90 {:.2} ms",
        percentile(&theirs, 0.9)
    );
    println!(
        "  difference at p50: {:+.2} ms ({:.2}x)",
        o50 - r50,
        o50 / r50
    );
    println!("target: {target}");
}

fn summary(rounds: usize) {
    let runtime = Runtime::new().unwrap();
    let (_state, native) = provider();
    compare(
        "native",
        rounds,
        "native <= raw bwrap + 5 ms",
        || runtime.block_on(lifecycle(&native)),
        raw_bwrap,
    );
    let (_docker_state, docker) = docker_provider(&runtime);
    compare(
        "docker",
        rounds.div_ceil(4),
        "docker <= raw docker run (--rm --network none --read-only --cap-drop ALL)",
        || runtime.block_on(lifecycle(&docker)),
        raw_docker,
    );
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    if benching {
        benches();
        Criterion::default().configure_from_args().final_summary();
        summary(200);
    } else {
        summary(
            std::env::var("ROUNDS")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(3),
        );
    }
}
