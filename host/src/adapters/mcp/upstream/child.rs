//! One stdio MCP server process and the JSON-RPC multiplexer over its pipes.
//!
//! Messages are newline-delimited JSON on stdin/stdout; stderr is the server's log,
//! relayed to the gateway's at debug level. Each client request gets an id of the
//! gateway's (`1, 2, …`) on the way in and its own id back on the way out, so clients
//! that reuse ids never see each other's answers. Messages the server starts (requests
//! and notifications) go to the stream of the request in flight, or else to the
//! session's `GET` stream; a server request nobody can receive is answered with an
//! error so that the server does not wait forever.
//!
//! The process ends when the last handle to it is dropped (the session ended, went
//! idle, or the gateway stops): stdin is closed first, as the MCP lifecycle asks, and
//! the process killed if it has not exited within [`EXIT_GRACE`]. If it exits or
//! writes something that is not JSON, every request in flight is answered with an
//! error and the session is over.

use super::UpstreamError;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

/// How long a process has to exit after its stdin closed before it is killed.
pub const EXIT_GRACE: Duration = Duration::from_secs(2);
/// Messages buffered per request stream before the server's output waits.
const STREAM_BUFFER: usize = 64;
/// Environment variables passed from the gateway's own environment to the child (the
/// rest of its environment is what the config gives it, so the gateway's secrets do
/// not leak into a tool server).
const INHERITED_ENV: [&str; 5] = ["PATH", "HOME", "LANG", "TMPDIR", "NODE_PATH"];

/// How to start the process.
#[derive(Debug, Clone)]
pub struct Spawn {
    /// The upstream's name, for logs.
    pub upstream: String,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Longest line accepted from the process.
    pub max_message_bytes: usize,
}

struct Pending {
    /// The client's id, restored on the answer.
    original: Value,
    tx: mpsc::Sender<Value>,
}

#[derive(Default)]
struct Routes {
    pending: HashMap<u64, Pending>,
    /// The request in flight that server-initiated messages go to (the latest).
    latest: Option<u64>,
    /// The session's `GET` stream.
    listener: Option<mpsc::Sender<Value>>,
}

/// A running stdio server.
pub struct Child {
    upstream: String,
    stdin: mpsc::Sender<Vec<u8>>,
    routes: Mutex<Routes>,
    next_id: AtomicU64,
    alive: Arc<AtomicBool>,
    /// Why the process stopped, once it has.
    stopped: Mutex<Option<String>>,
    last_used: Mutex<Instant>,
    /// Dropped with the child: tells the supervisor to stop the process.
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("upstream", &self.upstream)
            .field("alive", &self.is_alive())
            .finish_non_exhaustive()
    }
}

/// A request in flight: its answer stream. Dropping it before the answer came (the
/// client went away) tells the server with `notifications/cancelled`.
#[derive(Debug)]
pub struct InFlight {
    /// Server-initiated messages, then the answer (with the client's id).
    pub rx: mpsc::Receiver<Value>,
    child: Arc<Child>,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.child.abandon(self.id);
    }
}

