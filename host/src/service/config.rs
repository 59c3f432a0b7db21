//! The `[server]` table of the config file: where `arbiter serve` listens, who may call
//! it, and where decisions are logged. Read in the same two stages as the rest of the
//! file ([`RawServer`] with `deny_unknown_fields`, validated into [`ServerConfig`]).
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8480"           # loopback by default
//! max_body_bytes = 2097152            # larger bodies get 413
//! header_read_timeout_ms = 5000       # a request's headers must arrive within this
//! body_read_timeout_ms = 10000        # a request's body must arrive within this (408)
//! max_connections = 1024              # open connections; more wait in the listen queue
//! admin_token_env = "ARBITER_ADMIN_TOKEN"   # default; or admin_token = "…"
//! decide_token_env = "ARBITER_DECIDE_TOKEN" # optional; or decide_token = "…"
//!
//! [server.decision_log]
//! sink = "stdout"                     # or a file path (appended to), relative to this file
//! redact_arguments = true             # true | false | ["/password", "/headers/authorization"]
//!                                     # (arguments and what plugin reasons quote of them;
//!                                     # see the decision_log module for exactly what)
//! strict = false                      # true: deny decisions that cannot be logged
//! buffer = 10000                      # records queued for the writer
//! ```
//!
//! The three connection bounds keep slow or idle clients from holding the server:
//! `header_read_timeout_ms` closes a connection whose request headers have not all
//! arrived in time (and an idle keep-alive connection after as long),
//! `body_read_timeout_ms` answers `408` to a request whose body has not all arrived in
//! time after its headers, and `max_connections` bounds how many connections are served
//! at once: past it the server stops accepting until one closes, so further clients wait
//! in the kernel's listen queue instead of being refused. Keep `max_connections` below
//! the process's open-file limit (`ulimit -n`).
//!
//! Tokens are secrets: they are never printed (see [`Secret`]), and one taken from the
//! environment is read only when the server starts ([`TokenSource::resolve`]), so a
//! config file can be shared without its credentials. Whitespace around a token (the
//! trailing newline of a `.env` file or of `echo token > file`) is trimmed with a warning
//! naming where the token came from: a client cannot send it in an `Authorization`
//! header, so the untrimmed token could never match. A token with a control or non-ASCII
//! character left inside is refused for the same reason.

use crate::config::{Config, ConfigError};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default listen address: loopback only, so a fresh install is not reachable from the
/// network until the operator says so.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8480";
/// Default body limit: the largest action (1 MiB of arguments plus its other fields).
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Largest body limit a config may set.
pub const MAX_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Default environment variable holding the admin token.
pub const DEFAULT_ADMIN_TOKEN_ENV: &str = "ARBITER_ADMIN_TOKEN";
/// Shortest accepted token: shorter ones can be guessed.
pub const MIN_TOKEN_BYTES: usize = 16;
/// Default capacity of the decision-log queue.
pub const DEFAULT_LOG_BUFFER: usize = 10_000;
/// Largest decision-log queue.
pub const MAX_LOG_BUFFER: usize = 1_000_000;
/// Default time for a request's headers to arrive: generous for any real client on a
/// slow link, short enough that a slowloris holds a connection only briefly.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 5_000;
/// Default time for a request's body to arrive once its headers have.
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 10_000;
/// Longest header or body read timeout a config may set.
pub const MAX_READ_TIMEOUT_MS: u64 = 600_000;
/// Default bound on connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Largest `max_connections` a config may set.
pub const MAX_MAX_CONNECTIONS: usize = 100_000;

/// `[server]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Socket address to listen on.
    pub listen: Option<String>,
    /// Largest request body in bytes.
    pub max_body_bytes: Option<usize>,
    /// Time for a request's headers to arrive, ms.
    pub header_read_timeout_ms: Option<u64>,
    /// Time for a request's body to arrive after its headers, ms.
    pub body_read_timeout_ms: Option<u64>,
    /// Connections served at once.
    pub max_connections: Option<usize>,
    /// Admin bearer token, inline (prefer `admin_token_env`).
    pub admin_token: Option<String>,
    /// Environment variable holding the admin bearer token.
    pub admin_token_env: Option<String>,
    /// Bearer token required by the decision endpoints, inline.
    pub decide_token: Option<String>,
    /// Environment variable holding the decision endpoints' bearer token.
    pub decide_token_env: Option<String>,
    /// `[server.decision_log]`.
    #[serde(default)]
    pub decision_log: RawDecisionLog,
}

/// `[server.decision_log]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDecisionLog {
    /// `stdout` or a file path.
    pub sink: Option<String>,
    /// `true`, `false` or a list of JSON pointers into the arguments.
    pub redact_arguments: Option<RawRedaction>,
    /// Deny decisions that cannot be logged.
    pub strict: Option<bool>,
    /// Queue capacity.
    pub buffer: Option<usize>,
}

