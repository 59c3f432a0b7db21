//! Detached module signatures: the `<module>.sig` file format, signing keys, and
//! key generation.
//!
//! # Format, and why there is no envelope
//!
//! A signature is made over the **exact bytes of the module file**, nothing else, and is
//! stored beside it as `<module>.sig` (e.g. `intent.wasm.sig`). Base64 text is written
//! (what `openssl … | base64 -w0` prints); raw binary is accepted too, told apart by
//! content: a file of printable ASCII and whitespace is base64, anything else is raw.
//! Signing only the bytes keeps the format reproducible with nothing but OpenSSL, which
//! the brief requires; the plugin's name and version need no binding because they come
//! from the signed bytes themselves (`describe()`), and the digest is recomputed by the
//! host.
//!
//! - Ed25519: the 64-byte RFC 8032 signature (`openssl pkeyutl -sign -rawin`).
//! - ECDSA P-256: SHA-256 of the bytes, signature DER-encoded (`openssl dgst -sha256
//!   -sign`) or as fixed 64-byte `r || s`.
//!
//! Keys are PKCS#8 PEM (private) and SubjectPublicKeyInfo PEM (public), the formats
//! `openssl genpkey` and `openssl pkey -pubout` write.

use crate::trust::Algorithm;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Largest signature file read. Real ones are under 100 bytes of base64; the bound keeps
/// a hostile `.sig` (a device, a huge file) from costing memory.
pub const MAX_SIGNATURE_FILE_BYTES: u64 = 4096;

/// The signature file of a module: the module's path with `.sig` appended.
pub fn signature_path(module: &Path) -> PathBuf {
    let mut path = module.as_os_str().to_owned();
    path.push(".sig");
    PathBuf::from(path)
}

/// Why a signature file's contents are unusable (before any key is tried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The file is empty or whitespace only.
    #[error("signature file is empty")]
    Empty,
    /// The file is text but not valid base64.
    #[error("signature file is not valid base64: {0}")]
    Base64(String),
    /// The file is larger than [`MAX_SIGNATURE_FILE_BYTES`].
    #[error("signature file is larger than {MAX_SIGNATURE_FILE_BYTES} bytes")]
    TooLarge,
}

/// Decodes a signature file's contents into raw signature bytes.
pub fn decode(contents: &[u8]) -> Result<Vec<u8>, DecodeError> {
    if contents.len() as u64 > MAX_SIGNATURE_FILE_BYTES {
        return Err(DecodeError::TooLarge);
    }
    let is_text = contents
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if !is_text {
        return Ok(contents.to_vec());
    }
    let compact: Vec<u8> = contents
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(DecodeError::Empty);
    }
    let raw = BASE64
        .decode(&compact)
        .map_err(|e| DecodeError::Base64(e.to_string()))?;
    if raw.is_empty() {
        return Err(DecodeError::Empty);
    }
    Ok(raw)
}

/// Encodes raw signature bytes as the text written to `.sig` files (no newline, like
/// `base64 -w0`).
pub fn encode(signature: &[u8]) -> String {
    BASE64.encode(signature)
}

/// Why a private key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM is not a PKCS#8 Ed25519 or P-256 private key.
    #[error(
        "not a PKCS#8 PEM ed25519 or ecdsa-p256 private key: {0} (convert an `EC PRIVATE KEY` with `openssl pkcs8 -topk8 -nocrypt`)"
    )]
    Parse(String),
    /// The operating system's random source failed.
    #[error("cannot get randomness from the operating system: {0}")]
    Random(String),
    /// The key could not be encoded.
    #[error("cannot encode the key: {0}")]
    Encode(String),
}

/// A private key that signs modules.
#[derive(Debug)]
pub enum SigningKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
    /// ECDSA P-256.
    EcdsaP256(p256::ecdsa::SigningKey),
}

impl SigningKey {
    /// Generates a key from the operating system's random source.
    pub fn generate(algorithm: Algorithm) -> Result<Self, KeyError> {
        match algorithm {
            Algorithm::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; ed25519_dalek::SECRET_KEY_LENGTH]);
                getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
                Ok(Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            Algorithm::EcdsaP256 => {
                // A uniformly random 32-byte string is a valid scalar unless it is zero or
                // at least the group order (probability about 2^-32); draw again then.
                for _ in 0..64 {
                    let mut bytes = Zeroizing::new([0u8; 32]);
                    getrandom::fill(bytes.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
                    if let Ok(key) = p256::ecdsa::SigningKey::from_slice(bytes.as_ref()) {
                        return Ok(Self::EcdsaP256(key));
                    }
                }
                Err(KeyError::Random(
                    "no valid p-256 scalar in 64 draws".to_owned(),
                ))
            }
        }
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        match ed25519_dalek::SigningKey::from_pkcs8_pem(text) {
            Ok(key) => Ok(Self::Ed25519(key)),
            Err(ed_err) => match p256::ecdsa::SigningKey::from_pkcs8_pem(text) {
                Ok(key) => Ok(Self::EcdsaP256(key)),
                Err(_) => Err(KeyError::Parse(ed_err.to_string())),
            },
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Ed25519(_) => Algorithm::Ed25519,
            Self::EcdsaP256(_) => Algorithm::EcdsaP256,
        }
    }

    /// The private key as PKCS#8 PEM (zeroed when dropped).
    pub fn to_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let pem = match self {
            // PKCS#8 v1 without the public key, as `openssl genpkey` writes it: OpenSSL
            // 3.0 cannot read the v2 form (with the public key) that ed25519-dalek's own
            // encoder produces, and the key must stay usable with plain OpenSSL.
            Self::Ed25519(key) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: key.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_pem(LineEnding::LF),
            Self::EcdsaP256(key) => key.to_pkcs8_pem(LineEnding::LF),
        };
        pem.map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// The public key as SubjectPublicKeyInfo PEM (what a trust store holds).
    pub fn public_key_pem(&self) -> Result<String, KeyError> {
        let pem = match self {
            Self::Ed25519(key) => key.verifying_key().to_public_key_pem(LineEnding::LF),
            Self::EcdsaP256(key) => key.verifying_key().to_public_key_pem(LineEnding::LF),
        };
        pem.map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// Signs `message`: Ed25519's 64 bytes, or a DER ECDSA signature over SHA-256
    /// (RFC 6979 deterministic nonces, so no randomness is needed at signing time).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        match self {
            Self::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            Self::EcdsaP256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_base64_and_binary_is_raw() {
        assert_eq!(decode(b"AAEC\n").unwrap(), vec![0, 1, 2]);
        assert_eq!(decode(&[0x30, 0x02, 0x01]).unwrap(), vec![0x30, 0x02, 0x01]);
        assert_eq!(decode(b" \n"), Err(DecodeError::Empty));
        assert!(matches!(
            decode(b"not base64!"),
            Err(DecodeError::Base64(_))
        ));
    }

    #[test]
    fn signature_path_appends_sig() {
        assert_eq!(
            signature_path(Path::new("/p/intent.wasm")),
            PathBuf::from("/p/intent.wasm.sig")
        );
    }
}
