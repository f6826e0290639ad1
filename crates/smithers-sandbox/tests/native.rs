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
