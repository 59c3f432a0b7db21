//! `arbiter inspect`: what a module is, who signed it, and what it says about itself.
//!
//! Inspect applies the host's own rule before it compiles or runs anything: the module
//! is compiled and `describe()` runs (in the same sandbox as in the host) only when its
//! signature verifies against `--trust`, or when it has no signature and
//! `--allow-unsigned` was given. Otherwise only the file-level facts (size, digest,
//! signature file) are reported. Exit status: 0 when the module passed the gate, 1 when
//! its signature was refused or it does not implement the contract.

use super::verify::{module_name, trust_store};
use anyhow::{Context, Result};
use arbiter_host::{
    Engine, SignatureStatus, TrustPolicy, TrustStore, VerifyError, digest, inspect_module,
    signature_path, verify_module,
};
use serde::Serialize;
use std::path::PathBuf;

/// The world every Arbiter plugin implements (its version is the contract version).
const WORLD: &str = "arbiter:policy/evaluator";

/// Arguments of `arbiter inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The module to inspect.
    module: PathBuf,
    /// A trusted public key (PEM) or a directory of them; repeatable.
    #[arg(long, short)]
    trust: Vec<PathBuf>,
    /// Compile and describe the module even if it has no signature (never one whose
    /// signature is present but does not verify).
    #[arg(long)]
    allow_unsigned: bool,
    /// Print a readable summary instead of JSON.
    #[arg(long)]
    explain: bool,
}

/// What `inspect` prints.
#[derive(Debug, Serialize)]
struct Report {
    path: String,
    size: u64,
    digest: String,
    signature: SignatureReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    world: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contract_version: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    imports: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exports: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    describe: Option<Describe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct SignatureReport {
    file: String,
    present: bool,
    /// verified | unsigned | refused | not-checked
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    signer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct Describe {
    name: String,
    version: String,
    kind: String,
    description: String,
}

/// Runs `inspect`.
pub fn run(args: &InspectArgs) -> Result<u8> {
    let bytes =
        arbiter_host::read_regular_file(&args.module, arbiter_host::DEFAULT_MAX_MODULE_BYTES)
            .with_context(|| format!("cannot read module `{}`", args.module.display()))?;
    let sig_path = signature_path(&args.module);
    let name = module_name(&args.module);
    let mut report = Report {
        path: args.module.display().to_string(),
        size: bytes.len() as u64,
        digest: digest(&bytes),
        signature: SignatureReport {
            file: sig_path.display().to_string(),
            present: sig_path.exists(),
            status: "not-checked",
            signer: None,
            algorithm: None,
            key_fingerprint: None,
            reason: None,
        },
        world: None,
        contract_version: None,
        imports: Vec::new(),
        exports: Vec::new(),
        describe: None,
        error: None,
    };
    drop(bytes);
    let store = if args.trust.is_empty() {
        TrustStore::new()
    } else {
        trust_store(&args.trust)?
    };
    let policy = TrustPolicy {
        store,
        allow_unsigned: args.allow_unsigned,
    };
    let gate_open = !policy.store.is_empty() || policy.allow_unsigned;
    let module = if gate_open {
        match verify_module(&name, &args.module, &policy) {
            Ok(module) => Some(module),
            Err(e) => {
                report.signature.status = "refused";
                report.signature.reason = Some(match e {
                    VerifyError::Signature { reason, .. } => reason.to_string(),
                    other => other.to_string(),
                });
                None
            }
        }
    } else {
        report.signature.reason = Some(
            "pass `--trust <key-or-dir>` to verify the signature (or `--allow-unsigned` for an unsigned module) to compile and describe the module".to_owned(),
        );
        None
    };
    let mut code = if gate_open && module.is_none() {
        super::EXIT_ERROR
    } else {
        super::EXIT_ALLOW
    };
    if let Some(module) = module {
        report.signature.status = match module.status() {
            SignatureStatus::Verified => "verified",
            SignatureStatus::Unsigned => "unsigned",
        };
        if let Some(signer) = module.signer() {
            report.signature.signer = Some(signer.id.clone());
            report.signature.algorithm = Some(signer.algorithm.to_string());
            report.signature.key_fingerprint = Some(signer.fingerprint.clone());
        }
        let engine = Engine::new()?;
        match inspect_module(&engine, &name, &args.module, &module) {
            Ok(inspection) => {
                report.imports = inspection.imports;
                report.exports = inspection.exports;
                report.contract_version = inspection.contract_version;
                match inspection.describe {
                    Ok(listing) => {
                        report.world = Some(match &report.contract_version {
                            Some(v) => format!("{WORLD}@{v}"),
                            None => WORLD.to_owned(),
                        });
                        report.describe = Some(Describe {
                            name: listing.plugin,
                            version: listing.version,
                            kind: listing.kind,
                            description: listing.description,
                        });
                    }
                    Err(e) => report.error = Some(e.to_string()),
                }
            }
            Err(e) => report.error = Some(e.to_string()),
        }
        if report.error.is_some() {
            code = super::EXIT_ERROR;
        }
    }
    if args.explain {
        println!("{}", explain(&report));
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(code)
}

fn explain(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "module     {} ({} bytes)", r.path, r.size);
    let _ = writeln!(out, "digest     {}", r.digest);
    let s = &r.signature;
    let _ = write!(out, "signature  {}", s.status);
    if let (Some(signer), Some(alg)) = (&s.signer, &s.algorithm) {
        let _ = write!(out, ": signed by `{signer}` ({alg})");
    }
    if let Some(reason) = &s.reason {
        let _ = write!(out, ": {reason}");
    }
    let _ = writeln!(out);
    if let Some(world) = &r.world {
        let _ = writeln!(out, "world      {world}");
    }
    if let Some(d) = &r.describe {
        let _ = writeln!(
            out,
            "describe   {} {} (kind {}): {}",
            d.name, d.version, d.kind, d.description
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "error      {e}");
    }
    out.trim_end().to_owned()
}