/// `redact_arguments` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawRedaction {
    /// All or nothing.
    All(bool),
    /// These JSON pointers.
    Pointers(Vec<String>),
}

/// A secret string whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a bearer token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// No token: for the admin endpoints this disables them, for the decision endpoints
    /// it leaves them open.
    None,
    /// Written in the config file.
    Inline(Secret),
    /// Read from an environment variable at start. `required` is false only for the
    /// default admin variable, whose absence just disables the admin endpoints.
    Env {
        /// Variable name.
        var: String,
        /// Whether a missing variable is an error.
        required: bool,
    },
}

impl TokenSource {
    /// Reads the token (from the environment if needed), trims surrounding whitespace
    /// with a warning (see the module doc), and checks its length and characters.
    /// `key` names the config key in errors.
    pub fn resolve(
        &self,
        key: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        let (value, origin) = match self {
            Self::None => return Ok(None),
            Self::Inline(secret) => (secret.expose().to_owned(), format!("`{key}`")),
            Self::Env { var, required } => match env(var) {
                Some(value) => (value, format!("environment variable `{var}`")),
                None if *required => {
                    return Err(invalid(
                        format!("{key}_env"),
                        format!("environment variable `{var}` is not set"),
                    ));
                }
                None => return Ok(None),
            },
        };
        let trimmed = value.trim();
        if trimmed.len() != value.len() {
            // Name the origin, never the token.
            tracing::warn!(
                key,
                "the token from {origin} has leading or trailing whitespace; it was trimmed"
            );
        }
        let value = trimmed.to_owned();
        if let Some(at) = value
            .bytes()
            .position(|b| !(b == b' ' || b.is_ascii_graphic()))
        {
            return Err(invalid(
                key,
                format!(
                    "the token from {origin} has a control or non-ASCII character at byte {at}, \
                     which a client cannot send in an `Authorization` header"
                ),
            ));
        }
        if value.len() < MIN_TOKEN_BYTES {
            return Err(invalid(
                key,
                format!(
                    "the token from {origin} has {} bytes, expected at least {MIN_TOKEN_BYTES}",
                    value.len()
                ),
            ));
        }
        Ok(Some(Secret(value)))
    }
}

/// Where decision log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSink {
    /// Standard output.
    Stdout,
    /// A file, appended to (created if missing).
    File(PathBuf),
}

/// What the decision log hides (`redact_arguments`); the exact rules are in
/// [`super::decision_log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redaction {
    /// Log arguments and plugin reasons as they are.
    None,
    /// Replace every scalar of the arguments and every key the configuration does not
    /// name (structure stays), and scrub them and anything quoted that the log cannot
    /// attribute from plugin reasons and obligation details.
    All,
    /// Replace the values at these JSON pointers (RFC 6901) into the arguments, and
    /// scrub what they held and anything quoted that the log cannot attribute from
    /// plugin reasons and obligation details.
    Pointers(Vec<String>),
}

/// Validated `[server.decision_log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionLogConfig {
    /// Where lines go.
    pub sink: LogSink,
    /// Which argument values are hidden.
    pub redaction: Redaction,
    /// Deny decisions that cannot be logged.
    pub strict: bool,
    /// Queue capacity.
    pub buffer: usize,
}

impl Default for DecisionLogConfig {
    fn default() -> Self {
        Self {
            sink: LogSink::Stdout,
            redaction: Redaction::All,
            strict: false,
            buffer: DEFAULT_LOG_BUFFER,
        }
    }
}

/// Validated `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Time for a request's headers to arrive.
    pub header_read_timeout: Duration,
    /// Time for a request's body to arrive after its headers.
    pub body_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Admin token source.
    pub admin_token: TokenSource,
    /// Decision token source.
    pub decide_token: TokenSource,
    /// Decision log settings.
    pub decision_log: DecisionLogConfig,
    /// `[approvals]`: the approver groups (their tokens and members) and the console URL.
    pub approvals: crate::config::ApprovalsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8480)),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: Duration::from_millis(DEFAULT_HEADER_READ_TIMEOUT_MS),
            body_read_timeout: Duration::from_millis(DEFAULT_BODY_READ_TIMEOUT_MS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            admin_token: TokenSource::Env {
                var: DEFAULT_ADMIN_TOKEN_ENV.to_owned(),
                required: false,
            },
            decide_token: TokenSource::None,
            decision_log: DecisionLogConfig::default(),
            approvals: crate::config::ApprovalsConfig::default(),
        }
    }
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

fn read_timeout(key: &str, value: Option<u64>, default: Duration) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(ms) if ms == 0 || ms > MAX_READ_TIMEOUT_MS => Err(invalid(
            key,
            format!("{ms}, expected 1 to {MAX_READ_TIMEOUT_MS} milliseconds"),
        )),
        Some(ms) => Ok(Duration::from_millis(ms)),
    }
}

