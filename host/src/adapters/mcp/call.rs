//! From an MCP request to the action Arbiter decides, and from the decision back to
//! what the client sees.
//!
//! # Where each field comes from
//!
//! | action field | source |
//! | --- | --- |
//! | `tool.server` | the upstream's configured `name` (the endpoint `/mcp/{name}`) |
//! | `tool.name`, `arguments` | the JSON-RPC body: `params.name`, `params.arguments` (never a header) |
//! | `agent.id`, `agent.attestation` | the verified SPIFFE ID (`[identity]`: the TLS client's X.509-SVID, or a JWT-SVID in `Authorization: Bearer`); else `[gateway.identity]`: the `x-arbiter-agent` header (or the one configured), or a fixed id, with attestation `none` |
//! | `task` | headers `x-arbiter-task` (id), `x-arbiter-intent`, `x-arbiter-task-started-at`, `x-arbiter-task-expires-at` (Unix ms) |
//! | `delegation` | header `x-arbiter-delegation`: a JSON array of `{id, kind, scopes}` |
//! | `request_id` | header `x-arbiter-request-id`, else a fresh `mcp-<uuid>` |
//! | `resource` | `mcp://{upstream}/{tool}` with the configured `labels` and `tool_labels` |
//! | `environment` | `[gateway] environment`, plus `arbiter.phase` = `call` or `list` |
//!
//! An agent header that names another agent than the verified identity is refused
//! before anything is decided. The task headers are assertions of the client; every
//! decision (and its log line) records the identity, its attestation and its source.

use super::config::{AgentSource, DenialStyle, GatewayConfig, UpstreamConfig};
use super::jsonrpc;
use crate::identity::ResolvedIdentity;
use crate::model::TaskMode;
use crate::model::{
    Action, Agent, Decision, DecisionEffect, PHASE_KEY, Principal, Resource, Task, Tool,
};
use axum::http::HeaderMap;
use serde_json::{Value, json};

/// Header with the task id.
pub const TASK_HEADER: &str = "x-arbiter-task";
/// Header with the task's declared intent.
pub const INTENT_HEADER: &str = "x-arbiter-intent";
/// Header with the task's start, Unix ms.
pub const TASK_STARTED_HEADER: &str = "x-arbiter-task-started-at";
/// Header with the task's expiry, Unix ms.
pub const TASK_EXPIRES_HEADER: &str = "x-arbiter-task-expires-at";
/// Header with the delegation chain, JSON.
pub const DELEGATION_HEADER: &str = "x-arbiter-delegation";
/// Header with the gateway's request id.
pub const REQUEST_ID_HEADER: &str = "x-arbiter-request-id";

/// Whether the action is a call that will run, or a `tools/list` preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `tools/call`.
    Call,
    /// `tools/list`: is this tool worth showing?
    List,
}

impl Phase {
    fn word(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::List => "list",
        }
    }
}

/// Why no action could be built: the request lacks what a decision needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CallRefusal(pub String);

/// The agent id the request asserts in the configured header, and where, for
/// [`crate::service::DecisionService::identify`]. A fixed agent of the config is not a
/// claim of the request: it applies only when nothing is verified ([`fallback_agent`]).
pub fn asserted_agent(
    gateway: &GatewayConfig,
    headers: &HeaderMap,
) -> Result<Option<(String, String)>, CallRefusal> {
    match &gateway.agent {
        AgentSource::Fixed(_) => Ok(None),
        AgentSource::Header(name) => Ok(text(headers, name)?
            .filter(|v| !v.is_empty())
            .map(|id| (id.to_owned(), format!("header:{name}")))),
    }
}

