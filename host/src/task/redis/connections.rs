//! Connections to Redis, each operation bounded by its deadline.
//!
//! Decisions are synchronous (see [`crate::task::TaskStore`]), so the store uses the
//! blocking client: a connection is taken from a small idle list (or opened), its read
//! and write timeouts set to what is left of the deadline, and given back only after a
//! clean answer. A connection that failed is dropped, never reused: the next operation
//! opens a new one, which is how the store recovers when Redis comes back.

use crate::config::RedisStoreConfig;
use crate::task::StoreError;
use redis::{Client, Connection, IntoConnectionInfo, RedisError, RedisResult};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why the store could not be set up (a config the client refuses, an unreadable
/// certificate): the host does not start.
#[derive(Debug, thiserror::Error)]
#[error("`task_store`: {0}")]
pub struct StoreSetupError(pub String);

/// The client and its idle connections.
pub struct Connections {
    client: Client,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    /// `redis://host:port`, for errors.
    shown: String,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("redis", &self.shown)
            .finish_non_exhaustive()
    }
}

impl Connections {
    /// A client for `config`; connects lazily (a Redis that is down at start makes the
    /// host not ready, not absent).
    pub fn new(config: &RedisStoreConfig) -> Result<Self, StoreSetupError> {
        let shown = config.shown_url();
        let mut info = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| StoreSetupError(format!("`url` {shown}: {e}")))?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &config.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &config.password {
            settings = settings.set_password(password);
        }
        // Every request is small and waits for its answer: Nagle's algorithm would only
        // hold a segment back (the client library leaves it on by default).
        info = info
            .set_redis_settings(settings)
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = if config.is_tls() {
            // The client takes rustls' process default; install ring's (the one the rest
            // of the host uses) if nothing was installed yet.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let read = |key: &str, path: &std::path::Path| {
                std::fs::read(path)
                    .map_err(|e| StoreSetupError(format!("`{key}` `{}`: {e}", path.display())))
            };
            let root_cert = match &config.ca_file {
                Some(path) => Some(read("ca_file", path)?),
                None => None,
            };
            let client_tls = match &config.client_identity {
                Some((cert, key)) => Some(redis::ClientTlsConfig {
                    client_cert: read("client_cert_file", cert)?,
                    client_key: read("client_key_file", key)?,
                }),
                None => None,
            };
            Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls,
                    root_cert,
                },
            )
        } else {
            Client::open(info)
        }
        .map_err(|e| StoreSetupError(format!("{shown}: {e}")))?;
        Ok(Self {
            client,
            idle: Mutex::new(Vec::new()),
            max_idle: config.max_connections,
            shown,
        })
    }

    /// `redis://host:port`.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // Only pushes and pops happen under the lock.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op`, which must be idempotent (running it twice leaves what running it once
    /// does), on a connection before `deadline`. A pooled connection that turns out
    /// dead (Redis restarted since it was opened) is replaced once by a fresh one, so a
    /// Redis that came back serves the very next decision.
    pub fn with<T>(
        &self,
        deadline: Instant,
        op: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        self.run_op(deadline, op, true)
    }

    /// Runs `op` once: for a step that must not be repeated when its answer was lost
    /// (recording a decision).
    pub fn with_once<T>(
        &self,
        deadline: Instant,
        op: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        self.run_op(deadline, op, false)
    }

    fn run_op<T>(
        &self,
        deadline: Instant,
        mut op: impl FnMut(&mut Connection) -> RedisResult<T>,
        may_repeat: bool,
    ) -> Result<T, StoreError> {
        let pooled = self.lock_idle().pop();
        let from_pool = pooled.is_some();
        let mut con = match pooled {
            Some(con) => con,
            None => self.connect(deadline)?,
        };
        match self.run(&mut con, deadline, &mut op) {
            Ok(value) => {
                self.give_back(con);
                Ok(value)
            }
            Err(e) if is_dead_connection(&e) => {
                // The other idle connections went to the same server: likely dead too.
                self.lock_idle().clear();
                if !(from_pool && may_repeat) {
                    return Err(self.failure(e));
                }
                drop(con);
                let mut fresh = self.connect(deadline)?;
                let value = self
                    .run(&mut fresh, deadline, &mut op)
                    .map_err(|e| self.failure(e))?;
                self.give_back(fresh);
                Ok(value)
            }
            Err(e) => Err(self.failure(e)),
        }
    }

    fn run<T>(
        &self,
        con: &mut Connection,
        deadline: Instant,
        op: &mut impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let left = left_before(deadline).ok_or_else(timed_out)?;
        con.set_read_timeout(Some(left))?;
        con.set_write_timeout(Some(left))?;
        op(con)
    }

    /// A new connection with every script loaded, so that pipelines can run them by
    /// hash (a server that lost them, after a restart, gets them with the connection).
    fn connect(&self, deadline: Instant) -> Result<Connection, StoreError> {
        let left = left_before(deadline).ok_or(StoreError::Timeout)?;
        let mut con = self
            .client
            .get_connection_with_timeout(left)
            .map_err(|e| self.failure(e))?;
        self.run(&mut con, deadline, &mut |con| {
            let mut pipe = redis::pipe();
            for script in super::scripts::all() {
                pipe.load_script(script).ignore();
            }
            pipe.query::<()>(con)
        })
        .map_err(|e| self.failure(e))?;
        Ok(con)
    }

    fn give_back(&self, con: Connection) {
        let mut idle = self.lock_idle();
        if idle.len() < self.max_idle {
            idle.push(con);
        }
    }

    /// The store error for a client error: a timeout is [`StoreError::Timeout`], the
    /// rest names Redis and what it said.
    pub fn failure(&self, e: RedisError) -> StoreError {
        if e.is_timeout() {
            StoreError::Timeout
        } else {
            StoreError::Unavailable(format!("Redis at {}: {e}", self.shown))
        }
    }

    /// The store error for an answer that cannot be used.
    pub fn garbage(&self, what: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable(format!(
            "Redis at {} answered something unusable: {what}",
            self.shown
        ))
    }
}

/// Whether the connection itself failed (rather than one command on it).
fn is_dead_connection(e: &RedisError) -> bool {
    !e.is_timeout() && (e.is_connection_dropped() || e.is_io_error() || e.is_unrecoverable_error())
}

/// What is left before `deadline`, if anything (at least a millisecond: a zero timeout
/// means "none" to the socket).
fn left_before(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .map(|d| d.max(Duration::from_millis(1)))
}

fn timed_out() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "deadline passed",
    ))
}
