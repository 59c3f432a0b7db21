//! The endpoint `/mcp/{upstream}`: parse, decide what needs deciding, relay, answer.
//!
//! - `POST`: one JSON-RPC message (or, in 2024-11-05 and 2025-03-26, a batch).
//!   `tools/call` is decided before it is forwarded; `tools/list` is forwarded and its
//!   answer filtered; everything else is relayed as it is.
//! - `GET`: the session's stream of server-initiated messages.
//! - `DELETE`: ends the session.

use super::call::{self, CallRefusal};
use super::jsonrpc::{self, Kind};
use super::relay::{self, Relay, json_response};
use super::revision::{self, Revision};
use super::tools_list::ListFilter;
use super::upstream::Upstream;
use super::upstream::http::HttpUpstream;
use super::upstream::stdio::StdioUpstream;
use super::{Gateway, Route};
use crate::adapters::identity::Presented;
use crate::identity::{IdentityRefusal, ResolvedIdentity};
use crate::model::DecisionEffect;
use crate::service::credentials::CREDENTIAL_OBLIGATION;
use crate::service::obligation_gate::{LOG, REDACT, redact};
use crate::service::{DecisionContext, NotReady, Refused, Via};
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// The obligation kinds the gateway carries out: `redact` (before forwarding) and `log`
/// (every call is in the decision log), and for Streamable HTTP upstreams `credential`
/// (a credential minted for the call, injected as `Authorization`). Any other kind on an
/// allow is a deny: fail closed.
pub const ENFORCED_OBLIGATIONS: &[&str] = &[REDACT, LOG];
/// [`ENFORCED_OBLIGATIONS`] for an upstream that can carry a credential.
pub const ENFORCED_OBLIGATIONS_HTTP: &[&str] = &[REDACT, LOG, CREDENTIAL_OBLIGATION];

/// A protocol-level refusal: HTTP status and JSON-RPC error.
fn refuse(status: StatusCode, id: Option<&Value>, code: i64, message: &str) -> Response {
    json_response(status, &jsonrpc::error(id, code, message, None))
}

/// `POST`, `GET` and `DELETE` on `/mcp/{upstream}`.
pub async fn endpoint(
    State(gateway): State<Arc<Gateway>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let Some(route) = gateway.route(&name) else {
        let known: Vec<&str> = gateway.upstream_names();
        return refuse(
            StatusCode::NOT_FOUND,
            None,
            jsonrpc::METHOD_NOT_FOUND,
            &format!(
                "no upstream named `{name}`; this gateway serves /mcp/{{name}} for: {}",
                known.join(", ")
            ),
        );
    };
    if let Some(response) = origin_refusal(&gateway, request.headers()) {
        return response;
    }
    let caller = match Caller::of(&gateway, &request) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    match *request.method() {
        Method::POST => post(&gateway, route, &caller, request).await,
        Method::GET => get(&gateway, route, request.headers()).await,
        Method::DELETE => delete(&gateway, route, request.headers()).await,
        _ => {
            let mut response = refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                jsonrpc::INVALID_REQUEST,
                "the MCP endpoint takes POST, GET and DELETE",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST, GET, DELETE"));
            response
        }
    }
}

/// Who a request acts as, resolved once per request before anything is relayed.
struct Caller {
    /// `Err`: nothing verified and nothing asserted; requests that need no decision
    /// still pass, `tools/call` and `tools/list` are refused with this.
    identity: Result<ResolvedIdentity, CallRefusal>,
}