/// The agent a request with no verified and no asserted identity acts as: the fixed
/// agent of the config, or a refusal naming the missing header.
pub fn fallback_agent(gateway: &GatewayConfig) -> Result<(String, String), CallRefusal> {
    match &gateway.agent {
        AgentSource::Fixed(id) => Ok((id.clone(), "config".to_owned())),
        AgentSource::Header(name) => Err(CallRefusal(format!(
            "no agent identity: header `{name}` is missing (configured in [gateway.identity]) and no SVID was presented"
        ))),
    }
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, CallRefusal> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| CallRefusal(format!("header `{name}` is not visible ASCII"))),
    }
}

fn millis(headers: &HeaderMap, name: &str) -> Result<Option<u64>, CallRefusal> {
    match text(headers, name)? {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            CallRefusal(format!(
                "header `{name}` is `{v}`, expected Unix time in milliseconds"
            ))
        }),
    }
}

/// Builds and validates the action for a call of `tool` with `arguments` on `upstream`.
#[expect(
    clippy::too_many_arguments,
    reason = "one per source of the action; a struct would only rename them"
)]
pub fn action(
    gateway: &GatewayConfig,
    upstream: &UpstreamConfig,
    headers: &HeaderMap,
    agent: &ResolvedIdentity,
    tool: &str,
    arguments: Value,
    phase: Phase,
    tasks: TaskMode,
) -> Result<Action, CallRefusal> {
    let task = match text(headers, TASK_HEADER)? {
        None => None,
        Some(id) => {
            // An opened task has its intent already; the header may only repeat it.
            let intent = match (text(headers, INTENT_HEADER)?, tasks) {
                (Some(intent), _) => intent,
                (None, TaskMode::Opened) => "",
                (None, TaskMode::Asserted) => {
                    return Err(CallRefusal(format!(
                        "header `{TASK_HEADER}` names a task but `{INTENT_HEADER}` (its declared intent) is missing"
                    )));
                }
            };
            Some(Task {
                id: id.to_owned(),
                intent: intent.to_owned(),
                started_at: millis(headers, TASK_STARTED_HEADER)?
                    .unwrap_or_else(crate::model::unix_ms_now),
                expires_at: millis(headers, TASK_EXPIRES_HEADER)?,
            })
        }
    };
    let delegation: Vec<Principal> = match text(headers, DELEGATION_HEADER)? {
        None => Vec::new(),
        Some(json) => serde_json::from_str(json).map_err(|e| {
            CallRefusal(format!(
                "header `{DELEGATION_HEADER}`: {e}; expected a JSON array of {{\"id\", \"kind\", \"scopes\"}}"
            ))
        })?,
    };
    let request_id = match text(headers, REQUEST_ID_HEADER)? {
        Some(id) => id.to_owned(),
        None => format!("mcp-{}", uuid::Uuid::new_v4()),
    };
    let labels = upstream.labels_of(tool);
    let resource = (!labels.is_empty()).then(|| Resource {
        id: format!("mcp://{}/{}", upstream.name, tool),
        labels,
    });
    let mut environment = gateway.environment.clone();
    environment.insert(PHASE_KEY.to_owned(), phase.word().to_owned());
    let action = Action {
        request_id,
        agent: Agent {
            id: agent.id.clone(),
            attestation: agent.attestation.as_str().to_owned(),
            claims: Default::default(),
        },
        delegation,
        task,
        tool: Tool {
            server: upstream.name.clone(),
            name: tool.to_owned(),
        },
        arguments,
        credential: None,
        resource,
        environment,
        time: None,
    };
    action
        .validate()
        .map_err(|e| CallRefusal(format!("{e} (from the request's headers and body)")))?;
    Ok(action)
}

/// The `tools/call` target: `params.name` and `params.arguments` (an object, `{}` when
/// absent).
pub fn target(message: &Value) -> Result<(String, Value), String> {
    let params = jsonrpc::params(message).ok_or("`params` is missing")?;
    let name = match params.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        Some(Value::String(_)) => return Err("`params.name` is empty".to_owned()),
        Some(other) => {
            return Err(format!(
                "`params.name` must be a string, found {}",
                jsonrpc::type_name(other)
            ));
        }
        None => return Err("`params.name` is missing".to_owned()),
    };
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(args @ Value::Object(_)) => args.clone(),
        Some(other) => {
            return Err(format!(
                "`params.arguments` must be an object, found {}",
                jsonrpc::type_name(other)
            ));
        }
    };
    Ok((name, arguments))
}

