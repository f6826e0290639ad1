#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! The native provider, for real: bubblewrap, Landlock, seccomp, cgroups.

mod common;

use common::{native, sh, spec};
use smithers_sandbox::Provider;

#[tokio::test]
async fn runs_a_command_in_the_workspace() {
    let f = native();
    let id = f.provider.create(spec()).await.unwrap();
    let ran = sh(
        &f.provider,
        &id,
        "echo hello; echo oops >&2; pwd; id -u; exit 3",
    )
    .await;
    assert_eq!(ran.stdout, "hello\n/workspace\n1000\n", "{}", ran.stderr);
    assert_eq!(ran.stderr, "oops\n");
    assert_eq!(ran.outcome.exit_code, 3);
    let report = f.provider.destroy(&id).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[tokio::test]
async fn commands_share_the_workspace_and_get_only_their_environment() {
    let f = native();
    let mut spec = spec();
    spec.env = vec![("TOKEN".into(), "tok-value-123".into())];
    let id = f.provider.create(spec).await.unwrap();
    for round in 0..3 {
        let mut request = smithers_sandbox::ExecRequest::new([
            "/bin/sh",
            "-c",
            "echo $TOKEN $EXTRA >> log; env | sort | cut -d= -f1 | tr '\\n' ' '",
        ]);
        request.env = vec![("EXTRA".into(), format!("round-{round}"))];
        let ran = common::run(&f.provider, &id, request).await;
        assert_eq!(
            ran.stdout, "EXTRA HOME LANG PATH PWD TOKEN USER ",
            "nothing of the host's environment (and no transport variables) leaks"
        );
        // Give the next command's helper time to park, as between tool calls.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = f.provider.read_file(&id, "log").await.unwrap();
    assert_eq!(
        String::from_utf8(log).unwrap(),
        "tok-value-123 round-0\ntok-value-123 round-1\ntok-value-123 round-2\n"
    );
    assert!(f.provider.destroy(&id).await.unwrap().is_clean());
}

#[tokio::test]
async fn environment_values_never_appear_in_a_host_argument_list() {
    let f = native();
    let mut spec = spec();
    spec.env = vec![("API_KEY".into(), "sk-never-in-argv-4242".into())];
    let id = f.provider.create(spec).await.unwrap();
    let provider = f.provider.clone();
    let id2 = id.clone();
    let running = tokio::spawn(async move { sh(&provider, &id2, "sleep 1").await });
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let mut seen = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            seen += 1;
            let text = String::from_utf8_lossy(&cmdline);
            assert!(!text.contains("sk-never-in-argv"), "{text}");
        }
    }
    assert!(seen > 3);
    running.await.unwrap();
    assert!(f.provider.destroy(&id).await.unwrap().is_clean());
}

#[tokio::test]
async fn a_sandbox_nobody_destroyed_is_purged_when_the_provider_goes() {
    let f = native();
    let id = f.provider.create(spec()).await.unwrap();
    sh(&f.provider, &id, "echo x > file").await;
    let dir = f.state.path().join("sandboxes").join(&id.0);
    assert!(dir.exists());
    let cgroups: Vec<std::path::PathBuf> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - cgroup"))
        .filter_map(|l| l.split(' ').nth(4).map(std::path::PathBuf::from))
        .collect();
    let named = format!("smithers-{}", id.0);
    let find = || -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        for root in &cgroups {
            for entry in walk(root, 4) {
                if entry.ends_with(&named) {
                    found.push(entry);
                }
            }
        }
        found
    };
    assert!(!find().is_empty(), "the sandbox has cgroups while it lives");
    drop(f.provider);
    assert!(!dir.exists());
    assert!(find().is_empty(), "{:?}", find());
}

fn walk(dir: &std::path::Path, depth: usize) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if depth == 0 {
        return out;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(path.clone());
                out.extend(walk(&path, depth - 1));
            }
        }
    }
    out
}

