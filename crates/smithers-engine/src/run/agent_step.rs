//! An agent step: its driver set up (a script, or a model's API with its
//! key read under the run's grant and its recorded answers to replay),
//! then its turns — each model answer recorded before it is acted on,
//! each call through the kernel ([`Ctx::call`]). Answers are sealed under
//! the run's history key, which is destroyed when the run ends.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use smithers_sandbox::Provider;
use smithers_secrets::HistoryKey;
use smithers_store::{Answer, ModelTurn, NewModelTurn, ToolCallKey};
use zeroize::Zeroizing;

use super::secrets::Release;
use super::steps::Attempt;
use super::{Ctx, Interrupt};
use crate::Error;
use crate::agent::{
    CallOutcome, CallResult, Driver, Model, ModelSetup, Script, Scripted, Turn, Wire,
};
use crate::tools::ToolCall;
use crate::workflow::{AgentStep, Driver as DriverKind};

impl<P: Provider> Ctx<'_, P> {
    /// An agent step: its driver set up, then its turns.
    pub(crate) async fn agent(
        &mut self,
        position: u32,
        attempt: u32,
        agent: &AgentStep,
        timeout: Duration,
    ) -> Result<Attempt, Interrupt> {
        let wire = match agent.driver {
            DriverKind::Scripted => {
                let name = agent.script.clone().unwrap_or_default();
                let text = self
                    .definition
                    .scripts
                    .get(&name)
                    .ok_or_else(|| Error::Invalid(format!("the run has no script {name:?}")))?;
                let mut driver = Scripted::new(Script::parse(&name, text)?);
                return self
                    .converse(&mut driver, position, attempt, agent, timeout)
                    .await;
            }
            DriverKind::OpenAi => Wire::OpenAi,
            DriverKind::Anthropic => Wire::Anthropic,
        };
        let key_name = agent
            .key
            .clone()
            .or_else(|| agent.driver.default_key().map(str::to_string))
            .unwrap_or_default();
        // The key is read like any secret of the run (under its grant,
        // audited, learnt by the redactor) and stays in this process.
        let key = self
            .secret_env(Release::Only(std::slice::from_ref(&key_name)))
            .await?
            .into_iter()
            .find(|(name, _)| *name == key_name)
            .map(|(_, value)| Zeroizing::new(value))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the {} driver's key {key_name} is not among the workflow's secrets",
                    wire.name()
                ))
            })?;
        let history = self.history_key().await?;
        let recorded = self
            .engine
            .runs
            .model_turns(&self.run.id, position, attempt)
            .await?;
        // Answers recorded plain come only from before history keys, when
        // every answer was: a plain one beside sealed ones was put there.
        if recorded
            .iter()
            .any(|t| matches!(t.response, Answer::Sealed(_)))
            && recorded
                .iter()
                .any(|t| matches!(t.response, Answer::Plain(_)))
        {
            return Err(Error::Internal(format!(
                "step {position} (attempt {attempt}) of run {} has a plain model answer among sealed ones: not replayed",
                self.run.id
            ))
            .into());
        }
        let replay = recorded
            .into_iter()
            .map(|t| open_answer(&history, t))
            .collect::<Result<Vec<_>, _>>()?;
        if !replay.is_empty() {
            self.say(
                Some(position),
                &format!(
                    "agent {}: replaying {} recorded model answer(s)",
                    agent.role,
                    replay.len()
                ),
            )
            .await?;
        }
        let setup = ModelSetup {
            wire,
            model: agent.model.clone().unwrap_or_default(),
            base_url: agent.base_url.clone(),
            key,
            role: agent.role.clone(),
            prompt: agent.prompt.clone(),
            replay,
            time: timeout.min(self.remaining()),
        };
        let mut driver = match Model::new(setup) {
            Ok(driver) => driver,
            Err(e) => return self.driver_failed(e),
        };
        self.converse(&mut driver, position, attempt, agent, timeout)
            .await
    }

    /// The driver's next turn, its answer (if it asked a model) recorded
    /// before anything is done with it. A driver's failure fails the
    /// attempt, not the run.
    async fn turn<D: Driver>(
        &mut self,
        driver: &mut D,
        position: u32,
        attempt: u32,
        agent: &AgentStep,
        last: Option<&CallResult>,
    ) -> Result<Result<Turn, Attempt>, Interrupt> {
        // A model may take minutes to answer: a cancel or the workflow's
        // deadline drops the request instead of waiting for it.
        let answered = self.watched(driver.next(last)).await?;
        let turn = match answered {
            Ok(turn) => turn,
            Err(e) => return Ok(Err(self.driver_failed(e)?)),
        };
        if let Some(answer) = driver.take_answer() {
            let item = ModelTurn::item(position, attempt, answer.turn);
            let sealed = self
                .history_key()
                .await?
                .seal(
                    &item.each_ref().map(String::as_str),
                    answer.response.to_string().as_bytes(),
                )
                .map_err(|e| Error::Internal(format!("sealing a model answer: {e}")))?;
            self.engine
                .runs
                .record_model_turn(
                    &self.run.id,
                    NewModelTurn {
                        position,
                        attempt,
                        turn: answer.turn,
                        driver: agent.driver.as_str(),
                        model: agent.model.as_deref().unwrap_or_default(),
                        sealed_response: &sealed,
                        calls: answer.calls,
                        input_tokens: answer.input_tokens,
                        output_tokens: answer.output_tokens,
                    },
                )
                .await?;
            let tokens = match (answer.input_tokens, answer.output_tokens) {
                (Some(i), Some(o)) => format!(", {i} tokens in, {o} out"),
                _ => String::new(),
            };
            self.say(
                Some(position),
                &format!(
                    "agent {}: model answer {} ({} call(s){tokens})",
                    agent.role,
                    answer.turn + 1,
                    answer.calls
                ),
            )
            .await?;
        }
        Ok(Ok(turn))
    }

    /// A driver's failure as the attempt's: a model's is the step's to
    /// report (redacted: an API may echo what it was sent), anything else
    /// stops the run.
    fn driver_failed(&self, e: Error) -> Result<Attempt, Interrupt> {
        match e {
            Error::Model(why) => Ok(Attempt::Failed {
                error: self.redact_text(&why),
                exit_code: None,
            }),
            other => Err(other.into()),
        }
    }

    /// The driver's turns, each call through [`Self::call`].
    async fn converse<D: Driver>(
        &mut self,
        driver: &mut D,
        position: u32,
        attempt: u32,
        agent: &AgentStep,
        timeout: Duration,
    ) -> Result<Attempt, Interrupt> {
        let branch = self.run_branch();
        let mut last: Option<CallResult> = None;
        // One turn past the limit: the agent may still say it is done.
        for seq in 0..=agent.max_turns {
            self.check_interrupt().await?;
            let turn = match self
                .turn(driver, position, attempt, agent, last.as_ref())
                .await?
            {
                Ok(turn) => turn,
                Err(failed) => return Ok(failed),
            };
            let (tool, arguments) = match turn {
                Turn::Done { ok: true, summary } => {
                    self.say(Some(position), &format!("agent {}: {summary}", agent.role))
                        .await?;
                    return Ok(Attempt::Succeeded);
                }
                Turn::Done { ok: false, summary } => {
                    return Ok(Attempt::Failed {
                        error: summary,
                        exit_code: None,
                    });
                }
                Turn::Call { .. } if seq == agent.max_turns => break,
                Turn::Call { tool, arguments } => (tool, arguments),
            };
            let result = match ToolCall::parse(&tool, &arguments, &branch) {
                Ok(call) => {
                    let key = ToolCallKey {
                        position,
                        attempt,
                        seq,
                    };
                    self.call(
                        key,
                        &agent.role,
                        &call,
                        timeout.min(self.remaining()),
                        Release::Only(&agent.secrets),
                    )
                    .await?
                }
                Err(e) => {
                    self.say(
                        Some(position),
                        &format!("agent {}: invalid call: {e}", agent.role),
                    )
                    .await?;
                    CallResult {
                        outcome: CallOutcome::Failed,
                        text: e.to_string(),
                    }
                }
            };
            last = Some(result);
        }
        Ok(Attempt::Failed {
            error: format!(
                "the agent used its {} turns without finishing",
                agent.max_turns
            ),
            exit_code: None,
        })
    }
}

