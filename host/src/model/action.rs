//! The agent action Arbiter decides on: the host's own typed model of the WIT `action`
//! record, with the JSON shape gateways send.
//!
//! The JSON uses `snake_case` keys; times are Unix epoch milliseconds. The `history` of
//! the WIT record is not part of the input: Arbiter fills it from its own task history,
//! so a gateway (or an attacker controlling part of the request) cannot forge what a
//! task did before. Unknown keys are refused so that a misspelt field never silently
//! drops information a policy depends on.
//!
//! # Objects only
//!
//! serde's derived `Deserialize` also accepts a struct written as a positional array:
//! `"agent": ["spiffe://…"]`, `"tool": ["fs", "read_file"]`. A probe got 1,489 decisions
//! (217 of them allow) for such schema-invalid requests. Every record here is therefore
//! deserialized through `object_only!`: the derived code runs under
//! `#[serde(remote = "Self")]` and the public `Deserialize` impl accepts a JSON object
//! and nothing else, wherever the record appears (top level, nested, in a list), for the
//! HTTP API and the embedding API alike.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::error::Category;
use std::collections::BTreeMap;
use std::fmt::Display;

/// Largest accepted string field, in bytes (arguments excepted).
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Largest accepted argument document, in bytes of JSON text.
pub const MAX_ARGUMENTS_BYTES: usize = 1024 * 1024;
/// Longest accepted list (scopes, labels, delegation chain, claims, environment).
pub const MAX_LIST_LEN: usize = 1024;
/// Longest accepted `request_id` and `task.id`, in bytes. Ids travel in URL paths
/// (`POST /v1/tasks/{id}/end`), log lines and metrics exemplars: a bound well under any
/// HTTP request-line limit means every id `/v1/decide` accepts can also be ended.
pub const MAX_ID_BYTES: usize = 256;
/// Longest accepted `agent.id`, in bytes: SPIFFE IDs and URIs can be long.
pub const MAX_AGENT_ID_BYTES: usize = 2048;
/// The characters besides ASCII letters and digits that `request_id` and `task.id` may
/// hold: enough for UUIDs, ULIDs, URNs, `tenant/task` paths and base64, none that needs
/// quoting in a log line or (except `/`, written `%2F`) escaping in a URL path.
pub const ID_PUNCTUATION: &str = "-_.:@/+=~";
/// Environment keys with this prefix are set by Arbiter's own adapters (the MCP gateway
/// sets `arbiter.phase`, which tells plugins whether a tool is being called or only
/// listed). The JSON parser refuses them, so that a caller of the decision API cannot
/// pass a real call off as a listing.
pub const RESERVED_ENVIRONMENT_PREFIX: &str = "arbiter.";
/// The environment key the MCP gateway sets to `call` (a `tools/call`) or `list` (a
/// `tools/list` probe: arguments are empty, and the decision only hides or shows the
/// tool; see `docs/mcp-gateway.md`).
pub const PHASE_KEY: &str = "arbiter.phase";

/// Implements `Deserialize` for a record whose derived code is generated under
/// `#[serde(remote = "Self")]`, accepting only a JSON object (see the module docs), and
/// `Serialize` by the derived code.
macro_rules! object_only {
    ($ty:ident, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ObjectVisitor;
                impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<$ty, A::Error> {
                        $ty::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                deserializer.deserialize_map(ObjectVisitor)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $ty::serialize(self, serializer)
            }
        }
    };
}

object_only!(Action, "an action object");
object_only!(Agent, "an agent object");
object_only!(Principal, "a principal object");
object_only!(Task, "a task object");
object_only!(Tool, "a tool object");
object_only!(Credential, "a credential object");
object_only!(Resource, "a resource object");

/// An action an agent is about to take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Action {
    /// The gateway's id for this request; echoed in the decision.
    pub request_id: String,
    /// The acting agent's workload identity.
    pub agent: Agent,
    /// On whose behalf, outermost principal first.
    #[serde(default)]
    pub delegation: Vec<Principal>,
    /// The task the action belongs to.
    #[serde(default)]
    pub task: Option<Task>,
    /// The tool being called.
    pub tool: Tool,
    /// The tool's arguments: any JSON value (usually an object). Defaults to `{}`.
    #[serde(default = "empty_object")]
    pub arguments: Value,
    /// The credential the call would use.
    #[serde(default)]
    pub credential: Option<Credential>,
    /// The resource touched, where known.
    #[serde(default)]
    pub resource: Option<Resource>,
    /// Environment key/values, e.g. `{"env": "prod"}`.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// When the gateway received the request, Unix ms. When absent, Arbiter uses its own
    /// clock at the moment of the decision.
    #[serde(default)]
    pub time: Option<u64>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

