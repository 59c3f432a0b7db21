//! Turning an upstream's answer into the client's: an HTTP upstream's response is
//! streamed through (checked, and rewritten only where a `tools/list` result is
//! filtered); a stdio server's messages become a JSON body or an SSE stream.
//!
//! What the client can rely on: a JSON-RPC answer, or the upstream's own HTTP status
//! where it means something to MCP (`202` for notifications, `404` for an ended
//! session, `400` with an MCP error for a revision the upstream does not speak,
//! `405` for a method it does not serve). An upstream that answers with a server error
//! or with something that is not MCP gets the client a `502` carrying a JSON-RPC error
//! that says what the upstream did.

use super::jsonrpc;
use super::sse::{self, Splitter};
use super::tools_list::ListFilter;
use super::upstream::child::InFlight;
use super::upstream::{UpstreamError, UpstreamFault};
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::Duration;

/// What the relay needs to know about the request.
#[derive(Debug, Clone)]
pub struct Relay {
    /// The upstream's name.
    pub upstream: String,
    /// The request's JSON-RPC id (`None` for notifications, GET and DELETE).
    pub id: Option<Value>,
    /// Filter for a `tools/list` answer.
    pub filter: Option<ListFilter>,
    /// Largest single message read whole.
    pub max_message_bytes: usize,
    /// Ends streams when the gateway stops.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// A JSON body with a status.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The answer for an upstream failure.
pub fn upstream_failure(relay: &Relay, error: &UpstreamError) -> Response {
    let status = StatusCode::from_u16(error.fault.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let body = jsonrpc::error(
        relay.id.as_ref(),
        error.fault.code(),
        &format!("upstream `{}`: {}", relay.upstream, error.message),
        Some(json!({ "upstream": relay.upstream, "fault": error.fault.as_str() })),
    );
    json_response(status, &body)
}

fn sse_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies in front of the gateway must not buffer the stream (2026-07-28 asks for it).
    headers.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
}

fn essence(content_type: Option<&HeaderValue>) -> String {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Relays an HTTP upstream's answer. Counts `invalid-answer` faults via `on_fault`.
pub async fn http_answer(
    relay: Relay,
    answer: axum::http::Response<hyper::body::Incoming>,
    on_fault: impl Fn(UpstreamFault) + Send + Sync + 'static,
) -> Response {
    let status = answer.status();
    let kind = essence(answer.headers().get(header::CONTENT_TYPE));
    let passed = super::upstream::http::answer_headers(answer.headers());
    let with_headers = |mut response: Response| {
        for (name, value) in &passed {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        response
    };
    if kind == "text/event-stream" && status.is_success() {
        let mut response = Response::new(sse_stream(relay, answer.into_body(), on_fault));
        *response.status_mut() = status;
        let mut response = with_headers(response);
        sse_headers(&mut response);
        return response;
    }
    if relay.id.is_none() && status.is_success() {
        // A notification or a client's answer: `202 Accepted`, nothing to check.
        let mut response = Response::new(Body::new(answer.into_body()));
        *response.status_mut() = status;
        return with_headers(response);
    }
    let body = match read_limited(answer.into_body(), relay.max_message_bytes).await {
        Ok(body) => body,
        Err(problem) => {
            on_fault(UpstreamFault::Invalid);
            return upstream_failure(&relay, &UpstreamError::invalid(problem));
        }
    };
    if kind == "application/json" && !status.is_server_error() {
        let mut message: Value = match serde_json::from_slice(&body) {
            Ok(message) => message,
            Err(e) => {
                on_fault(UpstreamFault::Invalid);
                return upstream_failure(
                    &relay,
                    &UpstreamError::invalid(format!("it answered invalid JSON: {e}")),
                );
            }
        };
        if !(message.is_object() || message.is_array()) {
            on_fault(UpstreamFault::Invalid);
            return upstream_failure(
                &relay,
                &UpstreamError::invalid(
                    "it answered JSON that is not a JSON-RPC message".to_owned(),
                ),
            );
        }
        let rewritten = match (&relay.filter, &relay.id) {
            (Some(filter), Some(id)) => filter.apply_to_answer(&mut message, id),
            _ => false,
        };
        let bytes = if rewritten {
            Bytes::from(message.to_string())
        } else {
            body
        };
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = status;
        return with_headers(response);
    }
    if status.is_server_error() || (status.is_success() && relay.id.is_some()) {
        // A request needs a JSON or SSE answer; a server error is the upstream's fault.
        on_fault(UpstreamFault::Invalid);
        let snippet =
            String::from_utf8_lossy(body.get(..body.len().min(200)).unwrap_or(&body)).into_owned();
        return upstream_failure(
            &relay,
            &UpstreamError::invalid(format!(
                "it answered HTTP {} with content type `{}`: {snippet}",
                status.as_u16(),
                if kind.is_empty() {
                    "none"
                } else {
                    kind.as_str()
                }
            )),
        );
    }
    // 202 for a notification, 200 for a DELETE, 404 for an ended session, 405 for a
    // method it does not serve: the status is the message.
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    with_headers(response)
}

async fn read_limited(body: hyper::body::Incoming, max: usize) -> Result<Bytes, String> {
    let limited = http_body_util::Limited::new(body, max);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(format!(
            "cannot read its answer (the most it may send is {max} bytes, `gateway.max_message_bytes`): {e}"
        )),
    }
}

/// An SSE answer relayed event by event: each event's data must be JSON (else the
/// stream ends with an error event for the request); the `tools/list` result is
/// filtered; everything else passes byte for byte.
fn sse_stream(
    relay: Relay,
    body: hyper::body::Incoming,
    on_fault: impl Fn(UpstreamFault) + Send + Sync + 'static,
) -> Body {
    struct State<F> {
        frames: http_body_util::BodyDataStream<hyper::body::Incoming>,
        splitter: Splitter,
        relay: Relay,
        on_fault: F,
        done: bool,
    }
    let max = relay.max_message_bytes;
    let stopping = relay.stopping.clone();
    let state = State {
        frames: body.into_data_stream(),
        splitter: Splitter::new(max),
        relay,
        on_fault,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let chunk = match state.frames.next().await {
            None => return None,
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                tracing::debug!(upstream = state.relay.upstream, error = %e, "upstream SSE stream broke");
                state.done = true;
                return Some((
                    Ok::<Bytes, std::io::Error>(error_event(
                        &state.relay,
                        &format!("its stream broke: {e}"),
                    )),
                    state,
                ));
            }
        };
        let events = match state.splitter.push(&chunk) {
            Ok(events) => events,
            Err(e) => {
                (state.on_fault)(UpstreamFault::Invalid);
                state.done = true;
                return Some((Ok(error_event(&state.relay, &e.to_string())), state));
            }
        };
        let mut out = Vec::with_capacity(chunk.len());
        for event in events {
            match event.data() {
                None => out.extend_from_slice(&event.0),
                Some(data) if data.trim().is_empty() => out.extend_from_slice(&event.0),
                Some(data) => match serde_json::from_str::<Value>(&data) {
                    Err(e) => {
                        (state.on_fault)(UpstreamFault::Invalid);
                        state.done = true;
                        out.extend_from_slice(&error_event(
                            &state.relay,
                            &format!("it sent an event whose data is not JSON: {e}"),
                        ));
                        break;
                    }
                    Ok(mut message) => {
                        let rewritten = match (&state.relay.filter, &state.relay.id) {
                            (Some(filter), Some(id)) => filter.apply_to_answer(&mut message, id),
                            _ => false,
                        };
                        if rewritten {
                            out.extend_from_slice(&event.with_data(&message.to_string()));
                        } else {
                            out.extend_from_slice(&event.0);
                        }
                    }
                },
            }
        }
        Some((Ok(Bytes::from(out)), state))
    });
    until_stopped(stream, stopping)
}

