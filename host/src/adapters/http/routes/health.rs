//! `GET /healthz` (the process answers) and `GET /readyz` (it can decide).

use crate::adapters::http::AppState;
use crate::task::StoreError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

/// Liveness: always 200 while the process serves.
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 200 only with an active (loaded and verified) policy set, not while
/// shutting down, and not when strict logging cannot write (every decision would be a
/// deny).
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let log_ok = state.decision_log().is_healthy();
    let log_word = if log_ok { "ok" } else { "failing" };
    if state.is_draining() {
        return not_ready("shutting down", log_word);
    }
    let Some(arbiter) = state.arbiter() else {
        return not_ready("the policy set is still loading", log_word);
    };
    if state.decision_log().is_strict() && !log_ok {
        return not_ready(
            "the decision log cannot be written and strict mode denies every decision",
            log_word,
        );
    }
    // A shared store that cannot answer denies every decision of a task: not ready,
    // so that a load balancer sends traffic elsewhere. Asked off the async workers: a
    // remote store may take up to its deadline.
    let checked = {
        let arbiter = Arc::clone(arbiter);
        tokio::task::spawn_blocking(move || arbiter.task_store_health()).await
    };
    let (store, health) = match checked {
        Ok(checked) => checked,
        Err(e) => (
            "unknown".to_owned(),
            Err(StoreError::Unavailable(e.to_string())),
        ),
    };
    if let Err(e) = health {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not-ready",
                "reason": format!("the task store ({store}) does not answer: {e}"),
                "decision_log": log_word,
                "task_store": "failing",
            })),
        );
    }
    let set = arbiter.policy_set();
    (
        StatusCode::OK,
        Json(json!({
            "status": "ready",
            "generation": set.generation(),
            "plugins": set.plugins().len(),
            "decision_log": log_word,
            "task_store": store,
        })),
    )
}

fn not_ready(reason: &str, log: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "not-ready", "reason": reason, "decision_log": log})),
    )
}
