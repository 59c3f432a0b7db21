//! Why a presented identity was not accepted. Each message names the credential, what
//! was wrong with it, and the offending value in backticks, so an operator can tell an
//! expired token from a wrong audience from an unknown signing key.

/// A credential that did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The TLS client presented no certificate.
    #[error("x509-svid: no client certificate")]
    NoCertificate,
    /// The certificate does not parse as X.509.
    #[error("x509-svid: the certificate does not parse: {0}")]
    Unparseable(String),
    /// The leaf carries no usable SPIFFE ID (none, several URI SANs, not a SPIFFE ID).
    #[error("x509-svid: {0}")]
    SpiffeId(String),
    /// The leaf breaks a rule of the SPIFFE X.509-SVID profile.
    #[error("x509-svid: the leaf certificate {0}")]
    LeafRule(&'static str),
    /// No bundle is configured for the trust domain the credential names.
    #[error(
        "{kind}: trust domain `{trust_domain}` is not trusted (no {bundle} bundle configured for it)"
    )]
    UnknownTrustDomain {
        /// `x509-svid` or `jwt-svid`.
        kind: &'static str,
        /// The trust domain named.
        trust_domain: String,
        /// `x509` or `jwt`.
        bundle: &'static str,
    },
    /// The certificate chain does not lead to a root of its trust domain's bundle, or has
    /// expired.
    #[error(
        "x509-svid: the certificate of `{spiffe_id}` does not verify against the bundle of `{trust_domain}`: {cause}"
    )]
    Chain {
        /// The SPIFFE ID the leaf claims.
        spiffe_id: String,
        /// Its trust domain.
        trust_domain: String,
        /// What the chain verification said.
        cause: String,
    },
    /// The client certificate expired while its connection stayed open.
    #[error(
        "x509-svid: the certificate of `{spiffe_id}` expired at {expires_at} (Unix seconds) while its connection was open; reconnect with a current SVID"
    )]
    ExpiredOnConnection {
        /// Its SPIFFE ID.
        spiffe_id: String,
        /// Its `notAfter`.
        expires_at: u64,
    },
    /// The token is not a well-formed JWT, or its header or claims are missing a part.
    #[error("jwt-svid: {0}")]
    Malformed(String),
    /// The token's algorithm is not one of the asymmetric ones accepted.
    #[error(
        "jwt-svid: algorithm `{0}` is not accepted (expected one of ES256, ES384, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA)"
    )]
    Algorithm(String),
    /// The token's `kid` is in no key of its trust domain's JWKS.
    #[error("jwt-svid: key id `{kid}` is not in the bundle of `{trust_domain}`")]
    UnknownKey {
        /// The token's `kid`.
        kid: String,
        /// The trust domain its `sub` names.
        trust_domain: String,
    },
    /// The bundle's key with the token's `kid` cannot verify the token's algorithm.
    #[error("jwt-svid: key `{kid}` of `{trust_domain}` cannot verify `{alg}`: {cause}")]
    KeyMismatch {
        /// The key id.
        kid: String,
        /// Its trust domain.
        trust_domain: String,
        /// The token's algorithm.
        alg: String,
        /// Why not.
        cause: String,
    },
    /// The signature does not verify.
    #[error("jwt-svid: the signature does not verify with key `{kid}` of `{trust_domain}`")]
    Signature {
        /// The key id.
        kid: String,
        /// Its trust domain.
        trust_domain: String,
    },
    /// The token has expired (`exp` at or before now).
    #[error("jwt-svid: the token expired at {exp} (Unix seconds; now {now})")]
    Expired {
        /// Its `exp`.
        exp: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// The token is not valid yet (`nbf` after now).
    #[error("jwt-svid: the token is not valid before {nbf} (Unix seconds; now {now})")]
    NotYetValid {
        /// Its `nbf`.
        nbf: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// The token's audience does not contain Arbiter's.
    #[error("jwt-svid: audience {presented} does not contain `{expected}`")]
    Audience {
        /// The configured audience.
        expected: String,
        /// The token's `aud`, as a JSON list.
        presented: String,
    },
    /// Verification is not configured for this kind of credential.
    #[error("{0}: no trust bundle of this kind is configured")]
    NotConfigured(&'static str),
}
