//! # arbiter-host
//!
//! Arbiter runs every action an AI agent is about to take through sandboxed WebAssembly
//! policy plugins (components implementing `arbiter:policy/evaluator@0.1.0`) and combines
//! their verdicts into `allow`, `deny` or `step-up`, failing closed.
//!
//! ```no_run
//! use arbiter_host::{Action, Arbiter};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let arbiter = Arbiter::from_config_file("arbiter.toml".as_ref())?;
//! let decision = arbiter.decide_json(r#"{
//!     "request_id": "req-1",
//!     "agent": {"id": "spiffe://example.org/agent/bot"},
//!     "tool": {"server": "fs", "name": "read_file"},
//!     "arguments": {"path": "/repo/README.md"}
//! }"#)?;
//! println!("{}", serde_json::to_string_pretty(&decision)?);
//! # Ok(()) }
//! ```
//!
//! Modules, one concept each: [`config`] (the TOML file), [`action`] (the input),
//! [`decision`] (the output), [`combine`] (how verdicts combine), [`sandbox`] (what a
//! plugin may do), [`instance_pool`] (the isolation scheme), [`plugin`] (loading and
//! evaluating one plugin), [`policy_set`] (an immutable generation of plugins),
//! [`history`] (task history), [`arbiter`] (the embedding API), [`trust`] (trusted
//! keys), [`signature`] (the `.sig` format, signing), [`verified`] (the signature gate
//! every module passes before it is compiled).
//! [`history`] (task history), [`arbiter`] (the embedding API), [`server`] (the HTTP
//! decision server).

pub mod action;
pub mod arbiter;
pub mod artifact_cache;
mod bindings;
pub mod cli;
pub mod combine;
pub mod config;
pub mod decision;
pub mod engine;
pub mod error;
pub mod file_read;
pub mod history;
pub mod instance_pool;
pub mod plugin;
pub mod policy_set;
pub mod prewarm;
pub mod reload;
pub mod sandbox;
pub mod server;
pub mod signature;
pub mod task_store;
pub mod trust;
pub mod verified;
pub mod watcher;

pub use action::{Action, ActionError};
pub use arbiter::Arbiter;
pub use config::{Config, ConfigError};
pub use decision::{Decision, DecisionEffect, Effect, Outcome, PluginEntry};
pub use error::LoadError;
pub use plugin::PluginListing;
pub use trust::{TrustPolicy, TrustStore};
pub use verified::{SignatureStatus, VerifiedModule, verify_module};
