//! Envelope encryption of a 64-byte secret, against one bare AES-256-GCM
//! seal of the same bytes (the limit), in the same run.
//!
//! `cargo bench -p smithers-secrets --bench envelope`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench's failure is a panic

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use smithers_secrets::{Keyring, Scope, SecretValue};

fn rate(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

const SCOPE: Scope<'static> = Scope {
    organization_id: "local",
    environment: "prod",
    name: "GITHUB_TOKEN",
    version: 1,
};

fn keyring() -> Keyring {
    Keyring::parse("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap()
}

/// One AES-256-GCM seal of `value` under a fixed key: the limit.
struct BareSeal {
    key: LessSafeKey,
    counter: u64,
}

impl BareSeal {
    fn new() -> BareSeal {
        BareSeal {
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap()),
            counter: 0,
        }
    }

    fn seal(&mut self, value: &[u8]) {
        self.counter += 1;
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&self.counter.to_be_bytes());
        let mut buffer = value.to_vec();
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut buffer,
            )
            .unwrap();
        let _sealed = black_box((buffer, tag));
    }
}

fn criterion_benches(c: &mut Criterion) {
    let keyring = keyring();
    let value = SecretValue::new(vec![0x42; 64]);
    let sealed = keyring.seal(&SCOPE, &value).unwrap();
    let mut group = c.benchmark_group("envelope");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.bench_function("encrypt", |b| {
        b.iter(|| keyring.seal(&SCOPE, black_box(&value)).unwrap())
    });
    group.bench_function("decrypt", |b| {
        b.iter(|| keyring.open(&SCOPE, black_box(&sealed)).unwrap())
    });
    let mut bare = BareSeal::new();
    group.bench_function("bare_seal", |b| {
        b.iter(|| bare.seal(black_box(value.expose())))
    });
    group.finish();
}

criterion_group!(benches, criterion_benches);

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    if !quick {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    let n = if quick { 1_000 } else { 300_000 };
    let keyring = keyring();
    let scope = SCOPE;
    let value = SecretValue::new(vec![0x42; 64]);
    let sealed = keyring.seal(&scope, &value).unwrap();
    let encrypt = rate(n, || {
        black_box(keyring.seal(&scope, black_box(&value)).unwrap());
    });
    let decrypt = rate(n, || {
        black_box(keyring.open(&scope, black_box(&sealed)).unwrap());
    });
    let mut bare_seal = BareSeal::new();
    let bare = rate(n, || bare_seal.seal(black_box(value.expose())));
    println!("envelope, 64-byte secret ({n} operations each)");
    println!(
        "  encrypt (new data key, 2 seals): {encrypt:>12.0} ops/s   ratio to bare seal {:.2}x",
        encrypt / bare
    );
    println!(
        "  decrypt (unwrap, open):          {decrypt:>12.0} ops/s   ratio to bare seal {:.2}x",
        decrypt / bare
    );
    println!("  bare AES-256-GCM seal (limit):   {bare:>12.0} ops/s");
    println!("target: >= 500k envelope ops/s/core (anchor: Vault transit ~1.8k/s over HTTP)");
}
