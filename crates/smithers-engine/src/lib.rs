//! The engine: what users came for — workflows run on a repository,
//! safely. Today: `smithers.toml` (the workflow file, its parser and its
//! checks), the starter files of `smithers init`, and the tools agents
//! call, carried out in a run's sandbox.

mod error;
pub mod init;
pub mod tools;
pub mod workflow;

pub use error::Error;
