//! TLS on the listeners, for X.509-SVIDs: the listener's own certificate, a client
//! certificate asked of every client, and the client's SVID verified when the connection
//! opens (see [`crate::identity::x509`] for why after the handshake rather than inside
//! it) and again after a bundle reload ([`PeerCertificate`]).

use crate::identity::x509::PresentedCertificate;
use crate::identity::{IdentityVerifier, PeerCertificate, TlsFiles};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// The X.509-SVID of a request's connection and its verdict, as a request extension;
/// absent when the client sent no certificate or the listener has no TLS.
#[derive(Debug, Clone)]
pub struct PeerSvid(pub Arc<PeerCertificate>);

/// What a TLS listener needs.
#[derive(Clone)]
pub struct TlsListener {
    /// Terminates TLS.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Verifies each client's certificate chain against the current bundles.
    pub verifier: Arc<IdentityVerifier>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener").finish_non_exhaustive()
    }
}

/// The listener's certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file does not hold a usable PEM certificate chain or key.
    #[error("`identity.tls.{key}` `{path}`: {problem}")]
    File {
        /// `certificate` or `private_key`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// rustls refused the certificate and key together.
    #[error("`identity.tls`: {0}")]
    Config(String),
}

impl TlsListener {
    /// A listener presenting `files`, asking clients for certificates that `verifier`
    /// then checks.
    pub fn new(files: &TlsFiles, verifier: Arc<IdentityVerifier>) -> Result<Self, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.certificate)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| TlsError::File {
                key: "certificate",
                path: files.certificate.clone(),
                problem: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::File {
                key: "certificate",
                path: files.certificate.clone(),
                problem: "no PEM `CERTIFICATE` block".to_owned(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(&files.private_key).map_err(|e| TlsError::File {
            key: "private_key",
            path: files.private_key.clone(),
            problem: e.to_string(),
        })?;
        let provider = Arc::clone(verifier.provider());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_client_cert_verifier(Arc::new(PresentedCertificate::new(provider)))
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        // The listeners speak HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            verifier,
        })
    }

    /// The client certificate of an accepted connection, verified now.
    pub fn peer_svid(&self, chain: Option<&[CertificateDer<'static>]>) -> Option<PeerSvid> {
        let peer = PeerCertificate::verify(&self.verifier, chain?.to_vec());
        if let Err(e) = peer.first_verdict() {
            tracing::info!(error = %e, "client certificate refused");
        }
        Some(PeerSvid(Arc::new(peer)))
    }
}
