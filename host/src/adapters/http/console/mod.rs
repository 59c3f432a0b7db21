//! The operator console under `/console`: pending approvals (approve or reject), recent
//! decisions, the policy set, tasks. Served by `arbiter serve` and `arbiter gateway` on
//! their listener.
//!
//! Nothing shows without a login ([`session`]): every page but the login form redirects
//! to it, and the assets are static. The HTML is rendered on the server ([`pages`]); the
//! only script reloads a page when its data changes. Every answer carries a content
//! security policy that allows only the console's own script and style, no framing and
//! no form target elsewhere; forms carry the session's CSRF token.

mod pages;
pub mod session;

use super::AppState;
use super::auth::BearerToken;
use crate::adapters::blocking::blocking;
use crate::model::{ApprovalRefusal, ApprovalVerdict, ApproverRecord, unix_ms_now};
use crate::{ApprovalError, Arbiter};
use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;
use serde_json::{Value, json};
use session::{COOKIE, Principal, SESSION_TTL, Session};
use std::sync::Arc;

const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// The console's content security policy: its own script and style only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", post(logout))
        .route("/console/approvals.json", get(approvals_json))
        .route("/console/approvals/{id}", get(approval))
        .route("/console/approvals/{id}/status", get(approval_status))
        .route("/console/approvals/{id}/approve", post(approve))
        .route("/console/approvals/{id}/reject", post(reject))
        .route("/console/decisions", get(decisions))
        .route("/console/policy", get(policy))
        .route("/console/tasks", get(tasks))
        .route("/console/assets/console.js", get(script))
        .route("/console/assets/console.css", get(style))
        .layer(from_fn(secure_headers))
}

async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// The session of the request's cookie.
fn session_of(state: &AppState, headers: &HeaderMap) -> Option<(String, Session)> {
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for cookie in cookie::Cookie::split_parse(text).flatten() {
            if cookie.name() == COOKIE
                && let Some(session) = state.console_sessions().get(cookie.value())
            {
                return Some((cookie.value().to_owned(), session));
            }
        }
    }
    None
}

/// The logged-in session, or the redirect to the login form.
fn require(state: &AppState, headers: &HeaderMap) -> Result<Session, Box<Response>> {
    session_of(state, headers)
        .map(|(_, s)| s)
        .ok_or_else(|| Box::new(Redirect::to("/console/login").into_response()))
}

/// The logged-in session and the active host, or the page that says why not.
fn logged_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Session, Arc<Arbiter>), Box<Response>> {
    let session = require(state, headers)?;
    let arbiter = active(state, &session)?;
    Ok((session, arbiter))
}

fn active(state: &AppState, session: &Session) -> Result<Arc<Arbiter>, Box<Response>> {
    state.arbiter().cloned().ok_or_else(|| {
        Box::new(html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::problem(Some(session), "Not ready", "no policy set is active yet"),
        ))
    })
}

async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if session_of(&state, &headers).is_some() {
        return Redirect::to("/console").into_response();
    }
    html(StatusCode::OK, pages::login(None))
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
struct Login {
    token: String,
    #[serde(default)]
    approver: String,
}

async fn login(State(state): State<AppState>, Form(form): Form<Login>) -> Response {
    let settings = state.settings();
    let token = form.token.trim();
    let principal = match settings.approver_group_of(token) {
        Some(group) => {
            let name = form.approver.trim();
            if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
                return html(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    pages::login(Some(&format!(
                        "the token is group `{group}`'s: say who you are (your name), so that your answers are recorded as yours"
                    ))),
                );
            }
            Principal::Approver {
                name: name.to_owned(),
                group,
            }
        }
        None if settings
            .admin_token
            .as_ref()
            .is_some_and(|admin: &BearerToken| admin.matches(token)) =>
        {
            Principal::Admin
        }
        None => {
            tracing::warn!("console login refused: unknown token");
            return html(
                StatusCode::UNAUTHORIZED,
                pages::login(Some(
                    "that token is neither an approver group's nor the admin token",
                )),
            );
        }
    };
    tracing::info!(who = %principal.label(), "console login");
    let id = state.console_sessions().start(principal);
    let cookie = cookie::Cookie::build((COOKIE, id))
        .path("/console")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(SESSION_TTL.as_secs()).unwrap_or(i64::MAX),
        ))
        .build();
    let mut response = Redirect::to("/console").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// A form that changes something: its CSRF token.
