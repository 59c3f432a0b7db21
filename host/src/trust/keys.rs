//! The trust store: the public keys whose signatures Arbiter accepts, and the policy
//! that says whether an unsigned module may load at all.
//!
//! Keys are standard PEM `PUBLIC KEY` files (SubjectPublicKeyInfo), as written by
//! `openssl pkey -pubout`, `cosign generate-key-pair` or an HSM's export, so a security
//! team keeps its signing key wherever it already lives. Two algorithms are accepted:
//! Ed25519 and ECDSA P-256 (SHA-256). Anything else (RSA, other curves) is refused when
//! the store is built, naming the file, rather than silently never matching: an operator
//! who configured a key must learn at start-up that it cannot work.
//!
//! Each key has an id (explicit in config, or the file name without `.pub.pem`/`.pem`);
//! the id is what decisions record as a plugin's `signer`.

use p256::pkcs8::DecodePublicKey as _;
use p256::pkcs8::der::pem;
use p256::pkcs8::spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

/// Largest trust key file read: a PEM public key is a few hundred bytes.
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// OID of Ed25519 keys (RFC 8410).
const ED25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// OID of elliptic-curve public keys (RFC 5480); the curve is in the parameters.
const EC_PUBLIC_KEY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// OID of the P-256 curve (prime256v1 / secp256r1).
const P256_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// OID of RSA keys, named in the error because it is the most common wrong key.
const RSA_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// A signature algorithm Arbiter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Ed25519 (RFC 8032) over the module bytes.
    Ed25519,
    /// ECDSA on P-256 with SHA-256 over the module bytes.
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
}

impl Algorithm {
    /// The word used in output and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256 => "ecdsa-p256",
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A public key of an accepted algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// An Ed25519 key.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// An ECDSA P-256 key.
    EcdsaP256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Ed25519(_) => Algorithm::Ed25519,
            Self::EcdsaP256(_) => Algorithm::EcdsaP256,
        }
    }

    /// Checks `signature` over `message`. The error says why it does not verify.
    ///
    /// Ed25519 uses `verify_strict`, which also rejects malleable (non-canonical)
    /// signatures and small-order keys. P-256 accepts the DER encoding OpenSSL writes and
    /// the fixed 64-byte `r || s` encoding of JOSE, cosign bundles and many HSMs.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), String> {
        match self {
            Self::Ed25519(key) => {
                let bytes: &[u8; ed25519_dalek::SIGNATURE_LENGTH] =
                    signature.try_into().map_err(|_| {
                        format!(
                            "expected a {}-byte ed25519 signature, got {} bytes",
                            ed25519_dalek::SIGNATURE_LENGTH,
                            signature.len()
                        )
                    })?;
                let signature = ed25519_dalek::Signature::from_bytes(bytes);
                key.verify_strict(message, &signature)
                    .map_err(|_| "signature does not match".to_owned())
            }
            Self::EcdsaP256(key) => {
                use p256::ecdsa::signature::Verifier as _;
                let parsed = if signature.len() == 64 {
                    p256::ecdsa::Signature::from_slice(signature)
                } else {
                    p256::ecdsa::Signature::from_der(signature)
                };
                let signature = parsed.map_err(|_| {
                    format!(
                        "expected a DER or 64-byte ecdsa-p256 signature, got {} bytes that are neither",
                        signature.len()
                    )
                })?;
                key.verify(message, &signature)
                    .map_err(|_| "signature does not match".to_owned())
            }
        }
    }
}

/// A key the operator trusts, with the id decisions record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    id: String,
    path: PathBuf,
    fingerprint: String,
    key: PublicKey,
}

impl TrustedKey {
    /// The id recorded as a plugin's signer.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The file the key came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `sha256:` of the key's SubjectPublicKeyInfo DER (what `openssl pkey -pubin
    /// -outform DER | sha256sum` prints), to tell keys with the same id apart in logs.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }
}