impl<P: Provider> Ctx<'_, P> {
    /// The run's history key (made the first time): what its model answers
    /// are sealed under. A model step always has the secrets service (its
    /// API key came from it).
    async fn history_key(&mut self) -> Result<Arc<HistoryKey>, Error> {
        if let Some(key) = &self.history {
            return Ok(key.clone());
        }
        let secrets = self.engine.secrets.as_ref().ok_or_else(|| {
            Error::Unavailable(
                "a model's answers are sealed under the run's history key, and no keyring is \
                 configured (SECRET_ENCRYPTION_KEYS)"
                    .into(),
            )
        })?;
        let key = Arc::new(secrets.history_key(&self.run.id).await?);
        self.history = Some(key.clone());
        Ok(key)
    }
}

/// A recorded answer as the driver replays it: opened under the run's
/// history key, or as it was recorded before there were history keys.
fn open_answer(key: &HistoryKey, turn: ModelTurn) -> Result<Value, Error> {
    let sealed = match turn.response {
        Answer::Plain(value) => return Ok(value),
        Answer::Sealed(sealed) => sealed,
    };
    let item = ModelTurn::item(turn.position, turn.attempt, turn.turn);
    let plain = key
        .open(&item.each_ref().map(String::as_str), &sealed)
        .map_err(|e| {
            Error::Internal(format!(
                "model answer {} of step {} (attempt {}) does not open under the run's history key: {e}",
                turn.turn, turn.position, turn.attempt
            ))
        })?;
    serde_json::from_slice(&plain).map_err(|e| {
        Error::Internal(format!(
            "model answer {} of step {} (attempt {}) is not JSON: {e}",
            turn.turn, turn.position, turn.attempt
        ))
    })
}
