//! Smithers as a GitHub App: no personal access tokens, no service
//! accounts. The App proves itself with a JWT signed by its private key
//! ([`jwt`]), acts on repositories with installation tokens minted just in
//! time and down-scoped to one operation ([`token`]), talks to GitHub's
//! REST API through one audited client ([`client`]), and takes webhooks
//! verified over their raw bytes, recorded before they are answered and
//! carried out once ([`webhooks`]).
//!
//! ```text
//!   GitHub ──webhook──▶ smithers-server ──▶ Webhooks::receive ──▶ store (delivery)
//!                                                 │
//!                                Webhooks::process (installations, repositories)
//!   GitHub ◀──REST (JWT / installation token, audited)── Github client
//! ```

mod app;
pub mod client;
mod error;
pub mod events;
mod installations;
pub mod jwt;
pub mod manifest;
pub mod mirror;
mod neutral;
mod protection;
mod pull_open;
mod pulls;
mod results;
mod schedules;
mod seats;
pub mod signature;
pub mod stack_block;
pub mod stack_plan;
mod stacks;
mod statuses;
mod sweeper;
pub mod token;
pub mod webhooks;

pub use app::{
    DEFAULT_PRIVATE_KEY_SECRET, DEFAULT_STACK_INTERVAL, DEFAULT_WEBHOOK_SECRET, GithubApp,
    GithubAppSettings,
};
pub use client::{Answer, Auth, Context, Github, PageCache, Request, RetryLimits};
pub use error::Error;
pub use jwt::AppKey;
pub use pulls::ForkSecrets;
pub use seats::SeatChanges;
pub use sweeper::Swept;
pub use token::{Access, InstallationToken, TokenScope};
pub use webhooks::{Incoming, PullSettings, Received, Webhooks};
