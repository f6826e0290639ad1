//! Local mirrors of the repositories the App runs workflows on: one bare
//! repository per GitHub repository (by its numeric id), fetched over
//! HTTPS with a contents-read installation token just before a run is
//! started. Runs are checked out from the mirror, so the sandbox never
//! sees a credential.
//!
//! The token reaches git only through its environment
//! (`GIT_CONFIG_COUNT`/`KEY`/`VALUE`, an `http.extraHeader`), never its
//! arguments: a process's arguments are readable by every user of the
//! machine, its environment only by its own. Nothing git prints is passed
//! on without the token cut out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::process::Command;

use crate::Error;
use crate::token::InstallationToken;

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Where the mirrors live.
#[derive(Debug, Clone)]
pub struct Mirrors {
    dir: PathBuf,
    /// One fetch at a time per mirror (events and schedules fetch from
    /// their own tasks).
    locks: Arc<Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Mirrors {
    /// Mirrors under `dir` (made when first needed).
    pub fn new(dir: PathBuf) -> Mirrors {
        Mirrors {
            dir,
            locks: Arc::default(),
        }
    }

    /// The lock of repository `id`'s mirror.
    fn lock(&self, repository_id: i64) -> Arc<tokio::sync::Mutex<()>> {
        match self.locks.lock() {
            Ok(mut locks) => locks.entry(repository_id).or_default().clone(),
            // A poisoned map only loses the sharing: a fresh lock.
            Err(_) => Arc::default(),
        }
    }

    /// The mirror of repository `id`.
    pub fn path(&self, repository_id: i64) -> PathBuf {
        self.dir.join(format!("{repository_id}.git"))
    }

    /// Fetches `refspecs` of the repository at `url` into its mirror
    /// (made bare if new), authenticated by `token`; objects are checked
    /// as they come (`transfer.fsckObjects`) and no hook runs. Answers the
    /// mirror's path.
    ///
    /// Errors: [`Error::Unreachable`] when git fails (its message, without
    /// the token).
    pub(crate) async fn fetch(
        &self,
        repository_id: i64,
        url: &str,
        token: &InstallationToken,
        refspecs: &[String],
    ) -> Result<PathBuf, Error> {
        let lock = self.lock(repository_id);
        let _one_fetch = lock.lock().await;
        let path = self.ensure(repository_id).await?;
        let mut args = vec![
            "-c",
            "transfer.fsckObjects=true",
            "-c",
            "core.hooksPath=/dev/null",
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--force",
            "--end-of-options",
            url,
        ];
        args.extend(refspecs.iter().map(String::as_str));
        git(&path, &args, Some(token)).await?;
        Ok(path)
    }

    /// Repository `id`'s mirror, made bare if new.
    async fn ensure(&self, repository_id: i64) -> Result<PathBuf, Error> {
        let path = self.path(repository_id);
        if !path.join("HEAD").exists() {
            tokio::fs::create_dir_all(&path)
                .await
                .map_err(|e| git_error("init", format!("cannot make {}: {e}", path.display())))?;
            git(&path, &["init", "--quiet", "--bare"], None).await?;
        }
        Ok(path)
    }

    /// The tips of `branches` of the repository at `url` as it is now
    /// (`git ls-remote`, nothing fetched): each branch that exists with
    /// its commit; a branch that does not is left out.
    ///
    /// Errors: [`Error::Unreachable`] when git fails.
    pub(crate) async fn tips(
        &self,
        repository_id: i64,
        url: &str,
        token: &InstallationToken,
        branches: &[&str],
    ) -> Result<Vec<(String, String)>, Error> {
        let path = self.ensure(repository_id).await?;
        let refs: Vec<String> = branches.iter().map(|b| format!("refs/heads/{b}")).collect();
        let mut args = vec!["ls-remote", "--heads", "--end-of-options", url];
        args.extend(refs.iter().map(String::as_str));
        let listed = git(&path, &args, Some(token)).await?;
        // ls-remote matches patterns by their tail: only exact names count.
        Ok(listed
            .lines()
            .filter_map(|line| {
                let (sha, name) = line.split_once('\t')?;
                let branch = name.strip_prefix("refs/heads/")?;
                branches
                    .contains(&branch)
                    .then(|| (branch.to_string(), sha.to_string()))
            })
            .collect())
    }

    /// Replays the commits `upstream..head` onto `onto` in repository
    /// `id`'s mirror (`git replay`, which touches no work tree and no
    /// branch but a scratch one of its own), committed as Smithers with
    /// each commit's author kept. Answers the new tip, or the conflict
    /// git reported.
    ///
    /// Errors: [`Error::Unreachable`] when git fails other than by a
    /// conflict.
    pub(crate) async fn replay(
        &self,
        repository_id: i64,
        onto: &str,
        upstream: &str,
        head: &str,
    ) -> Result<Replayed, Error> {
        let path = self.path(repository_id);
        // git replay moves the refs in its range: a scratch one, so no
        // fetched branch is ever moved.
        let scratch = format!(
            "refs/heads/smithers-replay-{}",
            uuid::Uuid::now_v7().simple()
        );
        git(&path, &["update-ref", &scratch, head], None).await?;
        let range = format!("{upstream}..{scratch}");
        let output = Command::new("git")
            .arg("-C")
            .arg(&path)
            .args(["replay", "--onto", onto, &range])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_COMMITTER_NAME", "Smithers")
            .env("GIT_COMMITTER_EMAIL", "smithers@localhost")
            .kill_on_drop(true)
            .output()
            .await;
        let deleted = git(&path, &["update-ref", "-d", &scratch], None).await;
        let output = output.map_err(|e| git_error("replay", format!("cannot run git: {e}")))?;
        deleted?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        match output.status.code() {
            Some(0) => {
                // `update <ref> <new> <old>` for the scratch ref; none when
                // nothing was left to replay.
                let tip = stdout
                    .lines()
                    .filter_map(|l| l.strip_prefix("update "))
                    .filter_map(|l| l.split_whitespace().nth(1))
                    .next_back()
                    .unwrap_or(onto);
                Ok(Replayed::Tip(tip.to_string()))
            }
            Some(1) => Ok(Replayed::Conflict(
                format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr))
                    .trim()
                    .to_string(),
            )),
            _ => Err(git_error(
                "replay",
                format!(
                    "git replay: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            )),
        }
    }
}

/// How GitHub refused a push, as git tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushRefusal {
    /// The lease failed (`stale info`): the branch is not where Smithers
    /// left it — someone else's push.
    StaleLease,
    /// Declined otherwise (`rejected`): a ruleset, a hook, protection.
    Declined,
}

/// The refusal a failed [`Mirrors::push`] or [`Mirrors::delete_branch`]
/// reports, if it was one (not git or GitHub failing to answer).
pub(crate) fn push_refusal(e: &Error) -> Option<PushRefusal> {
    match e {
        Error::Unreachable { route, reason, .. } if route == "push" => {
            if reason.contains("stale info") {
                Some(PushRefusal::StaleLease)
            } else if reason.contains("rejected") {
                Some(PushRefusal::Declined)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// What a replay made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Replayed {
    /// The replayed commits' new tip.
    Tip(String),
    /// They do not apply: git's account of the conflict.
    Conflict(String),
}

impl Mirrors {
    /// Pushes commit `sha` of the mirror to `branch` of the repository at
    /// `url`, authenticated by `token`, leased against `lease` (the commit
    /// Smithers last pushed there; none: the branch must not exist), so
    /// that a push onto the branch by anyone else is never overwritten.
    ///
    /// Errors: [`Error::Unreachable`] when git fails, the refusal in its
    /// message (`stale info`, `rejected`), without the token.
    pub(crate) async fn push(
        &self,
        repository_id: i64,
        url: &str,
        token: &InstallationToken,
        branch: &str,
        sha: &str,
        lease: Option<&str>,
    ) -> Result<(), Error> {
        self.push_leased(repository_id, url, token, branch, sha, lease.unwrap_or(""))
            .await
    }

    /// Deletes `branch` of the repository at `url`, leased against `at`:
    /// only while the branch is still at `at` (a push onto it since keeps
    /// it).
    ///
    /// Errors: as [`Mirrors::push`].
    pub(crate) async fn delete_branch(
        &self,
        repository_id: i64,
        url: &str,
        token: &InstallationToken,
        branch: &str,
        at: &str,
    ) -> Result<(), Error> {
        self.push_leased(repository_id, url, token, branch, "", at)
            .await
    }

    /// `git push --force-with-lease=refs/heads/BRANCH:LEASE SHA:refs/heads/BRANCH`
    /// (an empty `sha` deletes, an empty `lease` requires the branch not
    /// to exist).
    async fn push_leased(
        &self,
        repository_id: i64,
        url: &str,
        token: &InstallationToken,
        branch: &str,
        sha: &str,
        lease: &str,
    ) -> Result<(), Error> {
        let path = self.path(repository_id);
        let lease = format!("--force-with-lease=refs/heads/{branch}:{lease}");
        let refspec = format!("{sha}:refs/heads/{branch}");
        git(
            &path,
            &[
                "push",
                "--quiet",
                "--no-verify",
                &lease,
                "--end-of-options",
                url,
                &refspec,
            ],
            Some(token),
        )
        .await
        .map(drop)
    }
}

impl Mirrors {
    /// Whether commit `ancestor` is `descendant` or one of its ancestors,
    /// in repository `repository_id`'s mirror.
    ///
    /// Errors: [`Error::Unreachable`] when git cannot answer.
    pub(crate) async fn is_ancestor(
        &self,
        repository_id: i64,
        ancestor: &str,
        descendant: &str,
    ) -> Result<bool, Error> {
        let output = Command::new("git")
            .arg("-C")
            .arg(self.path(repository_id))
            .args([
                "merge-base",
                "--is-ancestor",
                "--end-of-options",
                ancestor,
                descendant,
            ])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| git_error("merge-base", format!("cannot run git: {e}")))?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(git_error(
                "merge-base",
                format!(
                    "git merge-base: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            )),
        }
    }
}

/// git's failure at `command` (`fetch`, `push`, `ls-remote`, …).
fn git_error(command: &str, reason: String) -> Error {
    Error::Unreachable {
        method: "GIT".into(),
        route: command.into(),
        reason,
    }
}

/// Runs git in `repo`, with `token` as its HTTP credential if given.
/// Answers what it printed on its standard output.
async fn git(
    repo: &Path,
    args: &[&str],
    token: Option<&InstallationToken>,
) -> Result<String, Error> {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        // Neither the user's nor the machine's git configuration (a
        // credential helper, an insteadOf) has a say.
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .kill_on_drop(true);
    if let Some(token) = token {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("x-access-token:{}", token.expose()));
        command
            .env("GIT_CONFIG_COUNT", "2")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Basic {basic}"),
            )
            .env("GIT_CONFIG_KEY_1", "credential.helper")
            .env("GIT_CONFIG_VALUE_1", "");
    }
    // The subcommand: the first word that is neither an option nor a
    // `-c` setting.
    let subcommand = args
        .iter()
        .find(|a| !a.starts_with('-') && !a.contains('='))
        .copied()
        .unwrap_or("git");
    let output = tokio::time::timeout(FETCH_TIMEOUT, command.output())
        .await
        .map_err(|_| git_error(subcommand, "git timed out".into()))?
        .map_err(|e| git_error(subcommand, format!("cannot run git: {e}")))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let mut said = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if let Some(token) = token {
        said = said.replace(token.expose(), "[token]");
    }
    Err(git_error(subcommand, format!("git {subcommand}: {said}")))
}
