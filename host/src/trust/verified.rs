//! The signature gate: the one place module bytes become loadable.
//!
//! # Why a type, not a check
//!
//! Arbiter must run only code a trusted key signed. Rather than rely on every loader
//! remembering to call a check, the compiler enforces it: [`Engine::compile`] and
//! [`LoadedPlugin::from_verified`] accept only a [`VerifiedModule`], and a
//! `VerifiedModule` can only be made by [`verify_module`] (its fields are private and it
//! has no other constructor), which returns one only when
//!
//! - the module's `.sig` verifies against a key of the trust store — the module is
//!   `signed` and records the key's id as its signer; or
//! - there is no `.sig` at all and the operator turned on the development switch
//!   `trust.allow_unsigned` — the module is `unsigned`, and a warning is logged at
//!   every load.
//!
//! The bytes that were verified are the bytes that get compiled: the module is read
//! once into the `VerifiedModule`, so swapping the file after the check changes nothing.
//!
//! ```compile_fail
//! // Outside this module a VerifiedModule cannot be built from arbitrary bytes.
//! let m = arbiter_host::verified::VerifiedModule {
//!     bytes: vec![], digest: String::new(), signer: None,
//! };
//! ```
//!
//! [`Engine::compile`]: crate::runtime::Engine::compile
//! [`LoadedPlugin::from_verified`]: crate::plugin::LoadedPlugin::from_verified

use super::digest;
use super::keys::{Algorithm, TrustPolicy};
use super::signature::{self, DecodeError, MAX_SIGNATURE_FILE_BYTES, signature_path};
use crate::files::{FileReadError, read_regular_file};
use crate::model::SignatureStatus;
use std::path::{Path, PathBuf};

/// Largest module read by default (`max_module_mib` = 64), in bytes.
pub const DEFAULT_MAX_MODULE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a plugin's module did not pass the gate.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The module file could not be read.
    #[error("plugin `{plugin}`: cannot read `{path}`: {cause}")]
    Read {
        /// Operator's plugin name.
        plugin: String,
        /// The path.
        path: PathBuf,
        /// Why (in the message, so not also a `source`).
        cause: FileReadError,
    },
    /// The module's signature was refused: the module is not compiled, let alone run.
    #[error("plugin `{plugin}`: refused: {reason}")]
    Signature {
        /// Operator's plugin name.
        plugin: String,
        /// Why.
        reason: SignatureError,
    },
}

/// The trusted key that signed a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The key's id in the trust store.
    pub id: String,
    /// The key's algorithm.
    pub algorithm: Algorithm,
    /// The key's fingerprint (`sha256:` of its SubjectPublicKeyInfo DER).
    pub fingerprint: String,
}

/// Module bytes that passed the signature gate. See the module docs.
#[derive(Debug, Clone)]
pub struct VerifiedModule {
    bytes: Vec<u8>,
    digest: String,
    signer: Option<Signer>,
}

impl VerifiedModule {
    /// The verified bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `sha256:` digest of the bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The key that signed the module; `None` only for an unsigned module loaded under
    /// the development switch.
    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// Verified or unsigned.
    pub fn status(&self) -> SignatureStatus {
        match self.signer {
            Some(_) => SignatureStatus::Verified,
            None => SignatureStatus::Unsigned,
        }
    }
}

/// Why a module's signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// No trusted key is configured and unsigned modules are not allowed.
    #[error(
        "no trusted keys are configured: add a public key under `[trust]` (`keys = [{{ id = \"release\", path = \"release.pub.pem\" }}]` or `key_dirs = [\"keys\"]`), or set `trust.allow_unsigned = true` for development only"
    )]
    NoTrustedKeys,
    /// The module has no `.sig` file.
    #[error(
        "unsigned: no signature file `{path}` (sign the module with `arbiter sign`, or set `trust.allow_unsigned = true` for development only)"
    )]
    Missing {
        /// Where the signature was expected.
        path: PathBuf,
    },
    /// The `.sig` exists but cannot be read (a directory, a FIFO, too large, no
    /// permission, ...).
    #[error("cannot read signature file `{path}`: {cause}")]
    Read {
        /// The signature file.
        path: PathBuf,
        /// The cause.
        cause: FileReadError,
    },
    /// The `.sig` contents are empty or not decodable.
    #[error("malformed signature `{path}`: {cause}")]
    Malformed {
        /// The signature file.
        path: PathBuf,
        /// What is wrong.
        cause: DecodeError,
    },
    /// The signature verifies with no trusted key: the module was changed after
    /// signing, signed by another key, or the signature is for something else.
    #[error("signature `{path}` does not verify with any trusted key: {tried}")]
    Mismatch {
        /// The signature file.
        path: PathBuf,
        /// Each key tried and why it failed, e.g. "`dev` (ed25519): signature does not match".
        tried: String,
    },
}

