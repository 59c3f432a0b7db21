//! One request's identity, from what it presented and what it asserts.
//!
//! The rules, in order:
//!
//! 1. A presented credential that does not verify refuses the request, even if another
//!    one does: a bad credential is never silently ignored.
//! 2. An X.509-SVID and a JWT-SVID that name different SPIFFE IDs refuse it.
//! 3. A verified identity is the agent. An agent id the request asserts (the action's
//!    `agent.id`, the gateway's agent header) must equal it, or the request is refused
//!    with a reason naming both.
//! 4. With nothing verified, `require_verified` refuses; otherwise the asserted id
//!    passes with attestation `none`, and the decision says so.

use super::peer::PeerCertificate;
use super::verifier::IdentityVerifier;
use super::{Attestation, IdentityError};

/// What a request presented.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    /// The connection's TLS client certificate, with its verdict.
    pub peer: Option<&'a PeerCertificate>,
    /// The bearer token of the `Authorization` header.
    pub bearer: Option<&'a str>,
}

/// Where a resolved identity came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// The TLS client certificate (an X.509-SVID).
    Mtls,
    /// The `Authorization: Bearer` token (a JWT-SVID).
    Bearer,
    /// Asserted, not verified: `body` (the action's `agent.id`), `header:NAME`, `config`.
    Asserted(String),
}

impl IdentitySource {
    /// As the decision records it: `mtls`, `bearer`, `asserted:body`, `asserted:header:x-arbiter-agent`.
    pub fn label(&self) -> String {
        match self {
            IdentitySource::Mtls => "mtls".to_owned(),
            IdentitySource::Bearer => "bearer".to_owned(),
            IdentitySource::Asserted(by) => format!("asserted:{by}"),
        }
    }
}

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedIdentity {
    /// The agent id: the SPIFFE ID when verified.
    pub id: String,
    /// How it was proven.
    pub attestation: Attestation,
    /// The trust domain, when verified.
    pub trust_domain: Option<String>,
    /// Where it came from.
    pub source: IdentitySource,
}

impl ResolvedIdentity {
    /// Whether a verifier proved it.
    pub fn is_verified(&self) -> bool {
        self.attestation != Attestation::None
    }

    /// As a decision records it.
    pub fn record(&self) -> crate::model::IdentityRecord {
        crate::model::IdentityRecord {
            id: self.id.clone(),
            attestation: self.attestation.as_str().to_owned(),
            source: self.source.label(),
            trust_domain: self.trust_domain.clone(),
        }
    }
}

/// Why a request was refused before any decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityRefusal {
    /// A presented credential did not verify.
    #[error("identity refused: {0}")]
    Invalid(#[from] IdentityError),
    /// Verification is required and nothing verified.
    #[error(
        "identity refused: no verified identity, and `identity.require_verified` is set: present an X.509-SVID as the TLS client certificate or a JWT-SVID as `Authorization: Bearer`"
    )]
    Unverified,
    /// The two credentials name different agents.
    #[error("identity refused: the client certificate is `{x509}` but the bearer token is `{jwt}`")]
    Credentials {
        /// The X.509-SVID's SPIFFE ID.
        x509: String,
        /// The JWT-SVID's SPIFFE ID.
        jwt: String,
    },
    /// The request asserts another agent than the verified one.
    #[error(
        "identity refused: the request asserts agent `{asserted}` ({by}) but the verified identity is `{verified}`"
    )]
    Conflict {
        /// What the request asserts.
        asserted: String,
        /// Where it asserts it.
        by: String,
        /// The verified SPIFFE ID.
        verified: String,
    },
    /// Nothing verified and nothing asserted.
    #[error("identity refused: the request names no agent")]
    Anonymous,
}

impl IdentityRefusal {
    /// One word for metrics: `invalid`, `unverified`, `credentials`, `conflict`, `anonymous`.
    pub fn kind(&self) -> &'static str {
        match self {
            IdentityRefusal::Invalid(_) => "invalid",
            IdentityRefusal::Unverified => "unverified",
            IdentityRefusal::Credentials { .. } => "credentials",
            IdentityRefusal::Conflict { .. } => "conflict",
            IdentityRefusal::Anonymous => "anonymous",
        }
    }
}

/// Resolves a request's identity; `asserted` is the agent id the request names and
/// where (`body`, `header:x-arbiter-agent`, `config`). Without a verifier (no
/// `[identity]` table) nothing can be verified and the asserted id passes.
pub fn resolve(
    verifier: Option<&IdentityVerifier>,
    evidence: Evidence<'_>,
    asserted: Option<(&str, &str)>,
) -> Result<ResolvedIdentity, IdentityRefusal> {
    let Some(verifier) = verifier else {
        return match asserted {
            Some((id, by)) => Ok(ResolvedIdentity {
                id: id.to_owned(),
                attestation: Attestation::None,
                trust_domain: None,
                source: IdentitySource::Asserted(by.to_owned()),
            }),
            None => Err(IdentityRefusal::Anonymous),
        };
    };
    let x509 = match evidence.peer.map(|peer| peer.current(verifier)) {
        None => None,
        Some(Err(e)) => return Err(IdentityRefusal::Invalid(e)),
        Some(Ok(identity)) => Some(identity),
    };
    let jwt = match evidence.bearer {
        Some(token) if verifier.accepts_jwt() => Some(verifier.verify_jwt(token)?),
        _ => None,
    };
    let verified = match (x509, jwt) {
        (Some(x), Some(j)) if x.spiffe_id != j.spiffe_id => {
            return Err(IdentityRefusal::Credentials {
                x509: x.spiffe_id,
                jwt: j.spiffe_id,
            });
        }
        (_, Some(j)) => Some((j, IdentitySource::Bearer)),
        (Some(x), None) => Some((x, IdentitySource::Mtls)),
        (None, None) => None,
    };
    match (verified, asserted) {
        (Some((identity, _)), Some((asserted, by))) if asserted != identity.spiffe_id => {
            Err(IdentityRefusal::Conflict {
                asserted: asserted.to_owned(),
                by: by.to_owned(),
                verified: identity.spiffe_id,
            })
        }
        (Some((identity, source)), _) => Ok(ResolvedIdentity {
            id: identity.spiffe_id,
            attestation: identity.attestation,
            trust_domain: Some(identity.trust_domain),
            source,
        }),
        (None, _) if verifier.require_verified() => Err(IdentityRefusal::Unverified),
        (None, Some((asserted, by))) => Ok(ResolvedIdentity {
            id: asserted.to_owned(),
            attestation: Attestation::None,
            trust_domain: None,
            source: IdentitySource::Asserted(by.to_owned()),
        }),
        (None, None) => Err(IdentityRefusal::Anonymous),
    }
}
