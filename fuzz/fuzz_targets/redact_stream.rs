//! Any secrets, any output, cut anywhere: the redactor never panics, holds
//! back no more than it promises, gives the same output however the input
//! is cut, and lets no literal form of a secret through.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smithers_secrets::{Redactor, SecretValue, forms};

fuzz_target!(|data: &[u8]| {
    // Layout: a byte n, then n cut points (each the distance from the
    // previous cut), then secrets separated by 0xFF, then 0xFE, then the
    // output.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 24).min(rest.len());
    let (steps, rest) = rest.split_at(n);
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
    let mut at = 0;
    for &step in steps {
        let cut = (at + usize::from(step)).min(text.len());
        stream.push(&text[at..cut], &mut out);
        assert!(stream.held() <= redactor.max_held());
        at = cut;
    }
    stream.push(&text[at..], &mut out);
    stream.finish(&mut out);
    assert_eq!(out, whole, "the output depends on where the input was cut");

    for secret in &secrets {
        if secret.len() < smithers_secrets::MIN_SECRET_LEN {
            continue;
        }
        for form in forms(secret.expose()) {
            // A mask ends in `*`: a form with one could be completed by it.
            if !form.contains(&b'*') {
                assert!(!out.windows(form.len()).any(|w| w == form.as_slice()));
            }
        }
    }
});
