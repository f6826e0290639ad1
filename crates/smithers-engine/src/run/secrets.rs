//! A workflow's secrets, released to its run: each read needs an approved
//! grant bound to the run (asked for once, granted by an admin other than
//! the run's starter through the run's approval), the value is read at the
//! moment a command starts and handed to that command's environment only,
//! and the redactor learns every value read.

use std::sync::Arc;

use serde_json::json;
use smithers_secrets::Redactor;
use smithers_store::{
    Actor, ApprovalKind, GrantBinding, GrantFilter, GrantRequest, GrantState, ReadRequest,
    SecretRef,
};

use crate::workflow::SecretRef as WorkflowSecret;

use super::gate::Answer;
use super::{Ctx, Interrupt};
use crate::Error;

/// The kind of gate that releases secrets, as approvals' details name it.
pub(crate) const SECRETS_GATE: &str = "secrets";

impl<P: smithers_sandbox::Provider> Ctx<'_, P> {
    fn actor(&self) -> Actor {
        Actor::new(&self.run.organization_id, &self.run.requested_by)
    }

    fn service(&self) -> Result<&smithers_store::Secrets, Error> {
        self.engine.secrets.as_ref().ok_or_else(|| {
            Error::Invalid(
                "this workflow names secrets and no keyring is configured (SECRET_ENCRYPTION_KEYS)"
                    .into(),
            )
        })
    }

    /// Makes sure every secret has an approved grant bound to the run,
    /// asking (through an admin-only approval of step `position`) for those
    /// that have none.
    pub(crate) async fn ensure_grants(&mut self, position: u32) -> Result<(), Interrupt> {
        if self.grants_ready || self.workflow.secrets.is_empty() {
            return Ok(());
        }
        if let Some(why) = &self.definition.secrets_withheld {
            return Err(Interrupt::Failed(Error::Invalid(format!(
                "workflow {} names secrets, and this run gets none: {why}",
                self.workflow.name
            ))));
        }
        let secrets = self.service()?.clone();
        let mut pending = Vec::new();
        for secret in &self.workflow.secrets {
            let grants = secrets
                .grants(
                    &self.run.organization_id,
                    GrantFilter {
                        environment: Some(&secret.env),
                        name: Some(&secret.name),
                        open_only: true,
                    },
                )
                .await?;
            let ours = grants.into_iter().find(|g| {
                g.run_id.as_deref() == Some(self.run.id.as_str())
                    && g.requested_by == self.run.requested_by
            });
            match ours {
                Some(g) if g.state == GrantState::Approved => {}
                Some(g) => pending.push((secret.clone(), g.id)),
                None => {
                    let grant = secrets
                        .request_grant(
                            &self.actor(),
                            &GrantRequest {
                                secret: SecretRef {
                                    environment: &secret.env,
                                    name: &secret.name,
                                },
                                binding: GrantBinding::Run(self.run.id.clone()),
                                ttl: self.workflow.timeout + std::time::Duration::from_secs(3600),
                                single_use: false,
                            },
                        )
                        .await?;
                    pending.push((secret.clone(), grant.id));
                }
            }
        }
        if !pending.is_empty() {
            let existing = self
                .earlier_gate(position, SECRETS_GATE)
                .await?
                .filter(|a| a.state == smithers_store::ApprovalState::Pending);
            let approval = match existing {
                Some(a) => a,
                None => {
                    let names: Vec<String> = pending
                        .iter()
                        .map(|(s, _)| format!("{} ({})", s.name, s.env))
                        .collect();
                    self.ask(
                        position,
                        ApprovalKind::Step,
                        true,
                        None,
                        &format!(
                            "release the secrets {} to run {} of workflow {}",
                            names.join(", "),
                            self.run.id,
                            self.workflow.name
                        ),
                        json!({
                            "gate": SECRETS_GATE,
                            "grants": pending.iter().map(|(_, id)| id).collect::<Vec<_>>(),
                        }),
                    )
                    .await?
                }
            };
            if let Answer::Rejected(why) = self.wait(&approval).await? {
                return Err(Interrupt::Failed(Error::Invalid(format!(
                    "the secrets were not released: {why}"
                ))));
            }
        }
        self.grants_ready = true;
        Ok(())
    }

    /// Reads the secrets `which` names (each read recorded) for one
    /// command or driver: the environment it gets. The redactor learns
    /// every value released to the run so far.
    pub(crate) async fn secret_env(
        &mut self,
        which: Release<'_>,
    ) -> Result<Vec<(String, String)>, Interrupt> {
        let chosen: Vec<WorkflowSecret> = self
            .workflow
            .secrets
            .iter()
            .filter(|s| match which {
                Release::All => true,
                Release::Only(names) => names.contains(&s.name),
            })
            .cloned()
            .collect();
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(why) = &self.definition.secrets_withheld {
            return Err(Interrupt::Failed(Error::Invalid(format!(
                "this run gets no secrets: {why}"
            ))));
        }
        let secrets = self.service()?.clone();
        let mut env = Vec::new();
        for secret in &chosen {
            let read = secrets
                .read(
                    &self.actor(),
                    smithers_store::SecretRef {
                        environment: &secret.env,
                        name: &secret.name,
                    },
                    &ReadRequest {
                        version: None,
                        grant_id: None,
                        run_id: Some(&self.run.id),
                    },
                )
                .await?;
            let text = std::str::from_utf8(read.value.expose())
                .map_err(|_| {
                    Error::Invalid(format!(
                        "secret {} ({}) is not text and cannot be an environment variable",
                        secret.name, secret.env
                    ))
                })?
                .to_string();
            env.push((secret.name.clone(), text));
            self.released.insert(secret.name.clone(), read.value);
        }
        let values: Vec<_> = self.released.values().cloned().collect();
        let redactor = Redactor::new(&values).map_err(|e| Error::Invalid(e.to_string()))?;
        self.redactor = Some(Arc::new(redactor));
        Ok(env)
    }
}

/// Which of a workflow's secrets a command gets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Release<'a> {
    /// Every secret the workflow lists: a `run` step's command.
    All,
    /// Only these: an agent's key for its driver, or the secrets an agent
    /// step names for its commands (none unless it names them).
    Only(&'a [String]),
}
