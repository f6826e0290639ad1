//! The run's workspace inside its sandbox: a snapshot of it taken out (a
//! tar stream on the command's stdout) so that a run killed at any point
//! resumes from the state its last finished call left, the snapshot put
//! back (unpacked inside the sandbox, never on the host), and the commit
//! made there carried out as a git bundle.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::time::Duration;

use smithers_sandbox::{Provider, SandboxId, Stream};

use crate::Error;
use crate::tools::{Collected, Shell, collect, quote};

/// The most a snapshot or a bundle may weigh.
const MAX_CAPTURE: usize = 1 << 30;
/// Pieces a snapshot is written back in (each under the provider's file limit).
const RESTORE_PIECE: usize = 32 << 20;
/// How long housekeeping commands (snapshot, restore, commit) may take.
const HOUSEKEEPING: Duration = Duration::from_secs(10 * 60);

/// Runs a housekeeping `script`; its output whole or an error.
async fn capture<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
    script: &str,
) -> Result<Collected, Error> {
    let collected = collect(
        provider,
        sandbox,
        Shell::Own.command(script, HOUSEKEEPING, Vec::new()),
        MAX_CAPTURE,
        None,
    )
    .await?;
    if collected.over {
        return Err(Error::Invalid(format!(
            "the workspace is larger than {} MiB: too large to keep",
            MAX_CAPTURE >> 20
        )));
    }
    Ok(collected)
}

fn failed(what: &str, captured: &Collected) -> Error {
    Error::Invalid(format!(
        "{what} failed (exit {}): {}",
        captured.outcome.exit_code,
        String::from_utf8_lossy(&captured.bytes(Some(Stream::Stderr))).trim()
    ))
}

/// Programs a run needs inside its sandbox: `tar` for snapshots, `git`
/// for commits and the repository tools, `bash` for the commands (the
/// dialect the kernel decides them in).
const NEEDED: &[&str] = &["tar", "git", "bash"];

/// Checks the sandbox has what a run needs, before the run relies on it:
/// an image built before a program was needed says so plainly instead of
/// failing at the first snapshot.
pub(crate) async fn check_programs<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
) -> Result<(), Error> {
    let script = NEEDED
        .iter()
        .map(|p| format!("command -v {p} >/dev/null 2>&1 || echo {p}"))
        .collect::<Vec<_>>()
        .join("; ");
    let captured = capture(provider, sandbox, &script).await?;
    let missing = String::from_utf8_lossy(&captured.bytes(Some(Stream::Stdout)))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(", ");
    if captured.outcome.exit_code != 0 {
        return Err(failed("checking the sandbox's programs", &captured));
    }
    if !missing.is_empty() {
        return Err(Error::Invalid(format!(
            "the sandbox ({}) has no {missing}, which a workflow run needs; with Docker, rebuild the image: `smithers sandbox image build` (its default programs include them)",
            provider.name()
        )));
    }
    Ok(())
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
    // Writing and syncing block: on a thread for blocking work, not on the
    // async threads.
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(Error::io(&partial))?;
        // Chunk by chunk: a snapshot can be large, no second copy of it.
        captured
            .chunks
            .iter()
            .filter(|c| c.stream == Stream::Stdout)
            .try_for_each(|c| file.write_all(&c.bytes))
            .and_then(|()| file.sync_all())
            .map_err(Error::io(&partial))?;
        std::fs::rename(&partial, &path).map_err(Error::io(&path))
    })
    .await
    .map_err(|e| Error::Internal(format!("writing the workspace snapshot stopped: {e}")))?
}

/// Puts a snapshot back into an empty workspace. The archive came out of
/// a sandbox, so it is unpacked inside one.
pub(crate) async fn restore<P: Provider>(
    provider: &P,
    sandbox: &SandboxId,
    file: &Path,
) -> Result<(), Error> {
    let bytes = tokio::fs::read(file).await.map_err(Error::io(file))?;
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
    let head = String::from_utf8_lossy(&captured.bytes(Some(Stream::Stdout)))
        .trim()
        .to_string();
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
    tokio::fs::write(into, captured.bytes(Some(Stream::Stdout)))
        .await
        .map_err(Error::io(into))
}