impl Child {
    /// Starts the process and its relay tasks.
    pub fn spawn(spec: &Spawn) -> Result<Arc<Self>, UpstreamError> {
        let (program, args) = spec.command.split_first().ok_or_else(|| {
            UpstreamError::unavailable("the upstream's command is empty".to_owned())
        })?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for var in INHERITED_ENV {
            if let Some(value) = std::env::var_os(var) {
                command.env(var, value);
            }
        }
        command.envs(&spec.env);
        if let Some(cwd) = &spec.cwd {
            command.current_dir(cwd);
        }
        let mut process = command
            .spawn()
            .map_err(|e| UpstreamError::unavailable(format!("cannot start `{program}`: {e}")))?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (
            process.stdin.take(),
            process.stdout.take(),
            process.stderr.take(),
        ) else {
            return Err(UpstreamError::unavailable(
                "the child's pipes are missing".to_owned(),
            ));
        };
        let (stdin_tx, mut stdin_rx) = mpsc::channel::<Vec<u8>>(STREAM_BUFFER);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let alive = Arc::new(AtomicBool::new(true));
        let child = Arc::new(Self {
            upstream: spec.upstream.clone(),
            stdin: stdin_tx,
            routes: Mutex::new(Routes::default()),
            next_id: AtomicU64::new(1),
            alive: Arc::clone(&alive),
            stopped: Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
            _stop: stop_tx,
        });
        // Writer: one line per message. It ends when every sender is gone (the child
        // was dropped), which closes the process's stdin.
        let upstream = spec.upstream.clone();
        tokio::spawn(async move {
            let mut stdin = stdin;
            while let Some(line) = stdin_rx.recv().await {
                if let Err(e) = async {
                    stdin.write_all(&line).await?;
                    stdin.write_all(b"\n").await?;
                    stdin.flush().await
                }
                .await
                {
                    tracing::debug!(upstream, error = %e, "cannot write to the stdio server");
                    break;
                }
            }
        });
        // Reader: routes every line. Holds only a weak handle, so it never keeps the
        // process alive.
        let weak = Arc::downgrade(&child);
        let max = spec.max_message_bytes;
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            let why = loop {
                line.clear();
                match read_line(&mut reader, &mut line, max).await {
                    Ok(0) => break "it exited (stdout closed)".to_owned(),
                    Ok(_) => {}
                    Err(e) => break e,
                }
                let Some(child) = weak.upgrade() else { return };
                let text = trim_line(&line);
                if text.is_empty() {
                    continue;
                }
                match serde_json::from_slice::<Value>(text) {
                    Ok(message) => child.route(message).await,
                    Err(e) => {
                        break format!(
                            "it wrote a line that is not JSON ({e}): `{}`",
                            String::from_utf8_lossy(text.get(..120).unwrap_or(text))
                        );
                    }
                }
            };
            if let Some(child) = weak.upgrade() {
                child.fail(&why);
            }
        });
        let upstream = spec.upstream.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match read_line(&mut reader, &mut line, 64 * 1024).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => tracing::debug!(
                        upstream,
                        "stdio server: {}",
                        String::from_utf8_lossy(trim_line(&line))
                    ),
                }
            }
        });
        // Supervisor: waits for the process to exit, or stops it when the child handle
        // is dropped (stdin closes first; then a grace period; then a kill).
        let upstream = spec.upstream.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = process.wait() => status,
                _ = stop_rx => {
                    match tokio::time::timeout(EXIT_GRACE, process.wait()).await {
                        Ok(status) => status,
                        Err(_) => {
                            let _ = process.start_kill();
                            process.wait().await
                        }
                    }
                }
            };
            alive.store(false, Ordering::Relaxed);
            tracing::debug!(upstream, ?status, "stdio server stopped");
        });
        Ok(child)
    }

    /// Whether the process is still running and usable.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed) && self.stopped_reason().is_none()
    }

    /// Why it stopped, once it has.
    pub fn stopped_reason(&self) -> Option<String> {
        self.stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// When a client last used it.
    pub fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    /// Whether a request is in flight.
    pub fn is_busy(&self) -> bool {
        !self.routes().pending.is_empty()
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// Sends a client request; its answer (with the client's id) ends the stream.
    pub async fn request(self: &Arc<Self>, mut message: Value) -> Result<InFlight, UpstreamError> {
        self.check_alive()?;
        self.touch();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let original = message.get("id").cloned().unwrap_or(Value::Null);
        if let Some(object) = message.as_object_mut() {
            object.insert("id".to_owned(), json!(id));
        }
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        {
            let mut routes = self.routes();
            routes.pending.insert(id, Pending { original, tx });
            routes.latest = Some(id);
        }
        let in_flight = InFlight {
            rx,
            child: Arc::clone(self),
            id,
        };
        self.write(&message).await?;
        Ok(in_flight)
    }

    /// Sends a client notification or a client's answer to a server request. A
    /// `notifications/cancelled` is translated to the gateway's id of the request.
    pub async fn send(&self, mut message: Value) -> Result<(), UpstreamError> {
        self.check_alive()?;
        self.touch();
        if message.get("method").and_then(Value::as_str) == Some("notifications/cancelled")
            && let Some(requested) = message.pointer("/params/requestId").cloned()
        {
            let ours = self
                .routes()
                .pending
                .iter()
                .find(|(_, p)| p.original == requested)
                .map(|(id, _)| *id);
            if let (Some(ours), Some(slot)) = (ours, message.pointer_mut("/params/requestId")) {
                *slot = json!(ours);
            }
        }
        self.write(&message).await
    }

    /// The session's `GET` stream: server-initiated messages no request is there to
    /// carry. A new one replaces the old.
    pub fn listen(&self) -> Result<mpsc::Receiver<Value>, UpstreamError> {
        self.check_alive()?;
        self.touch();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        self.routes().listener = Some(tx);
        Ok(rx)
    }

    fn check_alive(&self) -> Result<(), UpstreamError> {
        match self.stopped_reason() {
            Some(why) => Err(UpstreamError::exited(why)),
            None if !self.alive.load(Ordering::Relaxed) => {
                Err(UpstreamError::exited("it exited".to_owned()))
            }
            None => Ok(()),
        }
    }

    async fn write(&self, message: &Value) -> Result<(), UpstreamError> {
        let line = serde_json::to_vec(message)
            .map_err(|e| UpstreamError::invalid(format!("cannot encode the message: {e}")))?;
        self.stdin
            .send(line)
            .await
            .map_err(|_| UpstreamError::exited("its stdin is closed".to_owned()))
    }

    /// A line from the server.
    async fn route(&self, mut message: Value) {
        let is_response = message.get("method").is_none() && message.get("id").is_some();
        if is_response {
            let Some(id) = message.get("id").and_then(Value::as_u64) else {
                tracing::warn!(
                    upstream = self.upstream,
                    "stdio server answered an id the gateway never sent"
                );
                return;
            };
            let pending = {
                let mut routes = self.routes();
                if routes.latest == Some(id) {
                    routes.latest = None;
                }
                routes.pending.remove(&id)
            };
            match pending {
                Some(p) => {
                    restore_subscription_id(&mut message, "/result/_meta", id, &p.original);
                    if let Some(object) = message.as_object_mut() {
                        object.insert("id".to_owned(), p.original);
                    }
                    let _ = p.tx.send(message).await;
                }
                None => tracing::debug!(
                    upstream = self.upstream,
                    id,
                    "answer to a request nobody waits for"
                ),
            }
            return;
        }
        // A server request or notification: to the request it names (a 2026-07-28
        // `subscriptions/listen` stream tags its frames with the listen request's id),
        // else to the request in flight, else to the GET stream.
        let subscription = message
            .pointer(&format!("/params/_meta/{}", SUBSCRIPTION_ID_POINTER))
            .and_then(Value::as_u64);
        let target = {
            let routes = self.routes();
            let named = subscription.and_then(|id| routes.pending.get(&id).map(|p| (id, p)));
            if let Some((id, p)) = named {
                restore_subscription_id(&mut message, "/params/_meta", id, &p.original);
                Some(p.tx.clone())
            } else {
                routes
                    .latest
                    .and_then(|id| routes.pending.get(&id))
                    .or_else(|| routes.pending.values().next())
                    .map(|p| p.tx.clone())
                    .or_else(|| routes.listener.clone())
            }
        };
        let server_request = message.get("id").cloned();
        let delivered = match target {
            Some(tx) => tx.send(message).await.is_ok(),
            None => false,
        };
        if !delivered && let Some(id) = server_request {
            tracing::debug!(
                upstream = self.upstream,
                "server request with no client stream; answering with an error"
            );
            let answer = json!({"jsonrpc": "2.0", "id": id, "error": {
                "code": -32603,
                "message": "no client stream is open to receive this request (Arbiter gateway)"}});
            let _ = self.write(&answer).await;
        }
    }

    /// The process is gone or unusable: every request in flight gets an error.
    fn fail(&self, why: &str) {
        tracing::warn!(upstream = self.upstream, "stdio server stopped: {why}");
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_owned());
        let pending: Vec<Pending> = {
            let mut routes = self.routes();
            routes.latest = None;
            routes.listener = None;
            routes.pending.drain().map(|(_, p)| p).collect()
        };
        for p in pending {
            let error = super::super::jsonrpc::error(
                Some(&p.original),
                super::super::jsonrpc::UPSTREAM_UNAVAILABLE,
                &format!("upstream `{}` stopped: {why}", self.upstream),
                Some(json!({ "upstream": self.upstream })),
            );
            let _ = p.tx.try_send(error);
        }
    }

    /// A request's stream was dropped: if its answer has not come, cancel it.
    fn abandon(&self, id: u64) {
        let was_pending = {
            let mut routes = self.routes();
            if routes.latest == Some(id) {
                routes.latest = None;
            }
            routes.pending.remove(&id).is_some()
        };
        if was_pending {
            let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": id, "reason": "the client went away"}});
            if let Ok(line) = serde_json::to_vec(&cancel) {
                let _ = self.stdin.try_send(line);
            }
        }
    }
}

