//! `POST /v1/reload` (admin): re-read the config file and swap in a new policy set.

use super::active;
use super::plugins::PluginsResponse;
use crate::adapters::http::AppState;
use crate::adapters::http::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::sync::Arc;

/// The answer to a successful reload.
#[derive(Debug, Serialize)]
pub struct ReloadResponse {
    /// Generation before the reload.
    pub previous_generation: u64,
    /// Whether a new generation became active (`false`: the files were unchanged).
    pub changed: bool,
    /// The new set.
    #[serde(flatten)]
    pub set: PluginsResponse,
}

/// The handler. Loading compiles components, so it runs on the blocking pool; a failed
/// reload keeps the active set and answers 422 with the reason.
pub async fn reload(State(state): State<AppState>) -> Result<Json<ReloadResponse>, ApiError> {
    let arbiter = Arc::clone(active(&state)?);
    let previous_generation = arbiter.policy_set().generation();
    let worker = Arc::clone(&arbiter);
    // Counting and publishing the new set happen in the host's reload observer (see
    // `AppState::activate`), for watcher reloads too.
    let result = tokio::task::spawn_blocking(move || worker.reload_swapped())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    match result {
        Ok(swapped) => {
            let set = PluginsResponse::of(&arbiter);
            tracing::info!(generation = swapped.generation(), previous_generation, digest = %set.policy_set_digest, "reload done");
            Ok(Json(ReloadResponse {
                previous_generation,
                changed: matches!(swapped, crate::Swapped::New(_)),
                set,
            }))
        }
        Err(e) => {
            tracing::warn!(error = %e, generation = previous_generation, "reload failed; the active set keeps serving");
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "reload_failed",
                format!("reload failed; generation {previous_generation} keeps serving: {e}"),
            ))
        }
    }
}

/// `GET /v1/reload` (admin): the active generation, its digest and plugins, and the last
/// reload attempt (manual or by the file watcher) with its result or error.
pub async fn status(
    State(state): State<AppState>,
) -> Result<Json<crate::hot_swap::ReloadStatus>, ApiError> {
    active(&state)?;
    state.reload_status().map(Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "no policy set is active yet",
        )
    })
}
