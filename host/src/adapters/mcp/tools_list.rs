//! Filtering `tools/list`: a tool that a call would be denied regardless of its
//! arguments is not listed, so the model is not offered what it cannot use.
//!
//! For each listed tool the gateway **previews** a decision (recorded nowhere: not in
//! the task history, the decision log or the decision metrics) on an action with the
//! request's identity and task, the tool's name, empty arguments and
//! `environment["arbiter.phase"] = "list"`. The tool is hidden when the preview is a
//! deny. Plugins that constrain arguments should not judge them in the `list` phase
//! (the reference intent plugin checks only that some rule of the task's intent names
//! the tool); every call is still decided on its real arguments, listed or not.
//!
//! The answer to every `tools/list` is filtered, so when an upstream sends
//! `notifications/tools/list_changed` and the client lists again, the new list is
//! filtered too, against the task as it is then.

use super::call::{self, Phase};
use super::config::{GatewayConfig, UpstreamConfig};
use crate::adapters::blocking::blocking;
use crate::identity::ResolvedIdentity;
use crate::model::DecisionEffect;
use crate::service::DecisionService;
use axum::http::HeaderMap;
use serde_json::Value;
use std::sync::Arc;

/// What the filter needs, captured for the answer's stream.
#[derive(Debug, Clone)]
pub struct ListFilter {
    /// The decision service.
    pub service: DecisionService,
    /// The gateway's config.
    pub gateway: Arc<GatewayConfig>,
    /// The upstream listed.
    pub upstream: Arc<UpstreamConfig>,
    /// The request's headers (its task).
    pub headers: HeaderMap,
    /// Who is listing.
    pub agent: ResolvedIdentity,
}

impl ListFilter {
    /// Removes from a `tools/list` result the tools a call would be denied; returns how
    /// many were hidden. A tool entry without a string `name` is hidden too (it could
    /// not be called by name anyway). When the decision service cannot answer, every
    /// tool is hidden: fail closed.
    pub fn apply(&self, result: &mut Value) -> usize {
        let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) else {
            return 0;
        };
        let before = tools.len();
        tools.retain(|tool| {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                return false;
            };
            self.shows(name)
        });
        before - tools.len()
    }

    fn shows(&self, tool: &str) -> bool {
        let action = match call::action(
            &self.gateway,
            &self.upstream,
            &self.headers,
            &self.agent,
            tool,
            Value::Object(serde_json::Map::new()),
            Phase::List,
            self.service.task_mode(),
        ) {
            Ok(action) => action,
            Err(_) => return false,
        };
        match blocking(|| self.service.preview(&action)) {
            Ok(decision) => decision.effect != DecisionEffect::Deny,
            Err(_) => false,
        }
    }

    /// Filters a whole JSON-RPC answer if it is the result for request `id`.
    pub fn apply_to_answer(&self, answer: &mut Value, id: &Value) -> bool {
        if answer.get("id") != Some(id) {
            return false;
        }
        match answer.get_mut("result") {
            Some(result) => {
                let hidden = self.apply(result);
                if hidden > 0 {
                    tracing::debug!(upstream = self.upstream.name, hidden, "tools/list filtered");
                }
                true
            }
            None => false,
        }
    }
}
