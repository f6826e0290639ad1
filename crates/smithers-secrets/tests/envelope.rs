//! Envelope encryption as the store will rely on it: values come back only
//! in their own scope, under a key the keyring still holds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use proptest::prelude::*;
use smithers_secrets::{Error, FORMAT_VERSION, Keyring, Scope, SecretValue};

const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn scope(version: u32) -> Scope<'static> {
    Scope {
        organization_id: "local",
        environment: "prod",
        name: "GITHUB_TOKEN",
        version,
    }
}

#[test]
fn a_value_round_trips_in_its_scope() {
    let keyring = Keyring::parse(&format!("k1:{K1}")).unwrap();
    let value = SecretValue::from("ghp_0123456789abcdef");
    let sealed = keyring.seal(&scope(1), &value).unwrap();
    assert_eq!(sealed.format, FORMAT_VERSION);
    assert_eq!(sealed.key_id, "k1");
    assert!(
        !sealed
            .ciphertext
            .windows(value.len())
            .any(|w| w == value.expose())
    );
    assert_eq!(keyring.open(&scope(1), &sealed).unwrap(), value);
    // A fresh data key and nonce each time.
    let again = keyring.seal(&scope(1), &value).unwrap();
    assert_ne!(again.ciphertext, sealed.ciphertext);
    assert_ne!(again.wrapped_key, sealed.wrapped_key);
}

#[test]
fn a_ciphertext_moved_to_another_scope_does_not_open() {
    let keyring = Keyring::parse(&format!("k1:{K1}")).unwrap();
    let sealed = keyring
        .seal(&scope(1), &SecretValue::from("value-123"))
        .unwrap();
    let elsewhere = [
        Scope {
            organization_id: "acme",
            ..scope(1)
        },
        Scope {
            environment: "dev",
            ..scope(1)
        },
        Scope {
            name: "OTHER",
            ..scope(1)
        },
        scope(2),
        // Field boundaries matter: "pro" + "dGITHUB_TOKEN" is not "prod" + "GITHUB_TOKEN".
        Scope {
            environment: "pro",
            name: "dGITHUB_TOKEN",
            ..scope(1)
        },
    ];
    for other in elsewhere {
        assert_eq!(
            keyring.open(&other, &sealed),
            Err(Error::Decrypt),
            "{other:?}"
        );
    }
}

#[test]
fn damaged_or_foreign_records_do_not_open() {
    let keyring = Keyring::parse(&format!("k1:{K1}")).unwrap();
    let sealed = keyring
        .seal(&scope(1), &SecretValue::from("value-123"))
        .unwrap();
    for i in [0, 12, sealed.ciphertext.len() - 1] {
        let mut bad = sealed.clone();
        bad.ciphertext[i] ^= 1;
        assert_eq!(
            keyring.open(&scope(1), &bad),
            Err(Error::Decrypt),
            "byte {i}"
        );
    }
    let mut bad = sealed.clone();
    bad.wrapped_key[20] ^= 1;
    assert_eq!(keyring.open(&scope(1), &bad), Err(Error::Decrypt));
    let mut bad = sealed.clone();
    bad.ciphertext.truncate(10);
    assert_eq!(keyring.open(&scope(1), &bad), Err(Error::Decrypt));
    let mut bad = sealed.clone();
    bad.format = 9;
    assert_eq!(keyring.open(&scope(1), &bad), Err(Error::Format(9)));
    // Same id, another key: the wrong key cannot unwrap.
    let impostor = Keyring::parse(&format!("k1:{K2}")).unwrap();
    assert_eq!(impostor.open(&scope(1), &sealed), Err(Error::Decrypt));
    let mut relabelled = sealed.clone();
    relabelled.key_id = "k2".into();
    let both = Keyring::parse(&format!("k2:{K2},k1:{K1}")).unwrap();
    assert_eq!(
        both.open(&scope(1), &relabelled),
        Err(Error::Decrypt),
        "the key id is bound too"
    );
}

#[test]
fn rotation_and_rewrap_move_data_keys_without_touching_values() {
    let old = Keyring::parse(&format!("k1:{K1}")).unwrap();
    let value = SecretValue::from("value-before-rotation");
    let sealed = old.seal(&scope(3), &value).unwrap();
    // The new key first: new data keys use it, the old one still unwraps.
    let rotated = Keyring::parse(&format!("k2:{K2},k1:{K1}")).unwrap();
    assert_eq!(rotated.open(&scope(3), &sealed).unwrap(), value);
    assert_eq!(rotated.seal(&scope(4), &value).unwrap().key_id, "k2");
    let moved = rotated
        .rewrap(&scope(3), &sealed)
        .unwrap()
        .expect("k1 is not primary");
    assert_eq!(moved.key_id, "k2");
    assert_eq!(
        moved.ciphertext, sealed.ciphertext,
        "the value itself is not re-encrypted"
    );
    assert_eq!(rotated.rewrap(&scope(3), &moved).unwrap(), None);
    // With k1 gone, only the rewrapped record opens.
    let new_only = Keyring::parse(&format!("k2:{K2}")).unwrap();
    assert_eq!(new_only.open(&scope(3), &moved).unwrap(), value);
    assert_eq!(
        new_only.open(&scope(3), &sealed),
        Err(Error::UnknownKey("k1".into()))
    );
}

#[test]
fn plaintext_and_keys_never_show_in_debug_or_errors() {
    let keyring = Keyring::parse(&format!("k1:{K1}")).unwrap();
    let value = SecretValue::from("super-secret-value");
    assert_eq!(format!("{value:?}"), "SecretValue(<redacted, 18 bytes>)");
    let debug = format!("{keyring:?}");
    assert!(debug.contains("k1") && !debug.contains(K1), "{debug}");
    let sealed = keyring.seal(&scope(1), &value).unwrap();
    let err = keyring.open(&scope(2), &sealed).unwrap_err().to_string();
    assert!(!err.contains("super-secret-value"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_value_round_trips_and_stays_bound(value in prop::collection::vec(any::<u8>(), 0..512), version in 1u32..1000) {
        let keyring = Keyring::parse(&format!("k1:{K1}")).unwrap();
        let value = SecretValue::new(value);
        let sealed = keyring.seal(&scope(version), &value).unwrap();
        prop_assert_eq!(keyring.open(&scope(version), &sealed).unwrap(), value);
        prop_assert_eq!(keyring.open(&scope(version + 1), &sealed), Err(Error::Decrypt));
    }

    /// Whatever the keyring text, a refusal never repeats the key material.
    #[test]
    fn keyring_errors_never_echo_key_material(id in "id[0-9]{1,3}", key in "[A-Za-z0-9+/=*]{12,60}") {
        if let Err(e) = Keyring::parse(&format!("{id}:{key}")) {
            prop_assert!(!e.to_string().contains(&key), "{}", e);
        }
    }
}
