//! Chained pull requests ("stacks"): the record a reconciler brings GitHub
//! to. One stack per run; its members bottom first.

use sqlx::Row;

use smithers_audit::{ActorType, CheckpointSigner};

use crate::{Error, Github, now_micros};

/// What a stack is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackState {
    /// Reconciled on every pass.
    Active,
    /// The last pass found it waiting for a person (the reason says why);
    /// still reconciled, since the cause can go away on GitHub.
    Paused,
    /// Every member merged.
    Finished,
    /// A later run of the same work took its branches.
    Superseded,
}

impl StackState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            StackState::Active => "active",
            StackState::Paused => "paused",
            StackState::Finished => "finished",
            StackState::Superseded => "superseded",
        }
    }

    fn parse(s: &str) -> Result<StackState, Error> {
        Ok(match s {
            "active" => StackState::Active,
            "paused" => StackState::Paused,
            "finished" => StackState::Finished,
            "superseded" => StackState::Superseded,
            other => return Err(Error::Invalid(format!("stack state {other:?}"))),
        })
    }
}

/// One member of a stack as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubStackMember {
    /// From 0, bottom first.
    pub position: i64,
    /// Its `smithers/…` branch.
    pub branch: String,
    /// Its pull request's title, as the run wrote it.
    pub title: String,
    pub pull_number: Option<i64>,
    /// What its own commits sit on: -1 the stack's base, else the
    /// position of a member below.
    pub parent: i64,
    /// The commit its own commits sit on.
    pub built_on: String,
    /// The commit Smithers last pushed to its branch.
    pub head: String,
    /// `true` once its pull request is merged.
    pub merged: bool,
    /// A push begun and not known to have landed: `(head, built_on,
    /// parent)`.
    pub pending: Option<(String, String, i64)>,
    /// The stack status last posted on its head: `"<sha> <state>
    /// <description>"`.
    pub status: Option<String>,
}

/// A stack as recorded, members bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubStack {
    /// `stk_` and 32 lowercase hexadecimal digits (a UUIDv7).
    pub id: String,
    pub organization_id: String,
    pub installation_id: i64,
    pub repository_id: i64,
    /// `owner/name`.
    pub repository: String,
    /// The run whose work it delivers.
    pub run_id: String,
    /// The branch the bottom's pull request targets.
    pub base: String,
    pub state: StackState,
    pub paused_reason: Option<String>,
    /// Whether a person asked for the branches to be taken as they are.
    pub sync_requested: bool,
    /// Microseconds since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
    pub members: Vec<GithubStackMember>,
}

/// A member of a new stack.
#[derive(Debug, Clone)]
pub struct NewStackMember<'a> {
    pub branch: &'a str,
    pub title: &'a str,
    pub built_on: &'a str,
    pub head: &'a str,
}

/// A stack to record.
#[derive(Debug, Clone)]
pub struct NewGithubStack<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub installation_id: i64,
    pub repository_id: i64,
    pub repository: &'a str,
    pub run_id: &'a str,
    pub base: &'a str,
    /// Bottom first; each built on the one before, the first on the base.
    pub members: Vec<NewStackMember<'a>>,
}

const STACK_COLUMNS: &str = "id, organization_id, installation_id, repository_id, repository, \
     run_id, base, state, paused_reason, sync_requested, created_at, updated_at";

const MEMBER_COLUMNS: &str = "position, branch, title, pull_number, parent, built_on, head, \
     state, pending_head, pending_built_on, pending_parent, status";

fn stack_from(row: &sqlx::any::AnyRow) -> Result<GithubStack, Error> {
    Ok(GithubStack {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        installation_id: row.try_get("installation_id")?,
        repository_id: row.try_get("repository_id")?,
        repository: row.try_get("repository")?,
        run_id: row.try_get("run_id")?,
        base: row.try_get("base")?,
        state: StackState::parse(&row.try_get::<String, _>("state")?)?,
        paused_reason: row.try_get("paused_reason")?,
        sync_requested: row.try_get::<i64, _>("sync_requested")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        members: Vec::new(),
    })
}

fn member_from(row: &sqlx::any::AnyRow) -> Result<GithubStackMember, Error> {
    let pending_head: Option<String> = row.try_get("pending_head")?;
    let pending_built_on: Option<String> = row.try_get("pending_built_on")?;
    let pending_parent: Option<i64> = row.try_get("pending_parent")?;
    Ok(GithubStackMember {
        position: row.try_get("position")?,
        branch: row.try_get("branch")?,
        title: row.try_get("title")?,
        pull_number: row.try_get("pull_number")?,
        parent: row.try_get("parent")?,
        built_on: row.try_get("built_on")?,
        head: row.try_get("head")?,
        merged: row.try_get::<String, _>("state")? == "merged",
        pending: match (pending_head, pending_built_on, pending_parent) {
            (Some(h), Some(b), Some(p)) => Some((h, b, p)),
            _ => None,
        },
        status: row.try_get("status")?,
    })
}

