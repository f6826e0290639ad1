#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! What every provider does the same way: commands, the workspace, the
//! environment, files, links and patches.

use smithers_sandbox::{Error, ParsedPatch, Provider, Resolved, SandboxId};
use smithers_test_support::against_every_provider;
use smithers_test_support::sandbox::{run, sh, spec};

async fn runs_a_command_in_the_workspace<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    let ran = sh(p, &id, "echo hello; echo oops >&2; pwd; id -u; exit 3").await;
    assert_eq!(ran.stdout, "hello\n/workspace\n1000\n", "{}", ran.stderr);
    assert_eq!(ran.stderr, "oops\n");
    assert_eq!(ran.outcome.exit_code, 3);
    let report = p.destroy(&id).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// A command whose `exec` is dropped (a cancelled run, as the engine's
/// watch drops it) stops with it, at whatever point of its start the drop
/// comes: its output closes long before the command would have ended, and
/// the sandbox is destroyed clean.
async fn a_command_dropped_while_it_starts_does_not_run_on<P: Provider>(p: &P) {
    for delay_ms in [0u64, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144] {
        let id = p.create(spec()).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<smithers_sandbox::OutputChunk>(16);
        let request = smithers_sandbox::ExecRequest::new(["sleep", "30"]);
        let ran = tokio::time::timeout(
            std::time::Duration::from_millis(delay_ms),
            p.exec(&id, request, tx),
        )
        .await;
        assert!(ran.is_err(), "`sleep 30` ended within {delay_ms} ms");
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while rx.recv().await.is_some() {}
        })
        .await;
        assert!(
            closed.is_ok(),
            "dropped after {delay_ms} ms, the command ran on holding its output"
        );
        let purge = p.destroy(&id).await.unwrap();
        assert!(purge.is_clean(), "dropped after {delay_ms} ms: {purge:?}");
    }
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
        let ran = run(p, &id, request).await;
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
    let changed = apply(p, &id, patch).await.unwrap();
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
    assert!(apply(p, &id, half).await.is_err());
    assert_eq!(
        p.read_file(&id, "src/lib.rs").await.unwrap(),
        b"fn a() {}\nfn b() { a() }\n"
    );
    // Paths out of the workspace are refused before anything is written.
    for escape in [
        "--- /dev/null\n+++ b/../../escaped\n@@ -0,0 +1 @@\n+x\n",
        "--- /dev/null\n+++ /etc/escaped\n@@ -0,0 +1 @@\n+x\n",
    ] {
        assert!(apply(p, &id, escape).await.is_err(), "{escape}");
    }
    assert!(!std::path::Path::new("/etc/escaped").exists());
    // A symlink planted by the sandbox does not lead a patch out.
    sh(p, &id, "ln -s /etc link").await;
    let through = "--- /dev/null\n+++ b/link/escaped\n@@ -0,0 +1 @@\n+x\n";
    assert!(apply(p, &id, through).await.is_err());
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

against_every_provider!(
    env!("CARGO_BIN_EXE_smithers-sandbox-helper");
    runs_a_command_in_the_workspace,
    a_command_dropped_while_it_starts_does_not_run_on,
    commands_share_the_workspace_and_get_only_their_environment,
    environment_values_never_appear_in_a_host_argument_list,
    patches_apply_whole_or_not_at_all_and_stay_inside,
    reads_never_follow_a_link,
    a_patch_over_a_link_is_refused_with_nothing_written,
    patches_rename_delete_create_and_change_modes,
    a_patch_making_a_link_or_a_submodule_is_refused,
    resolve_follows_links_as_the_kernel_would_and_stays_confined,
    a_patch_the_sandbox_can_block_is_applied_whole_or_not_at_all
);

/// The links of the issue: a file link into `config`, a directory link
/// into `.github`, and links that leave or loop.
const LINKS: &str = "mkdir -p config .github/workflows && echo key > config/prod.key \
    && echo 'on: push' > .github/workflows/ci.yml && echo readme > README.md \
    && ln -s config/prod.key notes.txt && ln -s .github docs";

