//! The decision log: one JSON line per decision, for auditors.
//!
//! ```json
//! {"decision_id":"…","time":"2026-…Z","trace_id":"4bf9…","request_id":"req-1",
//!  "task_id":"t-1","generation":1,"effect":"deny","reason":"…","obligations":[],
//!  "plugins":[{"name":"intent","digest":"sha256:…",…}],"elapsed_us":41,
//!  "action":{"request_id":"req-1","agent":{…},"tool":{…},"arguments":{"path":"[redacted]"},…}}
//! ```
//!
//! # Off the request path, bounded
//!
//! Handlers hand records to a writer thread through a bounded queue; the thread
//! serialises them and writes each batch with one `write` and one flush. A slow or
//! broken sink therefore never slows decisions down, and memory stays bounded by the
//! queue capacity.
//!
//! # When logging fails
//!
//! By default a record that cannot be queued (queue full) or written (sink error) is
//! counted (`arbiter_decision_log_dropped_total`, `arbiter_decision_log_errors_total`),
//! the sink's failure is logged when it starts and when it ends, and decisions go on.
//! In **strict** mode a decision is only answered once its record is written; if that
//! fails the answer is a deny saying so ([`fail_closed`]): no decision leaves the server
//! without an audit record.
//!
//! Argument values may hold secrets or personal data, so they are redacted by default
//! ([`Redaction`]). Plugin reasons are logged as the plugins wrote them.

use super::config::{DecisionLogConfig, LogSink, Redaction};
use super::metrics::Metrics;
use crate::action::Action;
use crate::decision::{Decision, DecisionEffect, Obligation, PluginEntry};
use serde::Serialize;
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot};

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";
/// Most records written in one batch.
const MAX_BATCH_RECORDS: usize = 1024;
/// Most bytes buffered before a batch is written.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// A decision with what the log needs besides it.
#[derive(Debug)]
pub struct LogEntry {
    /// The decision as answered.
    pub decision: Decision,
    /// The action as received.
    pub action: Action,
    /// Trace id from `traceparent`, if any.
    pub trace_id: Option<String>,
}

/// Why a record was not logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogFailure {
    /// The queue was full.
    #[error("the decision log queue is full")]
    QueueFull,
    /// The writer has stopped.
    #[error("the decision log writer has stopped")]
    Closed,
    /// The sink refused the write.
    #[error("cannot write the decision log: {0}")]
    Write(String),
}

enum Message {
    Record(
        Box<LogEntry>,
        Option<oneshot::Sender<Result<(), LogFailure>>>,
    ),
    Flush(oneshot::Sender<()>),
}

/// Handle to the decision log (cheap to share through [`super::AppState`]).
#[derive(Debug)]
pub struct DecisionLog {
    tx: mpsc::Sender<Message>,
    strict: bool,
    healthy: Arc<AtomicBool>,
    metrics: Metrics,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Record(..) => "Record",
            Self::Flush(_) => "Flush",
        })
    }
}

