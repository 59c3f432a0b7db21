//! Reload status: what the embedding API and the server report about policy swaps.
//!
//! A refused hot swap must not be missable: every attempt, manual or by the file watcher,
//! is counted by trigger and result ([`ReloadStatus::counts`], and
//! `arbiter_reloads_total{trigger,result}` on the server), and the last
//! [`RECENT_RELOADS`] attempts are kept with their errors ([`ReloadStatus::recent`]).

use crate::plugin::PluginListing;
use serde::Serialize;

/// How many reload attempts [`ReloadStatus::recent`] keeps.
pub const RECENT_RELOADS: usize = 16;

/// How a reload was triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReloadTrigger {
    /// An explicit call (API, `POST /v1/reload`).
    Manual,
    /// The file watcher saw the policy files change.
    Watch,
}

impl ReloadTrigger {
    /// The word used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Watch => "watch",
        }
    }
}

/// What a reload attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReloadResult {
    /// A new policy set (the next generation) became active.
    Success,
    /// Every file's content was as the active set was loaded from: no new generation.
    Unchanged,
    /// The new files were refused (or the reload exceeded its deadline); the active set
    /// keeps serving.
    Failure,
}

impl ReloadResult {
    /// Every result, in a fixed order (metrics pre-create their series from it).
    pub const ALL: [Self; 3] = [Self::Success, Self::Unchanged, Self::Failure];

    /// The word used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Unchanged => "unchanged",
            Self::Failure => "failure",
        }
    }
}

/// One reload attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// When it finished (RFC 3339).
    pub time: String,
    /// What triggered it.
    pub trigger: ReloadTrigger,
    /// What it did.
    pub result: ReloadResult,
    /// Whether the active set is the one the files describe (`success` or `unchanged`).
    pub ok: bool,
    /// The active generation after the attempt (when ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Why it was refused (when not ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long loading took, in milliseconds.
    pub elapsed_ms: u64,
}

/// How many attempts had one trigger and result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadCount {
    /// The trigger.
    pub trigger: ReloadTrigger,
    /// The result.
    pub result: ReloadResult,
    /// Attempts since the host started.
    pub count: u64,
}

/// The active policy set and the reload attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadStatus {
    /// Active generation.
    pub generation: u64,
    /// Digest over the active set's plugins, module digests and settings.
    pub policy_digest: String,
    /// Active plugins.
    pub plugins: Vec<PluginListing>,
    /// The most recent reload attempt, if any.
    pub last: Option<ReloadReport>,
    /// The last [`RECENT_RELOADS`] attempts, newest first.
    pub recent: Vec<ReloadReport>,
    /// Attempts since start by trigger and result (every combination, zeros included).
    pub counts: Vec<ReloadCount>,
}
