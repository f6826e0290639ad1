//! What the tests of `smithers serve` share: a server started over a data
//! directory, the command line beside it, and a run read until it moves.

#![allow(dead_code)] // each test file uses part of it

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Command, Stdio};

/// `smithers serve` over `home`, started; its address once it listens.
pub struct Served {
    child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    stderr: BufReader<std::process::ChildStderr>,
}

pub fn serve(home: &Path, args: &[&str]) -> Served {
    serve_at(home, "127.0.0.1:0", args, &[])
}

/// `smithers serve` over `home` listening on `listen`, with more
/// environment `env`; its address once it listens.
pub fn serve_at(home: &Path, listen: &str, args: &[&str], env: &[(&str, &str)]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args(["serve", "--listen", listen])
        .args(args)
        .env("SMITHERS_HOME", home)
        .env_remove("SMITHERS_DATABASE_URL")
        .env_remove("SMITHERS_NATS_URL")
        .env_remove("SECRET_ENCRYPTION_KEYS")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let address = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "it ended early");
        if let Some(rest) = line.strip_prefix("smithers: serving the API on http://") {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    Served {
        child,
        address,
        stderr,
    }
}

impl Drop for Served {
    /// A failed test leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// SIGKILL: the server dies where it stands, as in a crash.
    #[allow(dead_code)] // not every test binary kills a server
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// `http://ADDRESS{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// SIGTERM, then its exit status and the rest of what it said.
    pub fn terminate(&mut self) -> (Option<i32>, String) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        (status.code(), rest)
    }
}

/// `smithers ARGS` over `home`, which must succeed; what it printed.
pub fn cli(home: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args(args)
        .env("SMITHERS_HOME", home)
        .env_remove("SMITHERS_DATABASE_URL")
        .env_remove("SMITHERS_NATS_URL")
        .env_remove("SMITHERS_USER")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A new API token of `user` with `scopes` (`runs:read,…`); its secret.
pub fn token(home: &Path, user: &str, scopes: &str) -> String {
    let out = cli(
        home,
        &[
            "tokens", "--as", user, "create", "t", "--scope", scopes, "--json",
        ],
    );
    let made: serde_json::Value = serde_json::from_str(&out).unwrap();
    made["secret"].as_str().unwrap().to_string()
}

/// Reads run `id` through the API until `done` says so (a run moves on
/// its own; the deadline only bounds a broken server).
pub fn run_until(
    http: &reqwest::blocking::Client,
    served: &Served,
    token: &str,
    id: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let run: serde_json::Value = http
            .get(served.url(&format!("/api/v1/runs/{id}")))
            .bearer_auth(token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if done(&run) {
            return run;
        }
        assert!(std::time::Instant::now() < deadline, "{run:#}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
