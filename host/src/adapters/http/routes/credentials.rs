//! The per-call credentials' public side: `GET /v1/credentials/jwks`, the keys a tool
//! server verifies them with, and `POST /v1/credentials/introspect`, whether one is
//! still valid (not expired, not revoked by its task's end) and bound to what the tool
//! server received. The asking tool server names itself (`audience`, required), so a
//! credential minted for another server is never reported active.
//!
//! Both are open: the JWKS is public by nature, and introspection says nothing to a
//! caller who does not already hold the token. Without `[credentials]` both answer 404.

use super::{read_body, require_json};
use crate::adapters::blocking::blocking;
use crate::adapters::http::AppState;
use crate::adapters::http::error::ApiError;
use crate::service::credentials::{Binding, CredentialIssuer};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

fn issuer(state: &AppState) -> Result<&Arc<CredentialIssuer>, ApiError> {
    state.service().credential_issuer().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no credentials are minted here (no `[credentials]` table)",
        )
    })
}

/// `GET /v1/credentials/jwks`.
pub async fn jwks(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let issuer = issuer(&state)?;
    serde_json::to_value(issuer.jwks())
        .map(Json)
        .map_err(|e| ApiError::internal(&e))
}

/// The body of `POST /v1/credentials/introspect`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Introspect {
    token: String,
    audience: String,
    tool: Option<String>,
    arguments: Option<Value>,
}

/// `POST /v1/credentials/introspect` with `{"token": "…"}` and optionally the
/// `audience`, `tool` and `arguments` it must be bound to.
pub async fn introspect(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    require_json(request.headers())?;
    let issuer = Arc::clone(issuer(&state)?);
    let body = read_body(&state, request).await?;
    let asked: Introspect = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("expected {{\"token\": \"…\", \"audience\": \"…\", \"tool\"?, \"arguments\"?}} (the audience is the tool server asking, so that a credential for another server is never reported active): {e}"),
        )
    })?;
    let binding = Binding {
        audience: Some(asked.audience),
        tool: asked.tool,
        arguments: asked.arguments,
    };
    let arbiter = Arc::clone(super::active(&state)?);
    serde_json::to_value(blocking(|| {
        issuer.introspect(&asked.token, &binding, &arbiter.revoker())
    }))
    .map(Json)
    .map_err(|e| ApiError::internal(&e))
}