fn token_source(
    key: &str,
    inline: Option<String>,
    env: Option<String>,
    default: TokenSource,
) -> Result<TokenSource, ConfigError> {
    match (inline, env) {
        (Some(_), Some(_)) => Err(invalid(
            key,
            format!("give either `{key}` or `{key}_env`, not both"),
        )),
        (Some(token), None) => Ok(TokenSource::Inline(Secret(token))),
        (None, Some(var)) if var.trim().is_empty() => Err(invalid(
            format!("{key}_env"),
            "expected the name of an environment variable",
        )),
        (None, Some(var)) => Ok(TokenSource::Env {
            var,
            required: true,
        }),
        (None, None) => Ok(default),
    }
}

impl ServerConfig {
    /// Validates the `[server]` table of `config` (the defaults when it has none); a
    /// relative log path resolves against the config file's directory.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let raw: RawServer = match &config.server {
            None => RawServer::default(),
            Some(table) => table.clone().try_into().map_err(|e: toml::de::Error| {
                invalid("server", e.message().trim_end().to_owned())
            })?,
        };
        let mut server = Self::from_raw(raw, &config.base_dir)?;
        server.approvals = config.approvals.clone();
        Ok(server)
    }

    /// Validates `[server]`; a relative log path resolves against `base`.
    pub fn from_raw(raw: RawServer, base: &Path) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let listen = match raw.listen {
            None => defaults.listen,
            Some(text) => text.parse().map_err(|e| {
                invalid(
                    "server.listen",
                    format!("`{text}` is not a socket address like `{DEFAULT_LISTEN}`: {e}"),
                )
            })?,
        };
        let max_body_bytes = match raw.max_body_bytes {
            None => defaults.max_body_bytes,
            Some(n) if n == 0 || n > MAX_MAX_BODY_BYTES => {
                return Err(invalid(
                    "server.max_body_bytes",
                    format!("{n}, expected 1 to {MAX_MAX_BODY_BYTES}"),
                ));
            }
            Some(n) => n,
        };
        let header_read_timeout = read_timeout(
            "server.header_read_timeout_ms",
            raw.header_read_timeout_ms,
            defaults.header_read_timeout,
        )?;
        let body_read_timeout = read_timeout(
            "server.body_read_timeout_ms",
            raw.body_read_timeout_ms,
            defaults.body_read_timeout,
        )?;
        let max_connections = match raw.max_connections {
            None => defaults.max_connections,
            Some(n) if n == 0 || n > MAX_MAX_CONNECTIONS => {
                return Err(invalid(
                    "server.max_connections",
                    format!("{n}, expected 1 to {MAX_MAX_CONNECTIONS}"),
                ));
            }
            Some(n) => n,
        };
        let admin_token = token_source(
            "server.admin_token",
            raw.admin_token,
            raw.admin_token_env,
            defaults.admin_token,
        )?;
        let decide_token = token_source(
            "server.decide_token",
            raw.decide_token,
            raw.decide_token_env,
            TokenSource::None,
        )?;
        let log = raw.decision_log;
        let sink = match log.sink.as_deref() {
            None | Some("stdout") => LogSink::Stdout,
            Some("") => {
                return Err(invalid(
                    "server.decision_log.sink",
                    "expected `stdout` or a file path",
                ));
            }
            Some(path) => LogSink::File(base.join(path)),
        };
        let redaction = match log.redact_arguments {
            None | Some(RawRedaction::All(true)) => Redaction::All,
            Some(RawRedaction::All(false)) => Redaction::None,
            Some(RawRedaction::Pointers(pointers)) => {
                for (i, p) in pointers.iter().enumerate() {
                    if !p.starts_with('/') {
                        return Err(invalid(
                            format!("server.decision_log.redact_arguments[{i}]"),
                            format!("`{p}` is not a JSON pointer (expected `/key/…`)"),
                        ));
                    }
                }
                Redaction::Pointers(pointers)
            }
        };
        let buffer = match log.buffer {
            None => DEFAULT_LOG_BUFFER,
            Some(n) if n == 0 || n > MAX_LOG_BUFFER => {
                return Err(invalid(
                    "server.decision_log.buffer",
                    format!("{n}, expected 1 to {MAX_LOG_BUFFER}"),
                ));
            }
            Some(n) => n,
        };
        Ok(Self {
            listen,
            max_body_bytes,
            header_read_timeout,
            body_read_timeout,
            max_connections,
            admin_token,
            decide_token,
            decision_log: DecisionLogConfig {
                sink,
                redaction,
                strict: log.strict.unwrap_or(false),
                buffer,
            },
            approvals: crate::config::ApprovalsConfig::default(),
        })
    }
}
