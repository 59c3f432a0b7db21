//! The `[credentials]` table: the host key that signs per-call credentials, their issuer
//! and their lifetime.
//!
//! ```toml
//! [credentials]
//! signing_key = "keys/credentials.pem"      # Ed25519 or P-256 private key, PKCS#8 PEM
//! issuer = "spiffe://example.org/arbiter"   # the `iss` of every credential
//! ttl_ms = 60000                            # at most this long, and never past the task's expiry
//! ```

use crate::config::{Config, ConfigError};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default lifetime of a credential: one call's worth, with room for a slow tool.
pub const DEFAULT_TTL_MS: u64 = 60_000;
/// Longest lifetime a config may set: a per-call credential that lives for hours is a
/// standing credential again. (Defined with the revocations, which must outlive it.)
pub use crate::task::MAX_CREDENTIAL_TTL_MS as MAX_TTL_MS;

/// `[credentials]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredentials {
    /// The signing key file.
    pub signing_key: PathBuf,
    /// The `iss` claim.
    pub issuer: String,
    /// Lifetime, milliseconds.
    pub ttl_ms: Option<u64>,
}

/// `[credentials]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsConfig {
    /// The signing key file (resolved).
    pub signing_key: PathBuf,
    /// The `iss` claim.
    pub issuer: String,
    /// Lifetime.
    pub ttl: Duration,
}

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        problem: problem.into(),
    }
}

impl CredentialsConfig {
    /// Validates the `[credentials]` table of `config`; none: no credential is minted.
    pub fn from_config(config: &Config) -> Result<Option<Self>, ConfigError> {
        let Some(table) = &config.credentials else {
            return Ok(None);
        };
        let raw: RawCredentials = table.clone().try_into().map_err(|e: toml::de::Error| {
            invalid("credentials", e.message().trim_end().to_owned())
        })?;
        Self::from_raw(raw, &config.base_dir).map(Some)
    }

    /// Validates `[credentials]`; a relative key path resolves against `base`.
    pub fn from_raw(raw: RawCredentials, base: &Path) -> Result<Self, ConfigError> {
        if raw.issuer.trim().is_empty() {
            return Err(invalid("credentials.issuer", "empty issuer"));
        }
        let ttl_ms = raw.ttl_ms.unwrap_or(DEFAULT_TTL_MS);
        if ttl_ms == 0 || ttl_ms > MAX_TTL_MS {
            return Err(invalid(
                "credentials.ttl_ms",
                format!("{ttl_ms}, expected 1 to {MAX_TTL_MS}"),
            ));
        }
        Ok(Self {
            signing_key: base.join(raw.signing_key),
            issuer: raw.issuer,
            ttl: Duration::from_millis(ttl_ms),
        })
    }
}