impl Caller {
    /// Verifies what the request presented against what it asserts: a refusal (a bad
    /// credential, a missing one where verification is required, a header naming
    /// another agent) ends the request here, answered 401 or 403 with a JSON-RPC error.
    fn of(gateway: &Gateway, request: &Request) -> Result<Self, Box<Response>> {
        let presented = Presented::of(request.headers(), request.extensions());
        let asserted = match call::asserted_agent(&gateway.config, request.headers()) {
            Ok(asserted) => asserted,
            Err(refusal) => {
                // The header is unusable, but what was presented is still checked: a bad
                // credential, or none where one is required, refuses every request.
                match gateway.service.identify(presented.evidence(), None) {
                    Ok(_) | Err(IdentityRefusal::Anonymous) => {}
                    Err(refused) => return Err(Box::new(identity_refused(&refused))),
                }
                return Ok(Self {
                    identity: Err(refusal),
                });
            }
        };
        let claim = asserted.as_ref().map(|(id, by)| (id.as_str(), by.as_str()));
        let identity = match gateway.service.identify(presented.evidence(), claim) {
            Ok(identity) => Ok(identity),
            Err(IdentityRefusal::Anonymous) => {
                call::fallback_agent(&gateway.config).and_then(|(id, by)| {
                    gateway
                        .service
                        .identify(presented.evidence(), Some((&id, &by)))
                        .map_err(|refusal| CallRefusal(refusal.to_string()))
                })
            }
            Err(refusal) => return Err(Box::new(identity_refused(&refusal))),
        };
        Ok(Self { identity })
    }
}

/// 401 (with `WWW-Authenticate`) for a credential that did not verify or is missing,
/// 403 for one that names another agent than the request asserts.
fn identity_refused(refusal: &IdentityRefusal) -> Response {
    let forbidden = matches!(
        refusal,
        IdentityRefusal::Conflict { .. } | IdentityRefusal::Credentials { .. }
    );
    let status = if forbidden {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNAUTHORIZED
    };
    let message = format!("Arbiter: {refusal}");
    let mut response = json_response(
        status,
        &jsonrpc::error(
            None,
            jsonrpc::IDENTITY_REFUSED,
            &message,
            Some(json!({ "effect": "deny", "reason": refusal.to_string() })),
        ),
    );
    if !forbidden {
        // RFC 6750: say which scheme and why; quotes and controls cannot appear in a
        // quoted string, so they are replaced.
        let description: String = refusal
            .to_string()
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || c.is_control() {
                    '\''
                } else {
                    c
                }
            })
            .collect();
        if let Ok(value) = HeaderValue::from_str(&format!(
            "Bearer error=\"invalid_token\", error_description=\"{description}\""
        )) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}

/// Browsers send `Origin`; one not configured is refused (403), so that a web page
/// cannot drive a local gateway through DNS rebinding. SDK clients send none.
fn origin_refusal(gateway: &Gateway, headers: &HeaderMap) -> Option<Response> {
    let origin = headers.get(header::ORIGIN)?;
    let allowed = origin
        .to_str()
        .is_ok_and(|o| gateway.config.allowed_origins.iter().any(|a| a == o));
    (!allowed).then(|| {
        refuse(
            StatusCode::FORBIDDEN,
            None,
            jsonrpc::INVALID_REQUEST,
            "origin not allowed (`gateway.allowed_origins`)",
        )
    })
}

async fn read_body(gateway: &Gateway, request: Request) -> Result<Bytes, Response> {
    let timeout = gateway.config.body_read_timeout;
    match tokio::time::timeout(timeout, Bytes::from_request(request, &())).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(rejection)) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            jsonrpc::INVALID_REQUEST,
            &format!(
                "the request body exceeds {} bytes (`gateway.max_body_bytes`)",
                gateway.config.max_body_bytes
            ),
        )),
        Ok(Err(rejection)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            None,
            jsonrpc::INVALID_REQUEST,
            &format!("cannot read the request body: {}", rejection.body_text()),
        )),
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            None,
            jsonrpc::INVALID_REQUEST,
            &format!(
                "the request body did not arrive within {} ms (`gateway.body_read_timeout_ms`)",
                timeout.as_millis()
            ),
        )),
    }
}

