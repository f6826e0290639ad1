//! Kernel decision latency against `cedar-policy` on the same rules and
//! requests, in the same process.
//!
//! `cargo bench -p smithers-policy --bench decision` runs the criterion
//! groups, then prints a summary table: p50/p99 per decision over many
//! requests, decisions per second, and the Cedar/Smithers ratio, beside
//! the target (p50 ≤ 1 µs at 1k rules, ≥ 5× faster than Cedar).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::hint::black_box;
use std::str::FromStr;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group};
use smithers_policy::{PolicySet, Request, Subject};

/// A small deterministic generator, so every run measures the same rules.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FILE_TOOLS: &[&str] = &[
    "read_file",
    "write_file",
    "apply_patch",
    "list_directory",
    "search_files",
];
const COMMAND_TOOLS: &[&str] = &["run_command", "run_tests"];
const BRANCH_TOOLS: &[&str] = &["push_branch", "create_commit"];
const DIRS: &[&str] = &[
    "src",
    "docs",
    "crates/core/src",
    "tests",
    "scripts",
    ".github/workflows",
    "benches",
];
const FILES: &[&str] = &[
    "main.rs",
    "lib.rs",
    "README.md",
    "mod.rs",
    "config.toml",
    "ci.yml",
    "run.sh",
];
const PROGRAMS: &[&str] = &["cargo", "git", "npm", "make", "rm", "curl", "ls", "python3"];
const ARGS: &[&str] = &[
    "test", "build", "status", "install", "-rf", "--all", "run", "log",
];
const BRANCHES: &[&str] = &["smithers", "release", "feature", "fix", "hotfix"];

/// One generated rule: our line, and the same rule in Cedar.
struct GenRule {
    line: String,
    cedar: String,
}

fn gen_rule(rng: &mut XorShift, roles: usize, id: usize) -> GenRule {
    let subject = if rng.below(10) == 0 {
        "*".to_string()
    } else {
        format!("role{}", rng.below(roles))
    };
    let tool_class = rng.below(12);
    let action = match tool_class {
        0 => "*",
        1..=6 => rng.pick(FILE_TOOLS),
        7..=9 => rng.pick(COMMAND_TOOLS),
        _ => rng.pick(BRANCH_TOOLS),
    };
    let resource = match (tool_class, rng.below(4)) {
        (_, 0) => "*".to_string(),
        (0..=6, 1) => format!("{}/*", rng.pick(DIRS)),
        (0..=6, 2) => format!("*.{}", rng.pick(&["rs", "md", "toml", "yml"])),
        (0..=6, _) => format!("{}/{}", rng.pick(DIRS), rng.pick(FILES)),
        (7..=9, 1) => format!("{} *", rng.pick(PROGRAMS)),
        (7..=9, 2) => format!("{} {} *", rng.pick(PROGRAMS), rng.pick(ARGS)),
        (7..=9, _) => format!("{} {}", rng.pick(PROGRAMS), rng.pick(ARGS)),
        (_, 1) => format!("{}/*", rng.pick(BRANCHES)),
        (_, _) => format!("{}/{}", rng.pick(BRANCHES), rng.below(50)),
    };
    let effect = [
        "allow",
        "ask",
        "admin-only",
        "deny",
        "allow",
        "ask",
        "forbid",
    ][rng.below(7)];
    let effect = if effect == "forbid" && rng.below(4) != 0 {
        "deny"
    } else {
        effect
    };
    let principal = if subject == "*" {
        "principal".to_string()
    } else {
        format!("principal == Role::\"{subject}\"")
    };
    let cedar_action = if action == "*" {
        "action".to_string()
    } else {
        format!("action == Action::\"{action}\"")
    };
    // Cedar's `like` has only `*`, matching any characters: the closest
    // translation of each glob.
    let condition = if resource == "*" {
        String::new()
    } else {
        format!(" when {{ context.resource like \"{resource}\" }}")
    };
    let kind = if matches!(effect, "deny" | "forbid") {
        "forbid"
    } else {
        "permit"
    };
    GenRule {
        line: format!("{subject} {action} \"{resource}\" -> {effect}"),
        cedar: format!(
            "@id(\"r{id}\") @effect(\"{effect}\") {kind}({principal}, {cedar_action}, resource){condition};"
        ),
    }
}

