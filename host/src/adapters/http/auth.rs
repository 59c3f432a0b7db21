//! Bearer-token access control.
//!
//! Admin endpoints (reload, ending tasks) always need the admin token; with no admin
//! token configured they are disabled (403), so a server never runs with open admin
//! endpoints by accident. The decision endpoints need the decide token when one is
//! configured.
//!
//! Tokens are compared in constant time on their SHA-256 digests (`subtle`), so neither
//! the position of the first wrong byte nor the token's length shows in the timing.
//! Every rejected attempt is logged (endpoint, peer, why) and counted.

use super::AppState;
use super::error::ApiError;
use crate::service::Secret;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

/// An expected bearer token, kept only as its digest.
#[derive(Clone)]
pub struct BearerToken {
    digest: [u8; 32],
}

impl BearerToken {
    /// The token a request must present.
    pub fn new(secret: &Secret) -> Self {
        Self {
            digest: Sha256::digest(secret.expose().as_bytes()).into(),
        }
    }

    /// Whether `presented` is this token, in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        presented.ct_eq(&self.digest).into()
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(***)")
    }
}

/// Why a request was refused (logged, never echoed beyond "missing" or "wrong").
fn check(expected: &BearerToken, headers: &HeaderMap) -> Result<(), &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err("missing bearer token");
    };
    let Ok(value) = value.to_str() else {
        return Err("malformed authorization header");
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err("malformed authorization header");
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("authorization scheme is not `Bearer`");
    }
    if expected.matches(token.trim()) {
        Ok(())
    } else {
        Err("wrong bearer token")
    }
}

fn reject(request: &Request, why: &'static str) -> ApiError {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    tracing::warn!(
        endpoint = %request.uri().path(),
        method = %request.method(),
        peer = %peer,
        reason = why,
        "rejected request without valid credentials"
    );
    ApiError::unauthorized(format!("{why}: send `Authorization: Bearer <token>`"))
}

/// Middleware for the admin endpoints.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.settings().admin_token.as_ref() else {
        tracing::warn!(
            endpoint = %request.uri().path(),
            "admin request refused: no admin token is configured"
        );
        return axum::response::IntoResponse::into_response(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "admin endpoints are disabled: no admin token is configured \
             (`server.admin_token_env`, default `ARBITER_ADMIN_TOKEN`)",
        ));
    };
    match check(expected, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(why) => axum::response::IntoResponse::into_response(reject(&request, why)),
    }
}

/// Whether the request carries the admin token (for endpoints that also admit other
/// principals, such as task openers).
pub fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    state
        .settings()
        .admin_token
        .as_ref()
        .is_some_and(|expected| check(expected, headers).is_ok())
}

/// Middleware for the decision endpoints: open unless a decide token is configured.
pub async fn require_client(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.settings().decide_token.as_ref() else {
        return next.run(request).await;
    };
    match check(expected, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(why) => axum::response::IntoResponse::into_response(reject(&request, why)),
    }
}
