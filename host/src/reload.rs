//! Reload status: what the embedding API and the server report about policy swaps.

use crate::plugin::PluginListing;
use serde::Serialize;

/// How a reload was triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReloadTrigger {
    /// An explicit call (API, `POST /v1/reload`).
    Manual,
    /// The file watcher saw the policy files change.
    Watch,
}

/// The result of the most recent reload attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// When it finished (RFC 3339).
    pub time: String,
    /// What triggered it.
    pub trigger: ReloadTrigger,
    /// Whether a new set became active.
    pub ok: bool,
    /// The generation it produced (when ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Why it was refused (when not ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long loading took, in milliseconds.
    pub elapsed_ms: u64,
}

/// The active policy set and the last reload.
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
}
