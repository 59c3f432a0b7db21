//! MCP protocol revisions and the Streamable HTTP headers that go with them.
//!
//! Two eras: the **handshake** revisions (2024-11-05 to 2025-11-25) open a session with
//! `initialize` and carry `Mcp-Session-Id` and, from 2025-06-18, `MCP-Protocol-Version`
//! on every later request; **2026-07-28** has no session and no `initialize`, and every
//! request names its revision in the `MCP-Protocol-Version` header and in
//! `params._meta`, its method in `Mcp-Method` and, for `tools/call`, `prompts/get` and
//! `resources/read`, its target in `Mcp-Name`. Those headers must agree with the body;
//! the gateway decides on the body and refuses a request whose headers say otherwise
//! (`-32020`), so nothing that routes or logs by header can be told one thing while the
//! upstream runs another.

use super::jsonrpc::{self, HEADER_MISMATCH, Kind};
use axum::http::HeaderMap;
use base64::Engine as _;
use serde_json::{Value, json};

/// `Mcp-Session-Id`.
pub const SESSION_ID: &str = "mcp-session-id";
/// `MCP-Protocol-Version`.
pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// `Mcp-Method` (2026-07-28).
pub const METHOD: &str = "mcp-method";
/// `Mcp-Name` (2026-07-28).
pub const NAME: &str = "mcp-name";
/// `Mcp-Param-*` (2026-07-28): forwarded as they are.
pub const PARAM_PREFIX: &str = "mcp-param-";
/// `Last-Event-ID` (SSE resumption, handshake era).
pub const LAST_EVENT_ID: &str = "last-event-id";

/// The handshake revisions, oldest first.
pub const HANDSHAKE: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The revision without sessions.
pub const MODERN: &str = "2026-07-28";
/// What a request without `MCP-Protocol-Version` is taken to speak (the spec's rule).
pub const ASSUMED_WITHOUT_HEADER: &str = "2025-03-26";
/// The `_meta` key of 2026-07-28 naming the revision.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// A revision the gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revision {
    /// One of [`HANDSHAKE`].
    Handshake(&'static str),
    /// [`MODERN`].
    Modern,
}

impl Revision {
    /// The revision's date string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handshake(v) => v,
            Self::Modern => MODERN,
        }
    }

    /// Whether the body may be a JSON-RPC batch (only 2025-03-26 and 2024-11-05 had
    /// them; 2025-06-18 removed them).
    pub fn allows_batches(self) -> bool {
        matches!(self, Self::Handshake("2024-11-05" | "2025-03-26"))
    }

    /// Parses a supported revision.
    pub fn parse(text: &str) -> Option<Self> {
        if text == MODERN {
            return Some(Self::Modern);
        }
        HANDSHAKE
            .iter()
            .find(|v| **v == text)
            .map(|v| Self::Handshake(v))
    }
}

/// Every revision the gateway speaks, for `data.supported`.
pub fn supported() -> Vec<&'static str> {
    let mut all = HANDSHAKE.to_vec();
    all.push(MODERN);
    all
}

/// A request the gateway refuses at the protocol level: the HTTP status and the
/// JSON-RPC error body.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolRefusal {
    /// HTTP status (400 for everything here).
    pub status: u16,
    /// The error code.
    pub code: i64,
    /// What is wrong.
    pub message: String,
    /// Extra data (`supported` for an unknown revision).
    pub data: Option<Value>,
}

impl ProtocolRefusal {
    fn bad(code: i64, message: String) -> Self {
        Self {
            status: 400,
            code,
            message,
            data: None,
        }
    }

    /// The JSON-RPC error body for the request with `id`.
    pub fn body(&self, id: Option<&Value>) -> Value {
        jsonrpc::error(id, self.code, &self.message, self.data.clone())
    }
}

/// One header as text, if present; a value that is not visible ASCII is refused.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ProtocolRefusal> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            ProtocolRefusal::bad(
                jsonrpc::INVALID_REQUEST,
                format!("header `{name}` is not visible ASCII"),
            )
        }),
    }
}

/// The revision a POST speaks: its `MCP-Protocol-Version` header; without one,
/// `initialize`'s proposal or the spec's assumption (2025-03-26).
pub fn of_post(headers: &HeaderMap, first: Option<&Value>) -> Result<Revision, ProtocolRefusal> {
    match header(headers, PROTOCOL_VERSION)? {
        Some(text) => Revision::parse(text.trim()).ok_or_else(|| unsupported(text)),
        None => {
            let proposed = first
                .filter(|m| m.get("method").and_then(Value::as_str) == Some("initialize"))
                .and_then(|m| m.pointer("/params/protocolVersion"))
                .and_then(Value::as_str);
            match proposed {
                // `initialize` negotiates: any proposal is answered with a revision the
                // server speaks, so it is not refused here.
                Some(v) => Ok(Revision::parse(v).unwrap_or(Revision::Handshake("2025-11-25"))),
                None => Ok(Revision::Handshake(ASSUMED_WITHOUT_HEADER)),
            }
        }
    }
}

/// `-32022` with the revisions the gateway speaks, as 2026-07-28 defines it.
pub fn unsupported(text: &str) -> ProtocolRefusal {
    ProtocolRefusal {
        status: 400,
        code: jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
        message: format!("unsupported MCP protocol version `{text}`"),
        data: Some(json!({ "supported": supported(), "requested": text })),
    }
}

