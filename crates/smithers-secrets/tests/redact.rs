//! The redactor against hostile output: every form, every chunking.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use proptest::prelude::*;
use smithers_secrets::{Redactor, SecretValue, forms};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn redactor(secrets: &[&str]) -> Redactor {
    let values: Vec<SecretValue> = secrets.iter().map(|s| SecretValue::from(*s)).collect();
    Redactor::new(&values).unwrap()
}

fn chunked(r: &Redactor, input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stream = r.stream();
    let mut at = 0;
    for &cut in cuts {
        let cut = cut.min(input.len()).max(at);
        stream.push(&input[at..cut], &mut out);
        at = cut;
    }
    stream.push(&input[at..], &mut out);
    stream.finish(&mut out);
    out
}

#[test]
fn every_form_is_masked() {
    let secret = "tok3n/With+Sp3cial chars";
    let r = redactor(&[secret]);
    let inputs = [
        format!("token={secret}!"),
        format!(
            "hex {} and {}",
            hex(secret.as_bytes()),
            hex(secret.as_bytes()).to_uppercase()
        ),
        format!("b64 {}", STANDARD.encode(secret)),
        format!("in a blob {}", STANDARD.encode(format!("user:{secret}:x"))),
        format!("urlsafe {}", URL_SAFE.encode(format!("ab{secret}"))),
        "q=tok3n%2FWith%2BSp3cial%20chars&x".to_string(),
        "q=tok3n%2fWith%2bSp3cial+chars&x".to_string(),
        format!("{{\"v\":{}}}", serde_like_json(secret)),
    ];
    for input in inputs {
        let out = r.redact(input.as_bytes());
        assert!(
            contains(&out, b"***"),
            "{input} -> {}",
            String::from_utf8_lossy(&out)
        );
        for form in forms(secret.as_bytes()) {
            assert!(!contains(&out, &form), "{input}");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn serde_like_json(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn each_line_of_a_multi_line_secret_is_masked() {
    let key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX\n-----END KEY-----";
    let r = redactor(&[key]);
    let out = r.redact(b"printed only the middle: MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX done");
    assert_eq!(out, b"printed only the middle: *** done");
}

#[test]
fn a_prefix_is_held_back_until_the_next_chunk() {
    let r = redactor(&["hunter2-secret"]);
    let mut out = Vec::new();
    let mut stream = r.stream();
    stream.push(b"login: hunt", &mut out);
    assert_eq!(out, b"login: ", "`hunt` could still become the secret");
    stream.push(b"er2-secr", &mut out);
    assert_eq!(out, b"login: ");
    stream.push(b"et ok\nhunter", &mut out);
    assert_eq!(out, b"login: *** ok\n");
    stream.finish(&mut out);
    assert_eq!(
        out, b"login: *** ok\nhunter",
        "a prefix that never completed is flushed at the end"
    );
}

#[test]
fn short_values_are_reported_not_masked() {
    let values = [
        SecretValue::from("abc"),
        SecretValue::from("long-enough"),
        SecretValue::from(""),
    ];
    let r = Redactor::new(&values).unwrap();
    assert_eq!(r.too_short(), [0, 2]);
    assert_eq!(r.redact(b"abc long-enough"), b"abc ***");
    let none = Redactor::new(&[]).unwrap();
    assert_eq!(none.redact(b"anything at all"), b"anything at all");
}

fn secret() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{6,24}"
}

/// Filler that cannot contain any form of a secret made of [a-z0-9_-].
fn filler() -> impl Strategy<Value = String> {
    "[ .,;:!()\n]{0,12}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn no_form_survives_any_chunking(
        secrets in prop::collection::vec(secret(), 1..5),
        pieces in prop::collection::vec((filler(), any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0usize..3), 1..8),
        cuts in prop::collection::vec(0usize..400, 0..12),
    ) {
        let values: Vec<SecretValue> = secrets.iter().map(|s| SecretValue::from(s.as_str())).collect();
        let r = Redactor::new(&values).unwrap();
        let all_forms: Vec<Vec<u8>> = secrets.iter().flat_map(|s| forms(s.as_bytes())).collect();
        let mut input = Vec::new();
        for (fill, which, form, wrap) in &pieces {
            input.extend_from_slice(fill.as_bytes());
            let s = &secrets[which.index(secrets.len())];
            let f = forms(s.as_bytes());
            let chosen = &f[form.index(f.len())];
            match wrap {
                // Embedded in a larger base64 blob at some offset.
                1 => input.extend_from_slice(STANDARD.encode([fill.as_bytes(), s.as_bytes(), b"!"].concat()).as_bytes()),
                _ => input.extend_from_slice(chosen),
            }
        }
        let mut cuts = cuts;
        cuts.sort_unstable();
        let whole = r.redact(&input);
        let split = chunked(&r, &input, &cuts);
        prop_assert_eq!(&split, &whole, "the output does not depend on chunking");
        for form in &all_forms {
            prop_assert!(!contains(&split, form), "{:?} survived in {:?}", String::from_utf8_lossy(form), String::from_utf8_lossy(&split));
        }
    }

    #[test]
    fn text_without_secrets_passes_unchanged(
        secrets in prop::collection::vec(secret(), 0..5),
        text in "[ .,;:!()\n]{0,300}",
        cuts in prop::collection::vec(0usize..300, 0..8),
    ) {
        let values: Vec<SecretValue> = secrets.iter().map(|s| SecretValue::from(s.as_str())).collect();
        let r = Redactor::new(&values).unwrap();
        let mut cuts = cuts;
        cuts.sort_unstable();
        prop_assert_eq!(chunked(&r, text.as_bytes(), &cuts), text.as_bytes().to_vec());
    }
}
