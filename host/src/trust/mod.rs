//! Which code may run: trusted keys ([`TrustStore`], [`TrustPolicy`]), the `.sig` format
//! and signing ([`signature`]), and the gate every module passes before it is compiled
//! ([`verify_module`], which yields a [`VerifiedModule`]).

mod digest;
mod keys;
pub mod signature;
mod verified;

pub use crate::model::SignatureStatus;
pub use digest::digest;
pub use keys::{Algorithm, TrustError, TrustPolicy, TrustStore};
pub use signature::{KeyError, SigningKey, signature_path};
pub use verified::{
    DEFAULT_MAX_MODULE_BYTES, SignatureError, Signer, VerifiedModule, VerifyError, verify_module,
    verify_module_bounded,
};
