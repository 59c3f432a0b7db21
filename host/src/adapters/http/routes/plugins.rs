//! `GET /v1/plugins`: the active policy set's plugins.

use super::active;
use crate::adapters::http::AppState;
use crate::adapters::http::error::ApiError;
use crate::plugin::PluginListing;
use axum::Json;
use axum::extract::State;
use serde::Serialize;

/// One plugin with the generation it belongs to.
#[derive(Debug, Serialize)]
pub struct PluginView {
    /// Name, version, kind, digest, mode, … of the plugin.
    #[serde(flatten)]
    pub listing: PluginListing,
    /// Generation of the policy set the plugin belongs to.
    pub generation: u64,
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct PluginsResponse {
    /// Generation of the active set.
    pub generation: u64,
    /// Digest over the set's plugins and settings.
    pub policy_set_digest: String,
    /// Plugins in evaluation order.
    pub plugins: Vec<PluginView>,
}

impl PluginsResponse {
    /// The listing of `arbiter`'s active set (one consistent snapshot).
    pub fn of(arbiter: &crate::Arbiter) -> Self {
        let set = arbiter.policy_set();
        let generation = set.generation();
        Self {
            generation,
            policy_set_digest: set.digest().to_owned(),
            plugins: set
                .listings()
                .into_iter()
                .map(|listing| PluginView {
                    listing,
                    generation,
                })
                .collect(),
        }
    }
}

/// The handler.
pub async fn list(State(state): State<AppState>) -> Result<Json<PluginsResponse>, ApiError> {
    Ok(Json(PluginsResponse::of(active(&state)?)))
}