#[derive(Debug, Deserialize)]
struct Csrf {
    csrf: String,
    #[serde(default)]
    note: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Csrf>,
) -> Response {
    if let Some((id, session)) = session_of(&state, &headers)
        && session.csrf_matches(&form.csrf)
    {
        state.console_sessions().end(&id);
    }
    let mut response = Redirect::to("/console/login").into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Every approval as the API shows it (redacted arguments and reasons, status now).
fn approval_views(state: &AppState, arbiter: &Arbiter) -> Result<Vec<Value>, String> {
    let now = unix_ms_now();
    let approvals = blocking(|| arbiter.approvals()).map_err(|e| e.to_string())?;
    Ok(approvals
        .iter()
        .map(|a| super::routes::approvals::view(state, arbiter, a, now))
        .collect())
}

async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (session, arbiter) = match logged_in(&state, &headers) {
        Ok(both) => both,
        Err(r) => return *r,
    };
    match approval_views(&state, &arbiter) {
        Ok(views) => html(StatusCode::OK, pages::approvals(&session, &views)),
        Err(e) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::problem(Some(&session), "The task store failed", &e),
        ),
    }
}

/// What the approvals page watches: the ids and statuses.
async fn approvals_json(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((_, session)) = session_of(&state, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(arbiter) = active(&state, &session) else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let now = unix_ms_now();
    match blocking(|| arbiter.approvals()) {
        Ok(all) => axum::Json(json!(
            all.iter()
                .map(|a| json!([a.id, a.status(now).as_str()]))
                .collect::<Vec<_>>()
        ))
        .into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

fn one(
    state: &AppState,
    session: &Session,
    id: &str,
) -> Result<(Arc<Arbiter>, Value), Box<Response>> {
    let arbiter = active(state, session)?;
    match blocking(|| arbiter.approval(id)) {
        Ok(Some(a)) => {
            let shown = super::routes::approvals::view(state, &arbiter, &a, unix_ms_now());
            Ok((arbiter, shown))
        }
        Ok(None) => Err(Box::new(html(
            StatusCode::NOT_FOUND,
            pages::problem(
                Some(session),
                "No such approval",
                &format!("no approval `{id}`"),
            ),
        ))),
        Err(e) => Err(Box::new(html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::problem(Some(session), "The task store failed", &e.to_string()),
        ))),
    }
}

/// The approval page's query: the notice of the answer just given (post/redirect/get,
/// so that a reload never sends the answer again).
#[derive(Debug, Default, Deserialize)]
struct Notice {
    #[serde(default)]
    notice: String,
}

async fn approval(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    notice: Result<Query<Notice>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let session = match require(&state, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let notice = notice.map(|Query(n)| n.notice).unwrap_or_default();
    let notice: String = notice.chars().take(300).collect();
    match one(&state, &session, &id) {
        Ok((_, shown)) => html(
            StatusCode::OK,
            pages::approval(
                &session,
                &shown,
                (!notice.is_empty()).then_some(notice.as_str()),
            ),
        ),
        Err(r) => *r,
    }
}

async fn approval_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some((_, session)) = session_of(&state, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match one(&state, &session, &id) {
        Ok((_, shown)) => axum::Json(
            json!({"status": shown.get("status"), "approved_by": shown.get("approved_by")}),
        )
        .into_response(),
        Err(r) => *r,
    }
}

async fn approve(
    state: State<AppState>,
    id: Path<String>,
    headers: HeaderMap,
    form: Form<Csrf>,
) -> Response {
    answer(state, id, headers, form, true)
}

async fn reject(
    state: State<AppState>,
    id: Path<String>,
    headers: HeaderMap,
    form: Form<Csrf>,
) -> Response {
    answer(state, id, headers, form, false)
}

fn answer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Csrf>,
    approve: bool,
) -> Response {
    let session = match require(&state, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if !session.csrf_matches(&form.csrf) {
        tracing::warn!(approval = %id, "console answer refused: bad CSRF token");
        return html(
            StatusCode::FORBIDDEN,
            pages::problem(
                Some(&session),
                "Refused",
                "the form's CSRF token is not this session's: reload the page and try again",
            ),
        );
    }
    let Principal::Approver { name, group } = &session.principal else {
        return html(
            StatusCode::FORBIDDEN,
            pages::problem(
                Some(&session),
                "Refused",
                "the admin token reads approvals but does not answer them: log in with an approver group's token",
            ),
        );
    };
    let arbiter = match active(&state, &session) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let note = form.note.trim();
    let verdict = ApprovalVerdict {
        approve,
        approver: ApproverRecord {
            approver: name.clone(),
            authenticated_by: format!("token:{group}"),
            groups: vec![group.clone()],
            at: unix_ms_now(),
            note: (!note.is_empty()).then(|| note.chars().take(1024).collect()),
        },
    };
    let notice = match blocking(|| arbiter.answer_approval(&id, verdict)) {
        Ok(a) => {
            tracing::info!(approval = %id, approver = %name, approve, status = a.state.as_str(), "approval answered in the console");
            if approve {
                "Approved. The agent's identical retry will be allowed, once."
            } else {
                "Rejected. The identical call will be denied."
            }
            .to_owned()
        }
        Err(ApprovalError::Refused(ApprovalRefusal::Unknown(_))) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::problem(
                    Some(&session),
                    "No such approval",
                    &format!("no approval `{id}`"),
                ),
            );
        }
        Err(e) => format!("Not recorded: {e}"),
    };
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("notice", &notice)
        .finish();
    let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    Redirect::to(&format!("/console/approvals/{id}?{query}")).into_response()
}

/// The decisions page's filters.
#[derive(Debug, Default, Deserialize)]
struct DecisionFilter {
    #[serde(default)]
    effect: String,
    #[serde(default)]
    task: String,
    #[serde(default)]
    agent: String,
}

async fn decisions(
    State(state): State<AppState>,
    headers: HeaderMap,
    filter: Result<Query<DecisionFilter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let session = match require(&state, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let filter = filter.map(|Query(f)| f).unwrap_or_default();
    let field = |d: &Value, p: &str| {
        d.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let rows: Vec<Value> = state
        .decision_log()
        .recent()
        .into_iter()
        .filter(|d| filter.effect.is_empty() || field(d, "/effect") == filter.effect)
        .filter(|d| filter.task.is_empty() || field(d, "/task_id").contains(&filter.task))
        .filter(|d| filter.agent.is_empty() || field(d, "/action/agent/id").contains(&filter.agent))
        .collect();
    html(
        StatusCode::OK,
        pages::decisions(&session, &rows, &filter.effect, &filter.task, &filter.agent),
    )
}

async fn policy(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match require(&state, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let status = state
        .reload_status()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    html(StatusCode::OK, pages::policy(&session, &status))
}

async fn tasks(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (session, arbiter) = match logged_in(&state, &headers) {
        Ok(both) => both,
        Err(r) => return *r,
    };
    // The tasks the console knows of: those of recent decisions and of approvals.
    let mut ids: Vec<String> = Vec::new();
    for d in state.decision_log().recent() {
        if let Some(id) = d.get("task_id").and_then(Value::as_str)
            && !ids.iter().any(|i| i == id)
        {
            ids.push(id.to_owned());
        }
    }
    for a in blocking(|| arbiter.approvals()).unwrap_or_default() {
        if let Some(id) = a.binding.task
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    let rows: Vec<(String, Value)> = ids
        .into_iter()
        .map(|id| {
            let (labels, closed, state) = match blocking(|| arbiter.task_standing(&id)) {
                // A store that cannot answer is shown as such, never as a running task.
                Err(e) => (Vec::new(), Some(e.to_string()), "unknown"),
                Ok((labels, None)) => (labels, None, "active"),
                Ok((labels, Some(why))) if why.starts_with("has ended") => {
                    (labels, Some(why), "ended")
                }
                Ok((labels, Some(why))) => (labels, Some(why), "quarantined"),
            };
            let entries: Vec<Value> = blocking(|| arbiter.task_history(&id))
                .iter()
                .map(|e| json!({"server": e.server, "tool": e.tool, "effect": e.effect}))
                .collect();
            let row = json!({"state": state, "why": closed, "labels": labels, "entries": entries});
            (id, row)
        })
        .collect();
    html(StatusCode::OK, pages::tasks(&session, &rows))
}
