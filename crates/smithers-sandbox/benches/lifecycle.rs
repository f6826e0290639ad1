//! Native sandbox latency: create → first exec of `/bin/true` → destroy,
//! against raw `bwrap --unshare-all … /bin/true` (the limit), same process,
//! same run.
//!
//! `cargo bench -p smithers-sandbox --bench lifecycle`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench's failure is a panic

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use smithers_sandbox::{ExecRequest, NativeConfig, NativeProvider, Provider, SandboxSpec};
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
    let helper = PathBuf::from(env!("CARGO_BIN_EXE_smithers-sandbox-helper"));
    let mut config = NativeConfig::with_helper(helper, Vec::new());
    config.state_dir = state.path().join("sandboxes");
    config.warm_pool = 2;
    (state, NativeProvider::new(config).unwrap())
}

async fn lifecycle(provider: &NativeProvider) {
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
    group.finish();
}

criterion_group!(benches, criterion_benches);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(rounds: usize) {
    let (_state, provider) = provider();
    let runtime = Runtime::new().unwrap();
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    // Interleaved, so drift in the machine hits both alike.
    for _ in 0..rounds {
        let start = Instant::now();
        runtime.block_on(lifecycle(&provider));
        ours.push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        raw_bwrap();
        raw.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    ours.sort_by(f64::total_cmp);
    raw.sort_by(f64::total_cmp);
    let (o50, r50) = (percentile(&ours, 0.5), percentile(&raw, 0.5));
    println!();
    println!(
        "native sandbox create -> first exec (/bin/true) -> destroy, {rounds} rounds, same process"
    );
    println!(
        "  smithers native: p50 {o50:.2} ms  p90 {:.2} ms",
        percentile(&ours, 0.9)
    );
    println!(
        "  raw bwrap:       p50 {r50:.2} ms  p90 {:.2} ms",
        percentile(&raw, 0.9)
    );
    println!(
        "  overhead at p50: {:+.2} ms ({:.2}x)",
        o50 - r50,
        o50 / r50
    );
    println!("target: native <= raw bwrap + 5 ms");
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