/// The `_meta` key of 2026-07-28 that ties a listen stream's frames to its request, as a
/// JSON-pointer segment (`/` escaped as `~1`).
const SUBSCRIPTION_ID_POINTER: &str = "io.modelcontextprotocol~1subscriptionId";

/// A frame tagged with the gateway's id of a request gets the client's id back.
fn restore_subscription_id(message: &mut Value, meta: &str, ours: u64, original: &Value) {
    if let Some(slot) = message.pointer_mut(&format!("{meta}/{SUBSCRIPTION_ID_POINTER}"))
        && slot.as_u64() == Some(ours)
    {
        *slot = original.clone();
    }
}

/// Strips the line ending.
fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line.get(end - 1), Some(b'\n' | b'\r')) {
        end -= 1;
    }
    line.get(..end).unwrap_or(line)
}

/// Reads one line into `buf`, refusing lines longer than `max` bytes (a server that
/// never writes a newline must not grow the gateway's memory without bound).
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<usize, String> {
    loop {
        let available = reader
            .fill_buf()
            .await
            .map_err(|e| format!("cannot read its output: {e}"))?;
        if available.is_empty() {
            return Ok(buf.len());
        }
        let (take, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        buf.extend_from_slice(available.get(..take).unwrap_or(available));
        reader.consume(take);
        if buf.len() > max {
            return Err(format!(
                "it wrote a message longer than {max} bytes (`gateway.max_message_bytes`)"
            ));
        }
        if done {
            return Ok(buf.len());
        }
    }
}
