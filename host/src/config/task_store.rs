//! `[task_store]`: where task state lives. In memory (the default: one process, nothing
//! to run) or in Redis, shared by every replica that names the same Redis.
//!
//! ```toml
//! [task_store]
//! kind = "redis"                          # "memory" (default) or "redis"
//! url = "rediss://redis.internal:6380/0"  # redis:// (plain) or rediss:// (TLS)
//! username = "arbiter"                    # ACL user (or in the URL)
//! password_env = "ARBITER_REDIS_PASSWORD" # the password, from the environment
//! ca_file = "redis-ca.pem"                # with rediss://: trust this CA, not the system's
//! client_cert_file = "arbiter.pem"        # with rediss://: a client certificate (mTLS)
//! client_key_file = "arbiter-key.pem"
//! key_prefix = "arbiter"                  # every key starts with it
//! grace_ms = 3600000                      # kept this long after a task's expiry
//! untimed_ttl_ms = 86400000               # a task without expiry: after its last action
//! lease_ms = 10000                        # longest one decision may hold its task
//! max_connections = 16                    # idle connections kept per replica
//! ```
//!
//! The deadline of each operation is `tasks.store_timeout_ms`, for either kind.

use super::{ConfigError, invalid};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[task_store]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTaskStore {
    /// `memory` or `redis`.
    pub kind: Option<String>,
    /// The Redis URL.
    pub url: Option<String>,
    /// The ACL user.
    pub username: Option<String>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// CA certificate (PEM) to trust for `rediss://`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for `rediss://`.
    pub client_cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub client_key_file: Option<PathBuf>,
    /// Prefix of every key.
    pub key_prefix: Option<String>,
    /// How long a task's keys outlive its expiry, in ms.
    pub grace_ms: Option<u64>,
    /// How long the keys of a task without expiry outlive its last action, in ms.
    pub untimed_ttl_ms: Option<u64>,
    /// The longest one decision may hold its task, in ms.
    pub lease_ms: Option<u64>,
    /// Idle connections kept.
    pub max_connections: Option<usize>,
}

/// Validated `[task_store]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TaskStoreConfig {
    /// In this process (the default).
    #[default]
    Memory,
    /// In Redis.
    Redis(Box<RedisStoreConfig>),
}

/// Where and how to reach Redis.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisStoreConfig {
    /// The URL (without a password written in it being shown anywhere).
    pub url: String,
    /// The ACL user, if set apart from the URL.
    pub username: Option<String>,
    /// The password, read from `password_env` when the config was read.
    pub password: Option<String>,
    /// CA certificate to trust (PEM file).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM files).
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// Prefix of every key.
    pub key_prefix: String,
    /// How long a task's keys outlive its expiry.
    pub grace: Duration,
    /// How long the keys of a task without expiry outlive its last action.
    pub untimed_ttl: Duration,
    /// The longest one decision may hold its task.
    pub lease: Duration,
    /// Idle connections kept.
    pub max_connections: usize,
}

impl std::fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("url", &self.shown_url())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "(set)"))
            .field("ca_file", &self.ca_file)
            .field("client_identity", &self.client_identity)
            .field("key_prefix", &self.key_prefix)
            .field("grace", &self.grace)
            .field("untimed_ttl", &self.untimed_ttl)
            .field("lease", &self.lease)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl RedisStoreConfig {
    /// The URL as it may be logged: scheme, host and port, no credentials.
    pub fn shown_url(&self) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("redis", &self.url));
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let host = rest.split(['/', '?']).next().unwrap_or(rest);
        format!("{scheme}://{host}")
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        self.url.starts_with("rediss://")
    }
}

/// Default time a task's keys outlive its expiry: an hour.
pub const DEFAULT_GRACE_MS: u64 = 3_600_000;
/// Default time the keys of a task without expiry outlive its last action: a day.
pub const DEFAULT_UNTIMED_TTL_MS: u64 = 86_400_000;
/// Default longest hold of a task by one decision.
pub const DEFAULT_LEASE_MS: u64 = 10_000;
/// Default idle connections kept.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// Checks `[task_store]`; every error names its key. Files are relative to `base`.
pub fn validate(raw: RawTaskStore, base: &Path) -> Result<TaskStoreConfig, ConfigError> {
    let kind = raw.kind.as_deref().unwrap_or("memory");
    match kind {
        "memory" => {
            let set = [
                ("url", raw.url.is_some()),
                ("username", raw.username.is_some()),
                ("password_env", raw.password_env.is_some()),
                ("ca_file", raw.ca_file.is_some()),
                ("client_cert_file", raw.client_cert_file.is_some()),
                ("client_key_file", raw.client_key_file.is_some()),
                ("key_prefix", raw.key_prefix.is_some()),
                ("grace_ms", raw.grace_ms.is_some()),
                ("untimed_ttl_ms", raw.untimed_ttl_ms.is_some()),
                ("lease_ms", raw.lease_ms.is_some()),
                ("max_connections", raw.max_connections.is_some()),
            ];
            if let Some((key, _)) = set.iter().find(|(_, set)| *set) {
                return Err(invalid(
                    format!("task_store.{key}"),
                    "set for the in-memory store, which has no such setting; expected `task_store.kind = \"redis\"`",
                ));
            }
            Ok(TaskStoreConfig::Memory)
        }
        "redis" => redis(raw, base).map(|c| TaskStoreConfig::Redis(Box::new(c))),
        other => Err(invalid(
            "task_store.kind",
            format!("`{other}`, expected `memory` or `redis`"),
        )),
    }
}

