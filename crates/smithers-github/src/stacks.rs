//! The stack reconciler: brings GitHub to each chain of pull requests
//! Smithers recorded, whatever order GitHub's events came in or if some
//! never came. Every pass reads GitHub as it is now — each member's pull
//! request with a conditional request, every branch tip with `git
//! ls-remote` — asks the planner ([`crate::stack_plan`]) what to do, and
//! carries the plan out in order; a step that fails ends the pass, and the
//! next pass plans again.
//!
//! What it writes: pull requests' bases (retargets), Smithers' own
//! `smithers/…` branches (restacks, leased on the head Smithers last
//! pushed, and deletion of merged ones, leased on what was merged), the
//! stack block of each member's body, a `smithers/stack` status on each
//! open member's head, and a comment saying why when a stack waits for a
//! person. Every one of these is audited. Nothing is ever merged.

use crate::pulls::short;
use std::collections::HashMap;
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use smithers_app::App;
use smithers_store::{GithubStack, StackState};

use crate::client::{Auth, Context, PageCache, Request};
use crate::mirror::{Mirrors, PushRefusal, Replayed, push_refusal};
use crate::neutral::neutralize_line;
use crate::pull_open::{NewPull, Target, create_pull, open_pull};
use crate::stack_block::{MarkerKey, StackBlock, StackMember, with_block, without_block};
use crate::stack_plan::{self, Action, MemberState, Parent, Pending, PullSeen, PullState, Seen};
use crate::token::{Access, TokenScope};
use crate::{Error, Github};

/// The status context every open member carries.
pub const STACK_STATUS: &str = "smithers/stack";

/// Reconciles stacks.
pub(crate) struct Stacks<'a> {
    pub app: &'a Arc<App>,
    pub github: &'a Github,
    pub mirrors: &'a Mirrors,
    pub web_url: &'a str,
    pub key: &'a MarkerKey,
    pub cache: &'a PageCache,
    /// Held through a stack's pass: two passes over one stack at once
    /// would race each other's pushes and pull requests.
    pub pass: &'a tokio::sync::Mutex<()>,
}

/// A stack's repository, as the calls name it.
struct Repo<'a> {
    owner: &'a str,
    name: &'a str,
    full: &'a str,
    id: i64,
    installation: i64,
    url: String,
}

impl Repo<'_> {
    fn scope(&self, permission: &'static str, access: Access) -> TokenScope {
        TokenScope::new(self.installation, &[self.id]).with(permission, access)
    }

    fn context(&self) -> Context<'_> {
        Context {
            repository: Some(self.full),
            delivery: None,
        }
    }
}

/// GitHub as a pass read it.
struct Read {
    seen: Seen,
    /// Each member's pull request's body, by number.
    bodies: HashMap<u64, String>,
}

