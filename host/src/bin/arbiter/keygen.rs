//! `arbiter keygen`: make a signing key pair (PKCS#8 PEM private key, SPKI PEM public key).

use anyhow::{Context, Result};
use arbiter_host::Algorithm;
use arbiter_host::SigningKey;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Arguments of `arbiter keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the private key, e.g. `keys/release.pem`. Written with mode 0600.
    #[arg(long, short)]
    out: PathBuf,
    /// Where to write the public key (default: the private key's path with `.pem`
    /// replaced by `.pub.pem`). This is the file trust stores hold.
    #[arg(long = "pub")]
    public: Option<PathBuf>,
    /// The key's algorithm.
    #[arg(long, value_enum, default_value = "ed25519")]
    algorithm: AlgorithmArg,
    /// Replace existing files instead of refusing.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AlgorithmArg {
    Ed25519,
    EcdsaP256,
}

/// Runs `keygen`.
pub fn run(args: &KeygenArgs) -> Result<u8> {
    let algorithm = match args.algorithm {
        AlgorithmArg::Ed25519 => Algorithm::Ed25519,
        AlgorithmArg::EcdsaP256 => Algorithm::EcdsaP256,
    };
    let public = args
        .public
        .clone()
        .unwrap_or_else(|| public_path(&args.out));
    let key = SigningKey::generate(algorithm)?;
    let private_pem = key.to_pem()?;
    let public_pem = key.public_key_pem()?;
    write_file(&args.out, private_pem.as_bytes(), true, args.force)?;
    write_file(&public, public_pem.as_bytes(), false, args.force)?;
    eprintln!(
        "wrote {algorithm} private key `{}` (keep it secret) and public key `{}` (add it to `[trust]`)",
        args.out.display(),
        public.display()
    );
    Ok(super::EXIT_ALLOW)
}

/// `keys/dev.pem` → `keys/dev.pub.pem`.
fn public_path(private: &Path) -> PathBuf {
    let name = private
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".pem").unwrap_or(&name);
    private.with_file_name(format!("{stem}.pub.pem"))
}

fn write_file(path: &Path, contents: &[u8], secret: bool, force: bool) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory `{}`", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).with_context(|| {
        format!(
            "cannot create `{}`{}",
            path.display(),
            if force {
                ""
            } else {
                " (pass `--force` to replace an existing key)"
            }
        )
    })?;
    file.write_all(contents)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}
