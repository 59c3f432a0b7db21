//! `/v1/approvals`: the approvals step-ups wait for, and the approvers' answers.
//!
//! Who may do what:
//! - **read** (`GET /v1/approvals`, `GET /v1/approvals/{id}`): the admin token, or any
//!   approver;
//! - **answer** (`POST /v1/approvals/{id}/approve` and `/reject`): approvers only, for
//!   the groups the approval still needs. An approver authenticates with a group's
//!   token (`[[approvals.group]] token_env`) and says who they are in the body
//!   (`{"approver": "alice@example.org"}`), or with a verified identity (X.509-SVID or
//!   JWT-SVID) listed in the groups' `members`. The admin token never answers: the
//!   operator who runs Arbiter is not thereby an approver of what agents do.
//!
//! Arguments are shown as the decision log shows them (the same redaction).

use super::{active, read_body};
use crate::adapters::blocking::blocking;
use crate::adapters::http::AppState;
use crate::adapters::http::auth;
use crate::adapters::http::error::ApiError;
use crate::adapters::identity::{Presented, bearer};
use crate::identity::IdentityRefusal;
use crate::model::{
    Approval, ApprovalRefusal, ApprovalStatus, ApprovalVerdict, ApproverRecord, unix_ms_now,
};
use crate::{ApprovalError, Arbiter};
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Who is calling.
#[derive(Debug, Clone)]
enum Caller {
    /// The admin token: may read.
    Admin,
    /// A group's token: may answer for that group, naming the approver in the body.
    GroupToken(String),
    /// A verified identity in the groups' members.
    Member {
        id: String,
        attestation: &'static str,
        groups: Vec<String>,
    },
}

fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Result<Caller, ApiError> {
    let settings = state.settings();
    if let Some(group) = bearer(headers).and_then(|token| settings.approver_group_of(token)) {
        return Ok(Caller::GroupToken(group));
    }
    if auth::is_admin(state, headers) {
        return Ok(Caller::Admin);
    }
    let presented = Presented::of(headers, extensions);
    match state.service().identify(presented.evidence(), None) {
        Ok(identity) if identity.is_verified() => {
            let groups = settings.approvals.groups_of(&identity.id);
            if groups.is_empty() {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "not_an_approver",
                    format!(
                        "`{}` is not a member of any `[[approvals.group]]`",
                        identity.id
                    ),
                ));
            }
            Ok(Caller::Member {
                id: identity.id,
                attestation: identity.attestation.as_str(),
                groups,
            })
        }
        Ok(_) | Err(IdentityRefusal::Anonymous) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "approver_unauthenticated",
            "approvals need an approver: a `[[approvals.group]]` token (`Authorization: Bearer`), or a verified identity among a group's `members`; reading also accepts the admin token",
        )),
        Err(refusal) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "identity_refused",
            format!("approvals need an authenticated approver: {refusal}"),
        )),
    }
}

/// The query of `GET /v1/approvals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only approvals with this status.
    status: Option<ApprovalStatus>,
    /// Only approvals of this task.
    task: Option<String>,
}

/// `GET /v1/approvals[?status=pending&task=…]`: newest first.
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    authenticate(&state, request.headers(), request.extensions())?;
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            format!(
                "{}; expected `status` (pending, approved, rejected, consumed, expired) and/or `task`",
                e.body_text()
            ),
        )
    })?;
    let arbiter = Arc::clone(active(&state)?);
    let now = unix_ms_now();
    let approvals = blocking(|| arbiter.approvals()).map_err(|e| store_failed(&e))?;
    let shown: Vec<Value> = approvals
        .iter()
        .filter(|a| query.status.is_none_or(|s| a.status(now) == s))
        .filter(|a| {
            query
                .task
                .as_deref()
                .is_none_or(|t| a.binding.task.as_deref() == Some(t))
        })
        .map(|a| view(&state, &arbiter, a, now))
        .collect();
    Ok(Json(json!({ "approvals": shown })))
}

/// `GET /v1/approvals/{id}`.
pub async fn show(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    authenticate(&state, request.headers(), request.extensions())?;
    let id = path_id(path)?;
    let arbiter = Arc::clone(active(&state)?);
    match blocking(|| arbiter.approval(&id)).map_err(|e| store_failed(&e))? {
        Some(approval) => Ok(Json(view(&state, &arbiter, &approval, unix_ms_now()))),
        None => Err(unknown(&id)),
    }
}

/// `POST /v1/approvals/{id}/approve`.
pub async fn approve(
    state: State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    answer(state, path, request, true).await
}

/// `POST /v1/approvals/{id}/reject`.
pub async fn reject(
    state: State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    answer(state, path, request, false).await
}

/// The body of an answer (optional for a verified approver).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    /// Who is answering (required with a group token).
    approver: Option<String>,
    /// Why, for the record.
    note: Option<String>,
}

/// The longest approver name or note kept.
const MAX_ANSWER_FIELD_BYTES: usize = 1024;

