//! JWT-SVIDs: the SPIFFE ID a bearer token proves.
//!
//! Signature checking is `jsonwebtoken`'s (RustCrypto backend). What this module adds is
//! the JWT-SVID profile, checked before any key is touched so that each failure has its
//! own message:
//!
//! - the header's `alg` is one of the asymmetric algorithms (ES256, ES384, RS256, RS384,
//!   RS512, PS256, PS384, PS512, EdDSA). `none` and the HMAC family are refused by name:
//!   an HMAC "verified" with a public key as its secret is the classic confusion attack,
//!   and the algorithm is pinned for the signature check as well;
//! - the header has a `kid`, and the key is looked up by it in the JWKS of the trust
//!   domain that the `sub` (a SPIFFE ID) names, never in another domain's;
//! - a key whose JWK declares an `alg` verifies only that algorithm;
//! - `exp` is required and must be in the future; a present `nbf` must be in the past
//!   (no leeway: SVIDs are short-lived and rotated, and a verifier that tolerates skew
//!   tolerates replay of what just expired);
//! - `aud` (a string or a list) must contain Arbiter's configured audience.

use super::bundle::TrustBundles;
use super::{Attestation, IdentityError, VerifiedIdentity};
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The accepted algorithms, as they appear in a JOSE header.
const ACCEPTED: &[(&str, Algorithm)] = &[
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("EdDSA", Algorithm::EdDSA),
];

/// Longest token considered: SVIDs are a few hundred bytes; a megabyte header is an
/// attack on the parser, not an identity.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<u64>,
    nbf: Option<u64>,
}

/// Verifies `token` as a JWT-SVID of one of the trust domains in `bundles`, issued for
/// `audience`, at `now` (Unix seconds).
pub fn verify_jwt_svid(
    bundles: &TrustBundles,
    token: &str,
    audience: &str,
    now: u64,
) -> Result<VerifiedIdentity, IdentityError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(IdentityError::Malformed(format!(
            "the token is {} bytes, more than the {MAX_TOKEN_BYTES} accepted",
            token.len()
        )));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdentityError::Malformed(
            "expected a compact JWS (`header.claims.signature`)".to_owned(),
        ));
    };
    let header: Header = decode_part(header, "header")?;
    let claims: Claims = decode_part(claims, "claims")?;
    let alg_name = header
        .alg
        .ok_or_else(|| IdentityError::Malformed("the header has no `alg`".to_owned()))?;
    let alg = ACCEPTED
        .iter()
        .find(|(name, _)| *name == alg_name)
        .map(|(_, alg)| *alg)
        .ok_or_else(|| IdentityError::Algorithm(alg_name.clone()))?;
    let kid = header
        .kid
        .filter(|k| !k.is_empty())
        .ok_or_else(|| IdentityError::Malformed("the header has no `kid`".to_owned()))?;
    let sub = claims
        .sub
        .ok_or_else(|| IdentityError::Malformed("the claims have no `sub`".to_owned()))?;
    let spiffe_id = spiffe::SpiffeId::new(&sub)
        .map_err(|e| IdentityError::Malformed(format!("`sub` `{sub}` is not a SPIFFE ID: {e}")))?;
    let exp = claims.exp.ok_or_else(|| {
        IdentityError::Malformed("the claims have no `exp`: a JWT-SVID must expire".to_owned())
    })?;
    let presented = match claims.aud {
        None => {
            return Err(IdentityError::Malformed(
                "the claims have no `aud`".to_owned(),
            ));
        }
        Some(Audience::One(a)) => vec![a],
        Some(Audience::Many(list)) => list,
    };
    let trust_domain = spiffe_id.trust_domain_name().to_owned();
    let keys = bundles
        .get(&trust_domain)
        .and_then(|b| b.jwt_keys.as_ref())
        .ok_or_else(|| IdentityError::UnknownTrustDomain {
            kind: "jwt-svid",
            trust_domain: trust_domain.clone(),
            bundle: "jwt",
        })?;
    let jwk = keys.find(&kid).ok_or_else(|| IdentityError::UnknownKey {
        kid: kid.clone(),
        trust_domain: trust_domain.clone(),
    })?;
    let mismatch = |cause: String| IdentityError::KeyMismatch {
        kid: kid.clone(),
        trust_domain: trust_domain.clone(),
        alg: alg_name.clone(),
        cause,
    };
    if let Some(declared) = jwk.common.key_algorithm
        && format!("{declared:?}") != alg_name
    {
        return Err(mismatch(format!("the key is for `{declared:?}`")));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| mismatch(e.to_string()))?;
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.leeway = 0;
    // Times are checked below against the caller's clock, with their own messages.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    validation.set_audience(&[audience]);
    if let Err(e) = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation) {
        return Err(match e.kind() {
            ErrorKind::InvalidSignature => IdentityError::Signature {
                kid: kid.clone(),
                trust_domain: trust_domain.clone(),
            },
            ErrorKind::InvalidAudience => IdentityError::Audience {
                expected: audience.to_owned(),
                presented: serde_json::to_string(&presented).unwrap_or_default(),
            },
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_) => mismatch(e.to_string()),
            _ => IdentityError::Malformed(e.to_string()),
        });
    }
    if !presented.iter().any(|a| a == audience) {
        // jsonwebtoken checked this already; kept so the rule does not depend on it.
        return Err(IdentityError::Audience {
            expected: audience.to_owned(),
            presented: serde_json::to_string(&presented).unwrap_or_default(),
        });
    }
    if now >= exp {
        return Err(IdentityError::Expired { exp, now });
    }
    if let Some(nbf) = claims.nbf
        && now < nbf
    {
        return Err(IdentityError::NotYetValid { nbf, now });
    }
    Ok(VerifiedIdentity {
        spiffe_id: spiffe_id.to_string(),
        trust_domain,
        attestation: Attestation::JwtSvid,
        expires_at: exp,
    })
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str, what: &str) -> Result<T, IdentityError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| IdentityError::Malformed(format!("the {what} is not base64url: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| IdentityError::Malformed(format!("the {what} is not the expected JSON: {e}")))
}
