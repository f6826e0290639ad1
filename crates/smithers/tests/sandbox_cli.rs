//! `smithers sandbox run|check` as a user runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::process::{Command, Output};

fn smithers(args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    smithers_in(home.path(), args)
}

fn smithers_in(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args(args)
        .env("HOME", "/nonexistent-home")
        .env("SMITHERS_HOME", home)
        .env_remove("SMITHERS_DATABASE_URL")
        .env_remove("SMITHERS_AUDIT_SIGNING_KEY")
        .env_remove("SMITHERS_NATS_URL")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_reports_what_the_host_enforces() {
    let out = smithers(&["sandbox", "check", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "bubblewrap",
            "namespaces",
            "seccomp",
            "landlock",
            "cgroups",
            "docker",
            "kvm"
        ]
    );
    let ready = report["native_ready"].as_bool().unwrap();
    assert_eq!(out.status.success(), ready);
    // The test hosts can sandbox: the rest of the suite depends on it.
    assert!(ready, "{report}");
}

#[test]
fn run_streams_output_and_exits_with_the_command() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("input.txt"), "from the host\n").unwrap();
    let out = smithers(&[
        "sandbox",
        "run",
        "--workspace",
        ws.path().to_str().unwrap(),
        "--env",
        "GREETING=hi",
        "--",
        "sh",
        "-c",
        "cat input.txt; echo $GREETING; echo to-stderr >&2; echo changed > input.txt; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from the host\nhi\n");
    assert_eq!(text(&out.stderr), "to-stderr\n");
    // The workspace was a copy.
    assert_eq!(
        std::fs::read_to_string(ws.path().join("input.txt")).unwrap(),
        "from the host\n"
    );
}

