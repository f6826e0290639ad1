//! `smithers secrets …`, `smithers users …` and `smithers redact` as a user
//! runs them: on the embedded store, and the main flow on PostgreSQL too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use sqlx::{Connection as _, Executor as _};

const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const VALUE: &str = "ghp_correct-horse-battery-staple";

/// Where a test's state lives: a data directory, and maybe a PostgreSQL database.
struct Env<'a> {
    home: &'a Path,
    database_url: Option<String>,
    keyring: String,
}

impl Env<'_> {
    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_smithers"));
        command
            .args(args)
            .env("SMITHERS_HOME", self.home)
            .env("SECRET_ENCRYPTION_KEYS", &self.keyring)
            .env_remove("SMITHERS_AUDIT_SIGNING_KEY")
            .env_remove("SMITHERS_USER")
            .env_remove("SMITHERS_NATS_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match &self.database_url {
            Some(url) => command.env("SMITHERS_DATABASE_URL", url),
            None => command.env_remove("SMITHERS_DATABASE_URL"),
        };
        let mut child = command.spawn().unwrap();
        feed(&mut child, stdin);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: &[u8]) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args, b"")).unwrap()
    }
}

/// Writes `input` to the child's stdin from another thread, so a child
/// that writes as it reads never blocks on a full pipe.
fn feed(child: &mut std::process::Child, input: &[u8]) {
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

/// A JSON object's field names, in the order they are printed.
fn fields(value: &Value) -> Vec<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

fn request(env: &Env<'_>, user: &str, single_use: bool) -> String {
    let mut args = vec![
        "secrets",
        "--as",
        user,
        "grant",
        "request",
        "GITHUB_TOKEN",
        "--env",
        "prod",
        "--purpose",
        "debug the deploy",
        "--json",
    ];
    if single_use {
        args.push("--single-use");
    }
    env.json(&args)["id"].as_str().unwrap().to_string()
}

/// The whole life of a secret, through the binary.
fn secret_lifecycle(env: &Env<'_>) {
    let set = env.ok(
        &["secrets", "set", "GITHUB_TOKEN", "--env", "prod"],
        format!("{VALUE}\n").as_bytes(),
    );
    assert!(
        set.contains("set prod/GITHUB_TOKEN version 1 (key k1)"),
        "{set}"
    );
    env.ok(&["users", "add", "bob", "--role", "admin"], b"");
    env.ok(&["users", "add", "carol"], b"");

    // Metadata needs no grant and never shows the value.
    let list = env.json(&["secrets", "list", "--json"]);
    assert_eq!(list[0]["name"], "GITHUB_TOKEN");
    assert_eq!(list[0]["active_version"], 1);
    assert_eq!(list[0]["key_id"], "k1");
    let versions = env.ok(&["secrets", "versions", "GITHUB_TOKEN", "--json"], b"");
    assert!(!list.to_string().contains("horse") && !versions.contains("horse"));
    assert_eq!(
        fields(&list[0]),
        [
            "environment",
            "name",
            "active_version",
            "latest_version",
            "versions",
            "key_id",
            "updated_at"
        ]
    );
    let versions: Value = serde_json::from_str(&versions).unwrap();
    assert_eq!(
        fields(&versions[0]),
        [
            "organization",
            "environment",
            "name",
            "version",
            "state",
            "key_id",
            "created_at",
            "created_by",
            "deactivated_at",
            "destroyed_at",
            "destroyed_by"
        ]
    );

    // No grant: refused with exit 3.
    let denied = env.run(&["secrets", "get", "GITHUB_TOKEN", "--env", "prod"], b"");
    assert_eq!(code(&denied), 3, "{}", text(&denied.stderr));
    assert!(text(&denied.stderr).contains("no approved, unexpired grant"));
    assert!(denied.stdout.is_empty());

    // The requester cannot approve; a member cannot; another admin can.
    let grant = request(env, "admin", true);
    let own = env.run(&["secrets", "grant", "approve", &grant], b"");
    assert_eq!(code(&own), 3, "{}", text(&own.stderr));
    let member = env.run(
        &["secrets", "--as", "carol", "grant", "approve", &grant],
        b"",
    );
    assert_eq!(code(&member), 3);
    let listed = env.json(&["secrets", "grant", "list", "--json"]);
    assert_eq!(listed[0]["state"], "pending");
    assert_eq!(
        fields(&listed[0]),
        [
            "id",
            "organization",
            "environment",
            "name",
            "requested_by",
            "run_id",
            "purpose",
            "ttl_seconds",
            "single_use",
            "state",
            "requested_at",
            "decided_by",
            "decided_at",
            "comment",
            "expires_at",
            "used_at"
        ]
    );
    env.ok(
        &[
            "secrets",
            "--as",
            "bob",
            "grant",
            "approve",
            &grant,
            "--comment",
            "ok",
        ],
        b"",
    );

    // The value goes to a pipe exactly, once (single use).
    let out = env.run(&["secrets", "get", "GITHUB_TOKEN", "--env", "prod"], b"");
    assert_eq!(text(&out.stdout), VALUE, "{}", text(&out.stderr));
    let spent = env.run(
        &[
            "secrets",
            "get",
            "GITHUB_TOKEN",
            "--env",
            "prod",
            "--grant",
            &grant,
        ],
        b"",
    );
    assert_eq!(code(&spent), 3);
    assert!(text(&spent.stderr).contains("spent"));

    // A denied grant reads nothing.
    let other = request(env, "carol", false);
    env.ok(
        &["secrets", "grant", "deny", &other, "--reason", "not needed"],
        b"",
    );
    let refused = env.run(
        &[
            "secrets",
            "--as",
            "carol",
            "get",
            "GITHUB_TOKEN",
            "--env",
            "prod",
        ],
        b"",
    );
    assert_eq!(code(&refused), 3);

    // Rotation with check-and-set; --env inferred when the name is in one environment.
    let stale = env.run(
        &["secrets", "rotate", "GITHUB_TOKEN", "--expect-version", "0"],
        b"second-value",
    );
    assert_eq!(code(&stale), 4, "{}", text(&stale.stderr));
    assert!(text(&stale.stderr).contains("at version 1, not 0"));
    env.ok(
        &["secrets", "rotate", "GITHUB_TOKEN", "--expect-version", "1"],
        b"second-value",
    );
    let again = env.run(
        &["secrets", "set", "GITHUB_TOKEN", "--env", "prod"],
        b"third-value",
    );
    assert_eq!(code(&again), 4);
    let empty = env.run(&["secrets", "set", "EMPTY", "--env", "prod"], b"\n");
    assert_eq!(code(&empty), 2);
    assert!(text(&empty.stderr).contains("empty"));

    // Destroying versions and the keyring's use are an admin's.
    for args in [
        &[
            "secrets",
            "--as",
            "carol",
            "destroy",
            "GITHUB_TOKEN",
            "--version",
            "1",
            "--yes",
        ][..],
        &["secrets", "--as", "carol", "keys"],
        &["secrets", "--as", "carol", "rewrap"],
    ] {
        let refused = env.run(args, b"");
        assert_eq!(code(&refused), 3, "{args:?}: {}", text(&refused.stderr));
        assert!(text(&refused.stderr).contains("needs an admin"));
    }

    // Destroy needs confirmation when nobody can be asked.
    let unconfirmed = env.run(
        &["secrets", "destroy", "GITHUB_TOKEN", "--version", "1"],
        b"",
    );
    assert_eq!(code(&unconfirmed), 2);
    assert!(text(&unconfirmed.stderr).contains("--yes"));
    env.ok(
        &[
            "secrets",
            "destroy",
            "GITHUB_TOKEN",
            "--version",
            "1",
            "--yes",
        ],
        b"",
    );
    let versions = env.json(&["secrets", "versions", "GITHUB_TOKEN", "--json"]);
    let states: Vec<_> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["destroyed", "active"]);
    assert_eq!(versions[0]["key_id"], Value::Null);

    // Every step is in the audit log, which verifies, and holds no value.
    let log = env.ok(&["audit", "log", "--json"], b"");
    for action in [
        "secret.set",
        "secret.read_refused",
        "secret.grant.requested",
        "secret.grant.approved",
        "secret.read",
        "secret.grant.denied",
        "secret.rotate",
        "secret.destroy",
        "user.add",
    ] {
        assert!(
            log.contains(&format!("\"{action}\"")),
            "{action} missing from {log}"
        );
    }
    assert!(!log.contains("horse") && !log.contains("second-value"));
    let verify = env.ok(&["audit", "verify"], b"");
    assert!(verify.starts_with("verified"), "{verify}");
}

