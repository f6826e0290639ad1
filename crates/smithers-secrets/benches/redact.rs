//! Redaction throughput with 1, 100 and 1,000 secrets, against a plain
//! copy of the same bytes in the same chunks (the limit), in the same run;
//! and with 1,000 secrets on the same log coloured the way `cargo` and
//! `grep --color` colour it, with URLs and HTML in it: the input the
//! decoder has the most to do on.
//!
//! `cargo bench -p smithers-secrets --bench redact` (criterion, then the
//! table on 64 MiB); run the bench binary without `--bench` for a quick
//! table on 1 MiB.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench's failure is a panic

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};

use smithers_secrets::{Redactor, SecretValue};

/// Deterministic pseudo-random bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn secret(rng: &mut XorShift) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let len = 20 + (rng.next() % 24) as usize;
    (0..len)
        .map(|_| ALPHABET[(rng.next() % 64) as usize] as char)
        .collect()
}

/// Build-log-like text with a secret every ~64 KiB.
fn text(rng: &mut XorShift, secrets: &[String], size: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "Compiling",
        "serde",
        "v1.0.219",
        "warning:",
        "unused",
        "variable",
        "test",
        "result:",
        "ok.",
        "passed;",
        "Running",
        "target/debug/deps/app-3f2a",
        "error[E0599]",
        "--> src/main.rs:12:5",
        "Finished",
        "in",
        "1.2s",
    ];
    let mut out = Vec::with_capacity(size + 128);
    while out.len() < size {
        for _ in 0..(4 + rng.next() % 10) {
            out.extend_from_slice(WORDS[(rng.next() % WORDS.len() as u64) as usize].as_bytes());
            out.push(b' ');
        }
        if rng.next().is_multiple_of(800) {
            out.extend_from_slice(secrets[(rng.next() % secrets.len() as u64) as usize].as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// The log coloured as terminals get it: every other line's first word in
/// bold green, some words highlighted, a URL with `%20` and `&`, HTML.
fn coloured(rng: &mut XorShift, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain.len() * 5 / 4);
    for line in plain.split_inclusive(|&b| b == b'\n') {
        match rng.next() % 8 {
            0..=3 => {
                let first = line.iter().position(|&b| b == b' ').unwrap_or(0);
                out.extend_from_slice(b"\x1b[1m\x1b[32m");
                out.extend_from_slice(&line[..first]);
                out.extend_from_slice(b"\x1b[0m");
                out.extend_from_slice(&line[first..]);
            }
            4 => {
                out.extend_from_slice(b"\x1b[01;31m\x1b[K");
                out.extend_from_slice(line);
                out.extend_from_slice(b"\x1b[m\x1b[K");
            }
            5 => {
                out.extend_from_slice(
                    b"GET https://registry.test/api/v1/crates?q=serde%20json&page=2 200 ",
                );
                out.extend_from_slice(line);
            }
            6 => {
                out.extend_from_slice(b"<td>R&amp;D &lt;ok&gt;</td> ");
                out.extend_from_slice(line);
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}

/// Redacts `input` through a stream in `chunk`-byte pushes.
fn redact_stream(redactor: &Redactor, input: &[u8], chunk: usize, out: &mut Vec<u8>) {
    out.clear();
    let mut stream = redactor.stream();
    for piece in input.chunks(chunk) {
        stream.push(piece, out);
    }
    stream.finish(out);
}

fn criterion_benches(c: &mut Criterion) {
    let mut rng = XorShift(0x5eed);
    let chunk = 64 * 1024;
    let mut group = c.benchmark_group("redact");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);
    let mut out = Vec::new();
    for count in [1usize, 100, 1000] {
        let secrets: Vec<String> = (0..count).map(|_| secret(&mut rng)).collect();
        let input = text(&mut rng, &secrets, 8 << 20);
        let values: Vec<SecretValue> = secrets
            .iter()
            .map(|s| SecretValue::from(s.as_str()))
            .collect();
        let redactor = Redactor::new(&values).unwrap();
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(format!("{count}_secrets"), |b| {
            b.iter(|| redact_stream(&redactor, black_box(&input), chunk, &mut out))
        });
        if count == 1000 {
            let input = coloured(&mut rng, &input);
            group.throughput(Throughput::Bytes(input.len() as u64));
            group.bench_function("1000_secrets_coloured_log", |b| {
                b.iter(|| redact_stream(&redactor, black_box(&input), chunk, &mut out))
            });
        }
        if count == 1 {
            group.bench_function("plain_copy", |b| {
                b.iter(|| {
                    out.clear();
                    for piece in input.chunks(chunk) {
                        out.extend_from_slice(black_box(piece));
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, criterion_benches);

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    if !quick {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    let size = if quick { 1 << 20 } else { 64 << 20 };
    let chunk = 64 * 1024;
    let mut rng = XorShift(0x5eed);
    println!(
        "redaction of {} MiB of build output in {} KiB chunks",
        size >> 20,
        chunk >> 10
    );
    println!(
        "{:>8} | {:>6} | {:>9} | {:>12} | {:>14} | {:>7}",
        "secrets", "log", "build", "redact MB/s", "plain copy MB/s", "ratio"
    );
    for (count, colours) in [(1usize, false), (100, false), (1000, false), (1000, true)] {
        let secrets: Vec<String> = (0..count).map(|_| secret(&mut rng)).collect();
        let mut input = text(&mut rng, &secrets, size);
        if colours {
            input = coloured(&mut rng, &input);
        }
        let values: Vec<SecretValue> = secrets
            .iter()
            .map(|s| SecretValue::from(s.as_str()))
            .collect();
        let start = Instant::now();
        let redactor = Redactor::new(&values).unwrap();
        let build = start.elapsed();
        let start = Instant::now();
        let mut out = Vec::with_capacity(input.len());
        redact_stream(&redactor, &input, chunk, &mut out);
        let redact = input.len() as f64 / start.elapsed().as_secs_f64() / 1e6;
        black_box(&out);
        let start = Instant::now();
        let mut copy = Vec::with_capacity(input.len());
        for piece in input.chunks(chunk) {
            copy.extend_from_slice(black_box(piece));
        }
        black_box(&copy);
        let plain = input.len() as f64 / start.elapsed().as_secs_f64() / 1e6;
        println!(
            "{count:>8} | {:>6} | {:>7.0}ms | {redact:>12.0} | {plain:>14.0} | {:>6.3}x",
            if colours { "colour" } else { "plain" },
            build.as_secs_f64() * 1000.0,
            redact / plain
        );
    }
    println!(
        "target: >= 300 MB/s at 1,000 secrets, 0 leaks under chunk-split, wrap and escape-code fuzzing (anchor: the plain copy beside it; GitHub masks line by line)"
    );
}
