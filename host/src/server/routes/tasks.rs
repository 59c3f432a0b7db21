//! `POST /v1/tasks/{id}/end` (admin): revoke a task.

use super::active;
use crate::action::MAX_FIELD_BYTES;
use crate::server::AppState;
use crate::server::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// The handler: every later action of the task is denied with a reason saying that the
/// task has ended. Idempotent.
pub async fn end(
    State(state): State<AppState>,
    Path(task_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if task_id.trim().is_empty() || task_id.len() > MAX_FIELD_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_task_id",
            format!("expected a non-empty task id of at most {MAX_FIELD_BYTES} bytes"),
        )
        .with_field("id"));
    }
    active(&state)?.end_task(&task_id);
    tracing::info!(task_id = %task_id, "task ended");
    Ok(Json(json!({"task_id": task_id, "ended": true})))
}
