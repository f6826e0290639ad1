//! An agent step: its driver set up (a script, or a model's API with its
//! key read under the run's grant and its recorded answers to replay),
//! then its turns — each model answer recorded before it is acted on,
//! each call through the kernel ([`Ctx::call`]).

use std::time::Duration;

use smithers_sandbox::Provider;
use smithers_store::{NewModelTurn, ToolCallKey};
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
        let replay: Vec<_> = self
            .engine
            .runs
            .model_turns(&self.run.id, position, attempt)
            .await?
            .into_iter()
            .map(|t| t.response)
            .collect();
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
                        response: &answer.response,
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
