//! Workflow runs, their steps and their logs. A run is a row before it is
//! an action: every state change commits together with its audit event,
//! compared against the state it expects (so two processes cannot both
//! start a step), before the caller does what the state announces.

use std::sync::Arc;

use serde_json::Value;
use smithers_audit::{ActorType, AuditEvent, CheckpointSigner};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Error, Store, now_micros};

macro_rules! states {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? } finished: [$($done:ident),*]) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// A state nothing leaves.
            pub fn is_finished(self) -> bool {
                matches!(self, $($name::$done)|*)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

states! {
    /// queued → running ⇄ waiting_approval → succeeded | failed | cancelled | timed_out
    RunState {
        Queued = "queued",
        Running = "running",
        WaitingApproval = "waiting_approval",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        TimedOut = "timed_out",
    }
    finished: [Succeeded, Failed, Cancelled, TimedOut]
}

states! {
    /// pending → running ⇄ waiting_approval → succeeded | failed | skipped | cancelled | timed_out
    StepState {
        Pending = "pending",
        Running = "running",
        WaitingApproval = "waiting_approval",
        Succeeded = "succeeded",
        Failed = "failed",
        Skipped = "skipped",
        Cancelled = "cancelled",
        TimedOut = "timed_out",
    }
    finished: [Succeeded, Failed, Skipped, Cancelled, TimedOut]
}

/// Where a line of a run's log came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
    /// What Smithers says of the run (decisions, transitions).
    Smithers,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::Smithers => "smithers",
        }
    }

    fn parse(text: &str) -> Option<LogStream> {
        match text {
            "stdout" => Some(LogStream::Stdout),
            "stderr" => Some(LogStream::Stderr),
            "smithers" => Some(LogStream::Smithers),
            _ => None,
        }
    }
}

/// What a new run is.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub organization_id: &'a str,
    pub workflow: &'a str,
    /// Where the repository is (a path or a URL).
    pub repository: &'a str,
    pub trigger: &'a str,
    /// The workflow as it is now, replayed by a resumed run.
    pub definition: Value,
    pub requested_by: &'a str,
    /// (step id, kind), in order.
    pub steps: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: String,
    pub organization_id: String,
    pub workflow: String,
    pub repository: String,
    pub trigger: String,
    pub definition: Value,
    pub requested_by: String,
    pub state: RunState,
    pub owner: Option<String>,
    pub error: Option<String>,
    /// Microseconds since the epoch.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub deadline_at: Option<i64>,
    pub purge: Option<Value>,
    /// When its model history was destroyed (when it ended).
    pub history_destroyed_at: Option<i64>,
    /// When retention dropped its log and its tool calls' outputs.
    pub logs_dropped_at: Option<i64>,
}

/// What dropping run logs took (or would take): finished runs, their log
/// lines, and their tool calls' outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogsDropped {
    pub runs: u64,
    pub lines: u64,
    pub outputs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStep {
    pub position: u32,
    pub step_id: String,
    pub kind: String,
    pub state: StepState,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub seq: u64,
    pub position: Option<u32>,
    pub stream: LogStream,
    pub at: i64,
    pub text: String,
}

/// How a step's state changes.
#[derive(Debug, Clone, Default)]
pub struct StepUpdate<'a> {
    /// Counts an attempt (entering `running`).
    pub attempt: bool,
    pub exit_code: Option<i32>,
    pub error: Option<&'a str>,
    /// What the audit event adds (a decision, a command, a duration).
    pub details: Option<Value>,
}

type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The runs of every organization in one store.
#[derive(Clone)]
pub struct Runs {
    store: Store,
    signer: Arc<CheckpointSigner>,
    clock: Clock,
}

const RUN_COLUMNS: &str = "id, organization_id, workflow, repository, trigger, definition, \
     requested_by, state, owner, error, created_at, started_at, finished_at, deadline_at, purge, \
     history_destroyed_at, logs_dropped_at";
