//! A Streamable HTTP upstream: requests are relayed with the MCP headers the client
//! sent (session, revision, method, name, params) and nothing else, so the client's
//! bearer token or cookies never reach the upstream (2026-07-28's security
//! considerations forbid passing a token through). The answer streams back.

use super::UpstreamError;
use axum::http::{HeaderMap, HeaderName, Method, Request, Response, Uri, header};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Headers of the client's request that the upstream gets.
const FORWARDED: [&str; 7] = [
    "content-type",
    "accept",
    super::super::revision::SESSION_ID,
    super::super::revision::PROTOCOL_VERSION,
    super::super::revision::METHOD,
    super::super::revision::NAME,
    super::super::revision::LAST_EVENT_ID,
];

/// How long an idle upstream connection is kept: below the 5 s keep-alive timeout of
/// the common MCP server stacks (Node, uvicorn).
const UPSTREAM_IDLE: Duration = Duration::from_secs(4);

/// One Streamable HTTP upstream.
#[derive(Debug)]
pub struct HttpUpstream {
    url: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl HttpUpstream {
    /// An upstream at `url` (validated by the config), given `timeout` to start
    /// answering each request.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, UpstreamError> {
        let url: Uri = url
            .parse()
            .map_err(|e| UpstreamError::unavailable(format!("bad upstream URL `{url}`: {e}")))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        // Idle connections are dropped before the upstream drops them: Node's HTTP
        // server closes an idle keep-alive connection after 5 s and uvicorn after 5 s,
        // and a request sent on a connection the server is closing meets a reset and
        // becomes a 502 for the client. Resending it is not safe (the upstream may have
        // run the call), so the pool must not offer a connection that old.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(UPSTREAM_IDLE)
            .build(connector);
        Ok(Self {
            url,
            client,
            timeout,
        })
    }

    /// The headers of `incoming` that are forwarded.
    pub fn forwarded_headers(incoming: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        for (name, value) in incoming {
            let n = name.as_str();
            if FORWARDED.contains(&n) || n.starts_with(super::super::revision::PARAM_PREFIX) {
                out.append(name.clone(), value.clone());
            }
        }
        out
    }

    /// Sends one request; the answer's body is not read yet.
    pub async fn send(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut request = Request::builder()
            .method(method)
            .uri(self.url.clone())
            .body(Full::new(body))
            .map_err(|e| UpstreamError::unavailable(format!("cannot build the request: {e}")))?;
        *request.headers_mut() = headers;
        if let Some(authority) = self.url.authority()
            && let Ok(host) = authority.as_str().parse()
        {
            request.headers_mut().insert(header::HOST, host);
        }
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Err(UpstreamError::timeout(self.timeout)),
            Ok(Err(e)) => Err(UpstreamError::unavailable(describe(&e))),
            Ok(Ok(response)) => Ok(response),
        }
    }
}

/// The client error with its causes (hyper-util's own message is only "client error").
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Headers of the upstream's answer that the client gets.
pub fn answer_headers(upstream: &HeaderMap) -> Vec<(HeaderName, axum::http::HeaderValue)> {
    let mut out = Vec::new();
    for name in [
        header::CONTENT_TYPE,
        header::CACHE_CONTROL,
        HeaderName::from_static(super::super::revision::SESSION_ID),
        HeaderName::from_static(super::super::revision::PROTOCOL_VERSION),
    ] {
        if let Some(value) = upstream.get(&name) {
            out.push((name, value.clone()));
        }
    }
    out
}
