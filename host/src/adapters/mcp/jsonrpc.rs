//! JSON-RPC 2.0 as MCP uses it: telling requests, notifications and responses apart
//! without decoding what the gateway does not need, and the error objects it answers.
//!
//! # Error codes
//!
//! The spec's own codes are used for what they mean (`-32700` parse error, `-32600`
//! invalid request, `-32602` invalid params, `-32020` header mismatch, `-32022`
//! unsupported protocol version). Arbiter's refusals use codes of their own, **outside**
//! the JSON-RPC reserved range `-32768..-32000`: revision 2026-07-28 of MCP reserves
//! `-32020..-32099` for the specification, calls `-32000..-32019` legacy that new
//! implementations should not use, and asks for new codes outside the reserved range
//! ("Error Codes" in `basic/index.mdx`). A client can therefore never mistake a policy
//! denial for a protocol condition it handles itself.

use serde_json::{Map, Value, json};

/// The call was denied by policy. `data` carries the decision.
pub const DENIED: i64 = -31001;
/// The call needs step-up (human approval or stronger authentication). `data` carries
/// the decision and the approver groups; the approval flow completes it.
pub const STEP_UP_REQUIRED: i64 = -31002;
/// No decision could be made: the policy set has not loaded. Fail closed.
pub const POLICY_UNAVAILABLE: i64 = -31003;
/// The gateway refused the call before deciding: the request lacks what a decision
/// needs (the agent's identity, a valid task header), naming what.
pub const REFUSED: i64 = -31004;
/// The request's identity was refused before anything was relayed or decided: a
/// credential that did not verify, none where verification is required, or an agent
/// header naming another agent than the verified one.
pub const IDENTITY_REFUSED: i64 = -31005;
/// The upstream cannot be reached, exited, or has no room for another session.
pub const UPSTREAM_UNAVAILABLE: i64 = -31010;
/// The upstream answered something that is not MCP.
pub const UPSTREAM_INVALID: i64 = -31011;
/// The upstream did not start answering in time (`gateway.upstream_timeout_ms`).
pub const UPSTREAM_TIMEOUT: i64 = -31012;

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a valid JSON-RPC message.
pub const INVALID_REQUEST: i64 = -32600;
/// Method not found.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// A 2026-07-28 header disagrees with the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// The protocol version is not supported.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// What one JSON-RPC message is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A request: it has a method and an id and expects a response.
    Request {
        /// Its id (a string or an integer).
        id: Value,
        /// Its method.
        method: String,
    },
    /// A notification: a method and no id.
    Notification {
        /// Its method.
        method: String,
    },
    /// A response (to a server-to-client request): an id and a result or an error.
    Response {
        /// Its id.
        id: Value,
    },
}

/// Why a message is not valid JSON-RPC, for the `-32600` answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON-RPC message: {0}")]
pub struct InvalidMessage(pub String);

/// Classifies one message (an object of a batch, or the whole body).
pub fn classify(message: &Value) -> Result<Kind, InvalidMessage> {
    let Some(object) = message.as_object() else {
        return Err(InvalidMessage(format!(
            "expected a JSON object, found {}",
            type_name(message)
        )));
    };
    match object.get("jsonrpc") {
        Some(Value::String(v)) if v == "2.0" => {}
        Some(other) => {
            return Err(InvalidMessage(format!(
                "`jsonrpc` must be \"2.0\", found {other}"
            )));
        }
        None => return Err(InvalidMessage("`jsonrpc` is missing".to_owned())),
    }
    let id = match object.get("id") {
        None => None,
        Some(id @ Value::String(_)) => Some(id.clone()),
        Some(id @ Value::Number(n)) if n.is_i64() || n.is_u64() => Some(id.clone()),
        Some(other) => {
            return Err(InvalidMessage(format!(
                "`id` must be a string or an integer, found {}",
                type_name(other)
            )));
        }
    };
    match (object.get("method"), id) {
        (Some(Value::String(method)), Some(id)) => {
            check_params(object)?;
            Ok(Kind::Request {
                id,
                method: method.clone(),
            })
        }
        (Some(Value::String(method)), None) => {
            check_params(object)?;
            Ok(Kind::Notification {
                method: method.clone(),
            })
        }
        (Some(other), _) => Err(InvalidMessage(format!(
            "`method` must be a string, found {}",
            type_name(other)
        ))),
        (None, Some(id)) => match (object.get("result"), object.get("error")) {
            (Some(_), None) | (None, Some(_)) => Ok(Kind::Response { id }),
            _ => Err(InvalidMessage(
                "a response needs exactly one of `result` and `error`".to_owned(),
            )),
        },
        (None, None) => Err(InvalidMessage(
            "neither a request (`method`, `id`), a notification (`method`) nor a response (`id`, `result`/`error`)"
                .to_owned(),
        )),
    }
}

