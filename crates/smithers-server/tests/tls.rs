//! HTTPS without a proxy: the server speaks TLS with the certificate it
//! is given, a client that never finishes its handshake holds up nobody,
//! plain HTTP on the TLS port gets nothing, and files that are not a
//! certificate and its key are refused naming the file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

mod common;

use std::io::Write as _;
use std::time::Duration;

use smithers_app::Config;
use smithers_server::{Settings, TlsConfig};
use smithers_test_support::on_both_backends;

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM
/// files in `dir`; the certificate's PEM.
fn certificate(dir: &std::path::Path) -> String {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = made.cert.pem();
    std::fs::write(dir.join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    cert
}

on_both_backends!(
    the_server_speaks_tls_and_a_silent_client_holds_up_nobody,
    |db| {
        let files = tempfile::tempdir().unwrap();
        let pem = certificate(files.path());
        let tls = TlsConfig::from_pem_files(
            &files.path().join("cert.pem"),
            &files.path().join("key.pem"),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _s = common::serve_on(
            db,
            Config::default(),
            listener,
            Settings {
                tls: Some(tls),
                ..Settings::default()
            },
        )
        .await;
        // Connections that never say anything.
        let mut silent = Vec::new();
        for _ in 0..8 {
            silent.push(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
        }
        let https = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let answer = https
            .get(format!("https://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "ok\n");
        // A client that does not trust the certificate stops at the handshake.
        let plain_client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        assert!(
            plain_client
                .get(format!("https://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .is_err()
        );
        // Plain HTTP on the TLS port gets no HTTP answer.
        let plain = plain_client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await;
        assert!(plain.is_err() || !plain.unwrap().status().is_success());
        drop(silent);
    }
);

#[test]
fn files_that_are_not_a_certificate_and_its_key_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path());
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let junk = dir.path().join("junk.pem");
    std::fs::File::create(&junk)
        .unwrap()
        .write_all(b"not pem at all\n")
        .unwrap();
    let other = tempfile::tempdir().unwrap();
    certificate(other.path());
    for (c, k, names) in [
        (&junk, &key, "junk.pem"),
        (&cert, &junk, "junk.pem"),
        (&dir.path().join("missing.pem"), &key, "missing.pem"),
        (&cert, &other.path().join("key.pem"), "key"),
    ] {
        let e = TlsConfig::from_pem_files(c, k).unwrap_err();
        assert!(e.contains(names), "{e}");
        assert!(!e.contains("PRIVATE KEY"), "{e}");
    }
}