#[tokio::test]
async fn patches_apply_whole_or_not_at_all_and_stay_inside() {
    let f = native();
    let id = f.provider.create(spec()).await.unwrap();
    f.provider
        .write_file(&id, "src/lib.rs", b"fn a() {}\nfn b() {}\n")
        .await
        .unwrap();
    f.provider
        .write_file(&id, "old.txt", b"bye\n")
        .await
        .unwrap();
    let patch = "\
diff --git a/src/lib.rs b/src/lib.rs
--- a/src/lib.rs
+++ b/src/lib.rs
@@ -1,2 +1,2 @@
 fn a() {}
-fn b() {}
+fn b() { a() }
diff --git a/docs/new.md b/docs/new.md
new file mode 100644
--- /dev/null
+++ b/docs/new.md
@@ -0,0 +1 @@
+hello
diff --git a/old.txt b/old.txt
deleted file mode 100644
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
";
    let changed = f.provider.apply_patch(&id, patch).await.unwrap();
    assert_eq!(changed, ["docs/new.md", "old.txt", "src/lib.rs"]);
    let ran = sh(
        &f.provider,
        &id,
        "cat src/lib.rs docs/new.md; ls old.txt 2>&1; echo more >> docs/new.md",
    )
    .await;
    assert!(
        ran.stdout.starts_with("fn a() {}\nfn b() { a() }\nhello\n"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("No such file"));
    assert_eq!(
        ran.outcome.exit_code, 0,
        "the sandbox user owns patched files: {}",
        ran.stderr
    );

    // One hunk that does not apply: nothing changes, not even the good part.
    let half = "\
--- a/src/lib.rs
+++ b/src/lib.rs
@@ -1 +1 @@
-fn a() {}
+fn a() { 1 }
--- a/docs/new.md
+++ b/docs/new.md
@@ -1 +1 @@
-not what is there
+x
";
    assert!(f.provider.apply_patch(&id, half).await.is_err());
    assert_eq!(
        f.provider.read_file(&id, "src/lib.rs").await.unwrap(),
        b"fn a() {}\nfn b() { a() }\n"
    );
    // Paths out of the workspace are refused before anything is written.
    for escape in [
        "--- /dev/null\n+++ b/../../escaped\n@@ -0,0 +1 @@\n+x\n",
        "--- /dev/null\n+++ /etc/escaped\n@@ -0,0 +1 @@\n+x\n",
    ] {
        assert!(
            f.provider.apply_patch(&id, escape).await.is_err(),
            "{escape}"
        );
    }
    assert!(!f.state.path().join("escaped").exists());
    assert!(!std::path::Path::new("/etc/escaped").exists());
    // A symlink planted by the sandbox does not lead a patch out.
    sh(&f.provider, &id, "ln -s /etc link").await;
    let through = "--- /dev/null\n+++ b/link/escaped\n@@ -0,0 +1 @@\n+x\n";
    assert!(f.provider.apply_patch(&id, through).await.is_err());
    assert!(f.provider.destroy(&id).await.unwrap().is_clean());
}

#[tokio::test]
async fn a_root_assembled_from_host_programs_holds_only_them() {
    let f = native();
    let root = f.state.path().join("rootfs");
    let helper = std::path::PathBuf::from(env!("CARGO_BIN_EXE_smithers-sandbox-helper"));
    let programs: Vec<String> = ["sh", "bash", "ls", "cat", "id"]
        .iter()
        .map(|p| p.to_string())
        .collect();
    let report = smithers_sandbox::rootfs::assemble(&root, &programs, &helper).unwrap();
    assert_eq!(report.programs.len(), 5);
    assert!(
        report.libraries.iter().any(|l| l.ends_with("libc.so.6")),
        "{report:?}"
    );
    let rooted = smithers_sandbox::SandboxSpec {
        root: smithers_sandbox::Root::Directory(root.clone()),
        ..spec()
    };
    let id = f.provider.create(rooted).await.unwrap();
    let ran = sh(
        &f.provider,
        &id,
        "ls /usr/bin; id -u; bash -c 'echo from bash'; ls /usr/bin/perl 2>&1",
    )
    .await;
    assert!(
        ran.stdout
            .starts_with("bash\ncat\nid\nls\nsh\n1000\nfrom bash\n"),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );
    assert!(
        ran.stdout.contains("No such file"),
        "the host's other programs are not there"
    );
    assert!(f.provider.destroy(&id).await.unwrap().is_clean());
    // A directory that is not a prepared root is refused with the reason.
    let bare = f.state.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    let unprepared = smithers_sandbox::SandboxSpec {
        root: smithers_sandbox::Root::Directory(bare),
        ..spec()
    };
    let e = f.provider.create(unprepared).await.unwrap_err();
    assert!(e.to_string().contains("lacks workspace"), "{e}");
}

#[test]
fn a_host_that_cannot_make_the_namespaces_is_refused_up_front() {
    let state = tempfile::tempdir().unwrap();
    let mut config = smithers_sandbox::NativeConfig::with_helper(
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_smithers-sandbox-helper")),
        Vec::new(),
    );
    config.state_dir = state.path().join("sandboxes");
    // A "bubblewrap" that always fails stands for a host without
    // unprivileged user namespaces.
    config.bwrap = std::path::PathBuf::from("/bin/false");
    let e = smithers_sandbox::NativeProvider::new(config).unwrap_err();
    assert!(e.to_string().contains("cannot create namespaces"), "{e}");
    config_missing_bwrap();
}

fn config_missing_bwrap() {
    let mut config = smithers_sandbox::NativeConfig::with_helper(
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_smithers-sandbox-helper")),
        Vec::new(),
    );
    config.bwrap = std::path::PathBuf::from("/nonexistent/bwrap");
    let e = smithers_sandbox::NativeProvider::new(config).unwrap_err();
    assert!(e.to_string().contains("Debian package `bubblewrap`"), "{e}");
}
