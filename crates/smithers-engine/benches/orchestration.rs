//! Orchestration overhead: a workflow of 100 `run` steps of `/bin/true`
//! carried out by the engine (each step decided by the kernel, recorded
//! with its audit events, its output logged and the workspace snapshotted
//! after it) against 100 raw execs of `/bin/true` in one sandbox of the
//! same provider (the limit); same process, same run, interleaved.
//!
//! `cargo bench -p smithers-engine --bench orchestration`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench's failure is a panic

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use smithers_sandbox::{ExecRequest, Provider, SandboxSpec};
use smithers_store::RunState;
use smithers_test_support::engine::Fixture;
use tokio::runtime::Runtime;

const STEPS: usize = 100;

/// The sandbox helper program, a binary of this crate.
const HELPER: &str = env!("CARGO_BIN_EXE_smithers-engine-sandbox-helper");

/// A repository whose workflow is 100 `run` steps of `/bin/true`, the
/// policy allowing them.
fn setup(runtime: &Runtime) -> Fixture {
    let mut workflow =
        String::from("[workflows.many]\non = [\"manual\"]\npolicy = \".smithers/policy\"\n");
    for i in 0..STEPS {
        write!(
            workflow,
            "\n[[workflows.many.steps]]\nid = \"s{i}\"\nrun = \"/bin/true\"\n"
        )
        .unwrap();
    }
    runtime.block_on(Fixture::new(
        HELPER,
        &[
            ("smithers.toml", &workflow),
            (
                ".smithers/policy",
                "workflow run_command /bin/true -> allow\n",
            ),
        ],
    ))
}

/// One whole run of the 100-step workflow.
async fn workflow(bench: &Fixture) -> Duration {
    let start = Instant::now();
    let run = bench.start("many").await;
    let done = bench
        .engine
        .execute(&bench.provider, &run.id)
        .await
        .unwrap();
    assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
    start.elapsed()
}

/// 100 raw execs of /bin/true in one sandbox (its creation not counted).
async fn raw(bench: &Fixture) -> Duration {
    let id = bench.provider.create(SandboxSpec::default()).await.unwrap();
    let start = Instant::now();
    for _ in 0..STEPS {
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let outcome = bench
            .provider
            .exec(&id, ExecRequest::new(["/bin/true"]), tx)
            .await
            .unwrap();
        assert_eq!(outcome.exit_code, 0);
    }
    let took = start.elapsed();
    bench.provider.destroy(&id).await.unwrap();
    took
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn side_by_side(runtime: &Runtime, bench: &Fixture) {
    let rounds = 5;
    let (mut ours, mut limit) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.push(runtime.block_on(workflow(bench)));
        limit.push(runtime.block_on(raw(bench)));
    }
    let (o, l) = (median(ours), median(limit));
    let per = |d: Duration| ms(d) / STEPS as f64;
    println!(
        "orchestration overhead, {STEPS} steps of /bin/true, median of {rounds} rounds, same process"
    );
    println!(
        "  workflow run ({STEPS} run steps):  {:9.1} ms total, {:7.2} ms per step",
        ms(o),
        per(o)
    );
    println!(
        "  raw sandbox execs ({STEPS}):       {:9.1} ms total, {:7.2} ms per exec   (the limit)",
        ms(l),
        per(l)
    );
    println!(
        "  per step: {:.2} ms vs {:.2} ms raw exec = {:.2}x, +{:.2} ms of orchestration",
        per(o),
        per(l),
        per(o) / per(l),
        per(o) - per(l)
    );
}

fn benches(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let bench = setup(&runtime);
    side_by_side(&runtime, &bench);
    let mut group = c.benchmark_group("orchestration_100_steps");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("workflow_100_run_steps", |b| {
        b.iter_custom(|n| (0..n).map(|_| runtime.block_on(workflow(&bench))).sum())
    });
    group.bench_function("raw_100_execs", |b| {
        b.iter_custom(|n| (0..n).map(|_| runtime.block_on(raw(&bench))).sum())
    });
    group.finish();
}

criterion_group!(orchestration, benches);

fn main() {
    orchestration();
    Criterion::default().configure_from_args().final_summary();
}