async fn post(
    gateway: &Arc<Gateway>,
    route: &Route,
    caller: &Caller,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let body = match read_body(gateway, request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let message: Value = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                None,
                jsonrpc::PARSE_ERROR,
                &format!("parse error: the body is not JSON: {e}"),
            );
        }
    };
    let first = match &message {
        Value::Array(items) => items.first(),
        other => Some(other),
    };
    let revision = match revision::of_post(&headers, first) {
        Ok(revision) => revision,
        Err(refusal) => {
            return json_response(
                StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST),
                &refusal.body(None),
            );
        }
    };
    if let Value::Array(items) = &message {
        return batch(gateway, route, &headers, revision, items, body.clone()).await;
    }
    let kind = match jsonrpc::classify(&message) {
        Ok(kind) => kind,
        Err(e) => {
            let id = message.get("id");
            return refuse(
                StatusCode::BAD_REQUEST,
                id,
                jsonrpc::INVALID_REQUEST,
                &e.to_string(),
            );
        }
    };
    if revision == Revision::Modern
        && let Err(refusal) = revision::check_modern(&headers, &message, &kind)
    {
        let id = message.get("id");
        return json_response(
            StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST),
            &refusal.body(id),
        );
    }
    if let Kind::Notification { method } = &kind
        && !method.starts_with("notifications/")
    {
        // `tools/call` without an id would otherwise be relayed undecided, and a lenient
        // server might run it. MCP's notifications are all `notifications/…`.
        return refuse(
            StatusCode::BAD_REQUEST,
            None,
            jsonrpc::INVALID_REQUEST,
            &format!(
                "`{method}` is a request and needs an `id`; only `notifications/…` methods are sent without one"
            ),
        );
    }
    match &kind {
        Kind::Request { id, method } if method == "tools/call" => {
            tools_call(
                gateway,
                route,
                caller,
                &headers,
                revision,
                message.clone(),
                id.clone(),
            )
            .await
        }
        Kind::Request { id, method } if method == "tools/list" => {
            let filter = match list_filter(gateway, route, caller, &headers, id) {
                Ok(filter) => filter,
                Err(response) => return *response,
            };
            forward(
                gateway,
                route,
                &headers,
                revision,
                message,
                &kind,
                body,
                Some(filter),
                None,
            )
            .await
        }
        Kind::Request { method, .. } if method == "initialize" => {
            let url_elicitation = super::elicitation::declares_url_elicitation(&message);
            let response = forward(
                gateway, route, &headers, revision, message, &kind, body, None, None,
            )
            .await;
            if url_elicitation
                && let Some(session) = response
                    .headers()
                    .get(revision::SESSION_ID)
                    .and_then(|v| v.to_str().ok())
            {
                gateway.url_sessions.remember(&route.config.name, session);
            }
            response
        }
        _ => {
            forward(
                gateway, route, &headers, revision, message, &kind, body, None, None,
            )
            .await
        }
    }
}