/// The checks 2026-07-28 asks of a server that reads the body: `Mcp-Method` is the
/// method, `Mcp-Name` the name or URI the method acts on, and `_meta`'s revision the
/// header's. Clients must not POST responses in this revision.
pub fn check_modern(
    headers: &HeaderMap,
    message: &Value,
    kind: &Kind,
) -> Result<(), ProtocolRefusal> {
    let method = match kind {
        Kind::Request { method, .. } | Kind::Notification { method } => method,
        Kind::Response { .. } => {
            return Err(ProtocolRefusal::bad(
                jsonrpc::INVALID_REQUEST,
                "a client does not send responses in protocol version 2026-07-28".to_owned(),
            ));
        }
    };
    let declared = header(headers, METHOD)?.map(decode);
    match (declared, kind) {
        (Some(Ok(declared)), _) if declared == *method => {}
        (Some(Ok(declared)), _) => {
            return Err(mismatch(format!(
                "header `Mcp-Method` is `{declared}` but the body's method is `{method}`"
            )));
        }
        (Some(Err(problem)), _) => return Err(mismatch(format!("header `Mcp-Method`: {problem}"))),
        (None, Kind::Request { .. }) => {
            return Err(mismatch(format!(
                "header `Mcp-Method` is missing (protocol version 2026-07-28 requires it; the body's method is `{method}`)"
            )));
        }
        (None, _) => {}
    }
    let target_key = match method.as_str() {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(key) = target_key {
        let target = jsonrpc::params(message)
            .and_then(|p| p.get(key))
            .and_then(Value::as_str);
        match (header(headers, NAME)?.map(decode), target) {
            (Some(Ok(name)), Some(target)) if name == target => {}
            (Some(Ok(name)), Some(target)) => {
                return Err(mismatch(format!(
                    "header `Mcp-Name` is `{name}` but the body's `params.{key}` is `{target}`"
                )));
            }
            (Some(Err(problem)), _) => {
                return Err(mismatch(format!("header `Mcp-Name`: {problem}")));
            }
            (None, _) => {
                return Err(mismatch(format!(
                    "header `Mcp-Name` is missing (protocol version 2026-07-28 requires it for `{method}`)"
                )));
            }
            // The body lacks the target: the method's own validation answers that.
            (Some(Ok(_)), None) => {}
        }
    }
    if let Some(meta) = jsonrpc::params(message)
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(META_PROTOCOL_VERSION))
        && meta.as_str() != Some(MODERN)
    {
        return Err(mismatch(format!(
            "header `MCP-Protocol-Version` is `{MODERN}` but `params._meta[\"{META_PROTOCOL_VERSION}\"]` is {meta}"
        )));
    }
    Ok(())
}

fn mismatch(message: String) -> ProtocolRefusal {
    ProtocolRefusal::bad(HEADER_MISMATCH, message)
}

/// Decodes a header value written as `=?base64?…?=` (the form 2026-07-28 uses for
/// values that are not safe ASCII); other values are taken as they are.
pub fn decode(value: &str) -> Result<String, String> {
    let Some(inner) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Ok(value.trim().to_owned());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(inner)
        .map_err(|e| format!("`{value}` is not valid base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| format!("`{value}` does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn call(name: &str) -> (Value, Kind) {
        let message = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":name,"arguments":{},
            "_meta":{META_PROTOCOL_VERSION: MODERN}}});
        let kind = jsonrpc::classify(&message).unwrap();
        (message, kind)
    }

    #[test]
    fn the_revision_comes_from_the_header_or_the_spec_default() {
        assert_eq!(
            of_post(&headers(&[(PROTOCOL_VERSION, MODERN)]), None),
            Ok(Revision::Modern)
        );
        assert_eq!(
            of_post(&headers(&[]), None),
            Ok(Revision::Handshake(ASSUMED_WITHOUT_HEADER))
        );
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}});
        assert_eq!(
            of_post(&headers(&[]), Some(&init)),
            Ok(Revision::Handshake("2025-06-18"))
        );
        let refused = of_post(&headers(&[(PROTOCOL_VERSION, "1999-01-01")]), None).unwrap_err();
        assert_eq!(refused.code, jsonrpc::UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(refused.data.unwrap()["supported"][4], MODERN);
    }

    #[test]
    fn modern_headers_must_match_the_body() {
        let (message, kind) = call("read_file");
        let good = headers(&[(METHOD, "tools/call"), (NAME, "read_file")]);
        assert_eq!(check_modern(&good, &message, &kind), Ok(()));
        let lying = headers(&[(METHOD, "tools/call"), (NAME, "list_dir")]);
        let refused = check_modern(&lying, &message, &kind).unwrap_err();
        assert_eq!(refused.code, HEADER_MISMATCH);
        assert!(
            refused
                .message
                .contains("`list_dir` but the body's `params.name` is `read_file`")
        );
        let missing = headers(&[(METHOD, "tools/call")]);
        assert!(
            check_modern(&missing, &message, &kind)
                .unwrap_err()
                .message
                .contains("`Mcp-Name` is missing")
        );
        let other_method = headers(&[(METHOD, "tools/list"), (NAME, "read_file")]);
        assert!(check_modern(&other_method, &message, &kind).is_err());
        let encoded = headers(&[(METHOD, "tools/call"), (NAME, "=?base64?cmVhZF9maWxl?=")]);
        assert_eq!(check_modern(&encoded, &message, &kind), Ok(()));
    }

    #[test]
    fn a_modern_client_may_not_post_responses() {
        let message = json!({"jsonrpc":"2.0","id":1,"result":{}});
        let kind = jsonrpc::classify(&message).unwrap();
        assert!(check_modern(&headers(&[]), &message, &kind).is_err());
    }

    #[test]
    fn batches_exist_only_before_2025_06_18() {
        assert!(Revision::Handshake("2025-03-26").allows_batches());
        assert!(!Revision::Handshake("2025-06-18").allows_batches());
        assert!(!Revision::Modern.allows_batches());
    }
}