impl Github<'_> {
    /// Records a run's stack with its members, in one transaction; a run
    /// that has one already keeps it (answered `false`).
    ///
    /// Errors: the database's.
    pub async fn create_stack(&self, new: &NewGithubStack<'_>) -> Result<bool, Error> {
        let mut tx = self.store.pool().begin().await?;
        let now = now_micros();
        let made = sqlx::query(
            "INSERT INTO github_stacks (id, organization_id, installation_id, repository_id, \
               repository, run_id, base, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $8) \
             ON CONFLICT (run_id) DO NOTHING",
        )
        .bind(new.id)
        .bind(new.organization_id)
        .bind(new.installation_id)
        .bind(new.repository_id)
        .bind(new.repository)
        .bind(new.run_id)
        .bind(new.base)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !made {
            return Ok(false);
        }
        for (position, m) in new.members.iter().enumerate() {
            let position = i64::try_from(position)
                .map_err(|_| Error::Invalid("too many stack members".into()))?;
            sqlx::query(
                "INSERT INTO github_stack_members (stack_id, position, branch, title, parent, \
                   built_on, head, state) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'open')",
            )
            .bind(new.id)
            .bind(position)
            .bind(m.branch)
            .bind(m.title)
            .bind(position - 1)
            .bind(m.built_on)
            .bind(m.head)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The stack `id`, members included.
    ///
    /// Errors: the database's.
    pub async fn stack(&self, id: &str) -> Result<Option<GithubStack>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {STACK_COLUMNS} FROM github_stacks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        match row {
            Some(row) => Ok(Some(self.with_members(stack_from(&row)?).await?)),
            None => Ok(None),
        }
    }

    /// The stack delivering run `run_id`'s work, if there is one.
    ///
    /// Errors: the database's.
    pub async fn stack_of_run(&self, run_id: &str) -> Result<Option<GithubStack>, Error> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT id FROM github_stacks WHERE run_id = $1")
                .bind(run_id)
                .fetch_optional(self.store.pool())
                .await?;
        match id {
            Some(id) => self.stack(&id).await,
            None => Ok(None),
        }
    }

    /// The organization's stacks, newest first, at most `limit`; only
    /// those in `state` if given.
    ///
    /// Errors: the database's.
    pub async fn stacks(
        &self,
        organization_id: &str,
        state: Option<StackState>,
        limit: u32,
    ) -> Result<Vec<GithubStack>, Error> {
        let rows = match state {
            Some(state) => {
                sqlx::query(&format!(
                    "SELECT {STACK_COLUMNS} FROM github_stacks \
                     WHERE organization_id = $1 AND state = $2 \
                     ORDER BY created_at DESC, id LIMIT $3"
                ))
                .bind(organization_id)
                .bind(state.as_str())
                .bind(i64::from(limit))
                .fetch_all(self.store.pool())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {STACK_COLUMNS} FROM github_stacks WHERE organization_id = $1 \
                     ORDER BY created_at DESC, id LIMIT $2"
                ))
                .bind(organization_id)
                .bind(i64::from(limit))
                .fetch_all(self.store.pool())
                .await?
            }
        };
        let mut stacks = Vec::with_capacity(rows.len());
        for row in &rows {
            stacks.push(self.with_members(stack_from(row)?).await?);
        }
        Ok(stacks)
    }

    /// The ids of the stacks to reconcile (active or paused), of
    /// installations neither suspended nor deleted, oldest first.
    ///
    /// Errors: the database's.
    pub async fn stacks_to_reconcile(&self) -> Result<Vec<String>, Error> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT s.id FROM github_stacks s \
               JOIN github_installations i ON i.id = s.installation_id \
             WHERE s.state IN ('active', 'paused') \
               AND i.suspended_at IS NULL AND i.deleted_at IS NULL \
             ORDER BY s.created_at, s.id",
        )
        .fetch_all(self.store.pool())
        .await?;
        Ok(ids)
    }

    /// The active or paused stacks of repository `repository_id` other
    /// than run `run_id`'s that have a member on one of `branches`.
    ///
    /// Errors: the database's.
    pub async fn stacks_on_branches(
        &self,
        repository_id: i64,
        branches: &[String],
        run_id: &str,
    ) -> Result<Vec<String>, Error> {
        let mut ids = Vec::new();
        for branch in branches {
            let found: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT s.id FROM github_stacks s \
                   JOIN github_stack_members m ON m.stack_id = s.id \
                 WHERE s.repository_id = $1 AND m.branch = $2 AND s.run_id <> $3 \
                   AND s.state IN ('active', 'paused')",
            )
            .bind(repository_id)
            .bind(branch)
            .bind(run_id)
            .fetch_all(self.store.pool())
            .await?;
            for id in found {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    /// Writes member `member.position` of stack `stack_id` as given.
    ///
    /// Errors: the database's.
    pub async fn update_stack_member(
        &self,
        stack_id: &str,
        member: &GithubStackMember,
    ) -> Result<(), Error> {
        let (pending_head, pending_built_on, pending_parent) = match &member.pending {
            Some((h, b, p)) => (Some(h.as_str()), Some(b.as_str()), Some(*p)),
            None => (None, None, None),
        };
        sqlx::query(
            "UPDATE github_stack_members SET pull_number = $3, parent = $4, built_on = $5, \
               head = $6, state = $7, pending_head = $8, pending_built_on = $9, \
               pending_parent = $10, status = $11 \
             WHERE stack_id = $1 AND position = $2",
        )
        .bind(stack_id)
        .bind(member.position)
        .bind(member.pull_number)
        .bind(member.parent)
        .bind(&member.built_on)
        .bind(&member.head)
        .bind(if member.merged { "merged" } else { "open" })
        .bind(pending_head)
        .bind(pending_built_on)
        .bind(pending_parent)
        .bind(member.status.as_deref())
        .execute(self.store.pool())
        .await?;
        self.touch(stack_id).await
    }

    /// Sets stack `id`'s state (and why, when paused); answers whether it
    /// was in one of `from`.
    ///
    /// Errors: the database's.
    pub async fn set_stack_state(
        &self,
        id: &str,
        from: &[StackState],
        state: StackState,
        reason: Option<&str>,
    ) -> Result<bool, Error> {
        let mut changed = false;
        for was in from {
            changed |= sqlx::query(
                "UPDATE github_stacks SET state = $3, paused_reason = $4, updated_at = $5 \
                 WHERE id = $1 AND state = $2",
            )
            .bind(id)
            .bind(was.as_str())
            .bind(state.as_str())
            .bind(reason)
            .bind(now_micros())
            .execute(self.store.pool())
            .await?
            .rows_affected()
                == 1;
        }
        Ok(changed)
    }

    /// Asks (`true`) for stack `id`'s branches to be taken as they are on
    /// GitHub at the next pass, or marks that done (`false`); answers
    /// whether the stack was active or paused.
    ///
    /// Errors: the database's.
    pub async fn request_stack_sync(&self, id: &str, requested: bool) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE github_stacks SET sync_requested = $2, updated_at = $3 \
             WHERE id = $1 AND state IN ('active', 'paused')",
        )
        .bind(id)
        .bind(i64::from(requested))
        .bind(now_micros())
        .execute(self.store.pool())
        .await?
        .rows_affected()
            == 1;
        Ok(done)
    }

    /// A person (`user` of organization `organization_id`) asks for stack
    /// `id`'s branches to be taken as they are at the next pass: the
    /// request and its audit event (`github.stack_sync_requested`)
    /// commit together or not at all. Answers whether the stack, of that
    /// organization, was active or paused (nothing is recorded when not).
    ///
    /// Errors: the database's and the audit chain's.
    pub async fn request_stack_sync_by(
        &self,
        signer: &CheckpointSigner,
        organization_id: &str,
        id: &str,
        user: &str,
    ) -> Result<bool, Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let now = now_micros();
        let done = sqlx::query(
            "UPDATE github_stacks SET sync_requested = 1, updated_at = $3 \
             WHERE id = $1 AND organization_id = $2 AND state IN ('active', 'paused')",
        )
        .bind(id)
        .bind(organization_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !done {
            return Ok(false);
        }
        let event = crate::audited::event(
            organization_id,
            (ActorType::User, user),
            "github.stack_sync_requested",
            ("github_stack", id),
            serde_json::json!({}),
            now,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, now).await?;
        Ok(true)
    }

    async fn touch(&self, id: &str) -> Result<(), Error> {
        sqlx::query("UPDATE github_stacks SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now_micros())
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    async fn with_members(&self, mut stack: GithubStack) -> Result<GithubStack, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM github_stack_members WHERE stack_id = $1 \
             ORDER BY position"
        ))
        .bind(&stack.id)
        .fetch_all(self.store.pool())
        .await?;
        stack.members = rows.iter().map(member_from).collect::<Result<_, _>>()?;
        Ok(stack)
    }
}
