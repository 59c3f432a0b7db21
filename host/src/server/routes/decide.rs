//! `POST /v1/decide`: an action as JSON in, the decision as JSON out.
//!
//! Every decision is answered with 200 and its effect in the body; anything that is not
//! a decision is an [`ApiError`] (4xx for bad input, 503 while loading), which a gateway
//! must treat as deny. Bad input never reaches the plugins.

use super::{active, read_body, require_json};
use crate::action::{Action, ActionError};
use crate::arbiter::NoPostDecision;
use crate::server::AppState;
use crate::server::decision_log::{LogEntry, StrictAudit};
use crate::server::error::ApiError;
use crate::server::traceparent;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::error::Category;
use std::sync::Arc;

/// The handler.
pub async fn decide(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    require_json(request.headers())?;
    let trace_id = traceparent::trace_id(request.headers());
    let body = read_body(&state, request).await?;
    let action = parse_action(&body)?;
    let arbiter = Arc::clone(active(&state)?);
    // Taken before deciding: the log keeps it only if the decision ran on it (same
    // generation), for the words of its settings that reasons may quote.
    let policy_set = Some(arbiter.policy_set());
    let log = state.decision_log();
    if log.is_strict() {
        // The strict log is a post-decision stage: the record is written (and a failure
        // turns the answer into a deny) before the task history is recorded. Waiting for
        // the write blocks, so the decision runs on a blocking thread.
        let writer = state.clone();
        let decision = tokio::task::spawn_blocking(move || {
            let audit = StrictAudit {
                log: writer.decision_log(),
                trace_id,
                policy_set,
            };
            arbiter.decide_validated(&action, &audit)
        })
        .await
        .map_err(|e| ApiError::internal(&e))?;
        state.metrics().record_decision(&decision);
        trace(&decision);
        return Ok(Json(decision).into_response());
    }
    // Decisions take microseconds of CPU and no I/O: run inline, no spawn_blocking.
    // `parse_action` validated the action: the pipeline does not validate it again.
    let decision = arbiter.decide_validated(&action, &NoPostDecision);
    state.metrics().record_decision(&decision);
    trace(&decision);
    // Serialise the answer first so the decision can move into the log without a copy.
    let body = serde_json::to_vec(&decision).map_err(|e| ApiError::internal(&e))?;
    if let Err(failure) = log.submit(LogEntry {
        decision,
        action,
        trace_id,
        policy_set,
    }) {
        tracing::debug!(error = %failure, "decision not logged");
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

fn trace(decision: &crate::decision::Decision) {
    tracing::debug!(
        decision_id = %decision.decision_id,
        request_id = %decision.request_id,
        effect = decision.effect.as_str(),
        generation = decision.generation,
        elapsed_us = decision.elapsed_us,
        "decided"
    );
}

/// Parses and validates an action, sorting failures into syntax (400) and shape (422).
pub fn parse_action(body: &[u8]) -> Result<Action, ApiError> {
    // serde also accepts a struct written as a positional array; the API is objects only.
    if let Some(first) = body.iter().find(|b| !b.is_ascii_whitespace())
        && *first == b'['
    {
        return Err(invalid_action(ActionError {
            field: ".".to_owned(),
            problem: "expected a JSON object, found an array".to_owned(),
        }));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let action: Action = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = if path.is_empty() {
            ".".to_owned()
        } else {
            path
        };
        json_error(field, e.inner())
    })?;
    deserializer
        .end()
        .map_err(|e| json_error(".".to_owned(), &e))?;
    action.validate().map_err(invalid_action)?;
    Ok(action)
}

fn invalid_action(e: ActionError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_action",
        e.to_string(),
    )
    .with_field(e.field)
}

fn json_error(field: String, error: &serde_json::Error) -> ApiError {
    let problem = error.to_string();
    match error.classify() {
        Category::Data => invalid_action(ActionError { field, problem }),
        // serde_json stops at 128 levels of nesting and reports it as a syntax error.
        Category::Syntax if problem.starts_with("recursion limit exceeded") => ApiError::new(
            StatusCode::BAD_REQUEST,
            "too_deep",
            format!("`{field}`: the JSON nests deeper than 128 levels: {problem}"),
        )
        .with_field(field),
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {problem}"),
        )
        .with_field(field),
    }
}
