//! HTTP handlers, one file per endpoint group.

pub mod approvals;
pub mod credentials;
pub mod decide;
pub mod health;
pub mod metrics;
pub mod plugins;
pub mod reload;
pub mod tasks;

use super::AppState;
use super::error::ApiError;
use crate::Arbiter;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use std::sync::Arc;

/// The active host, or 503 while the first policy set is still loading.
fn active(state: &AppState) -> Result<&Arc<Arbiter>, ApiError> {
    state.arbiter().ok_or_else(not_ready)
}

/// 503 while the first policy set is still loading.
fn not_ready() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "no policy set is active yet",
    )
}

/// Reads the whole body within `server.body_read_timeout_ms` and `server.max_body_bytes`.
///
/// Hyper bounds how long the headers may take; nothing bounds the body but this. A
/// client that sends its headers and then trickles (or withholds) the body gets `408`
/// and the connection is closed, instead of holding a connection slot and a task.
async fn read_body(state: &AppState, request: Request) -> Result<Bytes, ApiError> {
    let settings = state.settings();
    let timeout = settings.body_read_timeout;
    match tokio::time::timeout(timeout, Bytes::from_request(request, &())).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(rejection)) => Err(body_error(&rejection, settings.max_body_bytes)),
        Err(_elapsed) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} ms",
                timeout.as_millis()
            ),
        )),
    }
}

fn body_error(rejection: &BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body exceeds {limit} bytes"),
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("cannot read the request body: {}", rejection.body_text()),
        )
    }
}

/// Accepts `application/json` and `application/*+json` (parameters such as `charset`
/// allowed). Requiring it keeps browsers from posting JSON as "simple" requests.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("content type `{content_type}`, expected `application/json`"),
    ))
}
