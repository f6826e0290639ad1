//! What a run replays: the workflow file, the policy and the agent scripts
//! as they were when the run was created, and the commit it starts from. A
//! resumed run reads these from the store, never from the repository again
//! (which may have changed meanwhile).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use smithers_policy::PolicySet;

use crate::Error;
use crate::init::DEFAULT_POLICY;
use crate::workflow::{self, FILE_NAME, ProviderKind, StepKind, Workflow, WorkflowFile};

/// The policy name decisions cite when a workflow names none.
pub const BUILT_IN_POLICY: &str = "built-in default policy";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Definition {
    /// The text of `smithers.toml`.
    pub file: String,
    pub workflow: String,
    /// The policy's file name (or [`BUILT_IN_POLICY`]) and text.
    pub policy_name: String,
    pub policy: String,
    /// Scripted agents' scripts, by the path the workflow names.
    pub scripts: BTreeMap<String, String>,
    /// The commit the workspace is checked out at.
    pub base: String,
    /// The sandbox chosen when the run was started, over the workflow's
    /// `provider`; a resumed run (in the background too) keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderKind>,
    /// The Docker image chosen when the run was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The organization's policy in force when the run was created: it
    /// bounds `policy` for the whole run (a resumed run keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_policy: Option<OrgPolicy>,
    /// Why the run gets no secret at all, when it gets none (a pull
    /// request from a fork): a step that needs one fails, saying so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_withheld: Option<String>,
}

/// A version of an organization's policy, as a run keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrgPolicy {
    pub version: u32,
    pub text: String,
}

impl OrgPolicy {
    /// The name its decisions cite.
    pub fn name(&self) -> String {
        format!("organization policy v{}", self.version)
    }

    /// The policy, named as its decisions cite it.
    pub fn policy_set(&self) -> Result<PolicySet, Error> {
        PolicySet::parse(&self.name(), &self.text)
            .map_err(|e| Error::Invalid(format!("{}: {e}", self.name())))
    }
}

impl Definition {
    /// Reads what `workflow` of the repository at `repo` needs, from its
    /// working tree; returns it with the workflow as parsed.
    pub fn read(
        repo: &Path,
        workflow: &str,
        base: String,
    ) -> Result<(Definition, Workflow), Error> {
        Definition::read_with(
            |name| {
                let path = repo.join(name);
                std::fs::read_to_string(&path).map_err(Error::io(&path))
            },
            workflow,
            base,
        )
    }

    /// Reads what `workflow` needs through `read` (a file's text by its
    /// repository-relative path: from a working tree, or from a commit's
    /// tree); returns it with the workflow as parsed.
    pub fn read_with(
        read: impl Fn(&str) -> Result<String, Error>,
        workflow: &str,
        base: String,
    ) -> Result<(Definition, Workflow), Error> {
        let file = read(FILE_NAME)?;
        let parsed = parse_file(&file)?;
        let flow = find(&parsed, workflow)?;
        let (policy_name, policy) = match &flow.policy {
            Some(name) => (name.clone(), read(name)?),
            None => (BUILT_IN_POLICY.to_string(), DEFAULT_POLICY.to_string()),
        };
        let mut scripts = BTreeMap::new();
        for step in &flow.steps {
            if let StepKind::Agent(agent) = &step.kind
                && let Some(script) = &agent.script
            {
                scripts.insert(script.clone(), read(script)?);
            }
        }
        let definition = Definition {
            file,
            workflow: workflow.to_string(),
            policy_name,
            policy,
            scripts,
            base,
            provider: None,
            image: None,
            org_policy: None,
            secrets_withheld: None,
        };
        definition.policy_set()?;
        let flow = flow.clone();
        Ok((definition, flow))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    pub fn from_json(value: &serde_json::Value) -> Result<Definition, Error> {
        serde_json::from_value(value.clone())
            .map_err(|e| Error::Internal(format!("the run's stored definition is unreadable: {e}")))
    }

    /// The workflow the run executes.
    pub fn workflow(&self) -> Result<Workflow, Error> {
        let parsed = parse_file(&self.file)?;
        find(&parsed, &self.workflow).cloned()
    }

    /// Where the run is carried out: the provider chosen at its start, or
    /// that of `workflow` (this definition's, as parsed).
    pub fn provider_for(&self, workflow: &Workflow) -> ProviderKind {
        self.provider.unwrap_or(workflow.provider)
    }

    pub fn policy_set(&self) -> Result<PolicySet, Error> {
        PolicySet::parse(&self.policy_name, &self.policy)
            .map_err(|e| Error::Invalid(format!("{}: {e}", self.policy_name)))
    }

    /// The policies the run is decided by: the repository's, bounded by
    /// the organization's when one was in force.
    pub fn run_policy(&self) -> Result<RunPolicy, Error> {
        let org = match &self.org_policy {
            Some(o) => Some((o.version, o.policy_set()?)),
            None => None,
        };
        Ok(RunPolicy {
            repo: self.policy_set()?,
            org,
        })
    }
}

/// A run's policies: the repository's, and the organization's version that
/// bounds it.
#[derive(Debug, Clone)]
pub struct RunPolicy {
    pub repo: PolicySet,
    pub org: Option<(u32, PolicySet)>,
}

impl RunPolicy {
    /// `request` decided by both; the more restrictive holds.
    pub fn decide(&self, request: &smithers_policy::Request<'_>) -> smithers_policy::Bounded<'_> {
        smithers_policy::Bounded::decide(&self.repo, self.org.as_ref().map(|(_, p)| p), request)
    }

    /// The organization policy's version, when one bounds the run.
    pub fn org_version(&self) -> Option<u32> {
        self.org.as_ref().map(|(v, _)| *v)
    }
}

fn parse_file(text: &str) -> Result<WorkflowFile, Error> {
    workflow::parse(FILE_NAME, text).map_err(|diagnostics| {
        Error::Invalid(format!(
            "{FILE_NAME} is not valid (see `smithers workflow check`):\n{}",
            smithers_policy::render_diagnostics(&diagnostics)
        ))
    })
}

fn find<'f>(file: &'f WorkflowFile, name: &str) -> Result<&'f Workflow, Error> {
    file.get(name).ok_or_else(|| {
        let names: Vec<&str> = file.workflows.iter().map(|w| w.name.as_str()).collect();
        Error::Invalid(format!(
            "{FILE_NAME} has no workflow {name:?} (it has: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
    })
}