/// A batch (2024-11-05 and 2025-03-26 only). Batches are relayed as they are unless
/// they hold a `tools/call` or `tools/list`, which the gateway decides or filters one
/// message at a time: those are refused with a clear error, never passed undecided.
async fn batch(
    gateway: &Arc<Gateway>,
    route: &Route,
    headers: &HeaderMap,
    revision: Revision,
    items: &[Value],
    body: Bytes,
) -> Response {
    if !revision.allows_batches() {
        return refuse(
            StatusCode::BAD_REQUEST,
            None,
            jsonrpc::INVALID_REQUEST,
            &format!(
                "JSON-RPC batches are not part of MCP {} (they were removed in 2025-06-18)",
                revision.as_str()
            ),
        );
    }
    if items.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            None,
            jsonrpc::INVALID_REQUEST,
            "empty batch",
        );
    }
    for item in items {
        if let Err(e) = jsonrpc::classify(item) {
            return refuse(
                StatusCode::BAD_REQUEST,
                item.get("id"),
                jsonrpc::INVALID_REQUEST,
                &e.to_string(),
            );
        }
        let method = item.get("method").and_then(Value::as_str);
        if let (Some(method), None) = (method, item.get("id"))
            && !method.starts_with("notifications/")
        {
            return refuse(
                StatusCode::BAD_REQUEST,
                None,
                jsonrpc::INVALID_REQUEST,
                &format!("`{method}` is a request and needs an `id`"),
            );
        }
        if matches!(method, Some("tools/call" | "tools/list" | "initialize")) {
            return refuse(
                StatusCode::BAD_REQUEST,
                None,
                jsonrpc::INVALID_REQUEST,
                "this gateway decides `tools/call` and filters `tools/list` one message at a time: send them (and `initialize`) outside a batch",
            );
        }
    }
    match &route.upstream {
        Upstream::Http(http) => {
            let relay = gateway.relay(route, None, None);
            relay_http(
                gateway,
                route,
                http,
                Method::POST,
                headers,
                body,
                relay,
                None,
            )
            .await
        }
        Upstream::Stdio(_) => refuse(
            StatusCode::BAD_REQUEST,
            None,
            jsonrpc::INVALID_REQUEST,
            "batches are not relayed to stdio upstreams; send one message per request",
        ),
    }
}

/// The filter of a `tools/list` answer, or the refusal if the request lacks what a
/// decision needs (the same error a call would get, before anything is forwarded).
fn list_filter(
    gateway: &Arc<Gateway>,
    route: &Route,
    caller: &Caller,
    headers: &HeaderMap,
    id: &Value,
) -> Result<ListFilter, Box<Response>> {
    if gateway.service.arbiter().is_err() {
        return Err(Box::new(policy_unavailable(id)));
    }
    let agent = match &caller.identity {
        Ok(agent) => agent,
        Err(refusal) => return Err(Box::new(refused(id, refusal))),
    };
    if let Err(refusal) = call::action(
        &gateway.config,
        &route.config,
        headers,
        agent,
        "tools/list",
        json!({}),
        call::Phase::List,
        gateway.service.task_mode(),
    ) {
        return Err(Box::new(refused(id, &refusal)));
    }
    Ok(ListFilter {
        service: gateway.service.clone(),
        gateway: Arc::clone(&gateway.config),
        upstream: Arc::clone(&route.config),
        headers: headers.clone(),
        agent: agent.clone(),
    })
}

fn policy_unavailable(id: &Value) -> Response {
    json_response(
        StatusCode::OK,
        &jsonrpc::error(
            Some(id),
            jsonrpc::POLICY_UNAVAILABLE,
            "Arbiter: no decision: the policy set is not loaded yet; nothing is forwarded until it is",
            Some(json!({ "effect": "deny" })),
        ),
    )
}

fn refused(id: &Value, refusal: &CallRefusal) -> Response {
    json_response(
        StatusCode::OK,
        &jsonrpc::error(
            Some(id),
            jsonrpc::REFUSED,
            &format!("Arbiter: request refused: {refusal}"),
            Some(json!({ "effect": "deny", "reason": refusal.0 })),
        ),
    )
}

/// What the decision closure hands back: the effect, and either the answer that stops
/// the call or the redactions to apply before forwarding it.
enum Verdict {
    Stop(DecisionEffect, Value),
    /// The redactions, and the minted credential for the upstream.
    Forward(Vec<String>, Option<String>),
}

