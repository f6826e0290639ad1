//! The engine: what users came for — workflows run on a repository,
//! safely. Today: `smithers.toml` (the workflow file, its parser and its
//! checks) and the starter files of `smithers init`.

mod error;
pub mod init;
pub mod workflow;

pub use error::Error;
