//! The decision log: one JSON line per decision, for auditors.
//!
//! ```json
//! {"decision_id":"…","time":"2026-…Z","trace_id":"4bf9…","request_id":"req-1",
//!  "task_id":"t-1","generation":1,"effect":"deny","reason":"…","obligations":[],
//!  "plugins":[{"name":"intent","digest":"sha256:…",…}],"elapsed_us":41,
//!  "via":{"adapter":"mcp","upstream":"fs","jsonrpc_id":7,"identity":"mtls"},
//!  "identity":{"id":"spiffe://example.org/agent/a","attestation":"x509-svid","source":"mtls","trust_domain":"example.org"},
//!  "credential_id":"6f1c…","tasks":"opened",
//!  "action":{"request_id":"req-1","agent":{…},"tool":{…},"arguments":{"path":"[redacted]"},…}}
//! ```
//!
//! `identity` is who the decision was for and how that was established; `credential_id`
//! is the id of the credential minted for the call (never the token); `quarantine` says
//! why a deny quarantined its task; `tasks` is `asserted` or `opened`.
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
//! # Redaction
//!
//! Arguments may hold secrets or personal data, and plugins repeat what they saw in
//! their reasons, often normalised (a path after `..` resolution, a lowercased URL host,
//! a SQL statement clipped to 120 bytes). So `redact_arguments` ([`Redaction`]) covers
//! both the arguments and every text a plugin wrote; how is in [`super::redaction`].
//! Only the log is redacted: the HTTP answer goes to the gateway, which sent the
//! arguments.
//!
//! **`true` (the default, [`Redaction::All`])**
//! - `action.arguments`: every string, number, boolean and null becomes `"[redacted]"`;
//!   every object key becomes `"[redacted-N]"` (one number per distinct key in the line,
//!   so repeated shapes stay visible), except a key that the operator's configuration
//!   names (a string, key or pointer segment in the settings of a plugin of the set that
//!   decided, such as `path` for a `"/path"` argument rule). Structure and array lengths
//!   stay.
//! - `reason`, `plugins[].reason`: every span between backticks is replaced by
//!   `[redacted]` unless it is exactly one of: a field of the action logged verbatim (see
//!   below), `server/name` of the tool, a plugin's `name`, `plugin`, `version` or `kind`,
//!   a plugin label as logged, a key or value of the arguments as logged, a word of the
//!   contract (effects, outcomes, the sensitivity levels and the tags `secret` and `pii`,
//!   the obligation kinds `redact`, `max-ttl`, `require-approval`, `log`), or a word of
//!   the configuration as above; a span that is a JSON pointer into the arguments is
//!   rewritten with the keys' labels. An unmatched backtick quotes the rest of the text.
//!   In the unquoted text, every hidden argument string (values and keys, numbers as
//!   their digits) of at least 4 bytes, and its JSON-escaped form, is replaced wherever
//!   it occurs (`[redacted]`, or a key's label). Shorter ones are replaced only where
//!   quoted: they occur inside ordinary words and numbers.
//! - `obligations[].detail` (in the decision and in each plugin entry) is judged whole,
//!   like a quoted span: a pointer is rewritten, a configured approver group or TTL is
//!   kept, anything else becomes `[redacted]`. `obligations[].kind` and
//!   `plugins[].labels` get the unquoted-text replacement.
//!
//! **a list of pointers ([`Redaction::Pointers`])**
//! - `action.arguments`: the values at those pointers become `"[redacted]"`; keys on
//!   the way and everything else stay.
//! - Plugin texts: the same rules as `true`, where "hidden" means the strings and keys
//!   under the redacted pointers. A quoted span is kept when it is a value or key the
//!   line shows anyway, so a normalised form of a hidden value (and of any other value
//!   that is not shown exactly as quoted) is redacted too.
//!
//! **`false` ([`Redaction::None`])**: nothing is redacted; the line holds the action and
//! the plugins' texts as they were.
//!
//! **Logged verbatim in every mode**: `decision_id`, `time`, `trace_id`, `request_id`,
//! `task_id`, `generation`, `effect`, `elapsed_us`; each plugin's `name`, `plugin`,
//! `version`, `kind`, `digest`, `signer`, `signature`, `mode`, `outcome`, `verdict`,
//! `effect`, `counted`, `elapsed_us`; and every field of the action but its arguments:
//! the agent (`id`, `attestation`, `claims`), the `delegation` chain (ids, kinds,
//! scopes), the `task` (id, intent, times), the `tool`, the `credential` (scopes,
//! audience, expiry), the `resource` (id, labels), the `environment` and `time`. They
//! are who acted, on whose authority, on what: what an audit is for, and none of it is
//! the tool's payload. A gateway that puts payload data there puts it in the log.
//!
//! **What can survive**: a plugin that repeats a transformed value *without* backticks
//! (the reference plugins quote everything they echo, and replace backticks inside what
//! they echo); a transformed value that happens to equal a string the line shows anyway;
//! an argument string shorter than 4 bytes written unquoted. Plugin authors: quote every
//! piece of input you echo, in backticks, with backticks inside it replaced.