async fn tools_call(
    gateway: &Arc<Gateway>,
    route: &Route,
    caller: &Caller,
    headers: &HeaderMap,
    revision: Revision,
    mut message: Value,
    id: Value,
) -> Response {
    let upstream = route.config.name.as_str();
    let session_accepts = headers
        .get(revision::SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|session| gateway.url_sessions.accepts(upstream, session));
    let exchange = super::elicitation::take_exchange(&mut message, revision, session_accepts);
    let (tool, arguments) = match call::target(&message) {
        Ok(target) => target,
        Err(problem) => {
            gateway
                .service
                .metrics()
                .record_gateway_call(upstream, "refused");
            return json_response(
                StatusCode::OK,
                &jsonrpc::error(
                    Some(&id),
                    jsonrpc::INVALID_PARAMS,
                    &format!("invalid tools/call: {problem}"),
                    None,
                ),
            );
        }
    };
    let action = match caller
        .identity
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|agent| {
            call::action(
                &gateway.config,
                &route.config,
                headers,
                agent,
                &tool,
                arguments,
                call::Phase::Call,
                gateway.service.task_mode(),
            )
        }) {
        Ok(action) => action,
        Err(refusal) => {
            tracing::info!(upstream, tool, reason = %refusal, "tools/call refused before deciding");
            gateway
                .service
                .metrics()
                .record_gateway_call(upstream, "refused");
            return refused(&id, &refusal);
        }
    };
    let credential_plan = route.config.credential_plan(&tool);
    let context = DecisionContext {
        trace_id: crate::adapters::http::traceparent::trace_id(headers),
        via: Some(Via {
            adapter: "mcp",
            upstream: Some(upstream.to_owned()),
            jsonrpc_id: Some(id.clone()),
            identity: caller.identity.as_ref().ok().map(|i| i.source.label()),
        }),
        enforces: Some(if credential_plan.is_some() {
            ENFORCED_OBLIGATIONS_HTTP
        } else {
            ENFORCED_OBLIGATIONS
        }),
        identity: caller.identity.as_ref().ok().cloned(),
        credential: credential_plan,
        task_credential: crate::adapters::identity::task_credential(headers),
    };
    let style = gateway.config.denial;
    let console_url = gateway.config.console_url.clone();
    let upstream_name = upstream.to_owned();
    let answer_id = id.clone();
    let answer = move |decision: &crate::Decision| match decision.effect {
        DecisionEffect::Allow => Verdict::Forward(
            decision
                .obligations
                .iter()
                .filter(|o| o.kind == REDACT)
                .map(|o| o.detail.clone())
                .collect(),
            decision.credential.as_ref().map(|c| c.token.clone()),
        ),
        effect => Verdict::Stop(
            effect,
            call::stopped(
                style,
                &answer_id,
                decision,
                &upstream_name,
                console_url.as_deref(),
                exchange,
            ),
        ),
    };
    let service = gateway.service.clone();
    let decided: Result<Verdict, Refused> = if service.blocks() {
        match tokio::task::spawn_blocking(move || service.decide(action, context, answer)).await {
            Ok(decided) => decided,
            // The decision thread panicked: no decision, so nothing is forwarded.
            Err(_) => Err(Refused::NotReady(NotReady)),
        }
    } else {
        service.decide(action, context, answer)
    };
    let (redactions, credential) = match decided {
        Err(Refused::Identity(refusal)) => {
            gateway
                .service
                .metrics()
                .record_gateway_call(upstream, "refused");
            return identity_refused(&refusal);
        }
        Err(Refused::TaskCredential(why)) => {
            gateway
                .service
                .metrics()
                .record_gateway_call(upstream, "refused");
            return refused(&id, &CallRefusal(format!("task credential refused: {why}")));
        }
        Err(Refused::NotReady(_)) => {
            gateway
                .service
                .metrics()
                .record_gateway_call(upstream, "unavailable");
            return policy_unavailable(&id);
        }
        Ok(Verdict::Stop(effect, answer)) => {
            gateway
                .service
                .metrics()
                .record_gateway_call(upstream, effect.as_str());
            return json_response(StatusCode::OK, &answer);
        }
        Ok(Verdict::Forward(redactions, credential)) => (redactions, credential),
    };
    gateway
        .service
        .metrics()
        .record_gateway_call(upstream, "allow");
    if let Some(arguments) = message.pointer_mut("/params/arguments") {
        for pointer in &redactions {
            // The obligation gate checked every pointer resolves.
            redact(arguments, pointer);
        }
    }
    // Forwarded as the gateway parsed it, never as the client wrote it: a body with
    // duplicate keys (`"name":"add","name":"rm"`) or other text that parsers read
    // differently reaches the server as exactly the call that was decided.
    let body = Bytes::from(message.to_string());
    let kind = Kind::Request {
        id,
        method: "tools/call".to_owned(),
    };
    forward(
        gateway,
        route,
        headers,
        revision,
        message,
        &kind,
        body,
        None,
        credential.as_deref(),
    )
    .await
}

