//! The `[identity]` table: which trust domains are trusted, with which bundle files,
//! whether a request must carry a verified identity, and the listener's own TLS
//! certificate. Read in two stages like the rest of the config ([`RawIdentity`] with
//! `deny_unknown_fields`, validated into [`IdentityConfig`]).
//!
//! ```toml
//! [identity]
//! require_verified = true                  # refuse requests without a verified identity
//! audience = "spiffe://example.org/arbiter" # a JWT-SVID's `aud` must contain it
//!
//! [identity.tls]                           # the listener speaks TLS and asks for client certificates
//! certificate = "tls/arbiter.pem"          # its certificate chain, PEM
//! private_key = "tls/arbiter.key"          # its key, PEM (PKCS#8, SEC1 or PKCS#1)
//!
//! [[identity.trust_domain]]
//! name = "example.org"
//! x509_bundle = "bundles/example.org.pem"  # CA certificates of its X.509-SVIDs, PEM
//! jwt_bundle = "bundles/example.org.jwks"  # keys of its JWT-SVIDs, a JWKS
//! ```
//!
//! Relative paths resolve against the config file's directory. Bundle files are
//! watched: a changed bundle is re-read and replaces the old one whole; a broken one is
//! refused and the last good bundles keep verifying.

use crate::config::{Config, ConfigError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[identity]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// Refuse requests that carry no verified identity.
    #[serde(default)]
    pub require_verified: bool,
    /// The audience a JWT-SVID must carry.
    pub audience: Option<String>,
    /// The listener's own certificate.
    pub tls: Option<RawTls>,
    /// The trusted domains.
    #[serde(default)]
    pub trust_domain: Vec<RawTrustDomain>,
}

/// `[identity.tls]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Certificate chain file, PEM.
    pub certificate: PathBuf,
    /// Private key file, PEM.
    pub private_key: PathBuf,
}

/// One `[[identity.trust_domain]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrustDomain {
    /// The trust domain name, e.g. `example.org`.
    pub name: String,
    /// Its X.509 bundle file.
    pub x509_bundle: Option<PathBuf>,
    /// Its JWT bundle file.
    pub jwt_bundle: Option<PathBuf>,
}

/// The listener's certificate files, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, PEM.
    pub certificate: PathBuf,
    /// Private key, PEM.
    pub private_key: PathBuf,
}

/// One trusted domain's bundle files, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustDomainFiles {
    /// The trust domain name.
    pub name: String,
    /// X.509 roots, PEM.
    pub x509_bundle: Option<PathBuf>,
    /// JWKS.
    pub jwt_bundle: Option<PathBuf>,
}

/// `[identity]`, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityConfig {
    /// Refuse requests that carry no verified identity.
    pub require_verified: bool,
    /// The audience a JWT-SVID must carry.
    pub audience: Option<String>,
    /// The listener's certificate; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// The trusted domains.
    pub trust_domains: Vec<TrustDomainFiles>,
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

impl IdentityConfig {
    /// Validates the `[identity]` table of `config` (none: nothing is verified and the
    /// asserted identity passes, as before identity existed).
    pub fn from_config(config: &Config) -> Result<Option<Self>, ConfigError> {
        let Some(table) = &config.identity else {
            return Ok(None);
        };
        let raw: RawIdentity = table
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| invalid("identity", e.message().trim_end().to_owned()))?;
        Self::from_raw(raw, &config.base_dir).map(Some)
    }

    /// Validates `[identity]`; relative paths resolve against `base`.
    pub fn from_raw(raw: RawIdentity, base: &Path) -> Result<Self, ConfigError> {
        let mut trust_domains: Vec<TrustDomainFiles> = Vec::new();
        for (n, domain) in raw.trust_domain.into_iter().enumerate() {
            let key = format!("identity.trust_domain[{n}]");
            let name = spiffe::TrustDomain::new(&domain.name)
                .map_err(|e| {
                    invalid(
                        format!("{key}.name"),
                        format!(
                            "`{}` is not a SPIFFE trust domain name like `example.org`: {e}",
                            domain.name
                        ),
                    )
                })?
                .to_string();
            if name != domain.name {
                return Err(invalid(
                    format!("{key}.name"),
                    format!(
                        "`{}`: expected the bare trust domain name `{name}`",
                        domain.name
                    ),
                ));
            }
            if trust_domains.iter().any(|d| d.name == name) {
                return Err(invalid(
                    format!("{key}.name"),
                    format!("trust domain `{name}` is configured twice"),
                ));
            }
            if domain.x509_bundle.is_none() && domain.jwt_bundle.is_none() {
                return Err(invalid(
                    key,
                    "expected `x509_bundle`, `jwt_bundle` or both".to_owned(),
                ));
            }
            trust_domains.push(TrustDomainFiles {
                name,
                x509_bundle: domain.x509_bundle.map(|p| base.join(p)),
                jwt_bundle: domain.jwt_bundle.map(|p| base.join(p)),
            });
        }
        let has_jwt = trust_domains.iter().any(|d| d.jwt_bundle.is_some());
        let has_x509 = trust_domains.iter().any(|d| d.x509_bundle.is_some());
        let audience = match raw.audience {
            Some(a) if a.trim().is_empty() => {
                return Err(invalid("identity.audience", "empty audience"));
            }
            Some(a) => Some(a),
            None if has_jwt => {
                return Err(invalid(
                    "identity.audience",
                    "required with a `jwt_bundle`: the audience a JWT-SVID must be issued for \
                     (e.g. `spiffe://example.org/arbiter`), so that a token meant for another \
                     service is not accepted here",
                ));
            }
            None => None,
        };
        let tls = raw.tls.map(|t| TlsFiles {
            certificate: base.join(t.certificate),
            private_key: base.join(t.private_key),
        });
        if has_x509 && tls.is_none() {
            return Err(invalid(
                "identity.tls",
                "required with an `x509_bundle`: X.509-SVIDs are presented as TLS client \
                 certificates, so the listener needs its own certificate and key",
            ));
        }
        if raw.require_verified && trust_domains.is_empty() {
            return Err(invalid(
                "identity.require_verified",
                "no `[[identity.trust_domain]]` is configured, so nothing could ever verify",
            ));
        }
        Ok(Self {
            require_verified: raw.require_verified,
            audience,
            tls,
            trust_domains,
        })
    }

    /// Every bundle file, for the watcher.
    pub fn bundle_files(&self) -> Vec<PathBuf> {
        self.trust_domains
            .iter()
            .flat_map(|d| d.x509_bundle.iter().chain(d.jwt_bundle.iter()))
            .cloned()
            .collect()
    }
}
