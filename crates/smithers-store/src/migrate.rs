//! Schema migrations, applied in order, each once, each in its own
//! transaction, recorded in `smithers_migrations`.

use sqlx::Executor;

use crate::{Backend, Error, Store};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "organizations, users, audit log",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "audit publish cursor",
        sqlite: include_str!("../migrations/sqlite/0002_publish_cursor.sql"),
        postgres: include_str!("../migrations/postgres/0002_publish_cursor.sql"),
    },
    Migration {
        version: 3,
        name: "secret versions and grants",
        sqlite: include_str!("../migrations/sqlite/0003_secrets.sql"),
        postgres: include_str!("../migrations/postgres/0003_secrets.sql"),
    },
    Migration {
        version: 4,
        name: "workflow runs, steps, logs and approvals",
        sqlite: include_str!("../migrations/sqlite/0004_runs.sql"),
        postgres: include_str!("../migrations/postgres/0004_runs.sql"),
    },
    Migration {
        version: 5,
        name: "tool calls and workspace snapshots",
        sqlite: include_str!("../migrations/sqlite/0005_tool_calls.sql"),
        postgres: include_str!("../migrations/postgres/0005_tool_calls.sql"),
    },
    Migration {
        version: 6,
        name: "model turns of agent steps",
        sqlite: include_str!("../migrations/sqlite/0006_model_turns.sql"),
        postgres: include_str!("../migrations/postgres/0006_model_turns.sql"),
    },
    Migration {
        version: 7,
        name: "organization policy versions",
        sqlite: include_str!("../migrations/sqlite/0007_policies.sql"),
        postgres: include_str!("../migrations/postgres/0007_policies.sql"),
    },
    Migration {
        version: 8,
        name: "API tokens",
        sqlite: include_str!("../migrations/sqlite/0008_api_tokens.sql"),
        postgres: include_str!("../migrations/postgres/0008_api_tokens.sql"),
    },
    Migration {
        version: 9,
        name: "run changes announced by the database",
        sqlite: include_str!("../migrations/sqlite/0009_run_changes.sql"),
        postgres: include_str!("../migrations/postgres/0009_run_changes.sql"),
    },
    Migration {
        version: 10,
        name: "sessions and sign-ins",
        sqlite: include_str!("../migrations/sqlite/0010_sessions.sql"),
        postgres: include_str!("../migrations/postgres/0010_sessions.sql"),
    },
    Migration {
        version: 11,
        name: "GitHub App deliveries, installations and repositories",
        sqlite: include_str!("../migrations/sqlite/0011_github.sql"),
        postgres: include_str!("../migrations/postgres/0011_github.sql"),
    },
    Migration {
        version: 12,
        name: "runs started by the GitHub App and their statuses",
        sqlite: include_str!("../migrations/sqlite/0012_github_runs.sql"),
        postgres: include_str!("../migrations/postgres/0012_github_runs.sql"),
    },
    Migration {
        version: 13,
        name: "GitHub organization members as users",
        sqlite: include_str!("../migrations/sqlite/0013_github_members.sql"),
        postgres: include_str!("../migrations/postgres/0013_github_members.sql"),
    },
    Migration {
        version: 14,
        name: "GitHub scheduled workflows' last firing",
        sqlite: include_str!("../migrations/sqlite/0014_github_schedules.sql"),
        postgres: include_str!("../migrations/postgres/0014_github_schedules.sql"),
    },
    Migration {
        version: 15,
        name: "chained pull requests (stacks)",
        sqlite: include_str!("../migrations/sqlite/0015_github_stacks.sql"),
        postgres: include_str!("../migrations/postgres/0015_github_stacks.sql"),
    },
    Migration {
        version: 16,
        name: "run history keys",
        sqlite: include_str!("../migrations/sqlite/0016_run_history_keys.sql"),
        postgres: include_str!("../migrations/postgres/0016_run_history_keys.sql"),
    },
    Migration {
        version: 17,
        name: "retention and prune bases",
        sqlite: include_str!("../migrations/sqlite/0017_retention.sql"),
        postgres: include_str!("../migrations/postgres/0017_retention.sql"),
    },
    Migration {
        version: 18,
        name: "audit destinations",
        sqlite: include_str!("../migrations/sqlite/0018_audit_destinations.sql"),
        postgres: include_str!("../migrations/postgres/0018_audit_destinations.sql"),
    },
    Migration {
        version: 19,
        name: "run markers set once",
        sqlite: include_str!("../migrations/sqlite/0019_run_markers.sql"),
        postgres: include_str!("../migrations/postgres/0019_run_markers.sql"),
    },
];

pub(crate) async fn apply(store: &Store) -> Result<(), Error> {
    let pool = store.pool();
    pool.execute(
        "CREATE TABLE IF NOT EXISTS smithers_migrations (\
           version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    for m in MIGRATIONS {
        let mut tx = pool.begin().await?;
        if store.backend() == Backend::Postgres {
            // Two servers starting at once apply each migration once.
            tx.execute("SELECT pg_advisory_xact_lock(7310301)").await?;
        } else {
            // Take SQLite's write lock before looking.
            tx.execute("UPDATE smithers_migrations SET version = version WHERE 0 = 1")
                .await?;
        }
        let done: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM smithers_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            tx.rollback().await?;
            continue;
        }
        let sql = match store.backend() {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        tx.execute(sql).await?;
        sqlx::query(
            "INSERT INTO smithers_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(crate::now_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    Ok(())
}