async fn answer(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
    approve: bool,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&state, request.headers(), request.extensions())?;
    let id = path_id(path)?;
    let arbiter = Arc::clone(active(&state)?);
    let body = read_body(&state, request).await?;
    let asked: Answer = if body.iter().all(u8::is_ascii_whitespace) {
        Answer::default()
    } else {
        let mut deserializer = serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let field = e.path().to_string();
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_answer",
                format!(
                    "`{field}`: {}; expected {{\"approver\"?: \"…\", \"note\"?: \"…\"}}",
                    e.inner()
                ),
            )
            .with_field(field)
        })?
    };
    for (field, value) in [("approver", &asked.approver), ("note", &asked.note)] {
        if let Some(value) = value
            && (value.len() > MAX_ANSWER_FIELD_BYTES || value.chars().any(char::is_control))
        {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_answer",
                format!("`{field}`: at most {MAX_ANSWER_FIELD_BYTES} bytes, no control characters"),
            )
            .with_field(field));
        }
    }
    let approver = match caller {
        Caller::Admin => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_an_approver",
                "the admin token reads approvals but does not answer them: approvers do, with a `[[approvals.group]]` token or a verified identity among a group's `members`",
            ));
        }
        Caller::GroupToken(group) => {
            let Some(name) = asked.approver.filter(|n| !n.trim().is_empty()) else {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_answer",
                    format!(
                        "`approver`: required with the token of group `{group}`: who is answering"
                    ),
                )
                .with_field("approver"));
            };
            ApproverRecord {
                approver: name,
                authenticated_by: format!("token:{group}"),
                groups: vec![group],
                at: unix_ms_now(),
                note: asked.note,
            }
        }
        Caller::Member {
            id,
            attestation,
            groups,
        } => {
            if let Some(named) = asked.approver.as_deref()
                && named != id
            {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "identity_conflict",
                    format!("`approver` says `{named}`, but the verified identity is `{id}`"),
                )
                .with_field("approver"));
            }
            ApproverRecord {
                approver: id,
                authenticated_by: attestation.to_owned(),
                groups,
                at: unix_ms_now(),
                note: asked.note,
            }
        }
    };
    let who = approver.approver.clone();
    let verdict = ApprovalVerdict { approve, approver };
    match blocking(|| arbiter.answer_approval(&id, verdict)) {
        Ok(approval) => {
            tracing::info!(approval = %id, approver = %who, approve, status = approval.state.as_str(), "approval answered");
            Ok(Json(view(&state, &arbiter, &approval, unix_ms_now())))
        }
        Err(ApprovalError::Store(e)) => Err(store_failed(&e)),
        Err(ApprovalError::Refused(refusal)) => Err(refused(&refusal)),
    }
}

/// An approval as the API (and the console) shows it: its record, its status now, its
/// arguments as the decision log would show them, the reasons with what that redaction
/// hid replaced there too, and its console page.
pub fn view(state: &AppState, arbiter: &Arbiter, approval: &Approval, now: u64) -> Value {
    let set = arbiter.policy_set();
    let mut texts: Vec<String> = std::iter::once(approval.reason.clone())
        .chain(approval.causes.iter().map(|c| c.reason.clone()))
        .collect();
    let arguments = state
        .decision_log()
        .shown_call(&approval.arguments, Some(&set), &mut texts);
    let mut shown = serde_json::to_value(approval).unwrap_or(Value::Null);
    if let Some(object) = shown.as_object_mut() {
        object.insert("status".to_owned(), json!(approval.status(now).as_str()));
        object.insert("arguments".to_owned(), arguments);
        let mut texts = texts.into_iter();
        if let Some(reason) = texts.next() {
            object.insert("reason".to_owned(), json!(reason));
        }
        let causes: Vec<Value> = approval
            .causes
            .iter()
            .zip(texts)
            .map(|(c, reason)| json!({"plugin": c.plugin, "reason": reason}))
            .collect();
        object.insert("causes".to_owned(), json!(causes));
        object.insert(
            "missing_groups".to_owned(),
            json!(approval.missing_groups()),
        );
        if let Some(page) = state.settings().approvals.page_of(&approval.id) {
            object.insert("page".to_owned(), json!(page));
        }
    }
    shown
}

fn refused(refusal: &ApprovalRefusal) -> ApiError {
    let (status, code) = match refusal {
        ApprovalRefusal::Unknown(_) => (StatusCode::NOT_FOUND, "unknown_approval"),
        ApprovalRefusal::NotPending { .. } | ApprovalRefusal::Expired(_) => {
            (StatusCode::CONFLICT, "approval_closed")
        }
        ApprovalRefusal::NotInGroup { .. } => (StatusCode::FORBIDDEN, "not_in_group"),
        ApprovalRefusal::OwnCall { .. } => (StatusCode::FORBIDDEN, "own_call"),
        ApprovalRefusal::AgentFull { .. } => (StatusCode::SERVICE_UNAVAILABLE, "approvals_full"),
        ApprovalRefusal::TaskClosed { .. } => (StatusCode::CONFLICT, "task_closed"),
        ApprovalRefusal::Full { .. } => (StatusCode::SERVICE_UNAVAILABLE, "approvals_full"),
    };
    ApiError::new(status, code, refusal.to_string())
}

fn unknown(id: &str) -> ApiError {
    refused(&ApprovalRefusal::Unknown(id.to_owned()))
}

fn store_failed(error: &crate::StoreError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_failed",
        error.to_string(),
    )
}

fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|rejection| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_approval_id",
            format!("cannot read the approval id: {}", rejection.body_text()),
        )
    })?;
    if id.len() > 128 || !id.starts_with("apr-") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_approval_id",
            format!(
                "`{}` is not an approval id (`apr-<uuid>`)",
                id.chars().take(128).collect::<String>()
            ),
        )
        .with_field("id"));
    }
    Ok(id)
}