/// A body streaming `frames` until they end or the gateway stops (then open streams
/// end, so that shutdown does not wait for them).
fn until_stopped<S>(frames: S, mut stopping: tokio::sync::watch::Receiver<bool>) -> Body
where
    S: futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    let stopped = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    Body::from_stream(frames.take_until(stopped))
}

/// An SSE response with `body`.
fn sse_response(body: Body) -> Response {
    let mut response = Response::new(body);
    sse_headers(&mut response);
    response
}

fn error_event(relay: &Relay, problem: &str) -> Bytes {
    let error = jsonrpc::error(
        relay.id.as_ref(),
        jsonrpc::UPSTREAM_INVALID,
        &format!("upstream `{}`: {problem}", relay.upstream),
        Some(json!({ "upstream": relay.upstream, "fault": "invalid-answer" })),
    );
    sse::message_event(&error.to_string())
}

/// Whether the client accepts an SSE answer.
pub fn accepts_sse(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// Whether `message` is the answer to the request in flight.
fn is_final(message: &Value, id: &Value) -> bool {
    message.get("method").is_none() && message.get("id") == Some(id)
}

/// Relays a stdio request: the first message must come within `timeout`; then the
/// client gets an SSE stream of every message up to the answer (if it accepts SSE) or
/// the answer alone as JSON.
pub async fn stdio_answer(
    relay: Relay,
    mut in_flight: InFlight,
    sse_ok: bool,
    timeout: Duration,
) -> Response {
    let Some(id) = relay.id.clone() else {
        return json_response(StatusCode::ACCEPTED, &Value::Null);
    };
    let first = match tokio::time::timeout(timeout, in_flight.rx.recv()).await {
        Err(_) => return upstream_failure(&relay, &UpstreamError::timeout(timeout)),
        Ok(None) => {
            return upstream_failure(
                &relay,
                &UpstreamError::exited("it closed the request without answering".to_owned()),
            );
        }
        Ok(Some(first)) => first,
    };
    if !sse_ok || is_final(&first, &id) {
        // Wait for the answer; intermediate messages have no stream to go to.
        let mut message = first;
        while !is_final(&message, &id) {
            match in_flight.rx.recv().await {
                Some(next) => message = next,
                None => {
                    return upstream_failure(
                        &relay,
                        &UpstreamError::exited("it stopped before answering".to_owned()),
                    );
                }
            }
        }
        if let Some(filter) = &relay.filter {
            filter.apply_to_answer(&mut message, &id);
        }
        json_response(StatusCode::OK, &message)
    } else {
        let stopping = relay.stopping.clone();
        let stream = futures_util::stream::unfold(
            (Some(first), in_flight, relay, false),
            |(pending, mut in_flight, relay, done)| async move {
                if done {
                    return None;
                }
                let mut message = match pending {
                    Some(m) => m,
                    None => in_flight.rx.recv().await?,
                };
                let id = relay.id.clone().unwrap_or(Value::Null);
                let last = is_final(&message, &id);
                if last && let Some(filter) = &relay.filter {
                    filter.apply_to_answer(&mut message, &id);
                }
                let event = sse::message_event(&message.to_string());
                Some((
                    Ok::<Bytes, std::io::Error>(event),
                    (None, in_flight, relay, last),
                ))
            },
        );
        sse_response(until_stopped(stream, stopping))
    }
}

/// A session's `GET` stream from a stdio server.
pub fn stdio_listen(
    mut rx: tokio::sync::mpsc::Receiver<Value>,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> Response {
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
        .map(|message| Ok::<Bytes, std::io::Error>(sse::message_event(&message.to_string())));
    sse_response(until_stopped(stream, stopping))
}
