//! On-disk cache of precompiled components, so a restart or reload loads a plugin in
//! milliseconds instead of recompiling it (seconds for JavaScript or Python components).
//!
//! # The cache directory is untrusted
//!
//! A precompiled artifact is native code: loading a forged one would run arbitrary code
//! in the host. So an artifact is only ever loaded when all of these hold:
//!
//! - it is looked up by the sha256 digest of module bytes that were **already verified**
//!   (signature checked) by the caller, plus the engine's compatibility hash;
//! - its HMAC-SHA256, computed with a key that is **not** in the cache directory (the
//!   operator's `key_file`, created with mode 0600 on first use), matches; the MAC covers
//!   the module digest, the engine hash and the artifact bytes, so an artifact cannot be
//!   swapped for another module's or another engine's.
//!
//! Anything else (missing file, bad MAC, unreadable, incompatible) is a miss: the module
//! is compiled from its verified bytes and the cache entry rewritten. A cache failure
//! never fails a load.

use crate::trust::VerifiedModule;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::{Path, PathBuf};
use wasmtime::component::Component;

type HmacSha256 = Hmac<Sha256>;

/// Length of the MAC key in bytes.
const KEY_LEN: usize = 32;
/// Length of the MAC stored in front of each artifact.
const MAC_LEN: usize = 32;

/// Errors setting up the cache (not lookups: those fall back to compiling).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache directory could not be created.
    #[error("cannot create cache directory `{path}`: {cause}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The key file could not be read or created, or has the wrong size.
    #[error("cache key `{path}`: {problem}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    /// Loaded from an authenticated precompiled artifact.
    Hit,
    /// Compiled from the module bytes (and written to the cache).
    Compiled,
}

/// An authenticated on-disk artifact cache.
pub struct ArtifactCache {
    dir: PathBuf,
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for ArtifactCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ArtifactCache {
    /// Opens (creating if needed) the cache directory and MAC key file.
    pub fn open(dir: &Path, key_file: &Path) -> Result<Self, CacheError> {
        std::fs::create_dir_all(dir).map_err(|cause| CacheError::Dir {
            path: dir.to_owned(),
            cause,
        })?;
        let key_err = |problem: String| CacheError::Key {
            path: key_file.to_owned(),
            problem,
        };
        if key_file.starts_with(dir) {
            return Err(key_err(
                "must not be inside the cache directory, which is treated as untrusted".to_owned(),
            ));
        }
        let key = match std::fs::read(key_file) {
            Ok(bytes) => <[u8; KEY_LEN]>::try_from(bytes.as_slice())
                .map_err(|_| key_err(format!("expected {KEY_LEN} bytes, found {}", bytes.len())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                getrandom::fill(&mut key).map_err(|e| key_err(format!("no randomness: {e}")))?;
                write_private(key_file, &key)
                    .map_err(|e| key_err(format!("cannot create: {e}")))?;
                key
            }
            Err(e) => return Err(key_err(format!("cannot read: {e}"))),
        };
        Ok(Self {
            dir: dir.to_owned(),
            key,
        })
    }

    fn engine_hash(engine: &wasmtime::Engine) -> String {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }

    fn path(&self, digest: &str, engine_hash: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join(format!("{hex}-{engine_hash}.cwasm"))
    }

    /// The MAC over one artifact. `None` cannot happen (HMAC takes keys of any length);
    /// callers treat it as a cache miss.
    fn mac(&self, digest: &str, engine_hash: &str, artifact: &[u8]) -> Option<HmacSha256> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key).ok()?;
        mac.update(digest.as_bytes());
        mac.update(&[0]);
        mac.update(engine_hash.as_bytes());
        mac.update(&[0]);
        mac.update(artifact);
        Some(mac)
    }

    /// Loads the component for a module that passed the signature gate: from an
    /// authenticated artifact if one exists, else by compiling its bytes (and caching it).
    pub fn load(
        &self,
        engine: &wasmtime::Engine,
        module: &VerifiedModule,
    ) -> wasmtime::Result<(Component, CacheResult)> {
        let (digest, bytes) = (module.digest(), module.bytes());
        let engine_hash = Self::engine_hash(engine);
        let path = self.path(digest, &engine_hash);
        if let Some(component) = self.try_load(engine, digest, &engine_hash, &path) {
            return Ok((component, CacheResult::Hit));
        }
        let component = Component::new(engine, bytes)?;
        match component.serialize() {
            Ok(artifact) => {
                let Some(mac) = self.mac(digest, &engine_hash, &artifact) else {
                    return Ok((component, CacheResult::Compiled));
                };
                let tag = mac.finalize().into_bytes();
                let mut file = Vec::with_capacity(MAC_LEN + artifact.len());
                file.extend_from_slice(&tag);
                file.extend_from_slice(&artifact);
                if let Err(e) = write_atomically(&path, &file) {
                    tracing::warn!(path = %path.display(), "cannot write compiled artifact: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot serialize compiled component: {e:#}"),
        }
        Ok((component, CacheResult::Compiled))
    }

    fn try_load(
        &self,
        engine: &wasmtime::Engine,
        digest: &str,
        engine_hash: &str,
        path: &Path,
    ) -> Option<Component> {
        let file = std::fs::read(path).ok()?;
        let (tag, artifact) = file.split_at_checked(MAC_LEN)?;
        let mac = self.mac(digest, engine_hash, artifact)?;
        if mac.verify_slice(tag).is_err() {
            tracing::warn!(path = %path.display(), "ignoring cached artifact with a bad MAC");
            return None;
        }
        #[expect(
            unsafe_code,
            reason = "deserializing runs native code; the artifact is authenticated by an HMAC \
                      over the verified module digest, the engine hash and its bytes, keyed \
                      outside the cache directory, so only artifacts this host made are loaded"
        )]
        // SAFETY: see the `expect` reason above: the bytes are exactly an artifact that
        // `Component::serialize` produced for this module digest on a compatible engine.
        let component = unsafe { Component::deserialize(engine, artifact) };
        match component {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), "cached artifact unusable: {e:#}");
                None
            }
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
