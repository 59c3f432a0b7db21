//! `arbiter verify`: check modules' signatures against trusted keys, exactly as the host
//! does at load time.

use anyhow::{Context, Result};
use arbiter_host::verify_module;
use arbiter_host::{TrustPolicy, TrustStore};
use std::path::{Path, PathBuf};

/// Arguments of `arbiter verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The modules to verify (each with `<module>.sig` beside it).
    #[arg(required = true)]
    modules: Vec<PathBuf>,
    /// A trusted public key (PEM) or a directory of them; repeatable.
    #[arg(long, short, required = true)]
    trust: Vec<PathBuf>,
}

/// Builds a trust store from `--trust` paths.
pub fn trust_store(paths: &[PathBuf]) -> Result<TrustStore> {
    let mut store = TrustStore::new();
    for path in paths {
        store.add_path(path)?;
    }
    Ok(store)
}

/// The name a module is reported under: its file name without `.wasm`.
pub fn module_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Runs `verify`: exit 0 when every module verifies, 1 (with the reason) otherwise.
pub fn run(args: &VerifyArgs) -> Result<u8> {
    let policy = TrustPolicy {
        store: trust_store(&args.trust)?,
        allow_unsigned: false,
    };
    for path in &args.modules {
        let module = verify_module(&module_name(path), path, &policy)
            .with_context(|| format!("`{}` is not trusted", path.display()))?;
        if let Some(signer) = module.signer() {
            println!(
                "{}: verified: {} signed by `{}` ({}, key {})",
                path.display(),
                module.digest(),
                signer.id,
                signer.algorithm,
                signer.fingerprint
            );
        }
    }
    Ok(super::EXIT_ALLOW)
}
