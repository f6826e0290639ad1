//! Envelope encryption of a 64-byte secret, against one bare AES-256-GCM
//! seal of the same bytes (the limit), in the same run.
//!
//! `cargo bench -p smithers-secrets --bench envelope`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench's failure is a panic

use std::hint::black_box;
use std::time::Instant;

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

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = if quick { 1_000 } else { 300_000 };
    let keyring = Keyring::parse("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
    let scope = Scope {
        organization_id: "local",
        environment: "prod",
        name: "GITHUB_TOKEN",
        version: 1,
    };
    let value = SecretValue::new(vec![0x42; 64]);
    let sealed = keyring.seal(&scope, &value).unwrap();
    let encrypt = rate(n, || {
        black_box(keyring.seal(&scope, black_box(&value)).unwrap());
    });
    let decrypt = rate(n, || {
        black_box(keyring.open(&scope, black_box(&sealed)).unwrap());
    });
    let bare_key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let mut counter = 0u64;
    let bare = rate(n, || {
        counter += 1;
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&counter.to_be_bytes());
        let mut buffer = value.expose().to_vec();
        let tag = bare_key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut buffer,
            )
            .unwrap();
        let _sealed = black_box((buffer, tag));
    });
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
