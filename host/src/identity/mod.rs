//! Verified workload identity: who is acting, proven rather than asserted.
//!
//! An agent proves its SPIFFE ID one of two ways, both checked against trust bundles the
//! operator provides per trust domain (there is no SPIRE agent to ask; bundles are files,
//! hot-reloaded when they change):
//!
//! - **X.509-SVID over mTLS** ([`x509`]): the listener asks for a client certificate; the
//!   chain must lead to a root of the bundle of the trust domain the leaf's single URI
//!   SAN names, and the leaf must obey the SPIFFE X.509-SVID rules (not a CA, signs
//!   digitally, never certificates or CRLs).
//! - **JWT-SVID bearer tokens** ([`jwt`]): `kid` and `exp` are required, `aud` must
//!   contain Arbiter's audience, the key comes from the JWKS of the trust domain the
//!   `sub` names, and only asymmetric algorithms are accepted (ES256, ES384, RS256,
//!   RS384, RS512, PS256, PS384, PS512, EdDSA): `alg: none` and HMAC never verify.
//!
//! [`resolve`] then decides what one request's identity is: the verified SPIFFE ID wins
//! over whatever the request asserts, a request that asserts a different agent is
//! refused naming both, and when the operator requires verification a request with no
//! verified identity is refused. Every refusal happens before any decision is taken.
//!
//! Why bundles are chosen by the leaf's own trust domain rather than pooled: with one
//! pool of roots, a CA trusted for `a.example` could issue `spiffe://b.example/...` and be
//! believed. Here a certificate is checked only against the roots of the domain it
//! claims, so a wrong trust domain fails like an unknown CA.

mod bundle;
mod config;
mod error;
pub mod jwt;
mod peer;
mod resolve;
mod verifier;
pub mod x509;

pub use bundle::{BundleError, TrustBundles, TrustDomainBundle};
pub use config::{IdentityConfig, RawIdentity, RawTrustDomain, TlsFiles};
pub use error::IdentityError;
pub use peer::PeerCertificate;
pub use resolve::{Evidence, IdentityRefusal, IdentitySource, ResolvedIdentity, resolve};
pub use verifier::IdentityVerifier;

/// How an identity was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attestation {
    /// An X.509-SVID presented as the TLS client certificate.
    X509Svid,
    /// A JWT-SVID presented as a bearer token.
    JwtSvid,
    /// Not proven: the id is what the request (or the config) asserts.
    None,
}

impl Attestation {
    /// The word the action's `agent.attestation` carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Attestation::X509Svid => "x509-svid",
            Attestation::JwtSvid => "jwt-svid",
            Attestation::None => "none",
        }
    }
}

/// An identity a verifier proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// The SPIFFE ID, e.g. `spiffe://example.org/agent/billing`.
    pub spiffe_id: String,
    /// Its trust domain, e.g. `example.org`.
    pub trust_domain: String,
    /// How it was proven.
    pub attestation: Attestation,
    /// When the proof stops being valid, Unix seconds (the certificate's `notAfter`, the
    /// token's `exp`).
    pub expires_at: u64,
}