async fn reads_never_follow_a_link<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    let ran = sh(p, &id, LINKS).await;
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.stderr);
    for through in ["notes.txt", "docs/workflows/ci.yml"] {
        let e = p.read_file(&id, through).await.unwrap_err();
        assert!(matches!(e, Error::Escape(_)), "{through}: {e}");
    }
    assert_eq!(p.read_file(&id, "config/prod.key").await.unwrap(), b"key\n");
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

async fn a_patch_over_a_link_is_refused_with_nothing_written<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    let ran = sh(p, &id, LINKS).await;
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.stderr);
    let readme = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-readme\n+changed\n";
    for over in [
        // A file link: its target would be read, the link then written.
        "--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1 @@\n-key\n+leaked\n",
        // A directory link on the way to a new file.
        "--- /dev/null\n+++ b/docs/workflows/pwn.yml\n@@ -0,0 +1 @@\n+on: push\n",
        // A link deleted.
        "diff --git a/notes.txt b/notes.txt\ndeleted file mode 100644\n--- a/notes.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-key\n",
    ] {
        let patch = if over.starts_with("diff --git") {
            format!("diff --git a/README.md b/README.md\n{readme}{over}")
        } else {
            format!("{readme}{over}")
        };
        assert!(apply(p, &id, &patch).await.is_err(), "{patch}");
        let ran = sh(
            p,
            &id,
            "cat README.md config/prod.key; readlink notes.txt docs; ls .github/workflows",
        )
        .await;
        assert_eq!(
            ran.stdout, "readme\nkey\nconfig/prod.key\n.github\nci.yml\n",
            "{patch}"
        );
    }
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

/// The rename (with an ordinary hunk on another file), a
/// deletion, a creation and mode changes, applied as git would.
async fn patches_rename_delete_create_and_change_modes<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    let ran = sh(
        p,
        &id,
        "mkdir docs && echo 'on: push' > docs/payload.yml && echo readme > README.md \
         && echo old > old.txt && echo '#!/bin/sh' > run.sh && chmod 755 run.sh \
         && echo tool > tool.sh && chmod 755 tool.sh",
    )
    .await;
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.stderr);
    let changed = apply(p, &id, RENAME).await.unwrap();
    assert_eq!(
        changed,
        [".github/workflows/pwn.yml", "README.md", "docs/payload.yml"]
    );
    let patch = "\
diff --git a/old.txt b/old.txt
deleted file mode 100644
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-old
diff --git a/new.sh b/new.sh
new file mode 100755
--- /dev/null
+++ b/new.sh
@@ -0,0 +1 @@
+#!/bin/sh
diff --git a/README.md b/README.md
old mode 100644
new mode 100755
diff --git a/run.sh b/run.sh
old mode 100755
new mode 100644
diff --git a/tool.sh b/bin/tool.sh
similarity index 100%
rename from tool.sh
rename to bin/tool.sh
";
    let changed = apply(p, &id, patch).await.unwrap();
    assert_eq!(
        changed,
        [
            "README.md",
            "bin/tool.sh",
            "new.sh",
            "old.txt",
            "run.sh",
            "tool.sh"
        ]
    );
    let ran = sh(
        p,
        &id,
        "cat .github/workflows/pwn.yml README.md; ls docs/payload.yml old.txt tool.sh 2>/dev/null; \
         for f in new.sh README.md run.sh bin/tool.sh; do [ -x $f ] && echo \"x $f\" || echo \"- $f\"; done",
    )
    .await;
    assert_eq!(
        ran.stdout, "on: push\nchanged\nx new.sh\nx README.md\n- run.sh\nx bin/tool.sh\n",
        "{}",
        ran.stderr
    );
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

/// The patch: a rename into `.github` and a hunk on README.md.
const RENAME: &str = "\
diff --git a/docs/payload.yml b/.github/workflows/pwn.yml
similarity index 100%
rename from docs/payload.yml
rename to .github/workflows/pwn.yml
diff --git a/README.md b/README.md
--- a/README.md
+++ b/README.md
@@ -1 +1 @@
-readme
+changed
";