/// Why a trust key could not be added.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The key file could not be read.
    #[error("cannot read trust key `{path}`: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: crate::files::FileReadError,
    },
    /// The key directory could not be listed.
    #[error("cannot list trust key directory `{path}`: {cause}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A key directory holds no public key.
    #[error("trust key directory `{path}` holds no `*.pem` public key")]
    EmptyDir {
        /// The directory.
        path: PathBuf,
    },
    /// The file is not one PEM `PUBLIC KEY` block.
    #[error("trust key `{path}` is not a PEM public key: {message}")]
    NotPublicKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file is a private key: trusting it would mean storing the signing secret on
    /// every host that verifies.
    #[error(
        "trust key `{path}` is a private key: trust its public half instead (`openssl pkey -in {path} -pubout`)"
    )]
    PrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The key's algorithm is not Ed25519 or ECDSA P-256.
    #[error(
        "trust key `{path}` uses unsupported algorithm `{algorithm}`: expected ed25519 or ecdsa-p256"
    )]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The algorithm found.
        algorithm: String,
    },
    /// The id is empty or has characters other than letters, digits, `.`, `_`, `-`.
    #[error(
        "trust key id `{id}` of `{path}` is invalid: expected letters, digits, `.`, `_` or `-`"
    )]
    InvalidId {
        /// The id.
        id: String,
        /// The file.
        path: PathBuf,
    },
    /// Two keys have the same id, so a decision's signer would be ambiguous.
    #[error("trust key id `{id}` of `{path}` is already used by `{other}`")]
    DuplicateId {
        /// The id.
        id: String,
        /// The file.
        path: PathBuf,
        /// The file that has it already.
        other: PathBuf,
    },
}

/// The trusted public keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustStore {
    keys: Vec<TrustedKey>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The keys, in the order they were added.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds the public key in `path` under `id` (default: the file name without
    /// `.pub.pem`/`.pem`). A private key, an unsupported algorithm, or a duplicate id is
    /// an error naming the file.
    pub fn add_key_file(&mut self, id: Option<&str>, path: &Path) -> Result<(), TrustError> {
        let text = crate::files::read_regular_text(path, MAX_KEY_FILE_BYTES).map_err(|cause| {
            TrustError::Read {
                path: path.to_owned(),
                cause,
            }
        })?;
        let (key, fingerprint) = parse_public_key(path, &text)?;
        let id = match id {
            Some(id) => id.to_owned(),
            None => key_id_from_path(path),
        };
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(TrustError::InvalidId {
                id,
                path: path.to_owned(),
            });
        }
        if let Some(other) = self.keys.iter().find(|k| k.id == id) {
            return Err(TrustError::DuplicateId {
                id,
                path: path.to_owned(),
                other: other.path.clone(),
            });
        }
        self.keys.push(TrustedKey {
            id,
            path: path.to_owned(),
            fingerprint,
            key,
        });
        Ok(())
    }

    /// Adds every `*.pem` public key in `dir` (not recursive), in file-name order.
    /// Private keys found there are skipped with a warning, so a development key pair
    /// can live in one directory; only public halves are ever trusted. Returns how many
    /// keys were added; a directory with none is an error.
    pub fn add_key_dir(&mut self, dir: &Path) -> Result<usize, TrustError> {
        let read_dir_err = |cause| TrustError::ReadDir {
            path: dir.to_owned(),
            cause,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir_err)? {
            let path = entry.map_err(read_dir_err)?.path();
            if path.is_file() && path.extension().is_some_and(|e| e == "pem") {
                files.push(path);
            }
        }
        files.sort();
        let mut added = 0;
        for path in files {
            match self.add_key_file(None, &path) {
                Ok(()) => added += 1,
                Err(TrustError::PrivateKey { path }) => {
                    tracing::warn!(
                        path = %path.display(),
                        "skipping private key `{}` in a trust key directory: only public keys are trusted; keep private keys elsewhere",
                        path.display()
                    );
                }
                Err(e) => return Err(e),
            }
        }
        if added == 0 {
            return Err(TrustError::EmptyDir {
                path: dir.to_owned(),
            });
        }
        Ok(added)
    }

    /// Adds a key file or every key in a directory (the CLI's `--trust`).
    pub fn add_path(&mut self, path: &Path) -> Result<usize, TrustError> {
        if path.is_dir() {
            self.add_key_dir(path)
        } else {
            self.add_key_file(None, path).map(|()| 1)
        }
    }
}