fn check_params(object: &Map<String, Value>) -> Result<(), InvalidMessage> {
    match object.get("params") {
        None | Some(Value::Object(_)) => Ok(()),
        Some(other) => Err(InvalidMessage(format!(
            "`params` must be an object, found {}",
            type_name(other)
        ))),
    }
}

/// `null`, `a boolean`, … for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON-RPC error response.
pub fn error(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({ "code": code, "message": message });
    if let (Some(data), Some(object)) = (data, error.as_object_mut()) {
        object.insert("data".to_owned(), data);
    }
    json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": error,
    })
}

/// A JSON-RPC result response.
pub fn result(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// The `params` object of a message, if it has one.
pub fn params(message: &Value) -> Option<&Map<String, Value>> {
    message.get("params").and_then(Value::as_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_told_apart() {
        assert_eq!(
            classify(&json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}})),
            Ok(Kind::Request {
                id: json!(1),
                method: "tools/call".to_owned()
            })
        );
        assert_eq!(
            classify(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})),
            Ok(Kind::Notification {
                method: "notifications/initialized".to_owned()
            })
        );
        assert_eq!(
            classify(&json!({"jsonrpc":"2.0","id":"s-1","result":{}})),
            Ok(Kind::Response { id: json!("s-1") })
        );
    }

    #[test]
    fn invalid_messages_say_what_is_wrong() {
        let cases = [
            (json!([]), "expected a JSON object, found an array"),
            (json!({"id":1,"method":"x"}), "`jsonrpc` is missing"),
            (
                json!({"jsonrpc":"1.0","id":1,"method":"x"}),
                "must be \"2.0\"",
            ),
            (
                json!({"jsonrpc":"2.0","id":null,"method":"x"}),
                "`id` must be a string or an integer, found null",
            ),
            (
                json!({"jsonrpc":"2.0","id":1.5,"method":"x"}),
                "`id` must be a string or an integer",
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"method":7}),
                "`method` must be a string",
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"method":"x","params":[1]}),
                "`params` must be an object",
            ),
            (
                json!({"jsonrpc":"2.0","id":1}),
                "exactly one of `result` and `error`",
            ),
            (json!({"jsonrpc":"2.0"}), "neither a request"),
        ];
        for (message, expected) in cases {
            let problem = classify(&message)
                .map(|k| format!("{k:?}"))
                .unwrap_or_else(|e| e.0);
            assert!(problem.contains(expected), "{message}: {problem}");
        }
    }

    #[test]
    fn errors_carry_data_only_when_given() {
        let e = error(
            Some(&json!(3)),
            DENIED,
            "denied",
            Some(json!({"effect":"deny"})),
        );
        assert_eq!(e["id"], 3);
        assert_eq!(e["error"]["code"], DENIED);
        assert_eq!(e["error"]["data"]["effect"], "deny");
        let e = error(None, PARSE_ERROR, "parse error", None);
        assert_eq!(e["id"], Value::Null);
        assert!(e["error"].get("data").is_none());
    }
}
