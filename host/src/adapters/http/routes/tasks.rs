//! `POST /v1/tasks/{id}/end` and `POST /v1/tasks/end` (admin): revoke a task.
//!
//! The id is checked with the rule `/v1/decide` applies to `task.id`
//! ([`check_id`]), so every task an action can name can be ended and nothing else is
//! recorded. The body form takes the id as JSON (`{"task_id": "…"}`) for clients that
//! would rather not percent-encode it into a path.

use super::{active, read_body, require_json};
use crate::TaskOpenError;
use crate::adapters::blocking::blocking;
use crate::adapters::http::AppState;
use crate::adapters::http::auth;
use crate::adapters::http::error::ApiError;
use crate::adapters::identity::Presented;
use crate::identity::IdentityRefusal;
use crate::model::{OpenTask, check_id};
use crate::service::credentials::MintError;
use crate::task::StoreError;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::error::Category;
use serde_json::{Value, json};
use std::sync::Arc;

/// The body of `POST /v1/tasks/end`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndTask {
    task_id: String,
}

/// The path form: every later action of the task is denied with a reason saying that
/// the task has ended. Idempotent. A path axum cannot decode (invalid UTF-8 after
/// percent-decoding) is answered like any other bad id, with the JSON error shape.
pub async fn end(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let task_id = path_task_id(path)?;
    end_task(&state, "id", task_id)
}

/// The body form, `{"task_id": "…"}`: the same check and answer as [`end`].
pub async fn end_named(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    require_json(request.headers())?;
    let body = read_body(&state, request).await?;
    let mut deserializer = serde_json::Deserializer::from_slice(&body);
    let parsed = serde_path_to_error::deserialize::<_, EndTask>(&mut deserializer)
        .map_err(|e| {
            let path = e.path().to_string();
            json_error(
                if path.is_empty() {
                    ".".to_owned()
                } else {
                    path
                },
                e.inner(),
            )
        })
        .and_then(|parsed| {
            deserializer
                .end()
                .map_err(|e| json_error(".".to_owned(), &e))
                .map(|()| parsed)
        })?;
    end_task(&state, "task_id", parsed.task_id)
}

fn end_task(state: &AppState, field: &str, task_id: String) -> Result<Json<Value>, ApiError> {
    check_id(field, &task_id).map_err(|e| invalid_task_id(field, e.problem))?;
    active(state)?;
    let revoked = blocking(|| state.service().end_task(&task_id))
        .map_err(|_| super::not_ready())?
        .map_err(|e| store_failed(&e))?;
    tracing::info!(task_id = %task_id, credentials_revoked = ?revoked, "task ended");
    let mut answer = json!({"task_id": task_id, "ended": true});
    if let (Some(revoked), Some(object)) = (revoked, answer.as_object_mut()) {
        object.insert("credentials_revoked".to_owned(), json!(revoked));
    }
    Ok(Json(answer))
}

/// `POST /v1/tasks`: opens a task. The opener is the admin (its token) or a verified
/// identity listed in `[tasks] openers`; the task's agents, intent, delegation and
/// expiry are fixed here, and Arbiter makes its id.
pub async fn open(
    State(state): State<AppState>,
    request: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_json(request.headers())?;
    let arbiter = Arc::clone(active(&state)?);
    let opener = if auth::is_admin(&state, request.headers()) {
        "admin".to_owned()
    } else {
        let presented = Presented::of(request.headers(), request.extensions());
        match state.service().identify(presented.evidence(), None) {
            Ok(identity) if identity.is_verified() && arbiter.may_open_tasks(&identity.id) => {
                identity.id
            }
            Ok(identity) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "not_an_opener",
                    format!(
                        "opening a task needs the admin token or a verified identity listed in `tasks.openers`; `{}` ({}) is neither",
                        identity.id,
                        identity.attestation.as_str()
                    ),
                ));
            }
            Err(IdentityRefusal::Anonymous) => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "identity_refused",
                    "opening a task needs the admin token (`Authorization: Bearer`) or a verified opener (an SVID listed in `tasks.openers`); the request has neither",
                ));
            }
            Err(refusal) => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "identity_refused",
                    format!("opening a task needs the admin token or a verified opener: {refusal}"),
                ));
            }
        }
    };
    let body = read_body(&state, request).await?;
    let mut deserializer = serde_json::Deserializer::from_slice(&body);
    let asked: OpenTask = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let field = e.path().to_string();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_task",
            format!("`{field}`: {}; expected {{\"agents\": [...], \"intent\": \"…\", \"delegation\"?, \"expires_at\"?, \"inherit_labels\"?}}", e.inner()),
        )
        .with_field(field)
    })?;
    let opened = blocking(|| arbiter.open_task(asked, &opener)).map_err(|e| match e {
        TaskOpenError::Invalid(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_task",
            e.to_string(),
        )
        .with_field(e.field),
        TaskOpenError::Refused(why) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "task_not_opened", why)
        }
    })?;
    tracing::info!(task_id = %opened.id, opened_by = %opened.opened_by, agents = ?opened.agents, "task opened");
    let mut answer = serde_json::to_value(&opened).map_err(|e| ApiError::internal(&e))?;
    // Each agent's task credential, to present with the task's actions
    // (`x-arbiter-task-credential`), when this host mints credentials.
    if let Some(issuer) = state.service().credential_issuer() {
        let mut credentials = serde_json::Map::new();
        for agent in &opened.agents {
            let token =
                blocking(|| issuer.mint_task(&opened, agent, &arbiter.revoker())).map_err(|e| {
                    match e {
                        MintError::Store(e) => store_failed(&e),
                        e => ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "invalid_task",
                            e.to_string(),
                        ),
                    }
                })?;
            credentials.insert(agent.clone(), Value::String(token));
        }
        if let Some(object) = answer.as_object_mut() {
            object.insert("credentials".to_owned(), Value::Object(credentials));
        }
    }
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `POST /v1/tasks/{id}/lift-quarantine` (admin): the task's actions are decided again.
pub async fn lift_quarantine(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let task_id = path_task_id(path)?;
    check_id("id", &task_id).map_err(|e| invalid_task_id("id", e.problem))?;
    active(&state)?;
    let lifted = blocking(|| state.service().lift_quarantine(&task_id))
        .map_err(|_| super::not_ready())?
        .map_err(|e| store_failed(&e))?;
    tracing::warn!(task_id = %task_id, lifted, "quarantine lifted by an operator");
    Ok(Json(json!({"task_id": task_id, "lifted": lifted})))
}

/// The task store could not do what was asked: nothing is claimed done.
fn store_failed(e: &StoreError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_failed",
        format!("{e}; nothing was changed, retry once the store answers"),
    )
}

/// The task id of the path, or the JSON error a bad one gets.
fn path_task_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(task_id) = path.map_err(|rejection| {
        invalid_task_id(
            "id",
            format!(
                "cannot read the task id from the path: {}",
                rejection.body_text()
            ),
        )
    })?;
    Ok(task_id)
}

fn invalid_task_id(field: &str, problem: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_task_id",
        format!("invalid task id: `{field}`: {problem}"),
    )
    .with_field(field)
}

fn json_error(field: String, error: &serde_json::Error) -> ApiError {
    match error.classify() {
        Category::Data => invalid_task_id(&field, error.to_string()),
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {error}"),
        )
        .with_field(field),
    }
}