#[test]
fn a_secret_lifecycle_on_the_embedded_store() {
    let home = tempfile::tempdir().unwrap();
    secret_lifecycle(&Env {
        home: home.path(),
        database_url: None,
        keyring: K1.into(),
    });
}

#[tokio::test]
async fn a_secret_lifecycle_on_postgres() {
    let admin = std::env::var("SMITHERS_TEST_POSTGRES_URL")
        .expect("SMITHERS_TEST_POSTGRES_URL: scripts/test starts PostgreSQL and sets it");
    let name = format!("smithers_cli_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    let home = tempfile::tempdir().unwrap();
    secret_lifecycle(&Env {
        home: home.path(),
        database_url: Some(format!("{base}/{name}")),
        keyring: K1.into(),
    });
    conn.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
}

#[test]
fn a_bad_keyring_stops_everything_and_names_the_entry_not_the_value() {
    let home = tempfile::tempdir().unwrap();
    let mut env = Env {
        home: home.path(),
        database_url: None,
        keyring: String::new(),
    };
    let cases = [
        ("k1", "entry 1 is not `id:base64-key`"),
        (
            "k1:c2hvcnQta2V5LXZhbHVl",
            "entry 1 (key \"k1\") is 15 bytes",
        ),
        (
            &format!("{K1},k1:c2hvcnQta2V5LXZhbHVl"),
            "entry 2: key id \"k1\" appears twice",
        ),
        (
            "k1:!!not-base64-secret!!",
            "entry 1 (key \"k1\") is not valid base64",
        ),
    ];
    for (keyring, expected) in cases {
        env.keyring = keyring.to_string();
        let out = env.run(&["secrets", "list"], b"");
        assert_eq!(code(&out), 2, "{keyring:?}");
        let err = text(&out.stderr);
        assert!(err.contains(expected), "{keyring:?}: {err}");
        assert!(
            !err.contains("c2hvcnQta2V5LXZhbHVl") && !err.contains("not-base64-secret"),
            "{err}"
        );
    }
    // Nothing started: not even the database was created.
    assert!(!home.path().join("smithers.db").exists());

    // No keyring at all: the application opens, and every secrets command
    // says what to set.
    env.keyring = String::new();
    let out = env.run(&["secrets", "list"], b"");
    assert_eq!(code(&out), 2);
    let err = text(&out.stderr);
    assert!(err.contains("SECRET_ENCRYPTION_KEYS is not set"), "{err}");
}

#[test]
fn rewrap_moves_everything_to_the_new_key_and_keys_shows_when_the_old_can_go() {
    let home = tempfile::tempdir().unwrap();
    let mut env = Env {
        home: home.path(),
        database_url: None,
        keyring: K1.into(),
    };
    for name in ["A_TOKEN", "B_TOKEN"] {
        env.ok(&["secrets", "set", name, "--env", "dev"], VALUE.as_bytes());
    }
    env.keyring = format!("{K2},{K1}");
    let keys = env.json(&["secrets", "keys", "--json"]);
    assert_eq!(
        fields(&keys[1]),
        [
            "key_id",
            "versions",
            "history_keys",
            "in_keyring",
            "primary",
            "removable"
        ]
    );
    assert_eq!(keys[1]["key_id"], "k1");
    assert_eq!(keys[1]["versions"], 2);
    assert_eq!(keys[1]["removable"], false);
    let summary = env.json(&["secrets", "rewrap", "--json"]);
    assert_eq!(summary["rewrapped"], 2);
    assert_eq!(summary["by_old_key"]["k1"], 2);
    assert_eq!(
        fields(&summary),
        [
            "primary_key",
            "rewrapped",
            "already_current",
            "history_keys",
            "by_old_key",
            "failed"
        ]
    );
    assert_eq!(summary["primary_key"], "k2");
    assert_eq!(summary["failed"], Value::Array(Vec::new()));
    let keys = env.ok(&["secrets", "keys"], b"");
    assert!(keys.contains("unused: can be removed"), "{keys}");

    // Removed too early, a key is reported missing and `keys` fails.
    env.keyring = K2.into();
    let fine = env.run(&["secrets", "keys"], b"");
    assert_eq!(code(&fine), 0);
    env.keyring = K1.into();
    env.ok(
        &["secrets", "set", "C_TOKEN", "--env", "dev"],
        VALUE.as_bytes(),
    );
    env.keyring = K2.into();
    let missing = env.run(&["secrets", "keys"], b"");
    assert_eq!(code(&missing), 1);
    assert!(text(&missing.stdout).contains("MISSING"));
    let warned = env.run(&["secrets", "list"], b"");
    assert!(
        text(&warned.stderr)
            .contains("key \"k1\" wraps 1 secret version(s) and the history keys of 0 run(s) but is not in SECRET_ENCRYPTION_KEYS")
    );
}

#[test]
fn redact_masks_values_from_the_environment_in_any_stream() {
    let home = tempfile::tempdir().unwrap();
    let run = |vars: &[(&str, &str)], arg: &str, input: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_smithers"))
            .args(["redact", "--secrets-from-env", arg])
            .env("SMITHERS_HOME", home.path())
            .envs(vars.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        feed(&mut child, input);
        child.wait_with_output().unwrap()
    };
    let quoted = r#"pa"ss\wo/rd"#;
    let input = format!(
        "plain {VALUE} hex {} json {} and short abc\n",
        hex::encode(VALUE),
        serde_json::to_string(quoted).unwrap()
    );
    let out = run(
        &[("TOKEN", VALUE), ("QUOTED", quoted), ("SHORT", "abc")],
        "TOKEN,QUOTED,SHORT",
        input.as_bytes(),
    );
    assert!(out.status.success());
    let masked = text(&out.stdout);
    assert_eq!(masked, "plain *** hex *** json \"***\" and short abc\n");
    assert!(text(&out.stderr).contains("SHORT is shorter than 6 bytes and is NOT masked"));
    // Big input, no secret: passes unchanged.
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| b"abcdefgh \n"[(i % 10) as usize])
        .collect();
    let out = run(&[("TOKEN", VALUE)], "TOKEN", &big);
    assert_eq!(out.stdout, big);
    let out = run(&[], "UNSET_VARIABLE", b"x");
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("UNSET_VARIABLE is not set"));
}