const STEP_COLUMNS: &str =
    "position, step_id, kind, state, attempts, exit_code, error, started_at, finished_at";

fn corrupt(detail: impl Into<String>) -> Error {
    Error::Corrupt {
        table: "runs",
        detail: detail.into(),
    }
}

fn json_column(row: &AnyRow, column: &str) -> Result<Option<Value>, Error> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(format!("{column}: {e}"))))
        .transpose()
}

fn run_from(row: &AnyRow) -> Result<Run, Error> {
    let state: String = row.try_get("state")?;
    Ok(Run {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        workflow: row.try_get("workflow")?,
        repository: row.try_get("repository")?,
        trigger: row.try_get("trigger")?,
        definition: json_column(row, "definition")?.unwrap_or(Value::Null),
        requested_by: row.try_get("requested_by")?,
        state: RunState::parse(&state).ok_or_else(|| corrupt(format!("state {state:?}")))?,
        owner: row.try_get("owner")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        deadline_at: row.try_get("deadline_at")?,
        purge: json_column(row, "purge")?,
        history_destroyed_at: row.try_get("history_destroyed_at")?,
        logs_dropped_at: row.try_get("logs_dropped_at")?,
    })
}

fn small(n: i64, what: &str) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| corrupt(format!("{what} {n} is out of range")))
}

