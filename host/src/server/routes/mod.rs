//! HTTP handlers, one file per endpoint group.

pub mod decide;
pub mod health;
pub mod metrics;
pub mod plugins;
pub mod reload;
pub mod tasks;

use super::AppState;
use super::error::ApiError;
use crate::arbiter::Arbiter;
use axum::http::StatusCode;
use std::sync::Arc;

/// The active host, or 503 while the first policy set is still loading.
fn active(state: &AppState) -> Result<&Arc<Arbiter>, ApiError> {
    state.arbiter().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "no policy set is active yet",
        )
    })
}