impl DecisionLog {
    /// Opens the configured sink (a file is created if missing and appended to) and
    /// starts the writer thread.
    pub fn start(config: &DecisionLogConfig, metrics: Metrics) -> std::io::Result<Self> {
        let writer: Box<dyn Write + Send> = match &config.sink {
            LogSink::Stdout => Box::new(std::io::stdout()),
            LogSink::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("cannot open decision log `{}`: {e}", path.display()),
                        )
                    })?,
            ),
        };
        Self::with_writer(writer, config, metrics)
    }

    /// Starts the writer thread on any writer (tests use this).
    pub fn with_writer(
        writer: Box<dyn Write + Send>,
        config: &DecisionLogConfig,
        metrics: Metrics,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(config.buffer.max(1));
        let healthy = Arc::new(AtomicBool::new(true));
        let worker = Writer {
            sink: writer,
            redaction: config.redaction.clone(),
            metrics: metrics.clone(),
            healthy: Arc::clone(&healthy),
        };
        std::thread::Builder::new()
            .name("arbiter-decision-log".to_owned())
            .spawn(move || worker.run(rx))?;
        Ok(Self {
            tx,
            strict: config.strict,
            healthy,
            metrics,
        })
    }

    /// Whether decisions must be denied when they cannot be logged.
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Whether the last write succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Queues a record without waiting; a full queue drops it (counted).
    pub fn submit(&self, entry: LogEntry) -> Result<(), LogFailure> {
        self.enqueue(Message::Record(Box::new(entry), None))
    }

    /// Queues a record and waits until it has been written (strict mode).
    pub async fn submit_and_wait(&self, entry: LogEntry) -> Result<(), LogFailure> {
        let (ack, written) = oneshot::channel();
        self.enqueue(Message::Record(Box::new(entry), Some(ack)))?;
        written.await.unwrap_or(Err(LogFailure::Closed))
    }

    /// Like [`DecisionLog::submit_and_wait`], blocking the calling thread (a decision's
    /// post-decision stage, which runs on a blocking thread, not in async code).
    pub fn submit_and_wait_blocking(&self, entry: LogEntry) -> Result<(), LogFailure> {
        let (ack, written) = oneshot::channel();
        self.enqueue(Message::Record(Box::new(entry), Some(ack)))?;
        written.blocking_recv().unwrap_or(Err(LogFailure::Closed))
    }

    fn enqueue(&self, message: Message) -> Result<(), LogFailure> {
        self.tx.try_send(message).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                self.metrics.log_dropped.inc();
                LogFailure::QueueFull
            }
            mpsc::error::TrySendError::Closed(_) => {
                self.metrics.log_errors.inc();
                LogFailure::Closed
            }
        })
    }

    /// Waits until every record queued before this call has been written (or failed).
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Message::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

/// Turns a decision that could not be logged into a deny that says so (strict mode).
pub fn fail_closed(decision: &mut Decision, failure: &LogFailure) {
    decision.effect = DecisionEffect::Deny;
    decision.reason = format!("denied because the decision could not be logged: {failure}");
    decision.obligations.clear();
}

/// Strict mode as a post-decision stage of the pipeline: the decision is answered only
/// once its record is written, and a decision that cannot be logged becomes a deny
/// *before* the task history is recorded, so the history says deny too (before, it
/// recorded the plugins' allow while the gateway was told deny).
#[derive(Debug)]
pub struct StrictAudit<'a> {
    /// The log.
    pub log: &'a DecisionLog,
    /// Trace id from `traceparent`, if any.
    pub trace_id: Option<String>,
}

impl crate::arbiter::PostDecision for StrictAudit<'_> {
    fn after_decision(&self, action: &Action, decision: &mut Decision) {
        let entry = LogEntry {
            decision: decision.clone(),
            action: action.clone(),
            trace_id: self.trace_id.clone(),
        };
        if let Err(failure) = self.log.submit_and_wait_blocking(entry) {
            tracing::error!(decision_id = %decision.decision_id, error = %failure, "strict decision log: denying");
            fail_closed(decision, &failure);
        }
    }
}

/// The line written for a decision.
#[derive(Serialize)]
struct Record<'a> {
    decision_id: &'a str,
    time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<&'a str>,
    generation: u64,
    effect: DecisionEffect,
    reason: &'a str,
    obligations: &'a [Obligation],
    plugins: &'a [PluginEntry],
    elapsed_us: u64,
    action: Value,
}

/// Serialises one entry as a JSON line with the arguments redacted.
pub fn encode(
    entry: &LogEntry,
    redaction: &Redaction,
    out: &mut Vec<u8>,
) -> serde_json::Result<()> {
    let mut action = serde_json::to_value(&entry.action)?;
    if let Some(arguments) = action.get_mut("arguments") {
        redact(arguments, redaction);
    }
    let d = &entry.decision;
    let record = Record {
        decision_id: &d.decision_id,
        time: &d.time,
        trace_id: entry.trace_id.as_deref(),
        request_id: &d.request_id,
        task_id: d.task_id.as_deref(),
        generation: d.generation,
        effect: d.effect,
        reason: &d.reason,
        obligations: &d.obligations,
        plugins: &d.plugins,
        elapsed_us: d.elapsed_us,
        action,
    };
    serde_json::to_writer(&mut *out, &record)?;
    out.push(b'\n');
    Ok(())
}

