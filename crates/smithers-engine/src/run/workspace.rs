//! The run's workspace inside its sandbox: a snapshot of it taken out (a
//! tar stream on the command's stdout) so that a run killed at any point
//! resumes from the state its last finished call left, the snapshot put
//! back (unpacked inside the sandbox, never on the host), and the commit
//! made there carried out as a git bundle.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::time::Duration;

use smithers_sandbox::{ExecOutcome, ExecRequest, OutputChunk, Provider, SandboxId, Stream};
use tokio::sync::mpsc;

use crate::Error;
use crate::tools::quote;

/// The most a snapshot or a bundle may weigh.
const MAX_CAPTURE: usize = 1 << 30;
/// Pieces a snapshot is written back in (each under the provider's file limit).
const RESTORE_PIECE: usize = 32 << 20;
/// How long housekeeping commands (snapshot, restore, commit) may take.
const HOUSEKEEPING: Duration = Duration::from_secs(10 * 60);

pub(crate) struct Captured {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub outcome: ExecOutcome,
}

/// Runs `script` with `sh -c` and keeps stdout and stderr apart.
pub(crate) async fn capture<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
    script: &str,
) -> Result<Captured, Error> {
    let (tx, mut rx) = mpsc::channel::<OutputChunk>(64);
    let collect = tokio::spawn(async move {
        let (mut stdout, mut stderr, mut over) = (Vec::new(), Vec::new(), false);
        while let Some(chunk) = rx.recv().await {
            let into = match chunk.stream {
                Stream::Stdout => &mut stdout,
                Stream::Stderr => &mut stderr,
            };
            if into.len() + chunk.bytes.len() > MAX_CAPTURE {
                over = true;
            } else {
                into.extend_from_slice(&chunk.bytes);
            }
        }
        (stdout, stderr, over)
    });
    let mut request = ExecRequest::new(["/bin/sh", "-c", script]);
    request.timeout = Some(HOUSEKEEPING);
    let outcome = provider.exec(sandbox, request, tx).await?;
    let (stdout, stderr, over) = collect
        .await
        .map_err(|e| Error::Invalid(format!("output collector failed: {e}")))?;
    if over {
        return Err(Error::Invalid(format!(
            "the workspace is larger than {} MiB: too large to keep",
            MAX_CAPTURE >> 20
        )));
    }
    Ok(Captured {
        stdout,
        stderr,
        outcome,
    })
}

fn failed(what: &str, captured: &Captured) -> Error {
    Error::Invalid(format!(
        "{what} failed (exit {}): {}",
        captured.outcome.exit_code,
        String::from_utf8_lossy(&captured.stderr).trim()
    ))
}

/// Writes the workspace as a tar file `dir/name` (readable by this user
/// only), whole or not at all.
pub(crate) async fn snapshot<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
    dir: &Path,
    name: &str,
) -> Result<(), Error> {
    let captured = capture(provider, sandbox, "tar -C /workspace -cf - .").await?;
    if captured.outcome.exit_code != 0 {
        return Err(failed("the workspace snapshot", &captured));
    }
    let partial = dir.join(format!("{name}.partial"));
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(Error::io(&partial))?;
    file.write_all(&captured.stdout)
        .and_then(|()| file.sync_all())
        .map_err(Error::io(&partial))?;
    std::fs::rename(&partial, &path).map_err(Error::io(&path))?;
    Ok(())
}

/// Puts a snapshot back into an empty workspace. The archive came out of
/// a sandbox, so it is unpacked inside one.
pub(crate) async fn restore<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
    file: &Path,
) -> Result<(), Error> {
    let bytes = std::fs::read(file).map_err(Error::io(file))?;
    for (n, piece) in bytes.chunks(RESTORE_PIECE).enumerate() {
        provider
            .write_file(sandbox, &format!(".smithers-restore.{n:04}"), piece)
            .await?;
    }
    let captured = capture(
        provider,
        sandbox,
        "cat .smithers-restore.* | tar -xf - && rm -f .smithers-restore.*",
    )
    .await?;
    if captured.outcome.exit_code != 0 {
        return Err(failed("restoring the workspace snapshot", &captured));
    }
    Ok(())
}

/// Commits every change of the workspace (if any) with `message`; returns
/// the commit `HEAD` is then at.
pub(crate) async fn commit<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
    message: &str,
) -> Result<String, Error> {
    let script = format!(
        "git add -A && {{ git diff --cached --quiet || git -c user.name=Smithers \
         -c user.email=smithers@localhost -c core.hooksPath=/dev/null -c commit.gpgsign=false \
         commit --quiet --no-verify -m {}; }} && git rev-parse --verify HEAD",
        quote(message)
    );
    let captured = capture(provider, sandbox, &script).await?;
    if captured.outcome.exit_code != 0 {
        return Err(failed("the commit in the workspace", &captured));
    }
    let head = String::from_utf8_lossy(&captured.stdout).trim().to_string();
    if head.len() != 40 || !head.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Invalid(format!(
            "the workspace's HEAD is not a commit: {head:?}"
        )));
    }
    Ok(head)
}

/// A bundle of the commits from `base` to `HEAD`, written to `into`.
pub(crate) async fn bundle<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
    base: &str,
    into: &Path,
) -> Result<(), Error> {
    let script = format!("git bundle create --quiet - {}..HEAD", quote(base));
    let captured = capture(provider, sandbox, &script).await?;
    if captured.outcome.exit_code != 0 {
        return Err(failed("bundling the commits", &captured));
    }
    std::fs::write(into, &captured.stdout).map_err(Error::io(into))
}
