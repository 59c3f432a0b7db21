//! `POST /v1/decide`: an action as JSON in, the decision as JSON out.
//!
//! Every decision is answered with 200 and its effect in the body; anything that is not
//! a decision is an [`ApiError`] (4xx for bad input, 503 while loading), which a gateway
//! must treat as deny. Bad input never reaches the plugins. The handler is the three
//! steps every adapter is: parse, call the decision service, answer.

use super::{not_ready, read_body, require_json};
use crate::adapters::http::AppState;
use crate::adapters::http::error::ApiError;
use crate::adapters::http::traceparent;
use crate::adapters::identity::Presented;
use crate::identity::IdentityRefusal;
use crate::model::{Action, ActionError, ActionErrorKind};
use crate::service::{DecisionContext, Refused};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The handler.
pub async fn decide(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    require_json(request.headers())?;
    let trace_id = traceparent::trace_id(request.headers());
    let presented = Presented::of(request.headers(), request.extensions());
    let task_credential = crate::adapters::identity::task_credential(request.headers());
    let body = read_body(&state, request).await?;
    let action = parse_action(&body)?;
    let service = state.service().clone();
    let identity = service
        .identify(presented.evidence(), Some((&action.agent.id, "body")))
        .map_err(|refusal| identity_refused(&refusal))?;
    let context = DecisionContext {
        trace_id,
        identity: Some(identity),
        task_credential,
        ..DecisionContext::default()
    };
    let answer = |decision: &crate::Decision| serde_json::to_vec(decision);
    let body = if service.blocks() {
        // Strict mode waits for the log write, a shared store for Redis: off the async
        // workers.
        tokio::task::spawn_blocking(move || service.decide(action, context, answer))
            .await
            .map_err(|e| ApiError::internal(&e))?
    } else {
        // Decisions take microseconds of CPU and, with the in-memory store, no I/O: run
        // inline.
        service.decide(action, context, answer)
    }
    .map_err(|refused| match refused {
        Refused::NotReady(_) => not_ready(),
        Refused::Identity(refusal) => identity_refused(&refusal),
        Refused::TaskCredential(why) => ApiError::new(
            StatusCode::FORBIDDEN,
            "task_credential_refused",
            format!("task credential refused: {why}"),
        ),
    })?
    .map_err(|e| ApiError::internal(&e))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// 401 for a credential that did not verify or is missing, 403 for one that verified as
/// another agent than the body names: no decision was taken either way.
fn identity_refused(refusal: &IdentityRefusal) -> ApiError {
    let status = match refusal {
        IdentityRefusal::Conflict { .. } | IdentityRefusal::Credentials { .. } => {
            StatusCode::FORBIDDEN
        }
        _ => StatusCode::UNAUTHORIZED,
    };
    let error = ApiError::new(status, "identity_refused", refusal.to_string());
    match refusal {
        IdentityRefusal::Conflict { .. } => error.with_field("agent.id".to_owned()),
        _ => error,
    }
}

/// Parses and validates an action ([`Action::from_json_slice`]), sorting failures into
/// syntax (400) and shape (422).
pub fn parse_action(body: &[u8]) -> Result<Action, ApiError> {
    Action::from_json_slice(body).map_err(to_api_error)
}

fn to_api_error(e: ActionError) -> ApiError {
    match e.kind {
        ActionErrorKind::Invalid => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_action",
            e.to_string(),
        )
        .with_field(e.field),
        ActionErrorKind::TooDeep => ApiError::new(
            StatusCode::BAD_REQUEST,
            "too_deep",
            format!(
                "`{}`: the JSON nests deeper than 128 levels: {}",
                e.field, e.problem
            ),
        )
        .with_field(e.field),
        ActionErrorKind::Syntax => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {}", e.problem),
        )
        .with_field(e.field),
    }
}