use super::config::{DecisionLogConfig, LogSink, Redaction};
use super::metrics::Metrics;
pub use super::redaction::REDACTED;
use super::redaction::{Vocabulary, redact_arguments, scrub_decision};
use crate::model::Action;
use crate::model::{Decision, DecisionEffect, Obligation, PluginEntry};
use crate::plugin::PolicySet;
use serde::Serialize;
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot};

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
    /// The adapter and what it knows of the request (upstream, JSON-RPC id).
    pub via: Option<super::Via>,
    /// The policy set that made the decision. Its plugins' settings are the words a
    /// redacted reason may still quote; `None` (or another set) means none may.
    pub policy_set: Option<Arc<PolicySet>>,
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

/// Handle to the decision log (shared through [`super::DecisionService`]).
#[derive(Debug)]
pub struct DecisionLog {
    tx: mpsc::Sender<Message>,
    strict: bool,
    healthy: Arc<AtomicBool>,
    metrics: Metrics,
    redaction: Redaction,
    recent: RecentLines,
}

/// How many recent log lines the operator console can show.
pub const RECENT_DECISIONS: usize = 256;

/// The last [`RECENT_DECISIONS`] lines, as written (so redacted exactly as the log is).
/// The writer thread keeps them; they are parsed only when someone looks.
type RecentLines = Arc<std::sync::Mutex<std::collections::VecDeque<Box<str>>>>;

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
        let recent = RecentLines::default();
        let worker = Writer {
            recent: Arc::clone(&recent),
            sink: writer,
            redaction: config.redaction.clone(),
            metrics: metrics.clone(),
            healthy: Arc::clone(&healthy),
            vocabulary: None,
        };
        std::thread::Builder::new()
            .name("arbiter-decision-log".to_owned())
            .spawn(move || worker.run(rx))?;
        Ok(Self {
            tx,
            strict: config.strict,
            healthy,
            metrics,
            redaction: config.redaction.clone(),
            recent,
        })
    }

    /// The most recent decisions, newest first, as the log wrote them.
    pub fn recent(&self) -> Vec<Value> {
        let lines = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        lines
            .iter()
            .rev()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// `arguments` as this log would show them, with the vocabulary of `set`: what an
    /// approver or the console may see of a call (the same rules as the log lines, so a
    /// secret hidden from the log is hidden there too).
    pub fn shown_arguments(&self, arguments: &Value, set: Option<&PolicySet>) -> Value {
        self.shown_call(arguments, set, &mut [])
    }

    /// Like [`DecisionLog::shown_arguments`], and each of `texts` (reasons that may quote
    /// the arguments) with what the redaction hid replaced there too.
    pub fn shown_call(
        &self,
        arguments: &Value,
        set: Option<&PolicySet>,
        texts: &mut [String],
    ) -> Value {
        let vocabulary = set.map(Vocabulary::of_policy_set).unwrap_or_default();
        let mut shown = arguments.clone();
        let hidden = redact_arguments(&mut shown, &self.redaction, &vocabulary);
        for text in texts.iter_mut() {
            *text = hidden.hide_in(text);
        }
        shown
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
    /// The adapter and what it knows of the request.
    pub via: Option<super::Via>,
    /// The policy set the decision ran on (for redaction; see [`LogEntry`]).
    pub policy_set: Option<std::sync::Arc<crate::plugin::PolicySet>>,
    /// Who the decision is for, recorded with it.
    pub identity: Option<crate::model::IdentityRecord>,
}

impl crate::decide::PostDecision for StrictAudit<'_> {
    fn after_decision(&self, _action: &Action, _decision: &mut Decision) {}

    fn audit(&self, action: &Action, decision: &mut Decision) {
        decision.identity.clone_from(&self.identity);
        let entry = LogEntry {
            decision: decision.clone(),
            action: action.clone(),
            trace_id: self.trace_id.clone(),
            via: self.via.clone(),
            policy_set: self.policy_set.clone(),
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
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<&'a super::Via>,
    /// Who the decision was for: the id, its attestation, its source and trust domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<&'a crate::model::IdentityRecord>,
    /// The id of the credential minted for the call (never the token).
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_id: Option<&'a str>,
    /// Why this deny quarantined its task.
    #[serde(skip_serializing_if = "Option::is_none")]
    quarantine: Option<&'a str>,
    /// Whether the task was asserted or opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<crate::model::TaskMode>,
    /// The approval this step-up waits for, or that allowed or rejected the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    approval: Option<&'a crate::model::ApprovalRef>,
    action: Value,
}

/// Serialises one entry as a JSON line, redacted as the module docs say.
pub fn encode(
    entry: &LogEntry,
    redaction: &Redaction,
    vocabulary: &Vocabulary,
    out: &mut Vec<u8>,
) -> serde_json::Result<()> {
    let d = &entry.decision;
    let mut action = serde_json::to_value(&entry.action)?;
    let scrubbed = match (redaction, action.as_object_mut()) {
        (Redaction::None, _) => None,
        (_, Some(fields)) => {
            let mut arguments = fields
                .remove("arguments")
                .unwrap_or_else(|| entry.action.arguments.clone());
            let hidden = redact_arguments(&mut arguments, redaction, vocabulary);
            let scrubbed = scrub_decision(d, &entry.action, &arguments, &hidden, vocabulary);
            fields.insert("arguments".to_owned(), arguments);
            Some(scrubbed)
        }
        // Never happens (an action is a struct); refusing beats logging it unredacted.
        (_, None) => {
            return Err(serde::ser::Error::custom(
                "the action did not serialise to a JSON object",
            ));
        }
    };
    let (reason, obligations, plugins) = match &scrubbed {
        Some(s) => (
            s.reason.as_str(),
            s.obligations.as_slice(),
            s.plugins.as_slice(),
        ),
        None => (
            d.reason.as_str(),
            d.obligations.as_slice(),
            d.plugins.as_slice(),
        ),
    };
    let record = Record {
        decision_id: &d.decision_id,
        time: &d.time,
        trace_id: entry.trace_id.as_deref(),
        request_id: &d.request_id,
        task_id: d.task_id.as_deref(),
        generation: d.generation,
        effect: d.effect,
        reason,
        obligations,
        plugins,
        elapsed_us: d.elapsed_us,
        via: entry.via.as_ref(),
        identity: d.identity.as_ref(),
        credential_id: d.credential.as_ref().map(|c| c.id.as_str()),
        quarantine: d.quarantine.as_deref(),
        tasks: d.tasks,
        approval: d.approval.as_ref(),
        action,
    };
    serde_json::to_writer(&mut *out, &record)?;
    out.push(b'\n');
    Ok(())
}

struct Writer {
    recent: RecentLines,
    sink: Box<dyn Write + Send>,
    redaction: Redaction,
    metrics: Metrics,
    healthy: Arc<AtomicBool>,
    /// The vocabulary of the last policy set seen, by its digest: sets change rarely,
    /// so settings are parsed once per set, not once per record.
    vocabulary: Option<(String, Arc<Vocabulary>)>,
}

impl Writer {
    /// The vocabulary of the policy set that made the decision; none without one, so
    /// every quoted span that is not otherwise attributable is redacted.
    fn vocabulary(&mut self, set: Option<&PolicySet>) -> Arc<Vocabulary> {
        let Some(set) = set else {
            return Arc::default();
        };
        if let Some((digest, vocabulary)) = &self.vocabulary
            && digest == set.digest()
        {
            return Arc::clone(vocabulary);
        }
        let vocabulary = Arc::new(Vocabulary::of_policy_set(set));
        self.vocabulary = Some((set.digest().to_owned(), Arc::clone(&vocabulary)));
        vocabulary
    }

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

    /// Keeps `line` (one JSON line and its newline) for the console.
    fn remember(&self, line: &[u8]) {
        let Ok(text) = std::str::from_utf8(line) else {
            return;
        };
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() >= RECENT_DECISIONS {
            recent.pop_front();
        }
        recent.push_back(text.trim_end().into());
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
                        // Generations are unique per `Arbiter`: a set of another generation
                        // (swapped in meanwhile) did not decide, so its words do not count.
                        let set = entry
                            .policy_set
                            .as_deref()
                            .filter(|s| s.generation() == entry.decision.generation);
                        let vocabulary = self.vocabulary(set);
                        match encode(&entry, &self.redaction, &vocabulary, &mut buffer) {
                            Ok(()) => {
                                records += 1;
                                acks.push(ack);
                                self.remember(buffer.get(mark..).unwrap_or_default());
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