/// Whether a module must be signed, and by whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    /// The keys whose signatures are accepted.
    pub store: TrustStore,
    /// The development switch: modules *without* a signature file load (with a loud
    /// warning at every load). A module *with* a signature file must still verify:
    /// a bad signature is evidence of tampering, not of development. Never the default.
    pub allow_unsigned: bool,
}

/// The id a key file gets by default: `dev.pub.pem` → `dev`, `ops.pem` → `ops`.
pub fn key_id_from_path(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_suffix(".pem").unwrap_or(&name);
    let name = name.strip_suffix(".pub").unwrap_or(name);
    name.to_owned()
}

/// Parses one PEM `PUBLIC KEY`, returning the key and its fingerprint.
pub fn parse_public_key(path: &Path, text: &str) -> Result<(PublicKey, String), TrustError> {
    let not_public = |message: String| TrustError::NotPublicKey {
        path: path.to_owned(),
        message,
    };
    let (label, der) = pem::decode_vec(text.trim().as_bytes())
        .map_err(|e| not_public(format!("cannot decode PEM: {e}")))?;
    match label {
        "PUBLIC KEY" => {}
        "PRIVATE KEY"
        | "EC PRIVATE KEY"
        | "ENCRYPTED PRIVATE KEY"
        | "RSA PRIVATE KEY"
        | "OPENSSH PRIVATE KEY" => {
            return Err(TrustError::PrivateKey {
                path: path.to_owned(),
            });
        }
        other => {
            return Err(not_public(format!(
                "expected a `PUBLIC KEY` block, found `{other}`"
            )));
        }
    }
    let spki = SubjectPublicKeyInfoRef::try_from(der.as_slice())
        .map_err(|e| not_public(format!("invalid SubjectPublicKeyInfo: {e}")))?;
    let unsupported = |algorithm: String| TrustError::Unsupported {
        path: path.to_owned(),
        algorithm,
    };
    let oid = spki.algorithm.oid;
    let key = if oid == ED25519_OID {
        ed25519_dalek::VerifyingKey::from_public_key_der(&der)
            .map(PublicKey::Ed25519)
            .map_err(|e| not_public(format!("invalid ed25519 key: {e}")))?
    } else if oid == EC_PUBLIC_KEY_OID {
        match spki.algorithm.parameters_oid() {
            Ok(curve) if curve == P256_OID => p256::ecdsa::VerifyingKey::from_public_key_der(&der)
                .map(PublicKey::EcdsaP256)
                .map_err(|e| not_public(format!("invalid ecdsa-p256 key: {e}")))?,
            Ok(curve) => return Err(unsupported(format!("ecdsa on curve {curve}"))),
            Err(_) => return Err(unsupported("ecdsa without a named curve".to_owned())),
        }
    } else if oid == RSA_OID {
        return Err(unsupported("rsa".to_owned()));
    } else {
        return Err(unsupported(oid.to_string()));
    };
    let fingerprint = format!("sha256:{}", hex::encode(Sha256::digest(&der)));
    Ok((key, fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_drop_pub_and_pem() {
        assert_eq!(key_id_from_path(Path::new("/k/dev.pub.pem")), "dev");
        assert_eq!(key_id_from_path(Path::new("ops.pem")), "ops");
    }

    #[test]
    fn garbage_is_not_a_public_key() {
        let err = parse_public_key(Path::new("k.pem"), "hello").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("trust key `k.pem` is not a PEM public key")
        );
    }
}
