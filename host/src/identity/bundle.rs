//! Trust bundles: per trust domain, the X.509 roots that may issue its X.509-SVIDs and
//! the JWKS whose keys may sign its JWT-SVIDs, read from the files the operator names.
//!
//! A bundle set is loaded whole or not at all: a reload that finds one unreadable or
//! malformed file keeps the previous set serving ([`super::IdentityVerifier::reload`]),
//! the same rule as a policy set's.

use super::config::TrustDomainFiles;
use crate::files::{FileReadError, read_regular_file};
use jsonwebtoken::jwk::JwkSet;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest bundle file read (a bundle is a few certificates or keys).
pub const MAX_BUNDLE_BYTES: u64 = 1024 * 1024;

/// A bundle file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The file could not be read.
    #[error("trust bundle `{path}` of `{trust_domain}`: {cause}")]
    Read {
        /// The trust domain.
        trust_domain: String,
        /// The file.
        path: PathBuf,
        /// Why.
        cause: FileReadError,
    },
    /// The file does not hold what it should.
    #[error("trust bundle `{path}` of `{trust_domain}`: {problem}")]
    Invalid {
        /// The trust domain.
        trust_domain: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// The bundles of one trust domain.
#[derive(Debug, Clone)]
pub struct TrustDomainBundle {
    /// The chain verifier over the roots of its X.509-SVIDs, when configured: WebPKI
    /// path building against these roots only.
    pub x509_verifier: Option<Arc<dyn ClientCertVerifier>>,
    /// Keys of its JWT-SVIDs, when configured.
    pub jwt_keys: Option<JwkSet>,
}

impl TrustDomainBundle {
    /// A bundle from ready values: X.509 roots (verified with `provider`'s algorithms)
    /// and a JWKS, either optional.
    pub fn new(
        trust_domain: &str,
        x509_roots: Option<RootCertStore>,
        jwt_keys: Option<JwkSet>,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Self, BundleError> {
        let x509_verifier = match x509_roots {
            None => None,
            Some(roots) => Some(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
                    .build()
                    .map_err(|e| BundleError::Invalid {
                        trust_domain: trust_domain.to_owned(),
                        path: PathBuf::new(),
                        problem: format!("cannot verify with these roots: {e}"),
                    })?,
            ),
        };
        Ok(Self {
            x509_verifier,
            jwt_keys,
        })
    }
}

/// Every trusted domain's bundles, by trust domain name.
#[derive(Debug, Clone, Default)]
pub struct TrustBundles {
    domains: BTreeMap<String, TrustDomainBundle>,
}

impl TrustBundles {
    /// Reads every bundle file of `domains`.
    pub(crate) fn load(
        domains: &[TrustDomainFiles],
        provider: &Arc<CryptoProvider>,
    ) -> Result<Self, BundleError> {
        let mut loaded = BTreeMap::new();
        for domain in domains {
            let x509_roots = match &domain.x509_bundle {
                None => None,
                Some(path) => Some(read_roots(&domain.name, path)?),
            };
            let jwt_keys = match &domain.jwt_bundle {
                None => None,
                Some(path) => Some(read_jwks(&domain.name, path)?),
            };
            loaded.insert(
                domain.name.clone(),
                TrustDomainBundle::new(&domain.name, x509_roots, jwt_keys, provider)?,
            );
        }
        Ok(Self { domains: loaded })
    }

    /// Bundles from ready values, for embedders that get them elsewhere (a SPIRE agent's
    /// Workload API, a secret store).
    pub fn from_bundles(domains: impl IntoIterator<Item = (String, TrustDomainBundle)>) -> Self {
        Self {
            domains: domains.into_iter().collect(),
        }
    }

    /// The bundles of `trust_domain`.
    pub fn get(&self, trust_domain: &str) -> Option<&TrustDomainBundle> {
        self.domains.get(trust_domain)
    }

    /// Whether any domain has X.509 roots (then listeners with TLS ask for client
    /// certificates).
    pub fn has_x509(&self) -> bool {
        self.domains.values().any(|d| d.x509_verifier.is_some())
    }

    /// Whether any domain has a JWKS.
    pub fn has_jwt(&self) -> bool {
        self.domains.values().any(|d| d.jwt_keys.is_some())
    }
}

fn read(trust_domain: &str, path: &Path) -> Result<Vec<u8>, BundleError> {
    read_regular_file(path, MAX_BUNDLE_BYTES).map_err(|cause| BundleError::Read {
        trust_domain: trust_domain.to_owned(),
        path: path.to_owned(),
        cause,
    })
}

fn read_roots(trust_domain: &str, path: &Path) -> Result<RootCertStore, BundleError> {
    let invalid = |problem: String| BundleError::Invalid {
        trust_domain: trust_domain.to_owned(),
        path: path.to_owned(),
        problem,
    };
    let bytes = read(trust_domain, path)?;
    let mut roots = RootCertStore::empty();
    for (n, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let cert = cert.map_err(|e| invalid(format!("PEM certificate {}: {e}", n + 1)))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("certificate {} is not a usable root: {e}", n + 1)))?;
    }
    if roots.is_empty() {
        return Err(invalid(
            "expected one or more PEM `CERTIFICATE` blocks, found none".to_owned(),
        ));
    }
    Ok(roots)
}

fn read_jwks(trust_domain: &str, path: &Path) -> Result<JwkSet, BundleError> {
    let invalid = |problem: String| BundleError::Invalid {
        trust_domain: trust_domain.to_owned(),
        path: path.to_owned(),
        problem,
    };
    let bytes = read(trust_domain, path)?;
    let set: JwkSet = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("expected a JWKS (`{{\"keys\": [...]}}`): {e}")))?;
    if set.keys.is_empty() {
        return Err(invalid("the JWKS has no keys".to_owned()));
    }
    for (n, key) in set.keys.iter().enumerate() {
        // A key without an id could never be chosen: JWT-SVIDs must name theirs.
        if key.common.key_id.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(format!("key {} has no `kid`", n + 1)));
        }
    }
    Ok(set)
}
