//! Asking the user for an approval the protocol's own way.
//!
//! **2025-11-25.** A session whose client declared URL elicitation at `initialize`
//! ([`declares_url_elicitation`], remembered by [`super::url_sessions`]) gets the
//! URL-elicitation-required error (`-32042`) for a step-up: one URL elicitation whose
//! `elicitationId` is the approval id and whose URL is its console page. The client
//! retries the call once the user has been there.
//!
//! **2026-07-28.** A step-up through the gateway waits for an approval. A client that
//! declares URL elicitation (`params._meta["io.modelcontextprotocol/clientCapabilities"]
//! .elicitation.url`) gets the revision's **input-required result** for the call: one
//! `elicitation/create` in URL mode, pointing at the console page of the approval, under
//! the key [`APPROVAL_INPUT`]. The client shows the link and, once the user answers,
//! retries the call with `inputResponses` and the `requestState` the gateway sent.
//!
//! The retry is decided afresh, like any call: the approval record in the task store
//! decides, never the client's answer. `requestState` only carries the approval id, for
//! the log, and is not trusted (the spec calls it attacker-controlled); an `accept` only
//! means the user went to the page. A `decline` or `cancel` stops asking: the call gets
//! the plain step-up error. Both fields are the gateway's exchange with the client and
//! are taken out of the call before it is forwarded, unless they belong to the upstream's
//! own exchange (another key, another state).
//!
//! Other clients (older revisions, no URL elicitation, no `[approvals] console_url`) get
//! the step-up error, whose `data.approval` names the approval and its page.

use super::revision::Revision;
use crate::model::Decision;
use serde_json::{Value, json};

/// The `inputRequests` key of the approval.
pub const APPROVAL_INPUT: &str = "arbiter-approval";
/// How the gateway's `requestState` starts.
const STATE_PREFIX: &str = "arbiter-approval:";
/// The `_meta` key of a 2026-07-28 request's client capabilities.
const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// What a `tools/call` says about the approval exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exchange {
    /// The client can be sent to a URL: at 2026-07-28, URL elicitation is declared in
    /// the request; at 2025-11-25, it was declared at the session's `initialize`.
    pub accepts_url: bool,
    /// The client answered the gateway's last elicitation with `decline` or `cancel`.
    pub declined: bool,
    /// The request is 2026-07-28 (input-required result) rather than 2025-11-25 (the
    /// URL-elicitation-required error).
    pub modern: bool,
}

impl Exchange {
    /// Whether a step-up should be answered with an input-required result.
    pub fn offers_elicitation(self) -> bool {
        self.accepts_url && !self.declined
    }
}

/// The revision whose sessions may be sent to a URL with [`url_elicitation_required`].
pub const URL_ELICITATION_REVISION: &str = "2025-11-25";
/// The 2025-11-25 error code: URL elicitation required.
pub const URL_ELICITATION_REQUIRED: i64 = -32042;

/// Whether an `initialize` request declares URL elicitation.
pub fn declares_url_elicitation(initialize: &Value) -> bool {
    initialize
        .pointer("/params/capabilities/elicitation/url")
        .is_some()
}

/// Reads the exchange of a `tools/call` and takes the gateway's part of it out of the
/// message (so the upstream gets the call as the agent first made it). `session_accepts`
/// says whether the handshake session declared URL elicitation at `initialize`.
pub fn take_exchange(message: &mut Value, revision: Revision, session_accepts: bool) -> Exchange {
    let modern = revision == Revision::Modern;
    let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) else {
        return Exchange::default();
    };
    let accepts_url = if modern {
        params
            .get("_meta")
            .and_then(|m| m.get(CLIENT_CAPABILITIES))
            .and_then(|c| c.get("elicitation"))
            .and_then(|e| e.get("url"))
            .is_some()
    } else {
        session_accepts && revision == Revision::Handshake(URL_ELICITATION_REVISION)
    };
    let ours = params
        .get("requestState")
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with(STATE_PREFIX));
    if !ours {
        return Exchange {
            accepts_url,
            declined: false,
            modern,
        };
    }
    params.remove("requestState");
    let mut declined = false;
    let mut now_empty = false;
    if let Some(responses) = params
        .get_mut("inputResponses")
        .and_then(Value::as_object_mut)
    {
        if let Some(answer) = responses.remove(APPROVAL_INPUT) {
            declined = answer.get("action").and_then(Value::as_str) != Some("accept");
        }
        now_empty = responses.is_empty();
    }
    if now_empty {
        params.remove("inputResponses");
    }
    Exchange {
        accepts_url,
        declined,
        modern,
    }
}

