#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! What only the Docker provider has: the engine, images, volumes and
//! containers, checked against the real engine.

use std::process::Command;

use smithers_sandbox::{Error, Provider, Resolved, Root, SandboxSpec};
use smithers_test_support::sandbox::{docker, docker_with, sh, spec};

/// The sandbox helper program, a binary of this crate.
const HELPER: &str = env!("CARGO_BIN_EXE_smithers-sandbox-helper");

/// Names of the engine's containers and volumes that carry `label`.
fn labelled(label: &str) -> Vec<String> {
    let mut found = Vec::new();
    for what in [
        &["ps", "-a", "--format", "{{.Names}}"][..],
        &["volume", "ls", "--format", "{{.Name}}"][..],
    ] {
        let out = Command::new("docker")
            .args(what)
            .args(["--filter", &format!("label={label}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{:?}", out);
        found.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    found
}

#[tokio::test]
async fn a_sandbox_is_volumes_and_a_holder_and_destroy_leaves_nothing() {
    let f = docker(HELPER).await;
    let id = f.provider.create(spec()).await.unwrap();
    let label = format!("dev.smithers.sandbox={id}");
    let mut made = labelled(&label);
    made.sort();
    assert_eq!(
        made,
        [
            format!("smithers-{id}-holder"),
            format!("smithers-{id}-tmp"),
            format!("smithers-{id}-workspace"),
        ]
    );
    let ran = sh(
        &f.provider,
        &id,
        "echo kept > /workspace/a; echo kept > /tmp/b",
    )
    .await;
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.stderr);
    // The command's container is gone as soon as the command ends.
    assert_eq!(labelled(&label).len(), 3);
    let report = f.provider.destroy(&id).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.removed.len(), 3, "{report:?}");
    assert!(labelled(&label).is_empty());
}

#[tokio::test]
async fn a_sandbox_nobody_destroyed_is_purged_when_the_provider_goes() {
    let f = docker(HELPER).await;
    let id = f.provider.create(spec()).await.unwrap();
    sh(&f.provider, &id, "echo x > file").await;
    let label = format!("dev.smithers.sandbox={id}");
    assert!(!labelled(&label).is_empty());
    drop(f.provider);
    assert!(labelled(&label).is_empty(), "{:?}", labelled(&label));
}

#[tokio::test]
async fn links_planted_in_the_workspace_lead_no_file_operation_out() {
    let f = docker(HELPER).await;
    let p = &f.provider;
    let id = p.create(spec()).await.unwrap();
    let ran = sh(
        p,
        &id,
        "mkdir real && echo inside > real/f && ln -s /etc etc && ln -s /tmp tmp && ln -s real/f alias",
    )
    .await;
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.stderr);
    assert_eq!(p.read_file(&id, "real/f").await.unwrap(), b"inside\n");
    for through in ["etc/passwd", "tmp/x", "alias"] {
        let e = p.read_file(&id, through).await.unwrap_err();
        assert!(matches!(e, Error::Escape(_)), "{through}: {e}");
        let e = p.write_file(&id, through, b"x").await.unwrap_err();
        assert!(matches!(e, Error::Escape(_)), "{through}: {e}");
    }
    // Nothing was written through the links.
    let ran = sh(p, &id, "ls /tmp; cat real/f").await;
    assert_eq!(ran.stdout, "inside\n", "{}", ran.stderr);
    // A directory is not a file, and a missing file is reported as such.
    assert!(matches!(
        p.read_file(&id, "real").await.unwrap_err(),
        Error::Invalid(_)
    ));
    let missing = p.read_file(&id, "nope/nothing").await.unwrap_err();
    assert!(missing.to_string().contains("nope/nothing"), "{missing}");
    // Written files keep an existing file's mode and belong to the sandbox.
    sh(
        p,
        &id,
        "printf '#!/bin/sh\\necho old\\n' > run.sh; chmod 755 run.sh",
    )
    .await;
    p.write_file(&id, "run.sh", b"#!/bin/sh\necho new\n")
        .await
        .unwrap();
    let ran = sh(p, &id, "./run.sh && echo more >> run.sh && echo writable").await;
    assert_eq!(ran.stdout, "new\nwritable\n", "{}", ran.stderr);
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

/// The engine reports a link's target already resolved within the
/// container (its archive stat's `linkTarget`: `/workspace/config/prod.key`
/// for a link written `config/prod.key`), every link on the way followed,
/// `/tmp` included: a link that leaves the workspace and comes back in is
/// `Inside` here, where the native provider says `Outside` where it left.
#[tokio::test]
async fn the_engine_reports_link_targets_already_resolved() {
    let f = docker(HELPER).await;
    let p = &f.provider;
    let id = p.create(spec()).await.unwrap();
    let ran = sh(
        p,
        &id,
        "mkdir config && echo key > config/prod.key && ln -s /workspace/config /tmp/back \
         && ln -s /tmp/back via-tmp && ln -s ../../../etc/passwd up",
    )
    .await;
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.stderr);
    assert_eq!(
        p.resolve(&id, "via-tmp/prod.key").await.unwrap(),
        Resolved::Inside("config/prod.key".into())
    );
    // `..` past the root stays at the root, as the kernel has it.
    assert_eq!(
        p.resolve(&id, "up").await.unwrap(),
        Resolved::Outside("/etc/passwd".into())
    );
    assert!(p.destroy(&id).await.unwrap().is_clean());
}

#[tokio::test]
async fn what_the_engine_cannot_give_is_refused_with_the_reason() {
    let f = docker(HELPER).await;
    let rooted = SandboxSpec {
        root: Root::Directory("/srv/root".into()),
        ..spec()
    };
    let e = f.provider.create(rooted).await.unwrap_err();
    assert!(e.to_string().contains("from an image"), "{e}");

    let e = smithers_sandbox::DockerProvider::connect({
        let mut config = smithers_sandbox::DockerConfig::from_env().unwrap();
        config.image = "smithers-no-such-image:never".into();
        config
    })
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("smithers sandbox image build"),
        "{e}"
    );

    // Egress needs the helper's bridge.
    let bare = docker_with(HELPER, |config| config.helper = None).await;
    let e = bare
        .provider
        .create(SandboxSpec {
            egress: vec!["example.com".into()],
            ..spec()
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    // Without the helper, commands still run confined by the engine.
    let id = bare.provider.create(spec()).await.unwrap();
    let ran = sh(
        &bare.provider,
        &id,
        "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; echo x > /usr/x || echo read-only",
    )
    .await;
    assert!(
        ran.stdout.contains("CapEff:\t0000000000000000"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("NoNewPrivs:\t1"), "{}", ran.stdout);
    assert!(ran.stdout.contains("Seccomp:\t2"), "{}", ran.stdout);
    assert!(ran.stdout.ends_with("read-only\n"), "{}", ran.stdout);
    assert!(bare.provider.destroy(&id).await.unwrap().is_clean());
}
