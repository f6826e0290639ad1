//! Git on the host side: the commit a run starts from, the clean checkout
//! its sandbox is filled from, and bringing a commit made in the sandbox
//! back into the repository and pushing it. Only `smithers/…` branches are
//! ever written; the sandbox never holds a credential.

use std::path::Path;

use tokio::process::Command;

use crate::Error;
use crate::workflow::branch_problem;

async fn git(repo: &Path, args: &[&str]) -> Result<String, Error> {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| Error::Git(format!("cannot run git: {e}")))?;
    if !output.status.success() {
        return Err(Error::Git(format!(
            "git {} in {}: {}",
            args.first().copied().unwrap_or_default(),
            repo.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The commit `HEAD` of the repository names.
pub async fn head(repo: &Path) -> Result<String, Error> {
    git(repo, &["rev-parse", "--verify", "HEAD^{commit}"])
        .await
        .map_err(|e| {
            Error::Invalid(format!(
                "{} is not a git repository with a commit to start from ({e})",
                repo.display()
            ))
        })
}

/// The commit `rev` names in the repository (a full id, checked to be a
/// commit that is there).
pub async fn commit(repo: &Path, rev: &str) -> Result<String, Error> {
    if rev.starts_with('-') {
        return Err(Error::Invalid(format!("{rev:?} is not a commit")));
    }
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--end-of-options",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .await
    .map_err(|e| Error::Invalid(format!("{rev} is not a commit of {} ({e})", repo.display())))
}

/// The text of `path` in the tree of `commit` (a full commit id), read
/// without touching any working tree. Blocking: for `spawn_blocking`.
///
/// Errors: `Io`-like `Invalid` for a path the tree lacks or that is not
/// UTF-8 text.
pub fn show_file(repo: &Path, commit: &str, path: &str) -> Result<String, Error> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["cat-file", "blob"])
        .arg(format!("{commit}:{path}"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| Error::Git(format!("cannot run git: {e}")))?;
    if !output.status.success() {
        return Err(Error::Invalid(format!(
            "{path} cannot be read at commit {commit}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| Error::Invalid(format!("{path} at commit {commit} is not UTF-8 text")))
}

/// A clean checkout of `base` at `into`: the committed tree only (never the
/// untracked or ignored files of the user's working copy), no remote, and
/// only the objects `base` reaches — not the repository's other branches,
/// pull request heads or other runs' commits, which a sandbox has no
/// business reading (a local clone would copy every object).
pub async fn checkout(repo: &Path, base: &str, into: &Path) -> Result<(), Error> {
    match tokio::fs::remove_dir_all(into).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(into)(e)),
        _ => {}
    }
    tokio::fs::create_dir_all(into)
        .await
        .map_err(Error::io(into))?;
    let source = tokio::fs::canonicalize(repo)
        .await
        .map_err(Error::io(repo))?;
    let source = format!("file://{}", source.display());
    git(into, &["init", "--quiet"]).await?;
    git(
        into,
        &[
            "-c",
            "protocol.file.allow=always",
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            // The source's upload-pack hands out a commit by its id.
            "--upload-pack=git -c uploadpack.allowAnySHA1InWant=true upload-pack",
            "--end-of-options",
            &source,
            base,
        ],
    )
    .await?;
    git(into, &["checkout", "--quiet", "--detach", base]).await?;
    Ok(())
}

/// Makes `branch` of the repository point at the commit the sandbox's
/// bundle holds (fetched with every object checked); returns the commit.
pub async fn import_bundle(
    repo: &Path,
    bundle: &Path,
    branch: &str,
    expected: &str,
) -> Result<String, Error> {
    if let Some(problem) = branch_problem(branch) {
        return Err(Error::Invalid(problem));
    }
    let bundle_text = bundle.display().to_string();
    let refspec = format!("+HEAD:refs/heads/{branch}");
    git(
        repo,
        &[
            "-c",
            "transfer.fsckObjects=true",
            "-c",
            "core.hooksPath=/dev/null",
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            &bundle_text,
            &refspec,
        ],
    )
    .await?;
    let landed = git(
        repo,
        &["rev-parse", "--verify", &format!("refs/heads/{branch}")],
    )
    .await?;
    if landed != expected {
        return Err(Error::Git(format!(
            "{branch} is at {landed} after the import, not at the sandbox's commit {expected}"
        )));
    }
    Ok(landed)
}

/// The remote `push_branch` pushes to, if the repository has one.
pub async fn remote_url(repo: &Path, remote: &str) -> Option<String> {
    git(repo, &["remote", "get-url", remote]).await.ok()
}

/// Pushes `branch` (under `smithers/`) to `remote`; returns the commit.
pub async fn push(repo: &Path, remote: &str, branch: &str) -> Result<String, Error> {
    if let Some(problem) = branch_problem(branch) {
        return Err(Error::Invalid(problem));
    }
    let commit = git(
        repo,
        &["rev-parse", "--verify", &format!("refs/heads/{branch}")],
    )
    .await?;
    let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
    git(repo, &["push", "--quiet", "--no-verify", remote, &refspec]).await?;
    Ok(commit)
}
