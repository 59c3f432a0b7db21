//! `GET /healthz` (the process answers) and `GET /readyz` (it can decide).

use crate::adapters::http::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

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
    let set = arbiter.policy_set();
    (
        StatusCode::OK,
        Json(json!({
            "status": "ready",
            "generation": set.generation(),
            "plugins": set.plugins().len(),
            "decision_log": log_word,
        })),
    )
}

fn not_ready(reason: &str, log: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "not-ready", "reason": reason, "decision_log": log})),
    )
}
