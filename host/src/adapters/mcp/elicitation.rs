//! Asking the user for an approval the protocol's own way (2026-07-28).
//!
//! A step-up through the gateway waits for an approval. A 2026-07-28 client that
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
    /// The client can be sent to a URL (2026-07-28, URL elicitation declared).
    pub accepts_url: bool,
    /// The client answered the gateway's last elicitation with `decline` or `cancel`.
    pub declined: bool,
}

impl Exchange {
    /// Whether a step-up should be answered with an input-required result.
    pub fn offers_elicitation(self) -> bool {
        self.accepts_url && !self.declined
    }
}

/// Reads the exchange of a `tools/call` and takes the gateway's part of it out of the
/// message (so the upstream gets the call as the agent first made it).
pub fn take_exchange(message: &mut Value, revision: Revision) -> Exchange {
    let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) else {
        return Exchange::default();
    };
    let accepts_url = revision == Revision::Modern
        && params
            .get("_meta")
            .and_then(|m| m.get(CLIENT_CAPABILITIES))
            .and_then(|c| c.get("elicitation"))
            .and_then(|e| e.get("url"))
            .is_some();
    let ours = params
        .get("requestState")
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with(STATE_PREFIX));
    if !ours {
        return Exchange {
            accepts_url,
            declined: false,
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
    }
}

/// The input-required result of a step-up waiting for approval `decision.approval`,
/// whose console page is `page`.
pub fn input_required(id: &Value, decision: &Decision, page: &str) -> Option<Value> {
    let approval = decision.approval.as_ref()?;
    let message = format!(
        "Arbiter: this tool call needs approval {} ({}). Open the page to see it; an approver of {} decides.",
        approval.id,
        decision.reason,
        if approval.groups.is_empty() {
            "any approver group".to_owned()
        } else {
            approval.groups.join(", ")
        }
    );
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
        let exchange = take_exchange(&mut retry, Revision::Modern);
        assert_eq!(
            exchange,
            Exchange {
                accepts_url: true,
                declined: false
            }
        );
        assert!(retry["params"].get("requestState").is_none());
        assert!(retry["params"].get("inputResponses").is_none());

        let mut declined = json!({"params": {
            "inputResponses": {APPROVAL_INPUT: {"action": "decline"}, "theirs": {"action": "accept"}},
            "requestState": "arbiter-approval:apr-1"}});
        let exchange = take_exchange(&mut declined, Revision::Handshake("2025-11-25"));
        assert!(exchange.declined && !exchange.accepts_url);
        assert_eq!(
            declined["params"]["inputResponses"],
            json!({"theirs": {"action": "accept"}})
        );

        let mut upstreams =
            json!({"params": {"inputResponses": {"x": {}}, "requestState": "opaque"}});
        let before = upstreams.clone();
        take_exchange(&mut upstreams, Revision::Modern);
        assert_eq!(upstreams, before);
    }
}
