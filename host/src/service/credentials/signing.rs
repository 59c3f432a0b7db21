//! The host key that signs credentials, and the JWKS a tool server verifies them with.

use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;

/// The signing key could not be used.
#[derive(Debug, thiserror::Error)]
#[error("`credentials.signing_key` `{path}`: {problem}")]
pub struct SigningKeyError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// A loaded signing key.
pub struct CredentialKey {
    pub(super) algorithm: Algorithm,
    pub(super) key: EncodingKey,
    pub(super) kid: String,
    jwks: JwkSet,
}

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl CredentialKey {
    /// Reads a PKCS#8 PEM private key: Ed25519 (EdDSA) or P-256 (ES256).
    pub fn from_pem_file(path: &Path) -> Result<Self, SigningKeyError> {
        let fail = |problem: String| SigningKeyError {
            path: path.display().to_string(),
            problem,
        };
        let der = match PrivateKeyDer::from_pem_file(path).map_err(|e| fail(e.to_string()))? {
            PrivateKeyDer::Pkcs8(der) => der.secret_pkcs8_der().to_vec(),
            _ => {
                return Err(fail(
                    "expected a PKCS#8 `PRIVATE KEY` (convert with `openssl pkcs8 -topk8 -nocrypt`)"
                        .to_owned(),
                ));
            }
        };
        Self::from_pkcs8_der(&der).map_err(fail)
    }

    /// From PKCS#8 DER bytes.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, String> {
        use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, KeypairBytes};
        let (algorithm, key) = if let Ok(ed) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
            // jsonwebtoken takes PKCS#8 v1 (the seed alone); OpenSSL writes v1, other
            // tools v2 (with the public key). Re-encoded as v1 either way.
            let v1 = KeypairBytes {
                secret_key: ed.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_der()
            .map_err(|e| format!("cannot re-encode the Ed25519 key: {e}"))?;
            (Algorithm::EdDSA, EncodingKey::from_ed_der(v1.as_bytes()))
        } else if p256::SecretKey::from_pkcs8_der(der).is_ok() {
            (Algorithm::ES256, EncodingKey::from_ec_der(der))
        } else {
            return Err("expected an Ed25519 or P-256 private key".to_owned());
        };
        let mut jwk = Jwk::from_encoding_key(&key, algorithm).map_err(|e| e.to_string())?;
        // The key id is the key's RFC 7638 thumbprint: stable across restarts, and a new
        // key gets a new id, so a rotated key never verifies an old id's tokens.
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| e.to_string())?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(Self {
            algorithm,
            key,
            kid,
            jwks: JwkSet { keys: vec![jwk] },
        })
    }

    /// The public keys, as `GET /v1/credentials/jwks` serves them.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}
