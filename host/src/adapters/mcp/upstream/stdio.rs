//! A stdio upstream: the gateway spawns the server and supervises it.
//!
//! - **Handshake revisions**: one process per MCP session. `initialize` (without
//!   `Mcp-Session-Id`) starts a process; its success mints the session id the client
//!   uses from then on; `DELETE` ends the session and the process. A stdio server keeps
//!   one client's state (its capabilities, its subscriptions), so two clients never
//!   share one process.
//! - **2026-07-28**: no sessions; one shared process per upstream, started on the first
//!   request and started again on the next one after it stopped.
//!
//! At most `max_sessions` processes run per upstream; a session idle for
//! `idle_timeout_ms` (no request and none in flight) is ended.

use super::UpstreamError;
use super::child::{Child, Spawn};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One stdio upstream's processes.
#[derive(Debug)]
pub struct StdioUpstream {
    spawn: Spawn,
    max_sessions: usize,
    idle_timeout: Duration,
    sessions: Mutex<HashMap<String, Arc<Child>>>,
    shared: tokio::sync::Mutex<Option<Arc<Child>>>,
}

impl StdioUpstream {
    /// An upstream that spawns processes as `spawn` says.
    pub fn new(spawn: Spawn, max_sessions: usize, idle_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            spawn,
            max_sessions,
            idle_timeout,
            sessions: Mutex::new(HashMap::new()),
            shared: tokio::sync::Mutex::new(None),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Child>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a process for a new session (`initialize`); the session exists once
    /// [`StdioUpstream::open`] is called with the id.
    pub fn start_session(&self) -> Result<Arc<Child>, UpstreamError> {
        let running = self.sessions().len();
        if running >= self.max_sessions {
            return Err(UpstreamError::unavailable(format!(
                "{running} sessions are open, the most this upstream allows (`max_sessions`)"
            )));
        }
        Child::spawn(&self.spawn)
    }

    /// Registers a started process under a fresh session id.
    pub fn open(&self, child: Arc<Child>) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.sessions().insert(id.clone(), child);
        id
    }

    /// The process of session `id`, if it is open and alive (a stopped one ends the
    /// session).
    pub fn session(&self, id: &str) -> Option<Arc<Child>> {
        let mut sessions = self.sessions();
        let child = sessions.get(id)?;
        if child.is_alive() {
            Some(Arc::clone(child))
        } else {
            sessions.remove(id);
            None
        }
    }

    /// Ends session `id`; false if there was none.
    pub fn close(&self, id: &str) -> bool {
        self.sessions().remove(id).is_some()
    }

    /// The shared process of 2026-07-28 requests, started if needed.
    pub async fn shared(&self) -> Result<Arc<Child>, UpstreamError> {
        let mut shared = self.shared.lock().await;
        if let Some(child) = shared.as_ref()
            && child.is_alive()
        {
            return Ok(Arc::clone(child));
        }
        let child = Child::spawn(&self.spawn)?;
        *shared = Some(Arc::clone(&child));
        Ok(child)
    }

    /// Ends idle and stopped sessions; returns how many.
    pub fn reap(&self) -> usize {
        let mut sessions = self.sessions();
        let before = sessions.len();
        sessions.retain(|_, c| c.is_alive() && (c.is_busy() || c.idle_for() < self.idle_timeout));
        before - sessions.len()
    }

    /// Ends every session (the gateway is stopping).
    pub async fn close_all(&self) {
        self.sessions().clear();
        *self.shared.lock().await = None;
    }

    /// How often [`StdioUpstream::reap`] should run.
    pub fn reap_interval(&self) -> Duration {
        (self.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(30))
    }
}