/// What real tools print, piped through `smithers redact` by a shell:
/// wrapped hex, wrapped base64 of JSON, a colour code inside the value,
/// URL-encoding that keeps `/`, and JSON inside JSON.
#[test]
fn redact_masks_what_real_tools_print() {
    const TOK: &str = "ghp_Q7x/Lm9+Zt2&Rw8=Kd4vNc6bYf1sHj3";
    const PW: &str = r#"pa"ss\word-123456"#;
    let home = tempfile::tempdir().unwrap();
    // (the shell command, the variable it prints, something its raw output
    // must hold so the tool is known to have run, the redacted output)
    let cases: [(&str, &str, &str, Option<&str>); 5] = [
        (
            r#"printf %s "$TOK" | xxd -p"#,
            "TOK",
            "6768705f5137782f4c6d392b5a7432265277383d",
            Some("***\n\n"),
        ),
        (
            r#"printf '{"user":"bot","password":"%s"}' "$TOK" | base64"#,
            "TOK",
            "eyJ1c2VyIjoiYm90IiwicGFzc3dvcmQiOiJnaHBfUTd4L0xtOStadDImUnc4PUtkNHZOYzZiWWYx\n",
            None,
        ),
        (
            r#"printf 'TOKEN=%s\n' "$TOK" | grep --color=always Zt2"#,
            "TOK",
            "Lm9+\x1b[01;31m\x1b[KZt2\x1b[m\x1b[K&Rw8",
            Some("TOKEN=***\n"),
        ),
        (
            r#"python3 -c 'import os,urllib.parse;print(urllib.parse.quote(os.environ["TOK"]))'"#,
            "TOK",
            "ghp_Q7x/Lm9%2BZt2%26Rw8%3DKd4vNc6bYf1sHj3",
            Some("***\n"),
        ),
        (
            r#"python3 -c 'import json,os;print(json.dumps({"body":json.dumps({"password":os.environ["PW"]})}))'"#,
            "PW",
            r#"pa\\\"ss\\\\word"#,
            Some("{\"body\": \"{\\\"password\\\": \\\"***\\\"}\"}\n"),
        ),
    ];
    let shell = |script: &str| {
        Command::new("sh")
            .args(["-c", script])
            .env("TOK", TOK)
            .env("PW", PW)
            .env("SMITHERS", env!("CARGO_BIN_EXE_smithers"))
            .env("SMITHERS_HOME", home.path())
            .output()
            .unwrap()
    };
    for (script, var, proof, expected) in cases {
        let raw = shell(script);
        assert!(raw.status.success(), "{script}: {}", text(&raw.stderr));
        assert!(
            text(&raw.stdout).contains(proof),
            "{script} printed {:?}",
            text(&raw.stdout)
        );
        let out = shell(&format!(
            "{script} | \"$SMITHERS\" redact --secrets-from-env {var}"
        ));
        assert!(out.status.success(), "{script}: {}", text(&out.stderr));
        let masked = text(&out.stdout);
        assert!(masked.contains("***"), "{script}: {masked:?}");
        if let Some(expected) = expected {
            assert_eq!(masked, expected, "{script}");
        }
        let value = if var == "TOK" { TOK } else { PW };
        let unwrapped: Vec<u8> = out.stdout.iter().copied().filter(|&b| b != b'\n').collect();
        for form in smithers_secrets::forms(value.as_bytes()) {
            assert!(
                !unwrapped.windows(form.len()).any(|w| w == form.as_slice()),
                "{script}: {:?} in {masked:?}",
                text(&form)
            );
        }
    }
}

