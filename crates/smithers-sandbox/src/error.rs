//! The crate's one error type.

/// Everything that can go wrong creating, running or destroying a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host cannot give a guarantee the spec needs (no bubblewrap, no
    /// cgroup controller, …); the message says which and why.
    #[error("this host cannot sandbox: {0}")]
    Unsupported(String),
    /// A spec, path or argument that is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// A path that would leave the workspace.
    #[error("path {0:?} is outside the workspace")]
    Escape(String),
    #[error("no sandbox {0}")]
    NotFound(String),
    /// The Docker engine refused or failed a request.
    #[error("{context}: {source}")]
    Engine {
        context: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    pub(crate) fn engine(
        context: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> Error {
        let context = context.into();
        move |source| Error::Engine { context, source }
    }
}
