//! The decision service every adapter calls: the HTTP API today, the MCP gateway and
//! Envoy ext_authz next. An adapter parses its protocol into an [`Action`], calls
//! [`DecisionService::decide`], and answers; everything around the decision lives here
//! once:
//!
//! - **readiness**: until a policy set has loaded there is no decision, only
//!   [`NotReady`], which every adapter must answer as a refusal;
//! - **the decision log** and **strict mode**: in strict mode the log write is a
//!   post-decision stage of the pipeline, so a decision that cannot be logged is a deny
//!   *before* the task history records it; otherwise the record is queued after the
//!   answer is built, off the request path;
//! - **fail-closed**: a fault anywhere (plugin, store, log) is a deny that says so, made
//!   by the pipeline and the strict stage, never by the adapter;
//! - **metrics** (decisions by effect, plugin outcomes, reloads, the active set) and
//!   **tracing**.
//!
//! # Blocking
//!
//! A decision is microseconds of CPU, so async adapters call `decide` inline. In strict
//! mode it waits for the log write; [`DecisionService::blocks`] says so, and the adapter
//! then calls it from a blocking thread (`tokio::task::spawn_blocking`).

use super::decision_log::{DecisionLog, LogEntry, StrictAudit};
use super::metrics::Metrics;
use super::obligation_gate::{ObligationGate, Stages};
use crate::Arbiter;
use crate::decide::{NoPostDecision, PostDecision};
use crate::model::{Action, Decision};
use serde::Serialize;
use std::sync::{Arc, OnceLock};

/// No policy set has loaded yet: there is no decision to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the policy set is still loading")]
pub struct NotReady;

/// What a decision request carries besides the action.
#[derive(Debug, Clone, Default)]
pub struct DecisionContext {
    /// The W3C trace id of the request, for the decision log.
    pub trace_id: Option<String>,
    /// Which adapter asked, and what it knows about the request, for the decision log.
    pub via: Option<Via>,
    /// The obligation kinds the adapter carries out itself. `None`: it hands the
    /// decision and its obligations to its caller (the HTTP API). `Some(kinds)`: an
    /// allow with any other obligation is a deny ([`ObligationGate`]).
    pub enforces: Option<&'static [&'static str]>,
}

/// Where a decision request came from, as the decision log records it (`"via"`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Via {
    /// The adapter: `mcp`.
    pub adapter: &'static str,
    /// The upstream the call goes to (the MCP gateway's `[[gateway.upstream]]` name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The JSON-RPC id of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jsonrpc_id: Option<serde_json::Value>,
    /// Where the agent id came from (`header:x-arbiter-agent`, `config`), and so how
    /// far it can be trusted: asserted until verified identity plugs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// The decision service: shared by every adapter of one process, cheap to clone.
#[derive(Debug, Clone)]
pub struct DecisionService {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Set once the first policy set has loaded.
    arbiter: OnceLock<Arc<Arbiter>>,
    metrics: Metrics,
    log: DecisionLog,
}

impl DecisionService {
    /// A service with no policy set yet (see [`DecisionService::activate`]).
    pub fn new(metrics: Metrics, log: DecisionLog) -> Self {
        Self {
            inner: Arc::new(Shared {
                arbiter: OnceLock::new(),
                metrics,
                log,
            }),
        }
    }

    /// Makes `arbiter` the host that decides; the service becomes ready. Every reload
    /// attempt (by the watcher or through an admin API) is then counted and publishes the
    /// set it leaves active. Returns false (and changes nothing) if one was already active.
    pub fn activate(&self, arbiter: Arc<Arbiter>) -> bool {
        let set = arbiter.policy_set();
        let host = Arc::clone(&arbiter);
        if self.inner.arbiter.set(arbiter).is_err() {
            return false;
        }
        self.inner
            .metrics
            .set_policy(set.generation(), &set.listings());
        let metrics = self.inner.metrics.clone();
        host.on_reload(Box::new(move |report, set| {
            metrics.record_reload(report.trigger, report.result);
            metrics.refresh_policy(set);
        }));
        true
    }

    /// The active host, once loaded.
    pub fn arbiter(&self) -> Result<&Arc<Arbiter>, NotReady> {
        self.inner.arbiter.get().ok_or(NotReady)
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The decision log.
    pub fn decision_log(&self) -> &DecisionLog {
        &self.inner.log
    }

    /// Whether [`DecisionService::decide`] may block on I/O (strict decision log), so
    /// that an async adapter should call it from a blocking thread.
    pub fn blocks(&self) -> bool {
        self.inner.log.is_strict()
    }

    /// Decides `action`, which the adapter's parser has validated
    /// ([`Action::from_json`] or [`Action::validate`]), logs it and counts it, and hands
    /// the decision to `answer` (which builds the adapter's response) before the record
    /// is queued: the decision moves into the log without a copy.
    pub fn decide<R>(
        &self,
        action: Action,
        context: DecisionContext,
        answer: impl FnOnce(&Decision) -> R,
    ) -> Result<R, NotReady> {
        let arbiter = self.arbiter()?;
        // Taken before deciding: the log keeps it only if the decision ran on it (same
        // generation), for the words of its settings that reasons may quote.
        let policy_set = Some(arbiter.policy_set());
        let log = &self.inner.log;
        let gate = ObligationGate {
            enforces: context.enforces.unwrap_or(&[]),
        };
        let gated = context.enforces.is_some();
        if log.is_strict() {
            let audit = StrictAudit {
                log,
                trace_id: context.trace_id,
                via: context.via,
                policy_set,
            };
            let decision = if gated {
                arbiter.decide_validated(&action, &Stages(gate, audit))
            } else {
                arbiter.decide_validated(&action, &audit)
            };
            self.count(&decision);
            return Ok(answer(&decision));
        }
        let post: &dyn PostDecision = if gated { &gate } else { &NoPostDecision };
        let decision = arbiter.decide_validated(&action, post);
        self.count(&decision);
        let answered = answer(&decision);
        if let Err(failure) = log.submit(LogEntry {
            decision,
            action,
            trace_id: context.trace_id,
            via: context.via,
            policy_set,
        }) {
            tracing::debug!(error = %failure, "decision not logged");
        }
        Ok(answered)
    }

    /// What `action` would be decided, without recording it anywhere: not in the task
    /// history, the decision log or the decision metrics. The MCP gateway previews each
    /// listed tool this way to hide those a call would be denied.
    pub fn preview(&self, action: &Action) -> Result<Decision, NotReady> {
        Ok(self.arbiter()?.preview(action))
    }

    fn count(&self, decision: &Decision) {
        self.inner.metrics.record_decision(decision);
        tracing::debug!(
            decision_id = %decision.decision_id,
            request_id = %decision.request_id,
            effect = decision.effect.as_str(),
            generation = decision.generation,
            elapsed_us = decision.elapsed_us,
            "decided"
        );
    }
}
