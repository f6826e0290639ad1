//! The crate's one error type.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What was asked cannot be: a bad workflow, repository or argument.
    #[error("{0}")]
    Invalid(String),
    /// The run is in another's hands: another live process carries it out.
    #[error("{0}")]
    Conflict(String),
    /// Something that needs configuring is not (the keyring).
    #[error("{0}")]
    Unavailable(String),
    /// Smithers' own failure: a background task that stopped, a stored
    /// record that no longer reads.
    #[error("{0}")]
    Internal(String),
    /// Files that would be overwritten.
    #[error("{} already exist{}", .0.join(", "), if .0.len() == 1 { "s" } else { "" })]
    Exists(Vec<String>),
    /// A tool call that cannot be carried out as asked (the agent reads why).
    #[error("{0}")]
    Tool(String),
    /// A model's API failed or answered something unusable (the step
    /// fails with this, and may be retried).
    #[error("{0}")]
    Model(String),
    #[error(transparent)]
    Sandbox(#[from] smithers_sandbox::Error),
    #[error(transparent)]
    Store(#[from] smithers_store::Error),
    /// A git command on the host side failed.
    #[error("{0}")]
    Git(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.display().to_string();
        move |source| Error::Io { path, source }
    }
}