impl Stacks<'_> {
    /// One pass over every stack to reconcile (active or paused, of live
    /// installations); answers how many were reconciled without error. A
    /// stack that fails is logged and left for the next pass.
    ///
    /// Errors: the store's, when the stacks cannot be listed.
    pub(crate) async fn reconcile_all(&self) -> Result<usize, Error> {
        let ids = self.app.store().github().stacks_to_reconcile().await?;
        let mut done = 0;
        for id in ids {
            match self.reconcile(&id).await {
                Ok(()) => done += 1,
                Err(e) => {
                    tracing::warn!(stack = %id, error = %e, "a stack could not be reconciled")
                }
            }
        }
        Ok(done)
    }

    /// One pass over stack `id`.
    ///
    /// Errors: GitHub's, git's and the store's; what was done before the
    /// error stays recorded.
    pub(crate) async fn reconcile(&self, id: &str) -> Result<(), Error> {
        let _one_pass = self.pass.lock().await;
        let store = self.app.store().github();
        let Some(mut stack) = store.stack(id).await? else {
            return Ok(());
        };
        if !matches!(stack.state, StackState::Active | StackState::Paused) {
            return Ok(());
        }
        let repository = stack.repository.clone();
        let (owner, name) = repository
            .split_once('/')
            .ok_or_else(|| Error::Malformed(format!("repository {repository:?}")))?;
        let repo = Repo {
            owner,
            name,
            full: &repository,
            id: stack.repository_id,
            installation: stack.installation_id,
            url: format!("{}/{repository}.git", self.web_url.trim_end_matches('/')),
        };
        let mut read = self.read(&stack, &repo).await?;
        self.forget_gone_branches(&stack, &read.seen).await?;
        let mut waits: Vec<(String, Option<u64>)> = Vec::new();
        // A step GitHub refused would be refused again every pass: the
        // stack waits for a person's sync instead of trying.
        let refused_before = stack.state == StackState::Paused
            && stack
                .paused_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(REFUSED));
        if refused_before && !stack.sync_requested {
            if let Some(reason) = stack.paused_reason.clone() {
                waits.push((reason, None));
            }
        } else {
            if stack.sync_requested {
                self.sync(&mut stack, &read.seen).await?;
            }
            let planned = stack_plan::plan(&plan_stack(&stack)?, &read.seen);
            for action in planned {
                let step = describe(&action, &stack);
                match self
                    .apply(&mut stack, &repo, &mut read, action, &mut waits)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) if refused(&e) => {
                        tracing::warn!(stack = %stack.id, error = %e, "GitHub refused a stack step");
                        waits.push((
                            format!(
                                "{REFUSED}{}: the stack waits (sync it once that is mended)",
                                step.0
                            ),
                            step.1,
                        ));
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if matches!(stack.state, StackState::Active | StackState::Paused) {
            self.present(&mut stack, &repo, &read).await?;
            self.settle_state(&stack, &repo, &waits).await?;
        }
        Ok(())
    }

    /// Makes the chain a native pull request stack where the repository
    /// has them (GitHub's `POST /repos/{owner}/{repo}/stacks`, in public
    /// preview): GitHub then shows it as one. Answers the native stack's
    /// number, or `None` where the repository has no native stacks (404)
    /// or GitHub will not make one of these pull requests (422): Smithers'
    /// own stack block and statuses do the same work either way, and the
    /// reconciler keeps the chain right in both cases.
    ///
    /// Errors: GitHub's other refusals and failures.
    pub(crate) async fn create_native(&self, stack: &GithubStack) -> Result<Option<u64>, Error> {
        let (owner, name) = stack
            .repository
            .split_once('/')
            .ok_or_else(|| Error::Malformed(format!("repository {:?}", stack.repository)))?;
        let numbers: Vec<i64> = stack.members.iter().filter_map(|m| m.pull_number).collect();
        if numbers.len() < 2 {
            return Ok(None);
        }
        let scope = TokenScope::new(stack.installation_id, &[stack.repository_id])
            .with("pull_requests", Access::Write);
        let create = Request::new(
            Method::POST,
            "/repos/{owner}/{repo}/stacks",
            &[owner, name],
            Auth::Installation(scope),
        )
        .json(json!({"pull_requests": numbers}))
        .context(Context {
            repository: Some(&stack.repository),
            delivery: None,
        });
        match self.github.send(&create).await {
            Ok(answer) => Ok(answer.body.get("number").and_then(Value::as_u64)),
            Err(Error::Api { status: 404, .. }) => Ok(None),
            Err(Error::Api {
                status: 422,
                message,
                ..
            }) => {
                tracing::info!(stack = %stack.id, %message, "GitHub made no native stack of it");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A merged member's branch gone from GitHub (deleted by GitHub's
    /// "delete head branches" setting or by a person): what Smithers last
    /// pushed there is forgotten, so that a later push of the branch is
    /// leased on its absence, not on a commit no longer there.
    async fn forget_gone_branches(&self, stack: &GithubStack, seen: &Seen) -> Result<(), Error> {
        let store = self.app.store().github();
        for m in stack.members.iter().filter(|m| m.merged) {
            if !seen.branches.contains_key(&m.branch)
                && store
                    .pushed_branch(stack.repository_id, &m.branch)
                    .await?
                    .is_some_and(|(_, run)| run == stack.run_id)
            {
                store
                    .forget_pushed_branch(stack.repository_id, &m.branch)
                    .await?;
            }
        }
        Ok(())
    }

    /// Reads each member's pull request and every branch tip.
    async fn read(&self, stack: &GithubStack, repo: &Repo<'_>) -> Result<Read, Error> {
        let mut seen = Seen::default();
        let mut bodies = HashMap::new();
        for m in &stack.members {
            let Some(number) = m.pull_number else {
                continue;
            };
            let number_text = number.to_string();
            let request = Request::new(
                Method::GET,
                "/repos/{owner}/{repo}/pulls/{pull_number}",
                &[repo.owner, repo.name, &number_text],
                Auth::Installation(repo.scope("pull_requests", Access::Read)),
            )
            .context(repo.context());
            let pull = self.github.get_cached(request, self.cache).await?;
            let number = u64::try_from(number)
                .map_err(|_| Error::Malformed(format!("pull request number {number}")))?;
            seen.pulls.insert(number, pull_seen(&pull)?);
            bodies.insert(
                number,
                pull.get("body")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        let token = self
            .github
            .installation_token(&repo.scope("contents", Access::Read), repo.context())
            .await?;
        let mut branches: Vec<&str> = stack.members.iter().map(|m| m.branch.as_str()).collect();
        branches.push(&stack.base);
        // A closed pull request's base: still there means a person closed
        // it, gone means GitHub did.
        for p in seen.pulls.values() {
            if p.state == PullState::Closed && !branches.contains(&p.base.as_str()) {
                branches.push(&p.base);
            }
        }
        let tips = self
            .mirrors
            .tips(repo.id, &repo.url, &token, &branches)
            .await?;
        seen.branches = tips.into_iter().collect();
        Ok(Read { seen, bodies })
    }

    /// A person asked for the branches to be taken as they are: each open
    /// member's head becomes its branch's tip (their push is now the
    /// member's, and the members above are restacked onto it).
    async fn sync(&self, stack: &mut GithubStack, seen: &Seen) -> Result<(), Error> {
        let store = self.app.store().github();
        let mut adopted = Vec::new();
        for m in stack.members.iter_mut().filter(|m| !m.merged) {
            let Some(tip) = seen.branches.get(&m.branch) else {
                continue;
            };
            if let Some((head, built_on, parent)) = m.pending.take()
                && head == *tip
            {
                m.built_on = built_on;
                m.parent = parent;
            }
            if m.head != *tip {
                adopted.push(json!({"branch": m.branch, "was": m.head, "now": tip}));
                m.head = tip.clone();
                // Taken as the App's own: what a later push is leased on.
                store
                    .set_pushed_branch(stack.repository_id, &m.branch, tip, &stack.run_id)
                    .await?;
            }
            store.update_stack_member(&stack.id, m).await?;
        }
        store.request_stack_sync(&stack.id, false).await?;
        stack.sync_requested = false;
        self.github
            .audit(
                "github.stack_synced",
                ("github_stack", &stack.id),
                json!({"repository": stack.repository, "adopted": adopted}),
            )
            .await
    }

    /// Carries out one step; answers whether the pass goes on.
    async fn apply(
        &self,
        stack: &mut GithubStack,
        repo: &Repo<'_>,
        read: &mut Read,
        action: Action,
        waits: &mut Vec<(String, Option<u64>)>,
    ) -> Result<bool, Error> {
        let store = self.app.store().github();
        match action {
            Action::Landed { member } => {
                let m = &mut stack.members[member];
                if let Some((head, built_on, parent)) = m.pending.take() {
                    store
                        .set_pushed_branch(repo.id, &m.branch, &head, &stack.run_id)
                        .await?;
                    m.head = head;
                    m.built_on = built_on;
                    m.parent = parent;
                }
                store.update_stack_member(&stack.id, m).await?;
            }
            Action::Merged { member } => {
                let m = &mut stack.members[member];
                m.merged = true;
                m.pending = None;
                store.update_stack_member(&stack.id, m).await?;
                let details = json!({"pull": m.pull_number, "branch": m.branch});
                self.audit(stack, "github.stack_member_merged", details)
                    .await?;
            }
            Action::Pause { reason, pull, .. } => waits.push((reason, pull)),
            Action::Retarget { member, pull, base } => {
                let number = pull.to_string();
                let request = Request::new(
                    Method::PATCH,
                    "/repos/{owner}/{repo}/pulls/{pull_number}",
                    &[repo.owner, repo.name, &number],
                    Auth::Installation(repo.scope("pull_requests", Access::Write)),
                )
                .json(json!({"base": base}))
                .context(repo.context());
                self.github.send(&request).await?;
                if let Some(p) = read.seen.pulls.get_mut(&pull) {
                    p.base = base.clone();
                }
                self.audit(
                    stack,
                    "github.stack_pull_retargeted",
                    json!({"pull": pull, "base": base, "branch": stack.members[member].branch}),
                )
                .await?;
            }
            Action::Restack { member, onto } => {
                return self.restack(stack, repo, read, member, onto, waits).await;
            }
            Action::Open {
                member,
                base,
                replaces,
            } => {
                self.open(stack, repo, read, member, &base, replaces)
                    .await?
            }
            Action::DeleteBranch { member, at } => {
                let token = self
                    .github
                    .installation_token(&repo.scope("contents", Access::Write), repo.context())
                    .await?;
                let branch = stack.members[member].branch.clone();
                let deleted = self
                    .mirrors
                    .delete_branch(repo.id, &repo.url, &token, &branch, &at)
                    .await;
                drop(token);
                self.audit(
                    stack,
                    "github.stack_branch_deleted",
                    json!({
                        "branch": branch,
                        "at": at,
                        "error": deleted.as_ref().err().map(ToString::to_string),
                    }),
                )
                .await?;
                deleted?;
                store.forget_pushed_branch(repo.id, &branch).await?;
                read.seen.branches.remove(&branch);
            }
            Action::Finished => {
                if store
                    .set_stack_state(
                        &stack.id,
                        &[StackState::Active, StackState::Paused],
                        StackState::Finished,
                        None,
                    )
                    .await?
                {
                    stack.state = StackState::Finished;
                    self.audit(stack, "github.stack_finished", json!({}))
                        .await?;
                }
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Puts member `member`'s own commits (`built_on..head`) onto `onto`'s
    /// tip and pushes them, leased on the head Smithers last pushed. When
    /// they already build on it, only the record changes: nothing is
    /// rewritten, so reviews stay where they are.
    async fn restack(
        &self,
        stack: &mut GithubStack,
        repo: &Repo<'_>,
        read: &Read,
        member: usize,
        onto: Parent,
        waits: &mut Vec<(String, Option<u64>)>,
    ) -> Result<bool, Error> {
        let store = self.app.store().github();
        let onto_sha = match onto {
            Parent::Base => match read.seen.branches.get(&stack.base) {
                Some(sha) => sha.clone(),
                None => {
                    waits.push((
                        format!("the base branch {} is gone: the stack waits", stack.base),
                        None,
                    ));
                    return Ok(false);
                }
            },
            Parent::Member(k) => stack.members[k].head.clone(),
        };
        let parent = parent_number(onto);
        let m = stack.members[member].clone();
        // The objects a replay needs, under the mirror's own names (never
        // over a run's branches).
        let token = self
            .github
            .installation_token(&repo.scope("contents", Access::Read), repo.context())
            .await?;
        // Named by the stack and position, not by branch: a branch `a`
        // and a later one `a/b` would otherwise collide as a file and a
        // directory of refs.
        let mut refspecs = vec![format!(
            "+refs/heads/{}:refs/smithers-github/{}/base",
            stack.base, stack.id
        )];
        for b in stack.members.iter().filter(|b| !b.merged) {
            if read.seen.branches.contains_key(&b.branch) {
                refspecs.push(format!(
                    "+refs/heads/{}:refs/smithers-github/{}/{}",
                    b.branch, stack.id, b.position
                ));
            }
        }
        self.mirrors
            .fetch(repo.id, &repo.url, &token, &refspecs)
            .await?;
        drop(token);
        if self
            .mirrors
            .is_ancestor(repo.id, &m.built_on, &onto_sha)
            .await?
        {
            let mut m = m;
            m.built_on = onto_sha.clone();
            m.parent = parent;
            store.update_stack_member(&stack.id, &m).await?;
            stack.members[member] = m;
            return Ok(true);
        }
        let new = match self
            .mirrors
            .replay(repo.id, &onto_sha, &m.built_on, &m.head)
            .await?
        {
            Replayed::Tip(sha) => sha,
            Replayed::Conflict(why) => {
                waits.push((
                    format!(
                        "{}'s own commits do not apply onto {} ({}): the stack waits for a \
                         person to restack it by hand and sync it",
                        m.branch,
                        short(&onto_sha),
                        why.lines().last().unwrap_or("a conflict")
                    ),
                    m.pull_number.and_then(|n| u64::try_from(n).ok()),
                ));
                return Ok(false);
            }
        };
        // Recorded before the push: if the answer is lost, the next pass
        // knows the branch at `new` for Smithers' own push.
        let mut pending = m.clone();
        pending.pending = Some((new.clone(), onto_sha.clone(), parent));
        store.update_stack_member(&stack.id, &pending).await?;
        stack.members[member] = pending.clone();
        let token = self
            .github
            .installation_token(&repo.scope("contents", Access::Write), repo.context())
            .await?;
        let pushed = self
            .mirrors
            .push(repo.id, &repo.url, &token, &m.branch, &new, Some(&m.head))
            .await;
        drop(token);
        self.audit(
            stack,
            "github.stack_restacked",
            json!({
                "branch": m.branch,
                "from": m.head,
                "to": new,
                "built_on": m.built_on,
                "onto": onto_sha,
                "error": pushed.as_ref().err().map(ToString::to_string),
            }),
        )
        .await?;
        // A refused lease is someone else's push: the next pass sees it
        // and the stack waits.
        pushed?;
        // A later run's push of this branch is leased on this push.
        store
            .set_pushed_branch(repo.id, &m.branch, &new, &stack.run_id)
            .await?;
        let mut done = pending;
        done.pending = None;
        done.head = new;
        done.built_on = onto_sha;
        done.parent = parent;
        store.update_stack_member(&stack.id, &done).await?;
        stack.members[member] = done;
        Ok(true)
    }

    /// Opens member `member`'s pull request onto `base` — or takes the one
    /// open already for its branch — and, when it replaces one GitHub
    /// closed under it, links the two.
    async fn open(
        &self,
        stack: &mut GithubStack,
        repo: &Repo<'_>,
        read: &mut Read,
        member: usize,
        base: &str,
        replaces: Option<u64>,
    ) -> Result<(), Error> {
        let store = self.app.store().github();
        let scope = repo.scope("pull_requests", Access::Write);
        let branch = stack.members[member].branch.clone();
        // The old pull request's words carry over; its stack block does
        // not (the new one gets its own).
        let old_body = replaces
            .and_then(|n| Some(without_block(read.bodies.get(&n)?, self.key, n)))
            .unwrap_or_default();
        let body = match replaces {
            Some(old) => format!(
                "Smithers opened this again in place of #{old}, which GitHub closed when the \
                 branch it was based on went away.\n\n{old_body}"
            ),
            None => old_body,
        };
        let target = Target {
            owner: repo.owner,
            name: repo.name,
            scope: &scope,
            context: repo.context(),
        };
        let number = match open_pull(self.github, &target, &branch).await? {
            Some(number) => number,
            None => {
                let title = stack.members[member].title.clone();
                let pull = NewPull {
                    title: &title,
                    head: &branch,
                    base,
                    body: &body,
                };
                create_pull(self.github, &target, &pull).await?
            }
        };
        let m = &mut stack.members[member];
        m.pull_number = Some(i64::try_from(number).unwrap_or(i64::MAX));
        store.update_stack_member(&stack.id, m).await?;
        read.seen.pulls.insert(
            number,
            PullSeen {
                state: PullState::Open,
                base: base.to_string(),
                head: m.head.clone(),
            },
        );
        read.bodies.insert(number, body);
        if let Some(old) = replaces {
            self.comment(
                repo,
                old,
                &format!("Smithers continued this pull request as #{number}."),
            )
            .await?;
            self.audit(
                stack,
                "github.stack_pull_recreated",
                json!({"branch": branch, "replaces": old, "pull": number, "base": base}),
            )
            .await?;
        }
        Ok(())
    }

    /// Each open member's body carries the current stack block, and its
    /// head the `smithers/stack` status: the bottom is next to merge, the
    /// others wait for the one below.
    async fn present(
        &self,
        stack: &mut GithubStack,
        repo: &Repo<'_>,
        read: &Read,
    ) -> Result<(), Error> {
        let store = self.app.store().github();
        let members: Vec<StackMember> = stack
            .members
            .iter()
            .filter_map(|m| {
                let number = u64::try_from(m.pull_number?).ok()?;
                Some(StackMember {
                    number,
                    title: m.title.clone(),
                    state: if m.merged {
                        MemberState::Merged
                    } else {
                        match read.seen.pulls.get(&number).map(|p| p.state) {
                            Some(PullState::Closed) => MemberState::Closed,
                            _ => MemberState::Open,
                        }
                    },
                })
            })
            .collect();
        let parents = stack_plan::parents(&plan_stack(stack)?);
        for (i, parent) in parents.into_iter().enumerate() {
            let Some(parent) = parent else { continue };
            let Some(number) = stack.members[i]
                .pull_number
                .and_then(|n| u64::try_from(n).ok())
            else {
                continue;
            };
            if read.seen.pulls.get(&number).map(|p| p.state) != Some(PullState::Open) {
                continue;
            }
            if let Some(body) = read.bodies.get(&number) {
                let block = StackBlock {
                    stack: stack.id.clone(),
                    members: members.clone(),
                    this: number,
                };
                let wanted = with_block(body, &block, self.key);
                if wanted != *body {
                    let number_text = number.to_string();
                    let update = Request::new(
                        Method::PATCH,
                        "/repos/{owner}/{repo}/pulls/{pull_number}",
                        &[repo.owner, repo.name, &number_text],
                        Auth::Installation(repo.scope("pull_requests", Access::Write)),
                    )
                    .json(json!({"body": wanted}))
                    .context(repo.context());
                    self.github.send(&update).await?;
                }
            }
            let (state, description) = match parent {
                Parent::Base => (
                    "success",
                    "Next to merge: the bottom of its stack".to_string(),
                ),
                Parent::Member(k) => (
                    "pending",
                    match stack.members[k].pull_number {
                        Some(below) => format!("Waiting for #{below} below it to be merged"),
                        None => "Waiting for the pull request below it".to_string(),
                    },
                ),
            };
            let head = stack.members[i].head.clone();
            let said = format!("{head} {state} {description}");
            if stack.members[i].status.as_deref() == Some(said.as_str()) {
                continue;
            }
            let post = Request::new(
                Method::POST,
                "/repos/{owner}/{repo}/statuses/{sha}",
                &[repo.owner, repo.name, &head],
                Auth::Installation(repo.scope("statuses", Access::Write)),
            )
            .json(json!({
                "state": state,
                "description": description,
                "context": STACK_STATUS,
            }))
            .context(repo.context());
            self.github.send(&post).await?;
            let m = &mut stack.members[i];
            m.status = Some(said);
            store.update_stack_member(&stack.id, m).await?;
        }
        Ok(())
    }

    /// Records whether the stack waits for a person, and tells its pull
    /// request why when that is new.
    async fn settle_state(
        &self,
        stack: &GithubStack,
        repo: &Repo<'_>,
        waits: &[(String, Option<u64>)],
    ) -> Result<(), Error> {
        let store = self.app.store().github();
        match waits.first() {
            Some((reason, pull)) => {
                if stack.state == StackState::Paused
                    && stack.paused_reason.as_deref() == Some(reason.as_str())
                {
                    return Ok(());
                }
                store
                    .set_stack_state(
                        &stack.id,
                        &[StackState::Active, StackState::Paused],
                        StackState::Paused,
                        Some(reason),
                    )
                    .await?;
                self.audit(
                    stack,
                    "github.stack_paused",
                    json!({"reason": reason, "pull": pull}),
                )
                .await?;
                if let Some(pull) = pull {
                    self.comment(
                        repo,
                        *pull,
                        // The reason can quote git and branch names:
                        // inert in the App's words.
                        &format!(
                            "Smithers has stopped keeping this stack current: {}. \
                             `smithers stacks show {}` says where it stands.",
                            neutralize_line(reason, 600),
                            stack.id
                        ),
                    )
                    .await?;
                }
            }
            None if stack.state == StackState::Paused => {
                store
                    .set_stack_state(&stack.id, &[StackState::Paused], StackState::Active, None)
                    .await?;
                self.audit(stack, "github.stack_resumed", json!({})).await?;
            }
            None => {}
        }
        Ok(())
    }

    /// Comments on pull request `number` (an issue comment, as GitHub
    /// calls it).
    async fn comment(&self, repo: &Repo<'_>, number: u64, text: &str) -> Result<(), Error> {
        let number = number.to_string();
        let post = Request::new(
            Method::POST,
            "/repos/{owner}/{repo}/issues/{issue_number}/comments",
            &[repo.owner, repo.name, &number],
            Auth::Installation(repo.scope("pull_requests", Access::Write)),
        )
        .json(json!({"body": text}))
        .context(repo.context());
        self.github.send(&post).await.map(drop)
    }

    async fn audit(
        &self,
        stack: &GithubStack,
        action: &str,
        mut details: Value,
    ) -> Result<(), Error> {
        if let Some(map) = details.as_object_mut() {
            map.insert("repository".into(), json!(stack.repository));
            map.insert("run".into(), json!(stack.run_id));
        }
        self.github
            .audit(action, ("github_stack", &stack.id), details)
            .await
    }
}

/// How a pause for a refused step begins (what tells it from the others).
const REFUSED: &str = "GitHub refused ";

/// Whether `e` is GitHub refusing a step for good (a validation error, a
/// missing permission, a ruleset or hook declining a push, a replay git
/// cannot do) rather than a passing failure or someone else's push (a
/// stale lease, which the next pass sees as that).
fn refused(e: &Error) -> bool {
    match e {
        Error::Api { status, .. } => (400..500).contains(status) && *status != 429,
        Error::Unreachable { route, .. } if route == "replay" => true,
        _ => push_refusal(e) == Some(PushRefusal::Declined),
    }
}

/// What a step does, for a pause's reason (the same words every pass, so
/// that it is said once), and the pull request it concerns.
fn describe(action: &Action, stack: &GithubStack) -> (String, Option<u64>) {
    let member = |i: usize| stack.members.get(i);
    let pull_of = |i: usize| {
        member(i)
            .and_then(|m| m.pull_number)
            .and_then(|n| u64::try_from(n).ok())
    };
    let branch_of = |i: usize| member(i).map_or("?", |m| m.branch.as_str()).to_string();
    match action {
        Action::Retarget { member, pull, base } => (
            format!("to base #{pull} on {base}"),
            Some(*pull).or_else(|| pull_of(*member)),
        ),
        Action::Restack { member, .. } => (
            format!("Smithers' restack of {}", branch_of(*member)),
            pull_of(*member),
        ),
        Action::Open { member, .. } => (
            format!("to open a pull request for {}", branch_of(*member)),
            None,
        ),
        Action::DeleteBranch { member, .. } => (
            format!("to delete the merged branch {}", branch_of(*member)),
            pull_of(*member),
        ),
        Action::Merged { member } | Action::Landed { member } | Action::Pause { member, .. } => (
            format!("a step for {}", branch_of(*member)),
            pull_of(*member),
        ),
        Action::Finished => ("to finish the stack".into(), None),
    }
}

/// The planner's view of a recorded stack.
///
/// Errors: [`Error::Malformed`] for a record no stack could have (a
/// parent above its member, a negative pull request number).
pub(crate) fn plan_stack(stack: &GithubStack) -> Result<stack_plan::Stack, Error> {
    let parent = |p: i64, at: usize| -> Result<Parent, Error> {
        match p {
            -1 => Ok(Parent::Base),
            p => match usize::try_from(p) {
                Ok(k) if k < at => Ok(Parent::Member(k)),
                _ => Err(Error::Malformed(format!(
                    "stack {}: member {at}'s parent {p}",
                    stack.id
                ))),
            },
        }
    };
    let mut members = Vec::with_capacity(stack.members.len());
    for (at, m) in stack.members.iter().enumerate() {
        let pull =
            match m.pull_number {
                Some(n) => Some(u64::try_from(n).map_err(|_| {
                    Error::Malformed(format!("stack {}: pull request {n}", stack.id))
                })?),
                None => None,
            };
        let pending = match &m.pending {
            Some((head, built_on, p)) => Some(Pending {
                head: head.clone(),
                built_on: built_on.clone(),
                parent: parent(*p, at)?,
            }),
            None => None,
        };
        members.push(stack_plan::Member {
            branch: m.branch.clone(),
            pull,
            parent: parent(m.parent, at)?,
            built_on: m.built_on.clone(),
            head: m.head.clone(),
            state: if m.merged {
                MemberState::Merged
            } else {
                MemberState::Open
            },
            pending,
        });
    }
    Ok(stack_plan::Stack {
        base: stack.base.clone(),
        members,
    })
}

fn parent_number(parent: Parent) -> i64 {
    match parent {
        Parent::Base => -1,
        Parent::Member(k) => i64::try_from(k).unwrap_or(i64::MAX),
    }
}

/// What a pull request's JSON says of it.
fn pull_seen(pull: &Value) -> Result<PullSeen, Error> {
    let text = |pointer: &str| {
        pull.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Error::Malformed(format!("a pull request without {pointer}")))
    };
    let merged = pull.get("merged").and_then(Value::as_bool).unwrap_or(false)
        || pull.get("merged_at").is_some_and(|v| !v.is_null());
    let state = match (merged, text("/state")?.as_str()) {
        (true, _) => PullState::Merged,
        (false, "open") => PullState::Open,
        (false, _) => PullState::Closed,
    };
    Ok(PullSeen {
        state,
        base: text("/base/ref")?,
        head: text("/head/sha")?,
    })
}
