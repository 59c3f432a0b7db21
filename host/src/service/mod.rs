//! The transport-neutral decision service (feature `server`): what every adapter shares.
//! [`DecisionService`] owns readiness, the [`DecisionLog`] (with its [`redaction`] and
//! strict mode), the [`Metrics`] and fail-closed; [`ServerConfig`] is the `[server]`
//! table that configures them and the HTTP listener.

mod config;
pub mod decision_log;
mod decision_service;
mod metrics;
pub mod obligation_gate;
pub mod redaction;

pub use config::{
    DEFAULT_ADMIN_TOKEN_ENV, DEFAULT_BODY_READ_TIMEOUT_MS, DEFAULT_HEADER_READ_TIMEOUT_MS,
    DEFAULT_LISTEN, DEFAULT_LOG_BUFFER, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS,
    DecisionLogConfig, LogSink, MAX_LOG_BUFFER, MAX_MAX_BODY_BYTES, MAX_MAX_CONNECTIONS,
    MAX_READ_TIMEOUT_MS, MIN_TOKEN_BYTES, RawDecisionLog, RawRedaction, RawServer, Redaction,
    Secret, ServerConfig, TokenSource,
};
pub use decision_log::{DecisionLog, LogEntry, LogFailure, StrictAudit, fail_closed};
pub mod credentials;
pub use decision_service::{DecisionContext, DecisionService, NotReady, Refused, Via};
pub use metrics::{GATEWAY_OUTCOMES, LATENCY_BUCKETS, Metrics, MetricsError};
pub use redaction::REDACTED;
