//! `smithers serve`: it says where it listens, answers, and stops cleanly
//! on SIGTERM (what the API does is tested in crates/smithers-server).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Command, Stdio};

#[test]
fn it_serves_until_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SMITHERS_HOME", home.path())
        .env_remove("SMITHERS_DATABASE_URL")
        .env_remove("SMITHERS_NATS_URL")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    let address = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "it ended early");
        if let Some(rest) = line.strip_prefix("smithers: serving the API on http://") {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    let mut http = std::net::TcpStream::connect(&address).unwrap();
    http.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    http.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok\n"), "{answer}");

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(rest.contains("smithers: stopped"), "{rest}");
}