/// Relays a message as it is (its body bytes for HTTP, the parsed message for stdio).
#[allow(clippy::too_many_arguments)]
async fn forward(
    gateway: &Arc<Gateway>,
    route: &Route,
    headers: &HeaderMap,
    revision: Revision,
    message: Value,
    kind: &Kind,
    body: Bytes,
    filter: Option<ListFilter>,
    credential: Option<&str>,
) -> Response {
    let id = match kind {
        Kind::Request { id, .. } => Some(id.clone()),
        _ => None,
    };
    let relay = gateway.relay(route, id.clone(), filter);
    match &route.upstream {
        Upstream::Http(http) => {
            relay_http(
                gateway,
                route,
                http,
                Method::POST,
                headers,
                body,
                relay,
                credential,
            )
            .await
        }
        Upstream::Stdio(stdio) => {
            stdio_post(
                gateway, route, stdio, headers, revision, message, kind, relay,
            )
            .await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn stdio_post(
    gateway: &Arc<Gateway>,
    route: &Route,
    stdio: &Arc<StdioUpstream>,
    headers: &HeaderMap,
    revision: Revision,
    message: Value,
    kind: &Kind,
    relay: Relay,
) -> Response {
    let session = headers
        .get(revision::SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let sse_ok = relay::accepts_sse(headers);
    let timeout = gateway.config.upstream_timeout;
    let child = match (revision, kind, &session) {
        (Revision::Modern, _, _) => match stdio.shared().await {
            Ok(child) => child,
            Err(e) => return gateway.failed(route, &relay, &e),
        },
        (_, Kind::Request { method, .. }, None) if method == "initialize" => {
            let child = match stdio.start_session() {
                Ok(child) => child,
                Err(e) => return gateway.failed(route, &relay, &e),
            };
            let in_flight = match child.request(message).await {
                Ok(in_flight) => in_flight,
                Err(e) => return gateway.failed(route, &relay, &e),
            };
            // The answer decides whether the session exists: JSON, so the session id
            // header goes out with a known outcome.
            let response = relay::stdio_answer(relay, in_flight, false, timeout).await;
            if response.status() != StatusCode::OK {
                return response;
            }
            let (parts, body) = response.into_parts();
            let bytes = match axum::body::to_bytes(body, gateway.config.max_message_bytes).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    return refuse(
                        StatusCode::BAD_GATEWAY,
                        None,
                        jsonrpc::UPSTREAM_INVALID,
                        &e.to_string(),
                    );
                }
            };
            let succeeded = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .is_some_and(|v| v.get("result").is_some());
            let mut response = Response::from_parts(parts, axum::body::Body::from(bytes));
            if succeeded {
                let id = stdio.open(child);
                if let Ok(value) = HeaderValue::from_str(&id) {
                    response
                        .headers_mut()
                        .insert(HeaderName::from_static(revision::SESSION_ID), value);
                }
            }
            return response;
        }
        (_, _, None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                relay.id.as_ref(),
                jsonrpc::INVALID_REQUEST,
                "header `Mcp-Session-Id` is missing: start a session with `initialize` first",
            );
        }
        (_, _, Some(session)) => match stdio.session(session) {
            Some(child) => child,
            None => {
                return refuse(
                    StatusCode::NOT_FOUND,
                    relay.id.as_ref(),
                    jsonrpc::INVALID_REQUEST,
                    "session not found (it ended, went idle, or its server stopped): initialize a new one",
                );
            }
        },
    };
    match kind {
        Kind::Request { .. } => match child.request(message).await {
            Ok(in_flight) => relay::stdio_answer(relay, in_flight, sse_ok, timeout).await,
            Err(e) => gateway.failed(route, &relay, &e),
        },
        _ => match child.send(message).await {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(e) => gateway.failed(route, &relay, &e),
        },
    }
}

async fn get(gateway: &Arc<Gateway>, route: &Route, headers: &HeaderMap) -> Response {
    let relay = gateway.relay(route, None, None);
    let modern = headers
        .get(revision::PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        == Some(revision::MODERN);
    match &route.upstream {
        Upstream::Http(http) => {
            relay_http(
                gateway,
                route,
                http,
                Method::GET,
                headers,
                Bytes::new(),
                relay,
                None,
            )
            .await
        }
        Upstream::Stdio(stdio) => {
            let session = headers
                .get(revision::SESSION_ID)
                .and_then(|v| v.to_str().ok());
            match (modern, session) {
                (false, Some(session)) => match stdio.session(session) {
                    Some(child) => match child.listen() {
                        Ok(rx) => relay::stdio_listen(rx, gateway.stopping.subscribe()),
                        Err(e) => gateway.failed(route, &relay, &e),
                    },
                    None => refuse(
                        StatusCode::NOT_FOUND,
                        None,
                        jsonrpc::INVALID_REQUEST,
                        "session not found",
                    ),
                },
                _ => {
                    let mut response = refuse(
                        StatusCode::METHOD_NOT_ALLOWED,
                        None,
                        jsonrpc::INVALID_REQUEST,
                        "no standalone stream without a session",
                    );
                    response
                        .headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
                    response
                }
            }
        }
    }
}

async fn delete(gateway: &Arc<Gateway>, route: &Route, headers: &HeaderMap) -> Response {
    let relay = gateway.relay(route, None, None);
    match &route.upstream {
        Upstream::Http(http) => {
            relay_http(
                gateway,
                route,
                http,
                Method::DELETE,
                headers,
                Bytes::new(),
                relay,
                None,
            )
            .await
        }
        Upstream::Stdio(stdio) => {
            match headers
                .get(revision::SESSION_ID)
                .and_then(|v| v.to_str().ok())
            {
                Some(session) if stdio.close(session) => StatusCode::OK.into_response(),
                Some(_) => refuse(
                    StatusCode::NOT_FOUND,
                    None,
                    jsonrpc::INVALID_REQUEST,
                    "session not found",
                ),
                None => refuse(
                    StatusCode::BAD_REQUEST,
                    None,
                    jsonrpc::INVALID_REQUEST,
                    "header `Mcp-Session-Id` is missing",
                ),
            }
        }
    }
}

/// Relays one request to an HTTP upstream with the client's MCP headers, and its
/// answer back.
#[allow(clippy::too_many_arguments)]
async fn relay_http(
    gateway: &Gateway,
    route: &Route,
    http: &HttpUpstream,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
    relay: Relay,
    credential: Option<&str>,
) -> Response {
    let mut forwarded = HttpUpstream::forwarded_headers(headers);
    // The agent's own `Authorization` is never among the forwarded headers; the
    // upstream sees only the credential minted for this call.
    if let Some(token) = credential {
        match HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(value) => {
                forwarded.insert(header::AUTHORIZATION, value);
            }
            Err(_) => {
                let e = super::upstream::UpstreamError::unavailable(
                    "the minted credential is not a valid header value".to_owned(),
                );
                return gateway.failed(route, &relay, &e);
            }
        }
    }
    match http.send(method, forwarded, body).await {
        Ok(answer) => relay::http_answer(relay, answer, gateway.fault_counter(route)).await,
        Err(e) => gateway.failed(route, &relay, &e),
    }
}
