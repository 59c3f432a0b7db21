//! `arbiter sign`: write `<module>.sig` for one or more modules.

use anyhow::{Context, Result};
use arbiter_host::{SigningKey, signature, signature_path};
use std::path::PathBuf;

/// Arguments of `arbiter sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The modules to sign; each gets `<module>.sig` (base64) beside it.
    #[arg(required = true)]
    modules: Vec<PathBuf>,
    /// PKCS#8 PEM private key (ed25519 or ecdsa-p256), e.g. from `arbiter keygen` or
    /// `openssl genpkey -algorithm ed25519`.
    #[arg(long, short)]
    key: PathBuf,
}

/// Runs `sign`.
pub fn run(args: &SignArgs) -> Result<u8> {
    let pem = zeroize::Zeroizing::new(
        std::fs::read_to_string(&args.key)
            .with_context(|| format!("cannot read key `{}`", args.key.display()))?,
    );
    let key =
        SigningKey::from_pem(&pem).with_context(|| format!("key `{}`", args.key.display()))?;
    for module in &args.modules {
        let bytes = std::fs::read(module)
            .with_context(|| format!("cannot read module `{}`", module.display()))?;
        let sig_path = signature_path(module);
        std::fs::write(&sig_path, signature::encode(&key.sign(&bytes)))
            .with_context(|| format!("cannot write `{}`", sig_path.display()))?;
        eprintln!(
            "signed `{}` ({}) with {} key `{}`: `{}`",
            module.display(),
            arbiter_host::digest(&bytes),
            key.algorithm(),
            args.key.display(),
            sig_path.display()
        );
    }
    Ok(super::EXIT_ALLOW)
}