/// What the client is told about a decision that stops the call. A step-up names the
/// approval it waits for, and its console page when `console_url` is configured.
pub fn decision_data(decision: &Decision, upstream: &str, console_url: Option<&str>) -> Value {
    let approvers: Vec<&str> = decision
        .obligations
        .iter()
        .filter(|o| o.kind == "require-approval")
        .map(|o| o.detail.as_str())
        .collect();
    let mut data = json!({
        "decision_id": decision.decision_id,
        "effect": decision.effect.as_str(),
        "reason": decision.reason,
        "request_id": decision.request_id,
        "generation": decision.generation,
        "upstream": upstream,
        "identity": decision.identity,
    });
    if let Some(object) = data.as_object_mut() {
        if !approvers.is_empty() {
            object.insert("approvers".to_owned(), json!(approvers));
        }
        if let Some(approval) = &decision.approval {
            let mut shown = json!({
                "id": approval.id,
                "status": approval.status.as_str(),
                "groups": approval.groups,
                "expires_at": approval.expires_at,
            });
            if let (Some(base), Some(fields)) = (console_url, shown.as_object_mut()) {
                fields.insert(
                    "page".to_owned(),
                    json!(format!("{base}/approvals/{}", approval.id)),
                );
            }
            object.insert("approval".to_owned(), shown);
        }
    }
    data
}

