//! A TLS client's certificate for the life of its connection.
//!
//! The chain is verified when the connection opens, so that a refusal can be logged at
//! once; but a connection can outlive the bundle it was verified against. An operator who
//! removes a CA from a bundle means "stop trusting it now", not "for new connections", so
//! every request checks that its connection's verdict was reached against the bundles in
//! use and verifies the chain again when they have been replaced since. Until a reload
//! that is one pointer comparison per request.

use super::bundle::TrustBundles;
use super::verifier::{IdentityVerifier, unix_now};
use super::x509::verify_x509_svid;
use super::{IdentityError, VerifiedIdentity};
use rustls::pki_types::{CertificateDer, UnixTime};
use std::sync::{Arc, Mutex};

/// A client certificate chain and its verdict against a set of bundles.
#[derive(Debug)]
pub struct PeerCertificate {
    chain: Vec<CertificateDer<'static>>,
    checked: Mutex<Checked>,
}

#[derive(Debug)]
struct Checked {
    /// The bundles the verdict was reached against.
    against: Arc<TrustBundles>,
    verdict: Result<VerifiedIdentity, IdentityError>,
}

impl PeerCertificate {
    /// Verifies `chain` (leaf first) against `verifier`'s current bundles.
    pub fn verify(verifier: &IdentityVerifier, chain: Vec<CertificateDer<'static>>) -> Self {
        let against = verifier.bundles();
        let verdict = verify_x509_svid(&against, &chain, UnixTime::now());
        Self {
            chain,
            checked: Mutex::new(Checked { against, verdict }),
        }
    }

    /// The verdict as it stands, without checking it against newer bundles (for the log
    /// line of a connection's opening).
    pub fn first_verdict(&self) -> Result<VerifiedIdentity, IdentityError> {
        self.lock().verdict.clone()
    }

    /// The verdict for a request now: re-verified if `verifier`'s bundles were replaced
    /// since it was reached, and refused if the certificate has expired meanwhile.
    pub fn current(&self, verifier: &IdentityVerifier) -> Result<VerifiedIdentity, IdentityError> {
        let bundles = verifier.bundles();
        let mut checked = self.lock();
        if !Arc::ptr_eq(&checked.against, &bundles) {
            checked.verdict = verify_x509_svid(&bundles, &self.chain, UnixTime::now());
            checked.against = bundles;
            if let Err(e) = &checked.verdict {
                tracing::info!(error = %e, "client certificate of an open connection refused after a bundle reload");
            }
        }
        match &checked.verdict {
            Ok(identity) if unix_now() >= identity.expires_at => {
                Err(IdentityError::ExpiredOnConnection {
                    spiffe_id: identity.spiffe_id.clone(),
                    expires_at: identity.expires_at,
                })
            }
            verdict => verdict.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Checked> {
        // The state is a verdict and the bundles it was reached against, replaced whole:
        // a panic elsewhere cannot leave it half-written.
        self.checked.lock().unwrap_or_else(|p| p.into_inner())
    }
}
