//! `GET /metrics`: Prometheus text format.

use crate::adapters::http::AppState;
use crate::adapters::http::error::ApiError;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The handler. The policy gauges are refreshed from the active set at scrape time, so
/// they are right whichever path (API, future file watcher) swapped the set.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let metrics = state.metrics();
    if let Some(arbiter) = state.arbiter() {
        metrics.refresh_policy(&arbiter.policy_set());
    }
    let text = metrics.encode().map_err(|e| ApiError::internal(&e))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}
