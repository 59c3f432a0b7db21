//! # arbiter-guest: write Arbiter policies in Rust
//!
//! A policy is a type implementing [`Policy`], exported with [`export_policy!`]:
//!
//! ```
//! use arbiter_guest::prelude::*;
//!
//! #[derive(Debug, Default, serde::Deserialize)]
//! struct Settings {
//!     #[serde(default)]
//!     blocked_tools: Vec<String>,
//! }
//!
//! struct NoBlockedTools;
//!
//! impl Policy for NoBlockedTools {
//!     type Settings = Settings;
//!
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("no-blocked-tools", "0.1.0", "scope", "denies tools on a block list")
//!     }
//!
//!     fn evaluate(settings: &Settings, action: &Action) -> Verdict {
//!         if settings.blocked_tools.iter().any(|t| t == &action.tool.name) {
//!             Verdict::deny(format!("tool `{}` is blocked", action.tool.name))
//!         } else {
//!             Verdict::abstain("tool is not blocked")
//!         }
//!     }
//! }
//!
//! arbiter_guest::export_policy!(NoBlockedTools);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2` (crate type `cdylib`); the result is
//! a component implementing the `arbiter:policy/evaluator@0.1.0` world. Test it natively
//! with [`testing`]. Authors never touch `wit-bindgen`: the generated bindings live in a
//! private module and are converted to the plain Rust types of this crate at the boundary.
//!
//! ## Verdicts stay within the contract
//!
//! The contract bounds a verdict: a reason of at most 1024 bytes, at most 16 obligations
//! and 16 labels, obligation kinds and labels of 1 to 64 bytes, details of at most 1024
//! bytes ([`bounds`] has them as constants). The host refuses a verdict past them as
//! `invalid-output`. A policy need not count: every verdict it returns goes through
//! [`bounds::enforce`] before it leaves the component (and in [`testing::run`]). A reason
//! that is too long is clipped, with `…` at the cut. Anything else past a bound makes the
//! verdict a **deny** whose reason says which bound: an obligation or a label is never
//! dropped silently, since it may be a redaction or the taint that stops a later call.
//!
//! Reasons often quote the action's input, which the agent controls. Quote it with
//! [`text::echo`], which replaces backticks and control characters and clips it, so it
//! can neither break the reason's backtick quoting nor forge a log line:
//!
//! ```
//! use arbiter_guest::prelude::*;
//! use arbiter_guest::text::echo;
//!
//! fn blocked(action: &Action) -> Verdict {
//!     Verdict::deny(format!("tool `{}` is blocked", echo(&action.tool.name, 128)))
//! }
//! ```

mod action;
pub mod bounds;
pub mod log;
mod pattern;
mod policy;
mod task_context;
pub mod testing;
pub mod text;
mod verdict;

#[doc(hidden)]
pub mod __private;

pub use action::{
    Action, Agent, Credential, HistoryEntry, PHASE_KEY, PHASE_LIST, Principal, Resource,
    Sensitivity, Task, Tool,
};
pub use pattern::ToolPattern;
#[doc(hidden)]
pub use policy::parse_settings as policy_parse_settings;
pub use policy::{PluginInfo, Policy};
pub use verdict::{Effect, Obligation, Verdict};

/// Re-exported so policy crates need not depend on `serde_json` themselves.
pub use serde_json;

/// Everything a policy usually needs, in one import.
pub mod prelude {
    pub use crate::log;
    pub use crate::{
        Action, Agent, Credential, Effect, HistoryEntry, Obligation, PluginInfo, Policy, Principal,
        Resource, Sensitivity, Task, Tool, ToolPattern, Verdict,
    };
    pub use serde_json::{Value, json};
}