fn redis(raw: RawTaskStore, base: &Path) -> Result<RedisStoreConfig, ConfigError> {
    let Some(url) = raw.url else {
        return Err(invalid(
            "task_store.url",
            "missing, expected the Redis URL (`redis://host:6379/0`, or `rediss://` for TLS)",
        ));
    };
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(invalid(
            "task_store.url",
            "expected a `redis://` or `rediss://` URL (a Unix socket is not supported)",
        ));
    }
    let tls = url.starts_with("rediss://");
    for (key, set) in [
        ("ca_file", raw.ca_file.is_some()),
        ("client_cert_file", raw.client_cert_file.is_some()),
        ("client_key_file", raw.client_key_file.is_some()),
    ] {
        if set && !tls {
            return Err(invalid(
                format!("task_store.{key}"),
                "set with a plain `redis://` URL; expected `rediss://` (TLS) for certificates to apply",
            ));
        }
    }
    let client_identity = match (raw.client_cert_file, raw.client_key_file) {
        (Some(cert), Some(key)) => Some((base.join(cert), base.join(key))),
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                "task_store.client_key_file",
                "missing: `client_cert_file` needs its key",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "task_store.client_cert_file",
                "missing: `client_key_file` needs its certificate",
            ));
        }
    };
    let password = match raw.password_env {
        None => None,
        Some(var) => match std::env::var(&var) {
            Ok(password) if !password.is_empty() => Some(password),
            _ => {
                return Err(invalid(
                    "task_store.password_env",
                    format!("names `{var}`, which is not set (or empty) in the environment"),
                ));
            }
        },
    };
    let key_prefix = raw.key_prefix.unwrap_or_else(|| "arbiter".to_owned());
    if key_prefix.is_empty()
        || key_prefix.len() > 64
        || !key_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        return Err(invalid(
            "task_store.key_prefix",
            format!(
                "`{key_prefix}`, expected 1 to 64 of letters, digits, `-`, `_`, `.`, `:` (it must not open a hash tag)"
            ),
        ));
    }
    let ms = |key: &str, value: Option<u64>, default: u64, range: std::ops::RangeInclusive<u64>| {
        let value = value.unwrap_or(default);
        if range.contains(&value) {
            Ok(Duration::from_millis(value))
        } else {
            Err(invalid(
                format!("task_store.{key}"),
                format!("{value} ms, expected {} to {}", range.start(), range.end()),
            ))
        }
    };
    const WEEK_MS: u64 = 7 * 24 * 3_600_000;
    let grace = ms("grace_ms", raw.grace_ms, DEFAULT_GRACE_MS, 1_000..=WEEK_MS)?;
    let untimed_ttl = ms(
        "untimed_ttl_ms",
        raw.untimed_ttl_ms,
        DEFAULT_UNTIMED_TTL_MS,
        60_000..=4 * WEEK_MS,
    )?;
    let lease = ms("lease_ms", raw.lease_ms, DEFAULT_LEASE_MS, 100..=600_000)?;
    let max_connections = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if !(1..=1024).contains(&max_connections) {
        return Err(invalid(
            "task_store.max_connections",
            format!("{max_connections}, expected 1 to 1024"),
        ));
    }
    Ok(RedisStoreConfig {
        url,
        username: raw.username,
        password,
        ca_file: raw.ca_file.map(|f| base.join(f)),
        client_identity,
        key_prefix,
        grace,
        untimed_ttl,
        lease,
        max_connections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TaskStoreConfig, ConfigError> {
        let raw: RawTaskStore = toml::from_str(text).map_err(|e| invalid("toml", e.to_string()))?;
        validate(raw, Path::new("/etc/arbiter"))
    }

    fn key_of(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid { key, .. } => key,
            other => other.to_string(),
        }
    }

    #[test]
    fn memory_is_the_default_and_refuses_redis_settings() {
        assert_eq!(parse("").unwrap(), TaskStoreConfig::Memory);
        let e = parse("url = \"redis://127.0.0.1\"").unwrap_err();
        assert_eq!(key_of(e), "task_store.url");
    }

    #[test]
    fn redis_needs_a_url_and_names_the_key_at_fault() {
        assert_eq!(
            key_of(parse("kind = \"redis\"").unwrap_err()),
            "task_store.url"
        );
        assert_eq!(
            key_of(parse("kind = \"redis\"\nurl = \"http://x\"").unwrap_err()),
            "task_store.url"
        );
        assert_eq!(
            key_of(parse("kind = \"etcd\"").unwrap_err()),
            "task_store.kind"
        );
        assert_eq!(
            key_of(
                parse("kind = \"redis\"\nurl = \"redis://x\"\nca_file = \"ca.pem\"").unwrap_err()
            ),
            "task_store.ca_file"
        );
        assert_eq!(
            key_of(
                parse("kind = \"redis\"\nurl = \"redis://x\"\nkey_prefix = \"a{b\"").unwrap_err()
            ),
            "task_store.key_prefix"
        );
        assert_eq!(
            key_of(parse("kind = \"redis\"\nurl = \"redis://x\"\nlease_ms = 1").unwrap_err()),
            "task_store.lease_ms"
        );
        assert_eq!(
            key_of(
                parse("kind = \"redis\"\nurl = \"redis://x\"\npassword_env = \"ARBITER_TEST_UNSET_VAR\"")
                    .unwrap_err()
            ),
            "task_store.password_env"
        );
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let TaskStoreConfig::Redis(config) =
            parse("kind = \"redis\"\nurl = \"rediss://user:s3cret@redis.internal:6380/2\"")
                .unwrap()
        else {
            panic!("expected redis");
        };
        assert_eq!(config.shown_url(), "rediss://redis.internal:6380");
        assert!(!format!("{config:?}").contains("s3cret"));
        assert!(config.is_tls());
    }
}