#[test]
fn limits_end_the_command_with_the_documented_codes() {
    let out = smithers(&[
        "sandbox",
        "run",
        "--timeout",
        "1s",
        "--",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    assert_eq!(out.status.code(), Some(124));
    assert!(
        text(&out.stderr).contains("the time limit"),
        "{}",
        text(&out.stderr)
    );
    let out = smithers(&[
        "sandbox",
        "run",
        "--memory",
        "48M",
        "--",
        "perl",
        "-e",
        "$x = 'a' x (400 * 1024 * 1024)",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("the memory limit"));
    let out = smithers(&["sandbox", "run", "--", "no-such-program"]);
    assert_eq!(out.status.code(), Some(127));
}

#[test]
fn bad_arguments_are_refused_before_anything_runs() {
    for args in [
        &["sandbox", "run", "--memory", "lots", "--", "true"][..],
        &["sandbox", "run", "--cpus", "0", "--", "true"],
        &["sandbox", "run", "--env", "NOEQUALS", "--", "true"],
        &[
            "sandbox",
            "run",
            "--workspace",
            "/nonexistent-dir",
            "--",
            "true",
        ],
        &["sandbox", "run", "--memory", "1M", "--", "true"],
        &["sandbox", "run", "--allow-host", "*.com", "--", "true"],
        &["sandbox", "run", "--image", "x", "--", "true"],
        &[
            "sandbox",
            "run",
            "--provider",
            "docker",
            "--root",
            "/srv/root",
            "--",
            "true",
        ],
        &[
            "sandbox",
            "run",
            "--provider",
            "docker",
            "--image",
            "smithers-no-such-image:never",
            "--",
            "true",
        ],
    ] {
        let out = smithers(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).is_empty());
    }
}

#[test]
fn egress_decisions_are_reported_and_audited() {
    // Nothing leaves the machine: one host is not on the list, the other
    // resolves to loopback (from /etc/hosts).
    let home = tempfile::tempdir().unwrap();
    let out = smithers_in(
        home.path(),
        &[
            "sandbox",
            "run",
            "--allow-host",
            "localhost",
            "--",
            "sh",
            "-c",
            "curl -sS -o /dev/null -w '%{http_code}\\n' http://example.org/; \
         curl -sS -o /dev/null -w '%{http_code}\\n' --noproxy '' http://localhost:9/",
        ],
    );
    assert_eq!(text(&out.stdout), "403\n403\n", "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "egress REFUSED example.org:80 (example.org:80 is not in the egress allowlist)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("egress REFUSED localhost:9 (localhost resolves to"),
        "{stderr}"
    );
    let log = smithers_in(home.path(), &["audit", "log", "--json"]);
    let log = text(&log.stdout);
    assert_eq!(log.matches("sandbox.egress.refused").count(), 2, "{log}");
    assert!(
        log.contains("example.org:80") && log.contains("localhost:9"),
        "{log}"
    );
    let verify = smithers_in(home.path(), &["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
}

#[test]
fn a_rootfs_from_host_programs_runs_commands_without_the_host_usr() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let root = dir.path().join("root");
    let root = root.to_str().unwrap();
    let out = smithers(&[
        "sandbox",
        "rootfs",
        root,
        "--program",
        "sh",
        "--program",
        "ls",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["programs"],
        serde_json::json!(["/usr/bin/sh", "/usr/bin/ls"])
    );
    let out = smithers(&[
        "sandbox",
        "run",
        "--root",
        root,
        "--",
        "sh",
        "-c",
        "ls /usr/bin",
    ]);
    assert_eq!(text(&out.stdout), "ls\nsh\n", "{}", text(&out.stderr));
    // Building over an existing directory is refused.
    let again = smithers(&["sandbox", "rootfs", root]);
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn a_docker_image_built_from_host_files_runs_sandboxed_commands() {
    let tag = "smithers-cli-test:latest";
    let out = smithers(&[
        "sandbox",
        "image",
        "build",
        "--tag",
        tag,
        "--program",
        "perl",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(built["tag"], tag);
    assert!(
        built["id"].as_str().unwrap().starts_with("sha256:"),
        "{built}"
    );
    let programs = built["programs"].as_array().unwrap();
    assert!(programs.iter().any(|p| p == "/usr/bin/perl"), "{built}");
    assert!(programs.iter().any(|p| p == "/usr/bin/git"), "{built}");

    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("input.txt"), "from the host\n").unwrap();
    let out = smithers(&[
        "sandbox",
        "run",
        "--provider",
        "docker",
        "--image",
        tag,
        "--workspace",
        ws.path().to_str().unwrap(),
        "--env",
        "GREETING=hi",
        "--",
        "sh",
        "-c",
        "cat input.txt; echo $GREETING; id -u; echo oops >&2; echo x > /usr/x || echo read-only; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from the host\nhi\n1000\nread-only\n");
    assert!(text(&out.stderr).contains("oops"), "{}", text(&out.stderr));
    // The copy was the sandbox's; the host's file is untouched.
    assert_eq!(
        std::fs::read_to_string(ws.path().join("input.txt")).unwrap(),
        "from the host\n"
    );

    let out = smithers(&[
        "sandbox",
        "run",
        "--provider",
        "docker",
        "--image",
        tag,
        "--timeout",
        "1s",
        "--",
        "sleep",
        "30",
    ]);
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("the time limit"));
}

/// Host processes whose command line is exactly `cmdline`.
fn processes(cmdline: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).replace('\0', " ").trim_end() == cmdline)
        .count()
}

/// Waits (up to `limit`) until `done` holds.
fn eventually(limit: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    done()
}

#[test]
fn a_smithers_killed_mid_run_leaves_no_process_and_purge_removes_the_rest() {
    let home = tempfile::tempdir().unwrap();
    // Native sandboxes of this test only (their state lives under TMPDIR),
    // so no other test's provider purges them first.
    let tmp = tempfile::tempdir().unwrap();
    let smithers_here = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_smithers"));
        command
            .args(args)
            .env("SMITHERS_HOME", home.path())
            .env("TMPDIR", tmp.path());
        command
    };
    let start = |args: &[&str]| {
        smithers_here(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let seconds = std::time::Duration::from_secs;
    // The Docker half runs an image this test builds (its own tag, so no
    // image an earlier run or another test left is needed).
    let image = "smithers-cli-kill-test:latest";
    let built = smithers_here(&["sandbox", "image", "build", "--tag", image])
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", text(&built.stderr));
    // Native: bubblewrap dies with Smithers.
    let mut native = start(&["sandbox", "run", "--", "sh", "-c", "sleep 4242.5"]);
    assert!(eventually(seconds(30), || processes("sleep 4242.5") == 1));
    native.kill().unwrap();
    native.wait().unwrap();
    assert!(
        eventually(seconds(5), || processes("sleep 4242.5") == 0),
        "the native sandbox's command outlived Smithers"
    );
    // Docker: the engine holds the container; the helper ends it at the
    // time limit (plus its grace) although nobody is left to kill it.
    let mut docker = start(&[
        "sandbox",
        "run",
        "--provider",
        "docker",
        "--image",
        image,
        "--timeout",
        "2s",
        "--",
        "sh",
        "-c",
        "sleep 4343.5",
    ]);
    assert!(eventually(seconds(30), || processes("sleep 4343.5") == 1));
    let listed = Command::new("docker")
        .args([
            "ps",
            "--no-trunc",
            "--filter",
            "label=dev.smithers.role=command",
            "--format",
            "{{.Label \"dev.smithers.sandbox\"}} {{.Command}}",
        ])
        .output()
        .unwrap();
    let docker_id = text(&listed.stdout)
        .lines()
        .find(|l| l.contains("sleep 4343.5"))
        .and_then(|l| l.split(' ').next())
        .expect("the command's container is listed")
        .to_string();
    docker.kill().unwrap();
    docker.wait().unwrap();
    assert_eq!(
        processes("sleep 4343.5"),
        1,
        "still running: nobody killed it yet"
    );
    assert!(
        eventually(seconds(15), || processes("sleep 4343.5") == 0),
        "the docker sandbox's command outlived its time limit"
    );

    // What is left (directories, cgroups, containers, volumes) is purged.
    let out = smithers_here(&["sandbox", "purge", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["docker_error"].is_null(), "{report}");
    let purged = report["purged"].as_array().unwrap();
    let native: Vec<&serde_json::Value> = purged
        .iter()
        .filter(|p| p["provider"] == "native")
        .collect();
    assert_eq!(native.len(), 1, "{report}");
    // Every purge is complete (another test's provider may have purged
    // the docker sandbox first: each provider does when it connects).
    for p in purged {
        assert!(p["remaining"].as_array().unwrap().is_empty(), "{p}");
        assert!(!p["removed"].as_array().unwrap().is_empty(), "{p}");
    }
    let sandboxes: Vec<String> = std::fs::read_dir(tmp.path().join("smithers-sandboxes-0"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 36 && n.matches('-').count() == 4)
                .collect()
        })
        .unwrap_or_default();
    assert!(
        sandboxes.is_empty(),
        "native sandbox directories left: {sandboxes:?} after {report}"
    );
    for what in [&["ps", "-aq"][..], &["volume", "ls", "-q"][..]] {
        let left = Command::new("docker")
            .args(what)
            .args([
                "--filter",
                &format!("label=dev.smithers.sandbox={docker_id}"),
            ])
            .output()
            .unwrap();
        assert!(
            left.stdout.is_empty(),
            "{what:?} left: {}",
            text(&left.stdout)
        );
    }
    // A second purge finds nothing.
    let out = smithers_here(&["sandbox", "purge", "--json"])
        .output()
        .unwrap();
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !again.to_string().contains(&docker_id) && !again.to_string().contains("\"native\""),
        "purged twice: {again}"
    );
}