fn step_from(row: &AnyRow) -> Result<RunStep, Error> {
    let state: String = row.try_get("state")?;
    let exit_code: Option<i64> = row.try_get("exit_code")?;
    Ok(RunStep {
        position: small(row.try_get("position")?, "position")?,
        step_id: row.try_get("step_id")?,
        kind: row.try_get("kind")?,
        state: StepState::parse(&state).ok_or_else(|| corrupt(format!("step state {state:?}")))?,
        attempts: small(row.try_get("attempts")?, "attempts")?,
        exit_code: exit_code
            .map(|c| i32::try_from(c).map_err(|_| corrupt(format!("exit code {c}"))))
            .transpose()?,
        error: row.try_get("error")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// `'a', 'b'`: states as an SQL list.
/// Which runs [`Runs::find`] returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFilter<'a> {
    /// Only unfinished runs.
    pub active: bool,
    pub state: Option<RunState>,
    pub workflow: Option<&'a str>,
    /// The repository as recorded (the checkout's path).
    pub repository: Option<&'a str>,
    /// Who started them.
    pub requested_by: Option<&'a str>,
    /// Only runs after this one in the order (its creation time in
    /// microseconds, its id): the last of the previous page.
    pub before: Option<(i64, &'a str)>,
    pub limit: u32,
}

pub(crate) fn states_list<T: Copy>(states: &[T], text: impl Fn(T) -> &'static str) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", text(*s)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a or b`: the states a change expected, for its conflict message.
pub(crate) fn either<T: Copy>(states: &[T], text: impl Fn(T) -> &'static str) -> String {
    states
        .iter()
        .map(|s| text(*s))
        .collect::<Vec<_>>()
        .join(" or ")
}

impl Runs {
    pub fn new(store: Store, signer: Arc<CheckpointSigner>) -> Runs {
        Runs {
            store,
            signer,
            clock: Arc::new(now_micros),
        }
    }

    /// Replaces the clock (microseconds since the epoch).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Runs {
        self.clock = Arc::new(clock);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The time by the clock the runs are stamped with.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    pub(crate) fn signer(&self) -> &CheckpointSigner {
        &self.signer
    }

    fn event(
        &self,
        organization_id: &str,
        actor: (ActorType, &str),
        action: &str,
        resource: (&str, &str),
        details: Value,
    ) -> AuditEvent {
        crate::audited::event(
            organization_id,
            actor,
            action,
            resource,
            details,
            self.now(),
        )
    }

    /// The organization a run belongs to (without reading the whole run).
    pub(crate) async fn organization_of(&self, id: &str) -> Result<String, Error> {
        sqlx::query("SELECT organization_id FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?
            .map(|row| row.try_get("organization_id"))
            .transpose()?
            .ok_or_else(|| Error::NotFound(format!("no run {id}")))
    }

    /// Records a new run (queued) and its steps (pending): `run.created`.
    pub async fn create(&self, new: NewRun<'_>) -> Result<Run, Error> {
        if new.steps.is_empty() {
            return Err(Error::Invalid("a run needs at least one step".into()));
        }
        let run = Run {
            id: uuid::Uuid::now_v7().to_string(),
            organization_id: new.organization_id.to_string(),
            workflow: new.workflow.to_string(),
            repository: new.repository.to_string(),
            trigger: new.trigger.to_string(),
            definition: new.definition,
            requested_by: new.requested_by.to_string(),
            state: RunState::Queued,
            owner: None,
            error: None,
            created_at: self.now(),
            started_at: None,
            finished_at: None,
            deadline_at: None,
            purge: None,
            history_destroyed_at: None,
            logs_dropped_at: None,
        };
        let (mut tx, chain) = crate::audited::begin(&self.store, &run.organization_id).await?;
        sqlx::query(&format!(
            "INSERT INTO runs ({RUN_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9, NULL, NULL, NULL, NULL, NULL, NULL)"
        ))
        .bind(&run.id)
        .bind(&run.organization_id)
        .bind(&run.workflow)
        .bind(&run.repository)
        .bind(&run.trigger)
        .bind(run.definition.to_string())
        .bind(&run.requested_by)
        .bind(run.state.as_str())
        .bind(run.created_at)
        .execute(&mut *tx)
        .await?;
        for (position, (step_id, kind)) in new.steps.iter().enumerate() {
            sqlx::query(
                "INSERT INTO run_steps (run_id, position, step_id, kind, state, attempts) \
                 VALUES ($1, $2, $3, $4, 'pending', 0)",
            )
            .bind(&run.id)
            .bind(i64::try_from(position).map_err(|_| Error::Invalid("too many steps".into()))?)
            .bind(step_id)
            .bind(kind)
            .execute(&mut *tx)
            .await?;
        }
        let event = self.event(
            &run.organization_id,
            (ActorType::User, &run.requested_by),
            "run.created",
            ("run", &run.id),
            serde_json::json!({
                "workflow": run.workflow,
                "repository": run.repository,
                "trigger": run.trigger,
                "steps": new.steps.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            }),
        );
        crate::audited::commit(
            &self.store,
            tx,
            chain,
            vec![event],
            &self.signer,
            self.now(),
        )
        .await?;
        Ok(run)
    }

    /// Where a run stands (without reading the whole run).
    pub async fn state(&self, id: &str) -> Result<RunState, Error> {
        let state: String = sqlx::query("SELECT state FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?
            .ok_or_else(|| Error::NotFound(format!("no run {id}")))?
            .try_get("state")?;
        RunState::parse(&state).ok_or_else(|| corrupt(format!("state {state:?}")))
    }

    pub async fn get(&self, id: &str) -> Result<Run, Error> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?
            .ok_or_else(|| Error::NotFound(format!("no run {id}")))?;
        run_from(&row)
    }

    pub async fn steps(&self, id: &str) -> Result<Vec<RunStep>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM run_steps WHERE run_id = $1 ORDER BY position"
        ))
        .bind(id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(step_from).collect()
    }

    /// The organization's runs, newest first; only unfinished ones with `active`.
    pub async fn list(
        &self,
        organization_id: &str,
        active: bool,
        limit: u32,
    ) -> Result<Vec<Run>, Error> {
        self.find(
            organization_id,
            &RunFilter {
                active,
                limit,
                ..RunFilter::default()
            },
        )
        .await
    }

    /// The organization's runs that pass `filter`, newest first (by
    /// creation time, then id): at most `filter.limit`, starting after
    /// `filter.before` (keyset pagination: a page does not shift when runs
    /// are added).
    pub async fn find(
        &self,
        organization_id: &str,
        filter: &RunFilter<'_>,
    ) -> Result<Vec<Run>, Error> {
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE organization_id = $1");
        if filter.active {
            sql.push_str(&format!(
                " AND state NOT IN ({})",
                states_list(
                    &RunState::ALL
                        .iter()
                        .copied()
                        .filter(|s| s.is_finished())
                        .collect::<Vec<_>>(),
                    RunState::as_str
                )
            ));
        }
        // Every other condition is bound; `$n` numbered as they come.
        let mut n = 1;
        let mut condition = |column: &str, value: Option<&str>| {
            value.map(|_| {
                n += 1;
                format!(" AND {column} = ${n}")
            })
        };
        let state = filter.state.map(RunState::as_str);
        for (column, value) in [
            ("state", state),
            ("workflow", filter.workflow),
            ("repository", filter.repository),
            ("requested_by", filter.requested_by),
        ] {
            if let Some(c) = condition(column, value) {
                sql.push_str(&c);
            }
        }
        if filter.before.is_some() {
            sql.push_str(&format!(
                " AND (created_at < ${} OR (created_at = ${} AND id < ${}))",
                n + 1,
                n + 1,
                n + 2
            ));
        }
        sql.push_str(&format!(
            " ORDER BY created_at DESC, id DESC LIMIT ${}",
            n + 1 + 2 * usize::from(filter.before.is_some())
        ));
        let mut query = sqlx::query(&sql).bind(organization_id);
        for value in [
            state,
            filter.workflow,
            filter.repository,
            filter.requested_by,
        ]
        .into_iter()
        .flatten()
        {
            query = query.bind(value);
        }
        if let Some((created_at, id)) = filter.before {
            query = query.bind(created_at).bind(id);
        }
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(run_from).collect()
    }

    /// Moves the run from one of `from` to `to` (with `owner` the process
    /// that now executes it, when given), recording `run.<to>` — or
    /// `run.resumed` when a running run changes hands, `run.held` when a
    /// queued one is taken to be carried out. A run in another
    /// state is a [`Error::Conflict`].
    pub async fn transition(
        &self,
        id: &str,
        from: &[RunState],
        to: RunState,
        owner: Option<&str>,
        error: Option<&str>,
        details: Value,
    ) -> Result<Run, Error> {
        let organization_id = self.organization_of(id).await?;
        let (mut tx, chain) = crate::audited::begin(&self.store, &organization_id).await?;
        let now = self.now();
        let current: String = sqlx::query("SELECT state FROM runs WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("state")?;
        let current =
            RunState::parse(&current).ok_or_else(|| corrupt(format!("state {current:?}")))?;
        if !from.contains(&current) {
            return Err(Error::Conflict(format!(
                "run {id} is {current}, not {}",
                either(from, RunState::as_str)
            )));
        }
        sqlx::query(
            "UPDATE runs SET state = $2, owner = COALESCE($3, owner), \
               error = COALESCE($4, error), \
               started_at = CASE WHEN $2 = 'running' THEN COALESCE(started_at, $5) ELSE started_at END, \
               finished_at = CASE WHEN $6 = 1 THEN $5 ELSE finished_at END, \
               history_destroyed_at = CASE WHEN $6 = 1 THEN $5 ELSE history_destroyed_at END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(to.as_str())
        .bind(owner)
        .bind(error)
        .bind(now)
        .bind(i64::from(to.is_finished()))
        .execute(&mut *tx)
        .await?;
        let mut events = Vec::with_capacity(2);
        let action = if current == RunState::Queued && to == RunState::Queued {
            "run.held".to_string()
        } else if current == RunState::Running && to == RunState::Running {
            "run.resumed".to_string()
        } else if current == RunState::WaitingApproval && to == RunState::Running {
            "run.continued".to_string()
        } else {
            format!("run.{to}")
        };
        let mut details = match details {
            Value::Object(map) => map,
            Value::Null => serde_json::Map::new(),
            other => serde_json::Map::from_iter([("details".to_string(), other)]),
        };
        details.insert("from".into(), current.as_str().into());
        details.insert("to".into(), to.as_str().into());
        if let Some(error) = error {
            details.insert("error".into(), error.into());
        }
        events.push(self.event(
            &organization_id,
            (ActorType::System, "engine"),
            &action,
            ("run", id),
            Value::Object(details),
        ));
        if to.is_finished() && !current.is_finished() {
            events.push(self.destroy_history(&mut tx, &organization_id, id).await?);
        }
        crate::audited::commit(&self.store, tx, chain, events, &self.signer, now).await?;
        self.store.announce(id);
        self.get(id).await
    }

    /// Destroys the model history of `organization_id`'s runs that ended
    /// without it being destroyed — runs that finished before history
    /// keys existed, whose answers were recorded plain — each in its own
    /// transaction with its `run.history_destroyed`. How many.
    pub async fn destroy_leftover_histories(&self, organization_id: &str) -> Result<u64, Error> {
        let ids: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM runs WHERE organization_id = $1 AND history_destroyed_at IS NULL \
               AND state IN ('succeeded', 'failed', 'cancelled', 'timed_out') ORDER BY id",
        )
        .bind(organization_id)
        .fetch_all(self.store.pool())
        .await?;
        let mut destroyed = 0;
        for (id,) in ids {
            let (mut tx, chain) = crate::audited::begin(&self.store, organization_id).await?;
            let now = self.now();
            let marked = sqlx::query(
                "UPDATE runs SET history_destroyed_at = $2 \
                 WHERE id = $1 AND history_destroyed_at IS NULL",
            )
            .bind(&id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if marked == 0 {
                tx.rollback().await?;
                continue;
            }
            let event = self.destroy_history(&mut tx, organization_id, &id).await?;
            crate::audited::commit(&self.store, tx, chain, vec![event], &self.signer, now).await?;
            destroyed += 1;
        }
        Ok(destroyed)
    }

    /// Inside the transaction that ends run `id` (which has set its
    /// `history_destroyed_at`): deletes its history key, so its sealed
    /// model answers open no more, and any answer recorded plain before
    /// history keys existed. The `run.history_destroyed` event says what
    /// went, with what the sandbox's purge found of the workspace and
    /// source.
    async fn destroy_history(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        organization_id: &str,
        id: &str,
    ) -> Result<AuditEvent, Error> {
        let key = sqlx::query("DELETE FROM run_history_keys WHERE run_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        let (sealed,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM model_turns WHERE run_id = $1 AND sealed_response IS NOT NULL",
        )
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
        let plain =
            sqlx::query("DELETE FROM model_turns WHERE run_id = $1 AND sealed_response IS NULL")
                .bind(id)
                .execute(&mut **tx)
                .await?
                .rows_affected();
        let purge: Option<String> = sqlx::query("SELECT purge FROM runs WHERE id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?
            .try_get("purge")?;
        let workspace = purge
            .as_deref()
            .map(serde_json::from_str::<Value>)
            .transpose()
            .map_err(|e| corrupt(format!("purge: {e}")))?;
        Ok(self.event(
            organization_id,
            (ActorType::System, "engine"),
            "run.history_destroyed",
            ("run", id),
            serde_json::json!({
                "key_destroyed": key > 0,
                "sealed_answers": sealed,
                "plain_answers_deleted": plain,
                // The workspace (with the repository's source) went with
                // the sandbox, before the run ended: what its purge found.
                "workspace": workspace,
            }),
        ))
    }

    /// Retention of run logs: the runs of `organization_id` that finished
    /// before `before` (microseconds since the epoch) lose their log lines
    /// and their tool calls' outputs for good — what the run was, its
    /// steps, its calls' decisions and its approvals stay. Marks each such
    /// run (`logs_dropped_at`, which is also what lets the tables' triggers
    /// allow it) and records `retention.logs_dropped` (runs, lines,
    /// outputs, before) in the same transaction. With `dry_run`, counts
    /// what would go and changes nothing.
    pub async fn drop_logs(
        &self,
        organization_id: &str,
        before: i64,
        dry_run: bool,
    ) -> Result<LogsDropped, Error> {
        const DUE: &str = "SELECT id FROM runs WHERE organization_id = $1 AND finished_at < $2 \
                           AND logs_dropped_at IS NULL";
        let (mut tx, chain) = crate::audited::begin(&self.store, organization_id).await?;
        let mut counts = [0i64; 3];
        let queries = [
            format!("SELECT COUNT(*) FROM ({DUE}) due"),
            format!("SELECT COUNT(*) FROM run_log WHERE run_id IN ({DUE})"),
            format!(
                "SELECT COUNT(*) FROM tool_calls WHERE output IS NOT NULL AND run_id IN ({DUE})"
            ),
        ];
        for (n, sql) in counts.iter_mut().zip(&queries) {
            (*n,) = sqlx::query_as::<_, (i64,)>(sql)
                .bind(organization_id)
                .bind(before)
                .fetch_one(&mut *tx)
                .await?;
        }
        let [runs, lines, outputs] = counts;
        let dropped = LogsDropped {
            runs: u64::try_from(runs).unwrap_or(0),
            lines: u64::try_from(lines).unwrap_or(0),
            outputs: u64::try_from(outputs).unwrap_or(0),
        };
        if dry_run || dropped.runs == 0 {
            tx.rollback().await?;
            return Ok(dropped);
        }
        let now = self.now();
        // Marked first: the triggers allow the deletes below only for
        // marked runs. The marker is this pass's own time, so only the
        // runs it marks are touched.
        sqlx::query(&format!(
            "UPDATE runs SET logs_dropped_at = $3 WHERE id IN ({DUE})"
        ))
        .bind(organization_id)
        .bind(before)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        const MARKED: &str =
            "SELECT id FROM runs WHERE organization_id = $1 AND logs_dropped_at = $2";
        sqlx::query(&format!("DELETE FROM run_log WHERE run_id IN ({MARKED})"))
            .bind(organization_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "UPDATE tool_calls SET output = NULL WHERE output IS NOT NULL AND run_id IN ({MARKED})"
        ))
        .bind(organization_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let event = self.event(
            organization_id,
            (ActorType::System, "retention"),
            "retention.logs_dropped",
            ("organization", organization_id),
            serde_json::json!({
                "runs": dropped.runs,
                "lines": dropped.lines,
                "outputs": dropped.outputs,
                "before": before,
            }),
        );
        crate::audited::commit(&self.store, tx, chain, vec![event], &self.signer, now).await?;
        Ok(dropped)
    }

    /// Records what the sandbox's purge found, before the run finishes.
    pub async fn record_purge(&self, id: &str, purge: &Value) -> Result<(), Error> {
        let done = sqlx::query("UPDATE runs SET purge = $2 WHERE id = $1")
            .bind(id)
            .bind(purge.to_string())
            .execute(self.store.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("no run {id}")));
        }
        Ok(())
    }

    /// Moves a step from one of `from` to `to`, recording `step.<to>`.
    pub async fn step_transition(
        &self,
        id: &str,
        position: u32,
        from: &[StepState],
        to: StepState,
        update: StepUpdate<'_>,
    ) -> Result<RunStep, Error> {
        let organization_id = self.organization_of(id).await?;
        let (mut tx, chain) = crate::audited::begin(&self.store, &organization_id).await?;
        let now = self.now();
        let row = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM run_steps WHERE run_id = $1 AND position = $2"
        ))
        .bind(id)
        .bind(i64::from(position))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("run {id} has no step {position}")))?;
        let step = step_from(&row)?;
        if !from.contains(&step.state) {
            return Err(Error::Conflict(format!(
                "step {} of run {id} is {}, not {}",
                step.step_id,
                step.state,
                either(from, StepState::as_str)
            )));
        }
        sqlx::query(
            "UPDATE run_steps SET state = $3, attempts = attempts + $4, \
               exit_code = COALESCE($5, exit_code), error = COALESCE($6, error), \
               started_at = CASE WHEN $3 = 'running' THEN COALESCE(started_at, $7) ELSE started_at END, \
               finished_at = CASE WHEN $8 = 1 THEN $7 ELSE finished_at END \
             WHERE run_id = $1 AND position = $2",
        )
        .bind(id)
        .bind(i64::from(position))
        .bind(to.as_str())
        .bind(i64::from(update.attempt))
        .bind(update.exit_code.map(i64::from))
        .bind(update.error)
        .bind(now)
        .bind(i64::from(to.is_finished()))
        .execute(&mut *tx)
        .await?;
        let mut details = match update.details {
            Some(Value::Object(map)) => map,
            Some(other) => serde_json::Map::from_iter([("details".to_string(), other)]),
            None => serde_json::Map::new(),
        };
        details.insert("run".into(), id.into());
        details.insert("step".into(), step.step_id.clone().into());
        details.insert("from".into(), step.state.as_str().into());
        if let Some(code) = update.exit_code {
            details.insert("exit_code".into(), code.into());
        }
        if let Some(error) = update.error {
            details.insert("error".into(), error.into());
        }
        let event = self.event(
            &organization_id,
            (ActorType::System, "engine"),
            &format!("step.{to}"),
            ("step", &format!("{id}/{}", step.step_id)),
            Value::Object(details),
        );
        crate::audited::commit(&self.store, tx, chain, vec![event], &self.signer, now).await?;
        self.store.announce(id);
        let row = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM run_steps WHERE run_id = $1 AND position = $2"
        ))
        .bind(id)
        .bind(i64::from(position))
        .fetch_one(self.store.pool())
        .await?;
        step_from(&row)
    }

    /// Appends a line (already redacted) to the run's log; returns its number.
    pub async fn log(
        &self,
        id: &str,
        position: Option<u32>,
        stream: LogStream,
        text: &str,
    ) -> Result<u64, Error> {
        let mut tx = self.store.pool().begin().await?;
        // One writer per run at a time numbers the lines: lock the run's row
        // (and, in SQLite, take the write lock) before reading the last number.
        let locked = sqlx::query("UPDATE runs SET owner = owner WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() == 0 {
            return Err(Error::NotFound(format!("no run {id}")));
        }
        let next: i64 =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM run_log WHERE run_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("next")?;
        sqlx::query(
            "INSERT INTO run_log (run_id, seq, position, stream, at, text) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(next)
        .bind(position.map(i64::from))
        .bind(stream.as_str())
        .bind(self.now())
        .bind(text)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.store.announce(id);
        u64::try_from(next).map_err(|_| corrupt("log sequence"))
    }

    /// The log lines after `after`, in order, at most `limit`.
    pub async fn logs(&self, id: &str, after: u64, limit: u32) -> Result<Vec<LogLine>, Error> {
        let rows = sqlx::query(
            "SELECT seq, position, stream, at, text FROM run_log \
             WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(id)
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let stream: String = row.try_get("stream")?;
                let position: Option<i64> = row.try_get("position")?;
                let seq: i64 = row.try_get("seq")?;
                Ok(LogLine {
                    seq: u64::try_from(seq).map_err(|_| corrupt("log sequence"))?,
                    position: position.map(|p| small(p, "position")).transpose()?,
                    stream: LogStream::parse(&stream)
                        .ok_or_else(|| corrupt(format!("log stream {stream:?}")))?,
                    at: row.try_get("at")?,
                    text: row.try_get("text")?,
                })
            })
            .collect()
    }
}