fn prompt(decision: &Decision, approval: &crate::model::ApprovalRef) -> String {
    format!(
        "Arbiter: this tool call needs approval {} ({}). Open the page to see it; an approver of {} decides.",
        approval.id,
        decision.reason,
        if approval.groups.is_empty() {
            "any approver group".to_owned()
        } else {
            approval.groups.join(", ")
        }
    )
}

/// The 2025-11-25 answer: the URL-elicitation-required error, whose `data` also has
/// what the plain step-up error carries (`data`, the decision's fields). The
/// `elicitationId` is the approval id. The client retries the call itself once the user
/// has been to the page.
pub fn url_elicitation_required(
    id: &Value,
    decision: &Decision,
    page: &str,
    mut data: Value,
) -> Option<Value> {
    let approval = decision.approval.as_ref()?;
    let message = prompt(decision, approval);
    if let Some(object) = data.as_object_mut() {
        object.insert(
            "elicitations".to_owned(),
            json!([{"mode": "url", "elicitationId": approval.id, "url": page, "message": message}]),
        );
    }
    Some(super::jsonrpc::error(
        Some(id),
        URL_ELICITATION_REQUIRED,
        &format!("Arbiter: tool call needs approval: {}", decision.reason),
        Some(data),
    ))
}

/// The input-required result of a step-up waiting for approval `decision.approval`,
/// whose console page is `page`.
pub fn input_required(id: &Value, decision: &Decision, page: &str) -> Option<Value> {
    let approval = decision.approval.as_ref()?;
    let message = prompt(decision, approval);
    Some(json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {
            "resultType": "input_required",
            "inputRequests": {
                APPROVAL_INPUT: {
                    "method": "elicitation/create",
                    "params": {"mode": "url", "url": page, "message": message},
                },
            },
            "requestState": format!("{STATE_PREFIX}{}", approval.id),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateways_exchange_is_read_and_taken_out_and_the_upstreams_is_left() {
        let mut retry = json!({"method": "tools/call", "params": {
            "name": "refund", "arguments": {"amount": 900},
            "_meta": {CLIENT_CAPABILITIES: {"elicitation": {"url": {}}}},
            "inputResponses": {APPROVAL_INPUT: {"action": "accept"}},
            "requestState": "arbiter-approval:apr-1"}});
        let exchange = take_exchange(&mut retry, Revision::Modern, false);
        assert_eq!(
            exchange,
            Exchange {
                accepts_url: true,
                declined: false,
                modern: true,
            }
        );
        assert!(retry["params"].get("requestState").is_none());
        assert!(retry["params"].get("inputResponses").is_none());

        let mut declined = json!({"params": {
            "inputResponses": {APPROVAL_INPUT: {"action": "decline"}, "theirs": {"action": "accept"}},
            "requestState": "arbiter-approval:apr-1"}});
        let exchange = take_exchange(&mut declined, Revision::Handshake("2025-11-25"), false);
        assert!(exchange.declined && !exchange.accepts_url);
        assert_eq!(
            declined["params"]["inputResponses"],
            json!({"theirs": {"action": "accept"}})
        );

        let mut upstreams =
            json!({"params": {"inputResponses": {"x": {}}, "requestState": "opaque"}});
        let before = upstreams.clone();
        take_exchange(&mut upstreams, Revision::Modern, false);
        // A 2025-11-25 session accepts what its `initialize` declared.
        let mut call = json!({"params": {"name": "x"}});
        assert!(take_exchange(&mut call, Revision::Handshake("2025-11-25"), true).accepts_url);
        assert!(!take_exchange(&mut call, Revision::Handshake("2025-06-18"), true).accepts_url);
        assert_eq!(upstreams, before);
    }
}
