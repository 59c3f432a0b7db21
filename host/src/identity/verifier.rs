//! The verifier one process shares: the configured rules plus the current bundles,
//! which a reload replaces whole.

use super::bundle::{BundleError, TrustBundles};
use super::config::IdentityConfig;
use super::jwt::verify_jwt_svid;
use super::x509::verify_x509_svid;
use super::{IdentityError, VerifiedIdentity};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Verifies X.509-SVIDs and JWT-SVIDs against the configured trust bundles.
#[derive(Debug)]
pub struct IdentityVerifier {
    config: IdentityConfig,
    provider: Arc<CryptoProvider>,
    bundles: RwLock<Arc<TrustBundles>>,
}

impl IdentityVerifier {
    /// Reads the bundles `config` names; fails if any cannot be used.
    pub fn from_config(config: IdentityConfig) -> Result<Self, BundleError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let bundles = TrustBundles::load(&config.trust_domains, &provider)?;
        Ok(Self {
            config,
            provider,
            bundles: RwLock::new(Arc::new(bundles)),
        })
    }

    /// A verifier over bundles the embedder obtained itself.
    pub fn with_bundles(config: IdentityConfig, bundles: TrustBundles) -> Self {
        Self {
            config,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            bundles: RwLock::new(Arc::new(bundles)),
        }
    }

    /// The rules it applies.
    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// The cryptographic provider its TLS and chain checks use.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// Whether a request must carry a verified identity.
    pub fn require_verified(&self) -> bool {
        self.config.require_verified
    }

    /// The current bundles.
    pub fn bundles(&self) -> Arc<TrustBundles> {
        Arc::clone(&self.bundles.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Re-reads every bundle file; on success the new bundles verify from now on, on
    /// failure the previous ones keep verifying.
    pub fn reload(&self) -> Result<(), BundleError> {
        let bundles = TrustBundles::load(&self.config.trust_domains, &self.provider)?;
        *self.bundles.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(bundles);
        Ok(())
    }

    /// The files a reload reads.
    pub fn bundle_files(&self) -> Vec<PathBuf> {
        self.config.bundle_files()
    }

    /// Whether JWT-SVIDs can be verified (some trust domain has a JWKS).
    pub fn accepts_jwt(&self) -> bool {
        self.config
            .trust_domains
            .iter()
            .any(|d| d.jwt_bundle.is_some())
    }

    /// Verifies a TLS client's certificate chain now.
    pub fn verify_x509(
        &self,
        chain: &[CertificateDer<'_>],
    ) -> Result<VerifiedIdentity, IdentityError> {
        verify_x509_svid(&self.bundles(), chain, UnixTime::now())
    }

    /// Verifies a bearer token now.
    pub fn verify_jwt(&self, token: &str) -> Result<VerifiedIdentity, IdentityError> {
        let Some(audience) = self.config.audience.as_deref() else {
            return Err(IdentityError::NotConfigured("jwt-svid"));
        };
        verify_jwt_svid(&self.bundles(), token, audience, unix_now())
    }
}

/// Seconds since the epoch. A clock set before the epoch reads as the end of time, so
/// that every credential counts as expired: fail closed rather than trust forever.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(u64::MAX)
}
