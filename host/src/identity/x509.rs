//! X.509-SVIDs: the SPIFFE ID a TLS client proved with its certificate.
//!
//! # Where the check happens, and why
//!
//! The TLS handshake only proves that the client holds the private key of the
//! certificate it sent ([`PresentedCertificate`] checks the handshake signature and
//! nothing else). Whether that certificate is an SVID Arbiter trusts is checked right
//! after the handshake, by [`verify_x509_svid`], and the result travels with every request
//! of the connection. Refusing inside the handshake would leave the client with a bare
//! TLS alert; refusing after it lets the answer say which rule failed (expired, wrong
//! trust domain, a CA certificate as the leaf, two URI SANs). Either way nothing is
//! decided for a certificate that did not verify: [`super::resolve`] refuses the request.
//!
//! # The checks
//!
//! - The leaf has exactly one URI SAN, a SPIFFE ID with a path (the `spiffe` crate's
//!   parser, so the ID grammar is the specification's).
//! - The leaf is not a CA (`basicConstraints`), and its `keyUsage` is present, has
//!   `digitalSignature` and has neither `keyCertSign` nor `cRLSign`.
//! - The chain verifies, with rustls' WebPKI verifier, against the roots of **the trust
//!   domain the leaf names** and no other, at the time given; an extended key usage, when
//!   present, must allow client authentication.

use super::bundle::TrustBundles;
use super::{Attestation, IdentityError, VerifiedIdentity};
use rustls::DigitallySignedStruct;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DistinguishedName, SignatureScheme};
use std::sync::Arc;
use x509_parser::extensions::ParsedExtension;

/// Verifies `chain` (leaf first, then intermediates) as an X.509-SVID of one of the
/// trust domains in `bundles`, at `now`.
pub fn verify_x509_svid(
    bundles: &TrustBundles,
    chain: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<VerifiedIdentity, IdentityError> {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(IdentityError::NoCertificate);
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| IdentityError::Unparseable(e.to_string()))?;
    let spiffe_id = spiffe::cert::spiffe_id_from_der(leaf.as_ref())
        .map_err(|e| IdentityError::SpiffeId(e.to_string()))?;
    if spiffe_id.path().is_empty() {
        return Err(IdentityError::SpiffeId(format!(
            "the leaf's SPIFFE ID `{spiffe_id}` has no path: a workload's SVID names a workload, not only its trust domain"
        )));
    }
    check_leaf_rules(&parsed)?;
    let trust_domain = spiffe_id.trust_domain_name().to_owned();
    let verifier = bundles
        .get(&trust_domain)
        .and_then(|b| b.x509_verifier.as_ref())
        .ok_or_else(|| IdentityError::UnknownTrustDomain {
            kind: "x509-svid",
            trust_domain: trust_domain.clone(),
            bundle: "x509",
        })?;
    verifier
        .verify_client_cert(leaf, intermediates, now)
        .map_err(|e| IdentityError::Chain {
            spiffe_id: spiffe_id.to_string(),
            trust_domain: trust_domain.clone(),
            cause: e.to_string(),
        })?;
    let expires_at = u64::try_from(parsed.validity().not_after.timestamp()).unwrap_or(0);
    Ok(VerifiedIdentity {
        spiffe_id: spiffe_id.to_string(),
        trust_domain,
        attestation: Attestation::X509Svid,
        expires_at,
    })
}

/// The SPIFFE X.509-SVID rules for a leaf (section 4 of the X.509-SVID specification).
fn check_leaf_rules(
    leaf: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<(), IdentityError> {
    let mut key_usage = None;
    for extension in leaf.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::BasicConstraints(b) if b.ca => {
                return Err(IdentityError::LeafRule(
                    "is a CA certificate (`basicConstraints` has `cA` set)",
                ));
            }
            ParsedExtension::KeyUsage(k) => key_usage = Some(*k),
            ParsedExtension::UnsupportedExtension { .. } | ParsedExtension::ParseError { .. }
                if extension.critical =>
            {
                return Err(IdentityError::LeafRule(
                    "has a critical extension that cannot be read",
                ));
            }
            _ => {}
        }
    }
    let Some(usage) = key_usage else {
        return Err(IdentityError::LeafRule("has no `keyUsage` extension"));
    };
    if !usage.digital_signature() {
        return Err(IdentityError::LeafRule(
            "lacks `digitalSignature` in `keyUsage`",
        ));
    }
    if usage.key_cert_sign() {
        return Err(IdentityError::LeafRule("has `keyCertSign` in `keyUsage`"));
    }
    if usage.crl_sign() {
        return Err(IdentityError::LeafRule("has `cRLSign` in `keyUsage`"));
    }
    Ok(())
}

/// The TLS client-certificate verifier of Arbiter's listeners: asks every client for a
/// certificate (optional, so that JWT-SVID and unverified clients still connect) and
/// checks only the handshake signature, proof that the client holds the certificate's
/// key. Whether the certificate is a trusted SVID is [`verify_x509_svid`]'s job, after
/// the handshake; see the module documentation for why.
#[derive(Debug)]
pub struct PresentedCertificate {
    provider: Arc<CryptoProvider>,
}

impl PresentedCertificate {
    /// A verifier checking handshake signatures with `provider`'s algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self { provider }
    }
}

impl ClientCertVerifier for PresentedCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Deliberately no trust decision here: see the type's documentation.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