async fn a_patch_making_a_link_or_a_submodule_is_refused<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    p.write_file(&id, "README.md", b"readme\n").await.unwrap();
    for (mode, body) in [
        ("120000", "config/prod.key"),
        ("160000", "Subproject commit 1234"),
    ] {
        let patch = format!(
            "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-readme\n+changed\n\
             diff --git a/made b/made\nnew file mode {mode}\n--- /dev/null\n+++ b/made\n@@ -0,0 +1 @@\n+{body}\n"
        );
        let e = apply(p, &id, &patch).await.unwrap_err();
        assert!(e.to_string().contains(mode), "{mode}: {e}");
    }
    let ran = sh(p, &id, "cat README.md; ls made 2>&1 >/dev/null | wc -l").await;
    assert_eq!(ran.stdout, "readme\n1\n");
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

/// A directory the sandbox's code made read-only: a patch writing one
/// file and deleting another in it is applied whole (a provider whose
/// host side may remove it anyway) or refused whole, never half.
async fn a_patch_the_sandbox_can_block_is_applied_whole_or_not_at_all<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    let ran = sh(
        p,
        &id,
        "mkdir locked && echo x > locked/f && echo readme > README.md && chmod 555 locked",
    )
    .await;
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.stderr);
    let patch = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-readme\n+changed\n\
                 --- a/locked/f\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n";
    let applied = apply(p, &id, patch).await;
    let ran = sh(p, &id, "cat README.md; ls locked").await;
    match applied {
        Ok(_) => assert_eq!(ran.stdout, "changed\n"),
        Err(e) => assert_eq!(ran.stdout, "readme\nf\n", "{e}"),
    }
    sh(p, &id, "chmod 755 locked").await;
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

/// Parses and applies, as the engine does: the provider applies the
/// parse whose paths were decided on.
async fn apply<P: Provider>(p: &P, id: &SandboxId, patch: &str) -> Result<Vec<String>, Error> {
    let parsed = ParsedPatch::parse(patch)?;
    let changed = p.apply_patch(id, &parsed).await?;
    for path in &changed {
        assert!(
            parsed.paths().contains(path),
            "{path} changed, not decided on"
        );
    }
    Ok(changed)
}

async fn resolve_follows_links_as_the_kernel_would_and_stays_confined<P: Provider>(p: &P) {
    let id = p.create(spec()).await.unwrap();
    let ran = sh(
        p,
        &id,
        &format!(
            "{LINKS} && ln -s /workspace/config/prod.key abs && ln -s /etc/passwd out \
             && ln -s loop-b loop-a && ln -s loop-a loop-b && ln -s nowhere/file dangling"
        ),
    )
    .await;
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.stderr);
    let inside = |p: &str| Resolved::Inside(p.to_string());
    let outside = |p: &str| Resolved::Outside(p.to_string());
    for (path, expected) in [
        ("config/prod.key", inside("config/prod.key")),
        ("/workspace/config/prod.key", inside("config/prod.key")),
        ("", inside("")),
        ("missing.txt", inside("missing.txt")),
        ("config/new/deeper.txt", inside("config/new/deeper.txt")),
        ("notes.txt", inside("config/prod.key")),
        ("docs", inside(".github")),
        ("docs/workflows/x.yml", inside(".github/workflows/x.yml")),
        (
            "./docs/workflows/../workflows/ci.yml",
            inside(".github/workflows/ci.yml"),
        ),
        ("abs", inside("config/prod.key")),
        ("out", outside("/etc/passwd")),
        ("../../etc/passwd", outside("/etc/passwd")),
        ("config/../../etc", outside("/etc")),
        // A dangling link leads to its target as written.
        ("dangling", inside("nowhere/file")),
    ] {
        assert_eq!(p.resolve(&id, path).await.unwrap(), expected, "{path}");
    }
    let e = p.resolve(&id, "loop-a").await.unwrap_err();
    assert!(e.to_string().contains("symbolic links"), "{e}");
    assert!(p.destroy(&id).await.unwrap().is_clean());
}