fn default_attestation() -> String {
    "none".to_owned()
}

/// The agent's workload identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Agent {
    /// Workload identity, normally a SPIFFE ID.
    pub id: String,
    /// How the identity was attested (`x509-svid`, `jwt-svid`, `mtls`, `oidc`, `none`).
    #[serde(default = "default_attestation")]
    pub attestation: String,
    /// Extra identity claims.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
}

/// One principal of a delegation chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Principal {
    /// User id, e-mail or SPIFFE ID.
    pub id: String,
    /// `user`, `agent` or `service`.
    pub kind: String,
    /// Scopes this principal delegated onward.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// The task an action belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Task {
    /// Task identifier.
    pub id: String,
    /// Declared intent.
    pub intent: String,
    /// Start, Unix ms.
    pub started_at: u64,
    /// Expiry, Unix ms.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// The tool being called.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Tool {
    /// Tool server (MCP server name, API host).
    pub server: String,
    /// Tool name on that server.
    pub name: String,
}

/// The credential a call would use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Credential {
    /// Scopes carried.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Expiry, Unix ms.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Audience the credential is bound to.
    #[serde(default)]
    pub audience: Option<String>,
}

/// The resource a call touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Resource {
    /// Identifier.
    pub id: String,
    /// Sensitivity labels.
    #[serde(default)]
    pub labels: Vec<String>,
}

/// An action that Arbiter could not accept, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("invalid action: `{field}`: {problem}")]
pub struct ActionError {
    /// Path of the offending field, e.g. `task.expires_at` (`.` for the whole document).
    pub field: String,
    /// What is wrong and what was expected.
    pub problem: String,
    /// Whether the text was not JSON at all, or JSON that is not a valid action.
    #[serde(skip)]
    pub kind: ActionErrorKind,
}

/// What kind of input an [`ActionError`] refused (adapters answer them differently: HTTP
/// says 400 for bad JSON, 422 for a bad action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActionErrorKind {
    /// Well-formed JSON that is not a valid action (a missing or mistyped field, a bound).
    #[default]
    Invalid,
    /// Not JSON: a syntax error, the end of input, or text after the action.
    Syntax,
    /// JSON nested deeper than serde_json's 128 levels.
    TooDeep,
}

impl ActionError {
    /// A bad action: `field` is wrong because of `problem`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
            kind: ActionErrorKind::Invalid,
        }
    }
}

impl Action {
    /// Parses one action from JSON text, naming the offending field on error.
    pub fn from_json(text: &str) -> Result<Self, ActionError> {
        Self::from_json_slice(text.as_bytes())
    }

