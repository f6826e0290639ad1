//! Any secrets, any output, any chunking: the chunked output equals the
//! whole-buffer output, and no form of a secret survives in it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smithers_secrets::{Redactor, SecretValue, forms};

fuzz_target!(|data: &[u8]| {
    // Layout: secrets separated by 0xFF, then 0xFE, then the text; the
    // first byte seeds the chunk sizes.
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let (secret_part, text) = match rest.iter().position(|&b| b == 0xFE) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let secrets: Vec<SecretValue> = secret_part
        .split(|&b| b == 0xFF)
        .take(8)
        .map(|s| SecretValue::new(s.to_vec()))
        .collect();
    let Ok(redactor) = Redactor::new(&secrets) else {
        panic!("the redactor refused a handful of short secrets");
    };
    let whole = redactor.redact(text);
    let mut out = Vec::new();
    let mut stream = redactor.stream();
    let step = usize::from(seed % 17) + 1;
    for piece in text.chunks(step) {
        stream.push(piece, &mut out);
    }
    stream.finish(&mut out);
    assert_eq!(out, whole);
    for secret in &secrets {
        for form in forms(secret.expose()) {
            if !form.contains(&b'*') {
                assert!(!out.windows(form.len()).any(|w| w == form.as_slice()));
            }
        }
    }
});