struct GenRequest {
    role: String,
    action: &'static str,
    resource: String,
}

fn gen_request(rng: &mut XorShift, roles: usize) -> GenRequest {
    let role = format!("role{}", rng.below(roles));
    let class = rng.below(10);
    let (action, resource) = match class {
        0..=5 => (
            rng.pick(FILE_TOOLS),
            format!("{}/{}", rng.pick(DIRS), rng.pick(FILES)),
        ),
        6..=8 => {
            let mut cmd = format!("{} {}", rng.pick(PROGRAMS), rng.pick(ARGS));
            if rng.below(4) == 0 {
                cmd = format!("{cmd} && {} {}", rng.pick(PROGRAMS), rng.pick(ARGS));
            }
            (rng.pick(COMMAND_TOOLS), cmd)
        }
        _ => (
            rng.pick(BRANCH_TOOLS),
            format!("{}/{}", rng.pick(BRANCHES), rng.below(60)),
        ),
    };
    GenRequest {
        role,
        action,
        resource,
    }
}

struct Workload {
    rules: usize,
    ours: PolicySet,
    cedar: cedar_policy::PolicySet,
    requests: Vec<GenRequest>,
    cedar_requests: Vec<cedar_policy::Request>,
}

fn workload(rules: usize) -> Workload {
    let mut rng = XorShift(0x5eed_0000 + rules as u64);
    let roles = (rules / 20).clamp(3, 500);
    let generated: Vec<GenRule> = (0..rules).map(|i| gen_rule(&mut rng, roles, i)).collect();
    let text: Vec<&str> = generated.iter().map(|g| g.line.as_str()).collect();
    let ours = PolicySet::parse("bench.policy", &text.join("\n")).expect("generated policy parses");
    let cedar_text: Vec<&str> = generated.iter().map(|g| g.cedar.as_str()).collect();
    let cedar =
        cedar_policy::PolicySet::from_str(&cedar_text.join("\n")).expect("cedar policy parses");
    let requests: Vec<GenRequest> = (0..1000).map(|_| gen_request(&mut rng, roles)).collect();
    let cedar_requests = requests
        .iter()
        .map(|r| {
            let uid = |s: String| cedar_policy::EntityUid::from_str(&s).expect("entity uid");
            let context = cedar_policy::Context::from_pairs([(
                "resource".to_string(),
                cedar_policy::RestrictedExpression::new_string(r.resource.clone()),
            )])
            .expect("context");
            cedar_policy::Request::new(
                uid(format!("Role::\"{}\"", r.role)),
                uid(format!("Action::\"{}\"", r.action)),
                uid("Resource::\"workspace\"".to_string()),
                context,
                None,
            )
            .expect("cedar request")
        })
        .collect();
    Workload {
        rules,
        ours,
        cedar,
        requests,
        cedar_requests,
    }
}

fn decide_ours(w: &Workload, i: usize) -> smithers_policy::Verdict {
    let r = &w.requests[i];
    w.ours
        .evaluate(&Request {
            subject: Subject {
                role: Some(&r.role),
                user: None,
            },
            action: r.action,
            resource: &r.resource,
        })
        .verdict
}

fn decide_cedar(
    w: &Workload,
    authorizer: &cedar_policy::Authorizer,
    entities: &cedar_policy::Entities,
    i: usize,
) -> cedar_policy::Decision {
    authorizer
        .is_authorized(&w.cedar_requests[i], &w.cedar, entities)
        .decision()
}