/// More of what real tools print, piped through `smithers redact` by a
/// shell: a value wrapped and indented, quoted by bash and Python, dumped
/// as spaced and annotated hex, and cut short by strace. Each is checked
/// to hold the value first.
#[test]
fn redact_masks_quoted_dumped_indented_and_cut_values() {
    const TOK: &str = "ghp_Q7x/Lm9+Zt2&Rw8=Kd4vNc6bYf1sHj3";
    const QV: &str = "p@ss'word-123";
    const QV2: &str = "p@ss word\\x-1'2";
    const NV: &str = "it's\nline2-x";
    let home = tempfile::tempdir().unwrap();
    // (the shell command, the variable it prints, something its raw output
    // must hold, the redacted output)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            r#"printf %s "$TOK" | fold -w 20 | sed 's/^/  /'"#,
            "TOK",
            "  Kd4vNc6bYf1sHj3",
            "  ***\n",
        ),
        (
            r#"bash -c 'v=$QV; set -x; : "$v"' 2>&1"#,
            "QV",
            r"+ : 'p@ss'\''word-123'",
            "+ : '***'\n",
        ),
        (
            r#"bash -c 'printf "%s\n" "${QV@Q}"'"#,
            "QV",
            r"'p@ss'\''word-123'",
            "'***'\n",
        ),
        (
            r#"bash -c 'printf "%q\n" "$QV"'"#,
            "QV",
            r"p@ss\'word-123",
            "***\n",
        ),
        (
            r#"python3 -c 'import os,shlex;print(shlex.quote(os.environ["QV"]))'"#,
            "QV",
            r#"'p@ss'"'"'word-123'"#,
            "'***'\n",
        ),
        (
            r#"bash -c 'v=$QV2; set -x; : "$v"' 2>&1"#,
            "QV2",
            r"+ : 'p@ss word\x-1'\''2'",
            "+ : '***'\n",
        ),
        (
            r#"bash -c 'printf "%q\n" "$QV2"'"#,
            "QV2",
            r"p@ss\ word\\x-1\'2",
            "***\n",
        ),
        (
            r#"python3 -c 'import os,shlex;print(shlex.quote(os.environ["QV2"]))'"#,
            "QV2",
            r#"'p@ss word\x-1'"'"'2'"#,
            "'***'\n",
        ),
        (
            r#"bash -c 'printf "%s\n" "${NV@Q}"'"#,
            "NV",
            r"$'it\'s\nline2-x'",
            "$'***'\n",
        ),
        (
            r#"printf %s "$TOK" | od -An -tx1"#,
            "TOK",
            " 67 68 70 5f 51 37 78 2f",
            " ***\n\n\n",
        ),
        (
            r#"printf %s "$TOK" | od -tx1"#,
            "TOK",
            "0000020 52 77 38 3d",
            "0000000 ***\n\n\n0000043\n",
        ),
        (
            r#"printf %s "$TOK" | hexdump -C"#,
            "TOK",
            "|Rw8=Kd4vNc6bYf1s|",
            "00000000  ***\n\n\n00000023\n",
        ),
        (
            r#"printf %s "$TOK" | xxd"#,
            "TOK",
            "00000010: 5277 383d",
            "00000000: ***\n\n\n",
        ),
        (
            r#"printf %s "$TOK" | xxd -i"#,
            "TOK",
            "0x67, 0x68, 0x70",
            "  0x***\n\n\n",
        ),
        (
            r#"printf %s "$TOK" | python3 -c 'import sys;print(sys.stdin.buffer.read().hex(":"))'"#,
            "TOK",
            "67:68:70:5f",
            "***\n",
        ),
        (
            r#"printf %s "$TOK" | strace -qq -e trace=write cat 2>&1 >/dev/null"#,
            "TOK",
            r#"write(1, "ghp_Q7x/Lm9+Zt2&Rw8=Kd4vNc6bYf1s"..., 35) = 35"#,
            "write(1, \"***, 35) = 35\n",
        ),
    ];
    let shell = |script: &str| {
        Command::new("sh")
            .args(["-c", script])
            .env("TOK", TOK)
            .env("QV", QV)
            .env("QV2", QV2)
            .env("NV", NV)
            .env("LC_ALL", "C.UTF-8")
            .env("SMITHERS", env!("CARGO_BIN_EXE_smithers"))
            .env("SMITHERS_HOME", home.path())
            .output()
            .unwrap()
    };
    for (script, var, proof, expected) in cases {
        let raw = shell(script);
        assert!(raw.status.success(), "{script}: {}", text(&raw.stderr));
        assert!(
            text(&raw.stdout).contains(proof),
            "{script} printed {:?}",
            text(&raw.stdout)
        );
        let out = shell(&format!(
            "{{ {script}; }} | \"$SMITHERS\" redact --secrets-from-env {var}"
        ));
        assert!(out.status.success(), "{script}: {}", text(&out.stderr));
        let masked = text(&out.stdout);
        assert_eq!(masked, *expected, "{script}");
        let value = match *var {
            "TOK" => TOK,
            "QV" => QV,
            "QV2" => QV2,
            _ => NV,
        };
        let unwrapped: Vec<u8> = out.stdout.iter().copied().filter(|&b| b != b'\n').collect();
        for form in smithers_secrets::forms(value.as_bytes()) {
            assert!(
                !unwrapped.windows(form.len()).any(|w| w == form.as_slice()),
                "{script}: {:?} in {masked:?}",
                text(&form)
            );
        }
    }
}
