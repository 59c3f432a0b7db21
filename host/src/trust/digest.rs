//! The digest that names a module everywhere: in decisions, pins, caches and logs.

use sha2::{Digest, Sha256};

/// The `sha256:<hex>` digest of module bytes.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
