//! Prometheus metrics of the decision server, in the classic text format
//! (`text/plain; version=0.0.4`) that `promtool check metrics` and every scraper read.
//!
//! Names follow Prometheus conventions: `arbiter_` prefix, base units (`_seconds`),
//! `_total` on counters. Label values are bounded: effects, outcomes and error codes are
//! fixed vocabularies, and plugin labels come from the configured plugin set, never
//! from a request.

use crate::hot_swap::{ReloadResult, ReloadTrigger};
use crate::model::{Decision, outcome_word};
use crate::plugin::PluginListing;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Latency buckets from 10 µs to 100 ms: a decision takes microseconds, a slow plugin
/// (or an interpreted one) milliseconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1,
];

/// The outcomes of a `tools/call` through the MCP gateway.
pub const GATEWAY_OUTCOMES: [&str; 5] = ["allow", "deny", "step-up", "refused", "unavailable"];

/// Errors while setting up or encoding metrics (host faults).
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(String);

impl From<prometheus::Error> for MetricsError {
    fn from(e: prometheus::Error) -> Self {
        // The cause goes in the message only, so an error chain prints it once.
        Self(e.to_string())
    }
}

/// All server metrics, registered in one registry per server.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    decisions: IntCounterVec,
    decision_duration: HistogramVec,
    plugin_duration: HistogramVec,
    plugin_evaluations: IntCounterVec,
    reloads: IntCounterVec,
    generation: IntGauge,
    plugin_info: IntGaugeVec,
    http_errors: IntCounterVec,
    gateway_calls: IntCounterVec,
    gateway_upstream_errors: IntCounterVec,
    identity_refusals: IntCounterVec,
    /// Decision-log records dropped because the queue was full.
    pub log_dropped: IntCounter,
    /// Decision-log records that could not be written.
    pub log_errors: IntCounter,
    /// Decision-log records written.
    pub log_written: IntCounter,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let decisions = IntCounterVec::new(
            Opts::new(
                "arbiter_decisions_total",
                "Decisions made, by final effect.",
            ),
            &["effect"],
        )?;
        let decision_duration = HistogramVec::new(
            HistogramOpts::new(
                "arbiter_decision_duration_seconds",
                "Time to decide one action, all plugins and combining included.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &[],
        )?;
        let plugin_duration = HistogramVec::new(
            HistogramOpts::new(
                "arbiter_plugin_evaluation_duration_seconds",
                "Time of one plugin evaluation, instantiation included.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["plugin"],
        )?;
        let plugin_evaluations = IntCounterVec::new(
            Opts::new(
                "arbiter_plugin_evaluations_total",
                "Plugin evaluations, by plugin and outcome (ok, trap, timeout, out-of-memory, invalid-output, error).",
            ),
            &["plugin", "outcome"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "arbiter_reloads_total",
                "Policy reload attempts, by trigger (manual, watch) and result (success, unchanged, failure).",
            ),
            &["trigger", "result"],
        )?;
        let generation = IntGauge::new(
            "arbiter_policy_generation",
            "Generation of the active policy set (0 before the first set is active).",
        )?;
        let plugin_info = IntGaugeVec::new(
            Opts::new(
                "arbiter_plugin_info",
                "Plugins of the active policy set; the value is always 1.",
            ),
            &["plugin", "version", "kind", "digest", "mode"],
        )?;
        let http_errors = IntCounterVec::new(
            Opts::new(
                "arbiter_http_errors_total",
                "Requests answered with an error, by error code.",
            ),
            &["code"],
        )?;
        let gateway_calls = IntCounterVec::new(
            Opts::new(
                "arbiter_gateway_tool_calls_total",
                "MCP tools/call requests through the gateway, by upstream and outcome (allow: forwarded; deny; step-up; refused: bad request or identity headers; unavailable: no policy set). Upstream failures are counted in arbiter_gateway_upstream_errors_total.",
            ),
            &["upstream", "outcome"],
        )?;
        let gateway_upstream_errors = IntCounterVec::new(
            Opts::new(
                "arbiter_gateway_upstream_errors_total",
                "Upstream failures seen by the MCP gateway, by upstream and kind (unavailable, timeout, invalid-answer, exited).",
            ),
            &["upstream", "kind"],
        )?;
        let identity_refusals = IntCounterVec::new(
            Opts::new(
                "arbiter_identity_refusals_total",
                "Requests refused before any decision because of their identity, by reason (invalid: a credential did not verify; unverified: none, and verification is required; conflict: the request asserts another agent; credentials: the certificate and the token disagree; anonymous: no agent named).",
            ),
            &["reason"],
        )?;
        let log_dropped = IntCounter::new(
            "arbiter_decision_log_dropped_total",
            "Decision-log records dropped because the queue was full.",
        )?;
        let log_errors = IntCounter::new(
            "arbiter_decision_log_errors_total",
            "Decision-log records that could not be written to the sink.",
        )?;
        let log_written = IntCounter::new(
            "arbiter_decision_log_written_total",
            "Decision-log records written to the sink.",
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(decision_duration.clone()))?;
        registry.register(Box::new(plugin_duration.clone()))?;
        registry.register(Box::new(plugin_evaluations.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(generation.clone()))?;
        registry.register(Box::new(plugin_info.clone()))?;
        registry.register(Box::new(http_errors.clone()))?;
        registry.register(Box::new(gateway_calls.clone()))?;
        registry.register(Box::new(gateway_upstream_errors.clone()))?;
        registry.register(Box::new(identity_refusals.clone()))?;
        registry.register(Box::new(log_dropped.clone()))?;
        registry.register(Box::new(log_errors.clone()))?;
        registry.register(Box::new(log_written.clone()))?;
        // Known label values start at zero, so rates work from the first scrape.
        for effect in ["allow", "deny", "step-up"] {
            decisions.with_label_values(&[effect]);
        }
        for trigger in [ReloadTrigger::Manual, ReloadTrigger::Watch] {
            for result in ReloadResult::ALL {
                reloads.with_label_values(&[trigger.as_str(), result.as_str()]);
            }
        }
        Ok(Self {
            registry,
            decisions,
            decision_duration,
            plugin_duration,
            plugin_evaluations,
            reloads,
            generation,
            plugin_info,
            http_errors,
            gateway_calls,
            gateway_upstream_errors,
            identity_refusals,
            log_dropped,
            log_errors,
            log_written,
        })
    }

    /// Records a decision: its effect, its latency and each plugin's.
    pub fn record_decision(&self, decision: &Decision) {
        self.decisions
            .with_label_values(&[decision.effect.as_str()])
            .inc();
        self.decision_duration
            .with_label_values(&[] as &[&str])
            .observe(micros(decision.elapsed_us));
        for p in &decision.plugins {
            self.plugin_duration
                .with_label_values(&[p.name.as_str()])
                .observe(micros(p.elapsed_us));
            self.plugin_evaluations
                .with_label_values(&[p.name.as_str(), outcome_word(p.outcome)])
                .inc();
        }
    }

    /// Publishes a newly active policy set: its generation and plugin identities.
    pub fn set_policy(&self, generation: u64, plugins: &[PluginListing]) {
        self.generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
        self.plugin_info.reset();
        for p in plugins {
            self.plugin_info
                .with_label_values(&[
                    p.name.as_str(),
                    p.version.as_str(),
                    p.kind.as_str(),
                    p.digest.as_str(),
                    mode_word(p.mode),
                ])
                .set(1);
            // Pre-create the plugin's series so dashboards see it before traffic.
            self.plugin_duration.with_label_values(&[p.name.as_str()]);
        }
    }

    /// Publishes `set` if it is not the one already published (cheap when unchanged).
    pub fn refresh_policy(&self, set: &crate::plugin::PolicySet) {
        if u64::try_from(self.generation.get()).ok() != Some(set.generation()) {
            self.set_policy(set.generation(), &set.listings());
        }
    }

    /// Counts a reload attempt.
    pub fn record_reload(&self, trigger: ReloadTrigger, result: ReloadResult) {
        self.reloads
            .with_label_values(&[trigger.as_str(), result.as_str()])
            .inc();
    }

    /// Counts a request refused for its identity.
    pub fn record_identity_refusal(&self, refusal: &crate::identity::IdentityRefusal) {
        self.identity_refusals
            .with_label_values(&[refusal.kind()])
            .inc();
    }

    /// Counts an error answer.
    pub fn record_error(&self, code: &'static str) {
        self.http_errors.with_label_values(&[code]).inc();
    }

    /// Pre-creates the gateway's series for `upstream`, so dashboards see every
    /// upstream and outcome before traffic.
    pub fn register_upstream(&self, upstream: &str) {
        for outcome in GATEWAY_OUTCOMES {
            self.gateway_calls.with_label_values(&[upstream, outcome]);
        }
    }

    /// Counts a `tools/call` through the gateway (`outcome` from [`GATEWAY_OUTCOMES`]).
    pub fn record_gateway_call(&self, upstream: &str, outcome: &'static str) {
        self.gateway_calls
            .with_label_values(&[upstream, outcome])
            .inc();
    }

    /// Counts an upstream failure.
    pub fn record_upstream_error(&self, upstream: &str, kind: &'static str) {
        self.gateway_upstream_errors
            .with_label_values(&[upstream, kind])
            .inc();
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> Result<String, MetricsError> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| MetricsError(e.to_string()))
    }
}

fn micros(us: u64) -> f64 {
    // Precision loss above 2^53 µs (285 years) is irrelevant.
    us as f64 / 1_000_000.0
}

fn mode_word(mode: crate::config::Mode) -> &'static str {
    match mode {
        crate::config::Mode::Enforce => "enforce",
        crate::config::Mode::Monitor => "monitor",
    }
}
