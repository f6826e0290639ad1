#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! The native provider, for real: bubblewrap, Landlock, seccomp, cgroups.

use smithers_sandbox::Provider;
use smithers_test_support::sandbox::{native, sh, spec};

/// The sandbox helper program, a binary of this crate.
const HELPER: &str = env!("CARGO_BIN_EXE_smithers-sandbox-helper");

#[tokio::test]
async fn a_sandbox_nobody_destroyed_is_purged_when_the_provider_goes() {
    let f = native(HELPER);
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
async fn a_root_assembled_from_host_programs_holds_only_them() {
    let f = native(HELPER);
    let root = f.state.path().join("rootfs");
    let helper = std::path::PathBuf::from(HELPER);
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
    let mut config =
        smithers_sandbox::NativeConfig::with_helper(std::path::PathBuf::from(HELPER), Vec::new());
    config.state_dir = state.path().join("sandboxes");
    // A "bubblewrap" that always fails stands for a host without
    // unprivileged user namespaces.
    config.bwrap = std::path::PathBuf::from("/bin/false");
    let e = smithers_sandbox::NativeProvider::new(config).unwrap_err();
    assert!(e.to_string().contains("cannot create namespaces"), "{e}");
    config_missing_bwrap();
}

fn config_missing_bwrap() {
    let mut config =
        smithers_sandbox::NativeConfig::with_helper(std::path::PathBuf::from(HELPER), Vec::new());
    config.bwrap = std::path::PathBuf::from("/nonexistent/bwrap");
    let e = smithers_sandbox::NativeProvider::new(config).unwrap_err();
    assert!(e.to_string().contains("Debian package `bubblewrap`"), "{e}");
}

/// Natively a link's target is read as written and nothing out of the
/// workspace is looked at: a link that leaves (through `/tmp`) is
/// `Outside` where it left, even if it would come back in.
#[tokio::test]
async fn resolve_stops_where_a_link_leaves_the_workspace() {
    let f = native(HELPER);
    let p = &f.provider;
    let id = p.create(spec()).await.unwrap();
    let ran = sh(
        p,
        &id,
        "mkdir config && echo key > config/prod.key && ln -s /workspace/config /tmp/back \
         && ln -s /tmp/back via-tmp",
    )
    .await;
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.stderr);
    assert_eq!(
        p.resolve(&id, "via-tmp/prod.key").await.unwrap(),
        smithers_sandbox::Resolved::Outside("/tmp/back/prod.key".into())
    );
    assert!(p.destroy(&id).await.unwrap().is_clean());
}
