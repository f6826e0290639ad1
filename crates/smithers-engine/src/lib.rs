//! The engine: what users came for — workflows run on a repository,
//! safely. Today: `smithers.toml` (the workflow file, its parser and its
//! checks), the starter files of `smithers init`, the tools agents call
//! (carried out in a run's sandbox), agent drivers, and the durable run
//! executor that ties the kernel, the store, secrets and the sandbox
//! together.

pub mod agent;
mod error;
pub mod init;
pub mod run;
pub mod tools;
pub mod workflow;

pub use error::Error;