    /// The one action parser, behind the embedding API and every adapter: a JSON object
    /// (never a positional array), every field by path on error, nothing after it, and
    /// [`Action::validate`] once. [`ActionError::kind`] tells bad JSON from a bad action.
    pub fn from_json_slice(bytes: &[u8]) -> Result<Self, ActionError> {
        // The records refuse arrays (`object_only!`); this names the whole document.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(ActionError::new(
                ".",
                "invalid type: sequence, expected a JSON object (an action), found an array",
            ));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let action: Action = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|e| json_error(e.path().to_string(), e.inner()))?;
        deserializer
            .end()
            .map_err(|e| json_error(String::new(), &e))?;
        action.validate()?;
        action.refuse_reserved_environment()?;
        Ok(action)
    }

    /// Parses an action from an already-parsed JSON value.
    pub fn from_value(value: Value) -> Result<Self, ActionError> {
        let action: Action = serde_path_to_error::deserialize(value)
            .map_err(|e| json_error(e.path().to_string(), e.inner()))?;
        action.validate()?;
        action.refuse_reserved_environment()?;
        Ok(action)
    }

    /// Keys only Arbiter's adapters may set ([`RESERVED_ENVIRONMENT_PREFIX`]).
    fn refuse_reserved_environment(&self) -> Result<(), ActionError> {
        match self
            .environment
            .keys()
            .find(|k| k.starts_with(RESERVED_ENVIRONMENT_PREFIX))
        {
            None => Ok(()),
            Some(key) => Err(ActionError::new(
                format!("environment.{key}"),
                format!(
                    "keys starting with `{RESERVED_ENVIRONMENT_PREFIX}` are set by Arbiter's adapters, not by callers"
                ),
            )),
        }
    }

    /// Checks what the types alone cannot: required strings are non-empty, sizes are
    /// bounded, ids use their character sets ([`check_id`], [`check_agent_id`]), times
    /// are consistent.
    pub fn validate(&self) -> Result<(), ActionError> {
        check_id("request_id", &self.request_id)?;
        check_agent_id("agent.id", &self.agent.id)?;
        bounded("agent.attestation", &self.agent.attestation)?;
        bounded_map("agent.claims", &self.agent.claims)?;
        bounded_len("delegation", self.delegation.len())?;
        for (i, p) in self.delegation.iter().enumerate() {
            non_empty(format_args!("delegation[{i}].id"), &p.id)?;
            non_empty(format_args!("delegation[{i}].kind"), &p.kind)?;
            bounded_list(format_args!("delegation[{i}].scopes"), &p.scopes)?;
        }
        if let Some(task) = &self.task {
            check_id("task.id", &task.id)?;
            bounded("task.intent", &task.intent)?;
            if let Some(expires_at) = task.expires_at
                && expires_at < task.started_at
            {
                return Err(ActionError::new(
                    "task.expires_at",
                    format!(
                        "expires ({expires_at}) before the task starts ({})",
                        task.started_at
                    ),
                ));
            }
        }
        non_empty("tool.server", &self.tool.server)?;
        non_empty("tool.name", &self.tool.name)?;
        if let Some(credential) = &self.credential {
            bounded_list("credential.scopes", &credential.scopes)?;
            if let Some(audience) = &credential.audience {
                bounded("credential.audience", audience)?;
            }
        }
        if let Some(resource) = &self.resource {
            bounded("resource.id", &resource.id)?;
            bounded_list("resource.labels", &resource.labels)?;
        }
        bounded_map("environment", &self.environment)?;
        let arguments_len = json_len(&self.arguments);
        if arguments_len > MAX_ARGUMENTS_BYTES {
            return Err(ActionError::new(
                "arguments",
                format!("{arguments_len} bytes of JSON, expected at most {MAX_ARGUMENTS_BYTES}"),
            ));
        }
        Ok(())
    }

    /// The task id, if any.
    pub fn task_id(&self) -> Option<&str> {
        self.task.as_ref().map(|t| t.id.as_str())
    }
}