/// Reads the module at `path` and its `.sig`, and returns the bytes only if the
/// signature verifies against `trust` (or the module is unsigned and `trust` allows
/// that). Errors name the plugin and the reason. Reads at most
/// [`DEFAULT_MAX_MODULE_BYTES`]; see [`verify_module_bounded`].
pub fn verify_module(
    plugin: &str,
    path: &Path,
    trust: &TrustPolicy,
) -> Result<VerifiedModule, VerifyError> {
    verify_module_bounded(plugin, path, trust, DEFAULT_MAX_MODULE_BYTES)
}

/// [`verify_module`] for a module of at most `max_module_bytes`. The module is read
/// before its signature can be checked, so the bound (and the regular-file check, see
/// [`crate::files`]) is what keeps an unverified file from exhausting memory or
/// blocking the loader.
pub fn verify_module_bounded(
    plugin: &str,
    path: &Path,
    trust: &TrustPolicy,
    max_module_bytes: u64,
) -> Result<VerifiedModule, VerifyError> {
    let refuse = |reason: SignatureError| VerifyError::Signature {
        plugin: plugin.to_owned(),
        reason,
    };
    if trust.store.is_empty() && !trust.allow_unsigned {
        return Err(refuse(SignatureError::NoTrustedKeys));
    }
    let bytes = read_regular_file(path, max_module_bytes).map_err(|cause| VerifyError::Read {
        plugin: plugin.to_owned(),
        path: path.to_owned(),
        cause,
    })?;
    let digest = digest(&bytes);
    let sig_path = signature_path(path);
    let contents = match read_regular_file(&sig_path, MAX_SIGNATURE_FILE_BYTES) {
        Ok(contents) => contents,
        Err(e) if e.is_not_found() => {
            if !trust.allow_unsigned {
                return Err(refuse(SignatureError::Missing { path: sig_path }));
            }
            tracing::warn!(
                plugin,
                path = %path.display(),
                %digest,
                "LOADING UNSIGNED PLUGIN `{plugin}` from `{}`: `trust.allow_unsigned` is on; this is a development setting and must never be used in production",
                path.display()
            );
            return Ok(VerifiedModule {
                bytes,
                digest,
                signer: None,
            });
        }
        Err(FileReadError::TooLarge { .. }) => {
            return Err(refuse(SignatureError::Malformed {
                path: sig_path,
                cause: DecodeError::TooLarge,
            }));
        }
        Err(cause) => {
            return Err(refuse(SignatureError::Read {
                path: sig_path,
                cause,
            }));
        }
    };
    let raw = signature::decode(&contents).map_err(|cause| {
        refuse(SignatureError::Malformed {
            path: sig_path.clone(),
            cause,
        })
    })?;
    let mut tried = Vec::with_capacity(trust.store.keys().len());
    for key in trust.store.keys() {
        match key.key().verify(&bytes, &raw) {
            Ok(()) => {
                return Ok(VerifiedModule {
                    bytes,
                    digest,
                    signer: Some(Signer {
                        id: key.id().to_owned(),
                        algorithm: key.key().algorithm(),
                        fingerprint: key.fingerprint().to_owned(),
                    }),
                });
            }
            Err(why) => tried.push(format!("`{}` ({}): {why}", key.id(), key.key().algorithm())),
        }
    }
    let tried = if tried.is_empty() {
        "no trusted keys are configured".to_owned()
    } else {
        tried.join("; ")
    };
    Err(refuse(SignatureError::Mismatch {
        path: sig_path,
        tried,
    }))
}