/// The answer to a `tools/call` that a decision stopped (deny or step-up), in the
/// configured style.
pub fn stopped(
    style: DenialStyle,
    id: &Value,
    decision: &Decision,
    upstream: &str,
    console_url: Option<&str>,
    exchange: super::elicitation::Exchange,
) -> Value {
    let data = decision_data(decision, upstream, console_url);
    // A client that can be sent to the approval's page is sent there, the way its
    // revision does it.
    if decision.effect == DecisionEffect::StepUp
        && exchange.offers_elicitation()
        && let (Some(base), Some(approval)) = (console_url, decision.approval.as_ref())
    {
        let page = format!("{base}/approvals/{}", approval.id);
        let asked = if exchange.modern {
            super::elicitation::input_required(id, decision, &page)
        } else {
            super::elicitation::url_elicitation_required(id, decision, &page, data.clone())
        };
        if let Some(asked) = asked {
            return asked;
        }
    }
    let (code, what) = match decision.effect {
        DecisionEffect::StepUp => (jsonrpc::STEP_UP_REQUIRED, "needs approval"),
        _ => (jsonrpc::DENIED, "denied"),
    };
    let message = format!("Arbiter: tool call {what}: {}", decision.reason);
    match style {
        DenialStyle::Error => jsonrpc::error(Some(id), code, &message, Some(data)),
        DenialStyle::ToolError => jsonrpc::result(
            id,
            json!({
                "content": [{ "type": "text", "text": message }],
                "structuredContent": { "arbiter": data },
                "isError": true,
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::mcp::config::Transport;
    use axum::http::HeaderValue;

    fn gateway() -> GatewayConfig {
        GatewayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            denial: DenialStyle::Error,
            max_body_bytes: 1 << 20,
            max_message_bytes: 1 << 20,
            upstream_timeout: std::time::Duration::from_secs(1),
            header_read_timeout: std::time::Duration::from_secs(1),
            body_read_timeout: std::time::Duration::from_secs(1),
            max_connections: 8,
            allowed_origins: vec![],
            environment: [("env".to_owned(), "prod".to_owned())].into(),
            agent: AgentSource::Header("x-arbiter-agent".to_owned()),
            upstreams: vec![upstream()],
            console_url: None,
        }
    }

    fn upstream() -> UpstreamConfig {
        UpstreamConfig {
            name: "fs".to_owned(),
            transport: Transport::Http {
                url: "http://127.0.0.1:1/mcp".to_owned(),
            },
            labels: vec![],
            tool_labels: [("read".to_owned(), vec!["secret".to_owned()])].into(),
            credential: None,
        }
    }

    fn asserted(id: &str) -> ResolvedIdentity {
        ResolvedIdentity {
            id: id.to_owned(),
            attestation: crate::identity::Attestation::None,
            trust_domain: None,
            source: crate::identity::IdentitySource::Asserted("header:x-arbiter-agent".to_owned()),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn the_action_takes_the_tool_from_the_body_and_the_rest_from_headers() {
        let h = headers(&[
            ("x-arbiter-agent", "spiffe://example.org/a"),
            (TASK_HEADER, "t-1"),
            (INTENT_HEADER, "summarize-repo"),
            (TASK_STARTED_HEADER, "1000"),
            (
                DELEGATION_HEADER,
                r#"[{"id":"alice","kind":"user","scopes":["fs:read"]}]"#,
            ),
        ]);
        let a = action(
            &gateway(),
            &upstream(),
            &h,
            &asserted("spiffe://example.org/a"),
            "read",
            json!({"path":"/x"}),
            Phase::Call,
            TaskMode::Asserted,
        )
        .unwrap();
        assert_eq!(a.tool.server, "fs");
        assert_eq!(a.tool.name, "read");
        assert_eq!(a.agent.attestation, "none");
        assert_eq!(a.task.as_ref().unwrap().started_at, 1000);
        assert_eq!(a.delegation[0].scopes, vec!["fs:read"]);
        assert_eq!(a.resource.as_ref().unwrap().labels, vec!["secret"]);
        assert_eq!(
            a.environment.get(PHASE_KEY).map(String::as_str),
            Some("call")
        );
        assert_eq!(a.environment.get("env").map(String::as_str), Some("prod"));
    }

    #[test]
    fn missing_or_bad_headers_are_refused_by_name() {
        let g = gateway();
        let u = upstream();
        let refuse = |pairs: &[(&'static str, &str)]| {
            action(
                &g,
                &u,
                &headers(pairs),
                &asserted("a"),
                "read",
                json!({}),
                Phase::Call,
                TaskMode::Asserted,
            )
            .unwrap_err()
            .0
        };
        assert_eq!(asserted_agent(&g, &headers(&[])), Ok(None));
        assert!(
            fallback_agent(&g)
                .unwrap_err()
                .0
                .contains("header `x-arbiter-agent` is missing")
        );
        assert!(
            refuse(&[("x-arbiter-agent", "a"), (TASK_HEADER, "t")]).contains("`x-arbiter-intent`")
        );
        assert!(
            refuse(&[
                ("x-arbiter-agent", "a"),
                (TASK_HEADER, "t"),
                (INTENT_HEADER, "i"),
                (TASK_EXPIRES_HEADER, "soon")
            ])
            .contains("expected Unix time")
        );
        assert!(
            refuse(&[("x-arbiter-agent", "a"), (DELEGATION_HEADER, "{}")])
                .contains("x-arbiter-delegation")
        );
        assert!(
            refuse(&[
                ("x-arbiter-agent", "a"),
                (TASK_HEADER, "bad id!"),
                (INTENT_HEADER, "i")
            ])
            .contains("task.id")
        );
    }

    #[test]
    fn the_target_is_read_from_params() {
        let m = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}});
        assert_eq!(target(&m), Ok(("echo".to_owned(), json!({}))));
        let m = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":[1]}});
        assert!(
            target(&m)
                .unwrap_err()
                .contains("must be an object, found an array")
        );
        let m = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}});
        assert!(target(&m).unwrap_err().contains("`params.name` is missing"));
    }
}