/// Applies a redaction to an argument document in place.
pub fn redact(arguments: &mut Value, redaction: &Redaction) {
    match redaction {
        Redaction::None => {}
        Redaction::All => redact_all(arguments),
        Redaction::Pointers(pointers) => {
            for pointer in pointers {
                if let Some(value) = arguments.pointer_mut(pointer) {
                    *value = Value::String(REDACTED.to_owned());
                }
            }
        }
    }
}

/// Replaces every scalar, keeping keys and structure (which say what kind of call it
/// was without saying what it carried).
fn redact_all(value: &mut Value) {
    // Iterative, so a deep document cannot overflow the writer's stack.
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => stack.extend(map.values_mut()),
            Value::Array(items) => stack.extend(items.iter_mut()),
            other => *other = Value::String(REDACTED.to_owned()),
        }
    }
}

struct Writer {
    sink: Box<dyn Write + Send>,
    redaction: Redaction,
    metrics: Metrics,
    healthy: Arc<AtomicBool>,
}

impl Writer {
    /// Counts a batch's records as written or failed and tracks the sink's health,
    /// logging when it starts and stops failing (not on every failed batch).
    fn account(&self, result: std::io::Result<()>, records: u64) -> Result<(), LogFailure> {
        match result {
            Ok(()) => {
                self.metrics.log_written.inc_by(records);
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!("decision log sink recovered");
                }
                Ok(())
            }
            Err(e) => {
                self.metrics.log_errors.inc_by(records);
                if self.healthy.swap(false, Ordering::Relaxed) {
                    tracing::error!(error = %e, "decision log sink failing; records are being lost");
                }
                Err(LogFailure::Write(e.to_string()))
            }
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        let mut buffer = Vec::with_capacity(64 * 1024);
        while let Some(first) = rx.blocking_recv() {
            let mut acks = Vec::new();
            let mut flushes = Vec::new();
            let mut records: u64 = 0;
            let mut next = Some(first);
            while let Some(message) = next {
                match message {
                    Message::Record(entry, ack) => {
                        let mark = buffer.len();
                        match encode(&entry, &self.redaction, &mut buffer) {
                            Ok(()) => {
                                records += 1;
                                acks.push(ack);
                            }
                            Err(e) => {
                                // Drop the partial line so the batch stays valid JSON lines.
                                buffer.truncate(mark);
                                self.metrics.log_errors.inc();
                                tracing::error!(error = %e, "cannot encode a decision-log record");
                                if let Some(ack) = ack {
                                    let _ = ack.send(Err(LogFailure::Write(e.to_string())));
                                }
                            }
                        }
                    }
                    Message::Flush(done) => flushes.push(done),
                }
                if acks.len() >= MAX_BATCH_RECORDS || buffer.len() >= MAX_BATCH_BYTES {
                    break;
                }
                next = rx.try_recv().ok();
            }
            // A batch of flush requests only writes nothing and says nothing about the
            // sink's health.
            let outcome = if buffer.is_empty() {
                Ok(())
            } else {
                let result = self
                    .sink
                    .write_all(&buffer)
                    .and_then(|()| self.sink.flush());
                buffer.clear();
                self.account(result, records)
            };
            for ack in acks.into_iter().flatten() {
                let _ = ack.send(outcome.clone());
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
        let _ = self.sink.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redaction_modes() {
        let doc = json!({"path": "/etc/shadow", "opts": {"n": 3, "tags": ["a", null]}});
        let mut all = doc.clone();
        redact(&mut all, &Redaction::All);
        assert_eq!(
            all,
            json!({"path": REDACTED, "opts": {"n": REDACTED, "tags": [REDACTED, REDACTED]}})
        );
        let mut some = doc.clone();
        redact(
            &mut some,
            &Redaction::Pointers(vec!["/opts/n".into(), "/missing".into()]),
        );
        assert_eq!(
            some,
            json!({"path": "/etc/shadow", "opts": {"n": REDACTED, "tags": ["a", null]}})
        );
        let mut none = doc.clone();
        redact(&mut none, &Redaction::None);
        assert_eq!(none, doc);
    }
}