const SIZES: &[usize] = &[10, 1_000, 10_000];

fn criterion_benches(c: &mut Criterion) {
    let authorizer = cedar_policy::Authorizer::new();
    let entities = cedar_policy::Entities::empty();
    let mut group = c.benchmark_group("decision");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.sample_size(20);
    for &size in SIZES {
        let w = workload(size);
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("smithers", size), &w, |b, w| {
            b.iter(|| {
                i = (i + 1) % w.requests.len();
                black_box(decide_ours(w, i))
            })
        });
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("cedar", size), &w, |b, w| {
            b.iter(|| {
                i = (i + 1) % w.requests.len();
                black_box(decide_cedar(w, &authorizer, &entities, i))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, criterion_benches);

/// Per-decision times over every request: each request is decided
/// `reps` times in a row and the mean of those is one sample, so the clock's
/// own cost is spread thin. Returns sorted nanoseconds.
fn sample(requests: usize, reps: usize, mut decide: impl FnMut(usize)) -> Vec<f64> {
    let mut samples = Vec::with_capacity(requests);
    for i in 0..requests {
        let start = Instant::now();
        for _ in 0..reps {
            decide(i);
        }
        samples.push(start.elapsed().as_nanos() as f64 / reps as f64);
    }
    samples.sort_by(f64::total_cmp);
    samples
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

/// Repetitions per request so one engine spends about `budget` on a size.
fn reps_for(budget: Duration, requests: usize, mut decide: impl FnMut(usize)) -> usize {
    let start = Instant::now();
    for i in 0..requests {
        decide(i);
    }
    let one_pass = start.elapsed().max(Duration::from_micros(1));
    ((budget.as_secs_f64() / one_pass.as_secs_f64()) as usize).clamp(1, 200)
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn summary(budget: Duration) {
    let authorizer = cedar_policy::Authorizer::new();
    let entities = cedar_policy::Entities::empty();
    println!();
    println!("kernel decision latency, same rules and requests, same process");
    println!("(per decision; p50/p99 across 1000 requests; decisions/s from the mean)");
    println!(
        "{:>6} | {:>10} {:>10} {:>12} | {:>10} {:>10} {:>12} | {:>12}",
        "rules", "smithers", "p99", "decisions/s", "cedar", "p99", "decisions/s", "cedar/ours"
    );
    for &size in SIZES {
        let w = workload(size);
        let n = w.requests.len();
        let ours_reps = reps_for(budget, n, |i| {
            black_box(decide_ours(&w, i));
        });
        let ours = sample(n, ours_reps, |i| {
            black_box(decide_ours(&w, i));
        });
        let cedar_reps = reps_for(budget, n, |i| {
            black_box(decide_cedar(&w, &authorizer, &entities, i));
        });
        let cedar = sample(n, cedar_reps, |i| {
            black_box(decide_cedar(&w, &authorizer, &entities, i));
        });
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        let (o50, c50) = (percentile(&ours, 0.5), percentile(&cedar, 0.5));
        println!(
            "{:>6} | {:>10} {:>10} {:>12.0} | {:>10} {:>10} {:>12.0} | {:>11.1}x",
            w.rules,
            fmt_ns(o50),
            fmt_ns(percentile(&ours, 0.99)),
            1e9 / mean(&ours),
            fmt_ns(c50),
            fmt_ns(percentile(&cedar, 0.99)),
            1e9 / mean(&cedar),
            c50 / o50
        );
    }
    println!(
        "target: p50 <= 1 µs at 1k rules and >= 5x faster than cedar-policy (anchor: Cedar 4-11 µs median published)"
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // then a quick pass is enough to show the bench still works.
    let benching = std::env::args().any(|a| a == "--bench");
    if benching {
        benches();
        criterion::Criterion::default()
            .configure_from_args()
            .final_summary();
        summary(Duration::from_millis(1500));
    } else {
        summary(Duration::from_millis(1));
    }
}
