#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! What every provider does the same way: commands, the workspace, the
//! environment, files and patches.

#[macro_use]
mod common;

use common::{sh, spec};
use smithers_sandbox::Provider;

async fn runs_a_command_in_the_workspace<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    let ran = sh(p, &id, "echo hello; echo oops >&2; pwd; id -u; exit 3").await;
    assert_eq!(ran.stdout, "hello\n/workspace\n1000\n", "{}", ran.stderr);
    assert_eq!(ran.stderr, "oops\n");
    assert_eq!(ran.outcome.exit_code, 3);
    let report = p.destroy(&id).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}

async fn commands_share_the_workspace_and_get_only_their_environment<P: Provider>(p: &P) {
    let mut spec = spec();
    spec.env = vec![("TOKEN".into(), "tok-value-123".into())];
    let id = p.create(spec).await.unwrap();
    for round in 0..3 {
        let mut request = smithers_sandbox::ExecRequest::new([
            "/bin/sh",
            "-c",
            "echo $TOKEN $EXTRA >> log; env | sort | cut -d= -f1 | tr '\\n' ' '",
        ]);
        request.env = vec![("EXTRA".into(), format!("round-{round}"))];
        let ran = common::run(p, &id, request).await;
        assert_eq!(
            ran.stdout, "EXTRA HOME LANG PATH PWD TOKEN USER ",
            "nothing of the host's environment (and no transport variables) leaks"
        );
        // Give the next command's helper time to park, as between tool calls.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = p.read_file(&id, "log").await.unwrap();
    assert_eq!(
        String::from_utf8(log).unwrap(),
        "tok-value-123 round-0\ntok-value-123 round-1\ntok-value-123 round-2\n"
    );
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

async fn environment_values_never_appear_in_a_host_argument_list<P: Provider>(p: &P) {
    let mut spec = spec();
    spec.env = vec![("API_KEY".into(), "sk-never-in-argv-4242".into())];
    let id = p.create(spec).await.unwrap();
    // Look at every host process's arguments while the command runs (its
    // `sleep 2.71` is seen among them), then let it finish.
    let scan = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let mut command_seen = false;
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                    let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                    assert!(!text.contains("sk-never-in-argv"), "{text}");
                    command_seen |= text.trim_end() == "sleep 2.71";
                }
            }
            if command_seen || std::time::Instant::now() > deadline {
                return command_seen;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let (ran, command_seen) = tokio::join!(sh(p, &id, "sleep 2.71; echo $API_KEY"), scan);
    assert!(
        command_seen,
        "the command never showed up among the host's processes"
    );
    assert_eq!(ran.stdout, "sk-never-in-argv-4242\n", "{}", ran.stderr);
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

async fn patches_apply_whole_or_not_at_all_and_stay_inside<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    p.write_file(&id, "src/lib.rs", b"fn a() {}\nfn b() {}\n")
        .await
        .unwrap();
    p.write_file(&id, "old.txt", b"bye\n").await.unwrap();
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
    let changed = p.apply_patch(&id, patch).await.unwrap();
    assert_eq!(changed, ["docs/new.md", "old.txt", "src/lib.rs"]);
    let ran = sh(
        p,
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
    assert!(p.apply_patch(&id, half).await.is_err());
    assert_eq!(
        p.read_file(&id, "src/lib.rs").await.unwrap(),
        b"fn a() {}\nfn b() { a() }\n"
    );
    // Paths out of the workspace are refused before anything is written.
    for escape in [
        "--- /dev/null\n+++ b/../../escaped\n@@ -0,0 +1 @@\n+x\n",
        "--- /dev/null\n+++ /etc/escaped\n@@ -0,0 +1 @@\n+x\n",
    ] {
        assert!(p.apply_patch(&id, escape).await.is_err(), "{escape}");
    }
    assert!(!std::path::Path::new("/etc/escaped").exists());
    // A symlink planted by the sandbox does not lead a patch out.
    sh(p, &id, "ln -s /etc link").await;
    let through = "--- /dev/null\n+++ b/link/escaped\n@@ -0,0 +1 @@\n+x\n";
    assert!(p.apply_patch(&id, through).await.is_err());
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

against_every_provider!(
    runs_a_command_in_the_workspace,
    commands_share_the_workspace_and_get_only_their_environment,
    environment_values_never_appear_in_a_host_argument_list,
    patches_apply_whole_or_not_at_all_and_stay_inside
);