/// The length of a value's compact JSON text, counted without building the text: every
/// decision checks it, and arguments can be large.
fn json_len(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Serialising a `Value` into an infallible writer cannot fail; if it ever did, report
    // the bound as exceeded rather than pass an unchecked size.
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

fn json_error(path: String, error: &serde_json::Error) -> ActionError {
    let field = if path.is_empty() {
        ".".to_owned()
    } else {
        path
    };
    // serde's messages say "at line L column C"; keep them, they help with big bodies.
    let problem = error.to_string();
    let kind = match error.classify() {
        Category::Data => ActionErrorKind::Invalid,
        // serde_json stops at 128 levels of nesting and reports it as a syntax error.
        Category::Syntax if problem.starts_with("recursion limit exceeded") => {
            ActionErrorKind::TooDeep
        }
        Category::Syntax | Category::Eof | Category::Io => ActionErrorKind::Syntax,
    };
    ActionError {
        field,
        problem,
        kind,
    }
}

/// Checks a request or task id: non-empty, at most [`MAX_ID_BYTES`] bytes, only ASCII
/// letters, digits and [`ID_PUNCTUATION`]. `field` names the id in the error. The HTTP
/// API checks the task id of `POST /v1/tasks/…/end` with the same rule, so every task an
/// action can name can also be ended.
pub fn check_id(field: &str, value: &str) -> Result<(), ActionError> {
    if value.is_empty() {
        return Err(ActionError::new(field, "must be a non-empty string"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(ActionError::new(
            field,
            format!("{} bytes, expected at most {MAX_ID_BYTES}", value.len()),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || ID_PUNCTUATION.contains(c);
    match value.char_indices().find(|&(_, c)| !allowed(c)) {
        None => Ok(()),
        Some(_) if value.trim().is_empty() => {
            Err(ActionError::new(field, "must be a non-empty string"))
        }
        Some((at, c)) => Err(ActionError::new(
            field,
            format!(
                "character {c:?} at byte {at} is not allowed: expected ASCII letters, digits and `{ID_PUNCTUATION}`"
            ),
        )),
    }
}

/// Checks an agent id: non-empty, at most [`MAX_AGENT_ID_BYTES`] bytes, visible ASCII
/// only (no whitespace or control characters), which every SPIFFE ID and URI is.
pub fn check_agent_id(field: &str, value: &str) -> Result<(), ActionError> {
    if value.trim().is_empty() {
        return Err(ActionError::new(field, "must be a non-empty string"));
    }
    if value.len() > MAX_AGENT_ID_BYTES {
        return Err(ActionError::new(
            field,
            format!(
                "{} bytes, expected at most {MAX_AGENT_ID_BYTES}",
                value.len()
            ),
        ));
    }
    match value.char_indices().find(|&(_, c)| !c.is_ascii_graphic()) {
        None => Ok(()),
        Some((at, c)) => Err(ActionError::new(
            field,
            format!(
                "character {c:?} at byte {at} is not allowed: expected visible ASCII without whitespace"
            ),
        )),
    }
}

// Field names are `Display` so that indexed names (`delegation[2].id`) are only
// formatted when there is an error to report, not for every field of every action.

fn non_empty(field: impl Display, value: &str) -> Result<(), ActionError> {
    if value.trim().is_empty() {
        return Err(ActionError::new(
            field.to_string(),
            "must be a non-empty string",
        ));
    }
    bounded(field, value)
}

fn bounded(field: impl Display, value: &str) -> Result<(), ActionError> {
    if value.len() > MAX_FIELD_BYTES {
        return Err(ActionError::new(
            field.to_string(),
            format!("{} bytes, expected at most {MAX_FIELD_BYTES}", value.len()),
        ));
    }
    Ok(())
}

fn bounded_len(field: impl Display, len: usize) -> Result<(), ActionError> {
    if len > MAX_LIST_LEN {
        return Err(ActionError::new(
            field.to_string(),
            format!("{len} entries, expected at most {MAX_LIST_LEN}"),
        ));
    }
    Ok(())
}

fn bounded_list(field: impl Display, values: &[String]) -> Result<(), ActionError> {
    bounded_len(&field, values.len())?;
    for (i, v) in values.iter().enumerate() {
        bounded(format_args!("{field}[{i}]"), v)?;
    }
    Ok(())
}

fn bounded_map(field: &str, map: &BTreeMap<String, String>) -> Result<(), ActionError> {
    bounded_len(field, map.len())?;
    for (k, v) in map {
        bounded(format_args!("{field}.{k}"), k)?;
        bounded(format_args!("{field}.{k}"), v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"request_id":"r1","agent":{"id":"spiffe://x/a"},"tool":{"server":"fs","name":"read_file"}}"#;

    #[test]
    fn minimal_action_parses_with_defaults() {
        let action = Action::from_json(MINIMAL).unwrap();
        assert_eq!(action.agent.attestation, "none");
        assert_eq!(action.arguments, serde_json::json!({}));
        assert!(action.task.is_none());
    }

    #[test]
    fn callers_cannot_set_the_adapters_environment_keys() {
        // `arbiter.phase = list` would make the intent plugin skip argument checks.
        let text = r#"{"request_id":"r1","agent":{"id":"a"},"tool":{"server":"fs","name":"x"},"environment":{"arbiter.phase":"list"}}"#;
        let err = Action::from_json(text).unwrap_err();
        assert_eq!(err.field, "environment.arbiter.phase");
        assert!(err.problem.contains("set by Arbiter's adapters"), "{err}");
        let value: Value = serde_json::from_str(text).unwrap();
        assert!(Action::from_value(value).is_err());
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = Action::from_json(
            r#"{"request_id":"r1","agent":{"id":"a"},"tool":{"server":"fs","name":"x"},"task":{"id":"t","intent":"i","started_at":"yesterday"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "task.started_at");
        assert!(err.problem.contains("expected u64"), "{}", err.problem);
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        let err = Action::from_json(r#"{"request_id":"r1","agent":{"id":"a"}}"#).unwrap_err();
        assert!(err.problem.contains("missing field `tool`"), "{err}");
        let err = Action::from_json(
            r#"{"request_id":"r1","agent":{"id":"a"},"tool":{"server":"fs","name":"x"},"histroy":[]}"#,
        )
        .unwrap_err();
        assert!(err.problem.contains("unknown field `histroy`"), "{err}");
    }

    #[test]
    fn empty_required_strings_are_refused() {
        let err = Action::from_json(
            r#"{"request_id":"r1","agent":{"id":" "},"tool":{"server":"fs","name":"x"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "agent.id");
    }

    #[test]
    fn records_must_be_objects_not_positional_arrays() {
        // Each was accepted (and decided) before records became objects-only.
        for (body, field) in [
            (
                r#"{"request_id":"r1","agent":["spiffe://x/a"],"tool":{"server":"fs","name":"x"}}"#,
                "agent",
            ),
            (
                r#"{"request_id":"r1","agent":{"id":"a"},"tool":["fs","read_file"]}"#,
                "tool",
            ),
            (
                r#"{"request_id":"r1","agent":{"id":"a"},"tool":{"server":"fs","name":"x"},"task":["t","i",1]}"#,
                "task",
            ),
            (
                r#"{"request_id":"r1","agent":{"id":"a"},"tool":{"server":"fs","name":"x"},"delegation":[["u","user",[]]]}"#,
                "delegation[0]",
            ),
            (
                r#"{"request_id":"r1","agent":{"id":"a"},"tool":{"server":"fs","name":"x"},"credential":[["s"]]}"#,
                "credential",
            ),
            (
                r#"{"request_id":"r1","agent":{"id":"a"},"tool":{"server":"fs","name":"x"},"resource":["r",[]]}"#,
                "resource",
            ),
            (
                r#"["r1",{"id":"a"},[],null,{"server":"fs","name":"x"}]"#,
                ".",
            ),
        ] {
            let err = Action::from_json(body).unwrap_err();
            assert_eq!(err.field, field, "{body}: {err}");
            assert!(
                err.problem.contains("invalid type: sequence, expected a"),
                "{body}: {err}"
            );
            let value: serde_json::Value = serde_json::from_str(body).unwrap();
            assert!(Action::from_value(value).is_err(), "{body}");
        }
        // The same records as objects still round-trip through serde.
        let action = Action::from_json(MINIMAL).unwrap();
        let text = serde_json::to_string(&action).unwrap();
        assert_eq!(Action::from_json(&text).unwrap(), action);
    }

    #[test]
    fn history_cannot_be_supplied() {
        let err = Action::from_json(
            r#"{"request_id":"r1","agent":{"id":"a"},"tool":{"server":"fs","name":"x"},"history":[]}"#,
        )
        .unwrap_err();
        assert!(err.problem.contains("unknown field `history`"));
    }

    fn with_ids(request_id: &str, agent_id: &str, task_id: &str) -> Result<Action, ActionError> {
        Action::from_value(serde_json::json!({
            "request_id": request_id,
            "agent": {"id": agent_id},
            "task": {"id": task_id, "intent": "i", "started_at": 0},
            "tool": {"server": "fs", "name": "x"},
        }))
    }

    #[test]
    fn ids_of_the_documented_shapes_are_accepted() {
        let longest = "a".repeat(MAX_ID_BYTES);
        for id in [
            "r1",
            "req-5b21c0de-0001",
            "0b5e5f0c-6f1e-4d8a-9c41-2a7d0b1c9e77",
            "urn:uuid:6f1e",
            "tenant/task.7@eu+x=~_",
            longest.as_str(),
        ] {
            with_ids(id, "spiffe://example.org/ns/a/sa/b", id).unwrap();
        }
        with_ids("r", &format!("spiffe://x/{}", "a".repeat(2000)), "t").unwrap();
    }

    #[test]
    fn ids_over_their_bound_or_outside_their_character_set_are_refused() {
        let long = "a".repeat(MAX_ID_BYTES + 1);
        let cases = [
            (
                with_ids(&long, "a", "t"),
                "request_id",
                "257 bytes, expected at most 256",
            ),
            (
                with_ids("r", "a", &long),
                "task.id",
                "257 bytes, expected at most 256",
            ),
            (
                with_ids("r 1", "a", "t"),
                "request_id",
                "character ' ' at byte 1",
            ),
            (
                with_ids("r", "a", "t\n"),
                "task.id",
                "character '\\n' at byte 1",
            ),
            (
                with_ids("r", "a", "t%2F"),
                "task.id",
                "character '%' at byte 1",
            ),
            (
                with_ids("r", "a", "tâche"),
                "task.id",
                "character 'â' at byte 1",
            ),
            (with_ids("r", "a", "  "), "task.id", "non-empty"),
            (with_ids("r", "a", ""), "task.id", "non-empty"),
            (
                with_ids("r", &"a".repeat(MAX_AGENT_ID_BYTES + 1), "t"),
                "agent.id",
                "2049 bytes, expected at most 2048",
            ),
            (
                with_ids("r", "spiffe://x/a b", "t"),
                "agent.id",
                "character ' ' at byte 12",
            ),
            (
                with_ids("r", "spiffe://x/a\u{7f}", "t"),
                "agent.id",
                "character '\\u{7f}'",
            ),
        ];
        for (result, field, problem) in cases {
            let err = result.unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.problem.contains(problem), "{err}");
        }
        let err = with_ids("r", "a", "t!").unwrap_err();
        assert!(
            err.problem
                .contains("expected ASCII letters, digits and `-_.:@/+=~`"),
            "{err}"
        );
    }
}
