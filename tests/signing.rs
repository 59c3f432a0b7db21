//! Signed plugins: every bad signature is refused at load with an error naming the
//! plugin and the reason, the host fails closed, the development switch is explicit and
//! loud, OpenSSL-made keys and signatures verify (driving the real `openssl` binary),
//! and the CLI's keygen → sign → verify → inspect flow works end to end.

use crate::common::*;
use arbiter_host::Algorithm;
use arbiter_host::SignatureError;
use arbiter_host::signature::{self, SigningKey, signature_path};
use arbiter_host::{Arbiter, Config, DecisionEffect, LoadError, SignatureStatus};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("arbiter-signing-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Copies the `misbehave` component (an echo plugin here) to `name`.
    fn module(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::copy(plugin_path("misbehave"), &path).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dev_key() -> SigningKey {
    SigningKey::from_pem(&std::fs::read_to_string(dev_key_path()).unwrap()).unwrap()
}

/// Writes `<module>.sig` holding `contents` verbatim.
fn write_sig(module: &Path, contents: impl AsRef<[u8]>) {
    std::fs::write(signature_path(module), contents).unwrap();
}

/// Signs `module` with `key` (base64, as `arbiter sign` writes).
fn sign(module: &Path, key: &SigningKey) {
    write_sig(
        module,
        signature::encode(&key.sign(&std::fs::read(module).unwrap())),
    );
}

/// TOML for an echo plugin named `name` at `path`, with `trust` as the trust table.
fn toml(name: &str, path: &Path, trust: &str) -> String {
    format!(
        "[defaults]\ntimeout_ms = 2000\n{trust}\n[[plugin]]\nname = \"{name}\"\npath = \"{}\"\nsettings = {{ behaviour = \"echo\", effect = \"allow\" }}\n",
        path.display()
    )
}

fn trust_key(id: &str, path: &Path) -> String {
    format!(
        "[trust]\nkeys = [{{ id = \"{id}\", path = \"{}\" }}]\n",
        path.display()
    )
}

fn dev_trust() -> String {
    trust_key("dev", &dev_public_key_path())
}

fn load(toml: &str) -> Result<Arbiter, LoadError> {
    Arbiter::new(&Config::from_toml(toml, &root()).unwrap_or_else(|e| panic!("bad config: {e}")))
}

/// Loads `module` as plugin `name` trusting the dev key and returns the refusal.
fn refusal(name: &str, module: &Path) -> (SignatureError, String) {
    refusal_with(name, module, &dev_trust())
}

fn refusal_with(name: &str, module: &Path, trust: &str) -> (SignatureError, String) {
    let err = load(&toml(name, module, trust))
        .err()
        .unwrap_or_else(|| panic!("plugin `{name}` must be refused"));
    let message = err.to_string();
    match err {
        LoadError::Signature { plugin, reason } => {
            assert_eq!(plugin, name);
            assert!(
                message.starts_with(&format!("plugin `{name}`: refused: ")),
                "{message}"
            );
            (reason, message)
        }
        other => panic!("expected a signature refusal, got: {other}"),
    }
}

fn assert_mismatch(reason: &SignatureError, message: &str, why: &str) {
    assert!(
        matches!(reason, SignatureError::Mismatch { .. }),
        "{message}"
    );
    assert!(
        message.contains("does not verify with any trusted key"),
        "{message}"
    );
    assert!(message.contains(why), "{message}");
}

// ---------------------------------------------------------------------------------------
// Refusals: each bad signature is refused at load, naming the plugin and the reason.

#[test]
fn unsigned_module_is_refused() {
    let s = Scratch::new("unsigned");
    let m = s.module("m.wasm");
    let (reason, message) = refusal("unsigned-plugin", &m);
    assert!(
        matches!(reason, SignatureError::Missing { .. }),
        "{message}"
    );
    assert!(message.contains("unsigned: no signature file"), "{message}");
    assert!(message.contains("m.wasm.sig"), "{message}");
}

#[test]
fn tampered_module_is_refused() {
    let s = Scratch::new("tampered");
    let m = s.module("m.wasm");
    sign(&m, &dev_key());
    let mut bytes = std::fs::read(&m).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&m, bytes).unwrap();
    let (reason, message) = refusal("tampered", &m);
    assert_mismatch(
        &reason,
        &message,
        "`dev` (ed25519): signature does not match",
    );
}

#[test]
fn truncated_module_is_refused() {
    let s = Scratch::new("truncated-module");
    let m = s.module("m.wasm");
    sign(&m, &dev_key());
    let bytes = std::fs::read(&m).unwrap();
    std::fs::write(&m, &bytes[..bytes.len() - 100]).unwrap();
    let (reason, message) = refusal("truncated", &m);
    assert_mismatch(&reason, &message, "signature does not match");
}

#[test]
fn truncated_signature_is_refused() {
    let s = Scratch::new("truncated-sig");
    let m = s.module("m.wasm");
    let sig = dev_key().sign(&std::fs::read(&m).unwrap());
    write_sig(&m, signature::encode(&sig[..40]));
    let (reason, message) = refusal("short-sig", &m);
    assert_mismatch(
        &reason,
        &message,
        "expected a 64-byte ed25519 signature, got 40 bytes",
    );
    // Truncated text (cut inside a base64 group) is malformed base64.
    let text = signature::encode(&sig);
    write_sig(&m, &text[..text.len() - 3]);
    let (reason, message) = refusal("short-sig", &m);
    assert!(
        matches!(reason, SignatureError::Malformed { .. }),
        "{message}"
    );
    assert!(message.contains("not valid base64"), "{message}");
}

#[test]
fn signature_by_an_untrusted_key_is_refused() {
    let s = Scratch::new("untrusted");
    let m = s.module("m.wasm");
    sign(&m, &SigningKey::generate(Algorithm::Ed25519).unwrap());
    let (reason, message) = refusal("stranger", &m);
    assert_mismatch(
        &reason,
        &message,
        "`dev` (ed25519): signature does not match",
    );
}

#[test]
fn wrong_key_under_a_trusted_id_is_refused() {
    // The store trusts an id `release` whose file holds another key than the one that
    // signed: ids are labels, the key material is what is checked.
    let s = Scratch::new("wrong-key");
    let m = s.module("m.wasm");
    sign(&m, &dev_key());
    let other = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let other_pub = s.path("release.pub.pem");
    std::fs::write(&other_pub, other.public_key_pem().unwrap()).unwrap();
    let (reason, message) = refusal_with("wrong-key", &m, &trust_key("release", &other_pub));
    assert_mismatch(
        &reason,
        &message,
        "`release` (ed25519): signature does not match",
    );
}

#[test]
fn wrong_algorithm_is_refused() {
    let s = Scratch::new("wrong-alg");
    let p256 = SigningKey::generate(Algorithm::EcdsaP256).unwrap();
    let p256_pub = s.path("ops.pub.pem");
    std::fs::write(&p256_pub, p256.public_key_pem().unwrap()).unwrap();
    // An ed25519 signature presented to a P-256 trust store.
    let m = s.module("m.wasm");
    sign(&m, &dev_key());
    let (reason, message) = refusal_with("ed-for-p256", &m, &trust_key("ops", &p256_pub));
    assert_mismatch(&reason, &message, "`ops` (ecdsa-p256)");
    // A P-256 (DER) signature presented to an ed25519 trust store.
    sign(&m, &p256);
    let (reason, message) = refusal("p256-for-ed", &m);
    assert_mismatch(&reason, &message, "expected a 64-byte ed25519 signature");
}

#[test]
fn empty_signature_is_refused() {
    let s = Scratch::new("empty");
    let m = s.module("m.wasm");
    for contents in ["", " \n\n"] {
        write_sig(&m, contents);
        let (reason, message) = refusal("empty", &m);
        assert!(
            matches!(reason, SignatureError::Malformed { .. }),
            "{message}"
        );
        assert!(message.contains("signature file is empty"), "{message}");
    }
}

#[test]
fn malformed_base64_is_refused() {
    let s = Scratch::new("malformed");
    let m = s.module("m.wasm");
    write_sig(&m, "this is not a signature!");
    let (reason, message) = refusal("garbled", &m);
    assert!(
        matches!(reason, SignatureError::Malformed { .. }),
        "{message}"
    );
    assert!(message.contains("malformed signature"), "{message}");
    assert!(message.contains("not valid base64"), "{message}");
}

#[test]
fn signature_of_wrong_length_is_refused() {
    let s = Scratch::new("wrong-length");
    let m = s.module("m.wasm");
    let mut sig = dev_key().sign(&std::fs::read(&m).unwrap());
    sig.push(0);
    write_sig(&m, signature::encode(&sig));
    let (reason, message) = refusal("long-sig", &m);
    assert_mismatch(
        &reason,
        &message,
        "expected a 64-byte ed25519 signature, got 65 bytes",
    );
}

#[test]
fn valid_signature_of_another_module_is_refused() {
    let s = Scratch::new("other-module");
    let m = s.module("m.wasm");
    // scope.wasm's genuine signature, presented for the misbehave module.
    let scope_sig = std::fs::read(signature_path(&plugin_path("scope"))).unwrap();
    write_sig(&m, scope_sig);
    let (reason, message) = refusal("swapped-sig", &m);
    assert_mismatch(&reason, &message, "signature does not match");
}

#[test]
fn signature_that_is_a_directory_is_refused() {
    let s = Scratch::new("sig-dir");
    let m = s.module("m.wasm");
    std::fs::create_dir(signature_path(&m)).unwrap();
    let (reason, message) = refusal("dir-sig", &m);
    assert!(matches!(reason, SignatureError::Read { .. }), "{message}");
    assert!(message.contains("cannot read signature file"), "{message}");
}

#[test]
fn oversized_signature_file_is_refused() {
    let s = Scratch::new("huge-sig");
    let m = s.module("m.wasm");
    write_sig(&m, "A".repeat(100_000));
    let (reason, message) = refusal("huge-sig", &m);
    assert!(
        matches!(reason, SignatureError::Malformed { .. }),
        "{message}"
    );
    assert!(message.contains("larger than 4096 bytes"), "{message}");
}

#[test]
fn no_trusted_keys_refuses_every_plugin_and_says_how_to_fix_it() {
    let s = Scratch::new("no-keys");
    let m = s.module("m.wasm");
    sign(&m, &dev_key());
    let (reason, message) = refusal_with("lonely", &m, "");
    assert!(matches!(reason, SignatureError::NoTrustedKeys), "{message}");
    assert!(
        message.contains("add a public key under `[trust]`"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------
// Fail closed: a refused plugin stops the host.

#[test]
fn host_refuses_to_start_when_any_plugin_is_refused() {
    let s = Scratch::new("fail-closed");
    let good = s.module("good.wasm");
    sign(&good, &dev_key());
    let bad = s.module("bad.wasm");
    let toml = format!(
        "{}\n[[plugin]]\nname = \"bad\"\npath = \"{}\"\nsettings = {{ behaviour = \"echo\", effect = \"allow\" }}\n",
        toml("good", &good, &dev_trust()),
        bad.display()
    );
    let err = load(&toml).expect_err("the host must not start");
    assert!(
        err.to_string()
            .starts_with("plugin `bad`: refused: unsigned"),
        "{err}"
    );
    // The CLI says why and exits 1.
    let config = s.path("arbiter.toml");
    std::fs::write(&config, toml).unwrap();
    let action = s.path("action.json");
    std::fs::write(&action, ACTION).unwrap();
    let out = arbiter_cli(&["eval", "--config", path_str(&config), path_str(&action)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plugin `bad`: refused: unsigned: no signature file"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no decision is printed");
}

#[test]
fn bad_signature_is_refused_even_under_the_development_switch() {
    let s = Scratch::new("dev-bad-sig");
    let m = s.module("m.wasm");
    write_sig(&m, "AAAA");
    let trust = format!("{}allow_unsigned = true\n", dev_trust());
    let (reason, message) = refusal_with("dev-bad", &m, &trust);
    assert!(
        matches!(reason, SignatureError::Mismatch { .. }),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------
// The development switch.

#[test]
fn development_switch_loads_unsigned_modules_loudly_and_decisions_show_it() {
    let s = Scratch::new("dev-switch");
    let m = s.module("m.wasm");
    let signed = s.module("signed.wasm");
    sign(&signed, &dev_key());
    let trust = format!("{}allow_unsigned = true\n", dev_trust());
    let toml = format!(
        "{}\n[[plugin]]\nname = \"signed\"\npath = \"{}\"\nsettings = {{ behaviour = \"echo\", effect = \"allow\" }}\n",
        toml("dev", &m, &trust),
        signed.display()
    );
    let arbiter = load(&toml).unwrap();
    let d = arbiter.decide(&action("r1", None));
    assert_eq!(d.effect, DecisionEffect::Allow);
    assert_eq!(d.plugins[0].signer, None);
    assert_eq!(d.plugins[0].signature, SignatureStatus::Unsigned);
    assert_eq!(d.plugins[1].signer.as_deref(), Some("dev"));
    assert_eq!(d.plugins[1].signature, SignatureStatus::Verified);
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["plugins"][0]["signer"], serde_json::Value::Null);
    assert_eq!(json["plugins"][0]["signature"], "unsigned");
    assert_eq!(arbiter.plugins()[0].signature, SignatureStatus::Unsigned);
    // The switch is off by default...
    let (reason, _) = refusal("dev", &m);
    assert!(matches!(reason, SignatureError::Missing { .. }));
    // ...and when on, every load says so loudly (the CLI logs to stderr).
    let config = s.path("arbiter.toml");
    std::fs::write(&config, &toml).unwrap();
    let action = s.path("action.json");
    std::fs::write(&action, ACTION).unwrap();
    let out = arbiter_cli(&["eval", "--config", path_str(&config), path_str(&action)]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("LOADING UNSIGNED PLUGIN `dev`"), "{stderr}");
    assert!(!stderr.contains("PLUGIN `signed`"), "{stderr}");
}

// ---------------------------------------------------------------------------------------
// Attribution: decisions and listings carry digest and signer.

#[test]
fn decisions_and_listings_carry_digest_and_signer() {
    // The echo plugin is the test fixture, signed with the fixture key (id `fixtures`).
    let arbiter = arbiter(&echo("good", "allow", ""));
    let expected = arbiter_host::digest(&std::fs::read(plugin_path("misbehave")).unwrap());
    let listing = &arbiter.plugins()[0];
    assert_eq!(listing.digest, expected);
    assert_eq!(listing.signer.as_deref(), Some("fixtures"));
    assert_eq!(listing.signature, SignatureStatus::Verified);
    let d = arbiter.decide(&action("r1", None));
    assert_eq!(d.plugins[0].digest, expected);
    assert_eq!(d.plugins[0].signer.as_deref(), Some("fixtures"));
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["plugins"][0]["signer"], "fixtures");
    assert_eq!(json["plugins"][0]["signature"], "verified");
    assert_eq!(json["plugins"][0]["digest"], expected.as_str());
    let listing_json = serde_json::to_value(listing).unwrap();
    assert_eq!(listing_json["signer"], "fixtures");
}

#[test]
fn the_example_config_runs_on_signed_plugins() {
    let arbiter = Arbiter::from_config_file(&root().join("examples/arbiter.toml")).unwrap();
    let plugins = arbiter.plugins();
    assert_eq!(plugins.len(), 3);
    for p in plugins {
        assert_eq!(p.signer.as_deref(), Some("dev"), "{p:?}");
        assert_eq!(p.signature, SignatureStatus::Verified);
    }
}

// ---------------------------------------------------------------------------------------
// Trust store configuration.

#[test]
fn trust_store_refuses_unusable_keys_naming_the_file() {
    let s = Scratch::new("bad-keys");
    let config_err = |trust: &str| {
        Config::from_toml(trust, &root())
            .expect_err("config must be refused")
            .to_string()
    };
    // RSA (made by openssl) is not supported.
    let rsa = s.path("rsa.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
        "-out",
        path_str(&rsa),
    ]);
    let rsa_pub = s.path("rsa.pub.pem");
    openssl(&[
        "pkey",
        "-in",
        path_str(&rsa),
        "-pubout",
        "-out",
        path_str(&rsa_pub),
    ]);
    let err = config_err(&trust_key("rsa", &rsa_pub));
    assert!(err.contains("trust.keys[0]"), "{err}");
    assert!(err.contains("rsa.pub.pem"), "{err}");
    assert!(err.contains("unsupported algorithm `rsa`"), "{err}");
    // A P-384 key is not supported either.
    let p384 = s.path("p384.pem");
    sh(&format!(
        "openssl ecparam -name secp384r1 -genkey -noout | openssl pkey -pubout -out {}",
        p384.display()
    ));
    let err = config_err(&trust_key("p384", &p384));
    assert!(
        err.contains("unsupported algorithm `ecdsa on curve"),
        "{err}"
    );
    // A private key is never trusted.
    let err = config_err(&trust_key("dev", &dev_key_path()));
    assert!(err.contains("is a private key"), "{err}");
    // Garbage, and duplicate ids.
    let junk = s.path("junk.pem");
    std::fs::write(&junk, "not a key").unwrap();
    let err = config_err(&trust_key("junk", &junk));
    assert!(err.contains("junk.pem` is not a PEM public key"), "{err}");
    let dup = format!(
        "[trust]\nkeys = [{{ id = \"a\", path = \"{0}\" }}, {{ id = \"a\", path = \"{0}\" }}]\n",
        dev_public_key_path().display()
    );
    let err = config_err(&dup);
    assert!(err.contains("trust.keys[1]"), "{err}");
    assert!(err.contains("id `a`"), "{err}");
    // An unknown key in `[trust]` is named.
    let err = config_err("[trust]\nallow_unsinged = true\n");
    assert!(err.contains("unknown field `allow_unsinged`"), "{err}");
}

#[test]
fn key_dirs_trust_public_keys_only_with_ids_from_file_names() {
    let s = Scratch::new("key-dir");
    let keys = s.path("keys");
    std::fs::create_dir(&keys).unwrap();
    // A private key in the directory is skipped (only a public half is ever trusted).
    std::fs::copy(dev_key_path(), keys.join("dev.pem")).unwrap();
    let err = Config::from_toml(
        &format!("[trust]\nkey_dirs = [\"{}\"]\n", keys.display()),
        &root(),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("holds no `*.pem` public key"),
        "{err}"
    );
    std::fs::copy(dev_public_key_path(), keys.join("team-a.pub.pem")).unwrap();
    let m = s.module("m.wasm");
    sign(&m, &dev_key());
    let trust = format!("[trust]\nkey_dirs = [\"{}\"]\n", keys.display());
    let arbiter = load(&toml("m", &m, &trust)).unwrap();
    assert_eq!(arbiter.plugins()[0].signer.as_deref(), Some("team-a"));
}

// ---------------------------------------------------------------------------------------
// OpenSSL interop: keys and signatures made by Debian's `openssl` binary, with exactly
// the commands README.md documents.

#[test]
fn openssl_ed25519_keys_and_signatures_verify() {
    let s = Scratch::new("openssl-ed25519");
    let m = s.module("m.wasm");
    sh_in(
        &s.0,
        "openssl genpkey -algorithm ed25519 -out release.pem \
         && openssl pkey -in release.pem -pubout -out release.pub.pem \
         && openssl pkeyutl -sign -inkey release.pem -rawin -in m.wasm | base64 -w0 > m.wasm.sig",
    );
    let trust = trust_key("release", &s.path("release.pub.pem"));
    let arbiter = load(&toml("m", &m, &trust)).unwrap();
    let d = arbiter.decide(&action("r1", None));
    assert_eq!(d.effect, DecisionEffect::Allow);
    assert_eq!(d.plugins[0].signer.as_deref(), Some("release"));
    // A raw binary signature (no base64) verifies too.
    sh_in(
        &s.0,
        "openssl pkeyutl -sign -inkey release.pem -rawin -in m.wasm -out m.wasm.sig",
    );
    assert_eq!(std::fs::read(signature_path(&m)).unwrap().len(), 64);
    load(&toml("m", &m, &trust)).unwrap();
    // The other way: Arbiter signs with the OpenSSL-made key, OpenSSL verifies.
    let key =
        SigningKey::from_pem(&std::fs::read_to_string(s.path("release.pem")).unwrap()).unwrap();
    std::fs::write(
        s.path("arbiter.sig.bin"),
        key.sign(&std::fs::read(&m).unwrap()),
    )
    .unwrap();
    let out = sh_in(
        &s.0,
        "openssl pkeyutl -verify -pubin -inkey release.pub.pem -rawin -in m.wasm -sigfile arbiter.sig.bin",
    );
    assert!(out.contains("Signature Verified Successfully"), "{out}");
}

#[test]
fn openssl_p256_keys_and_signatures_verify() {
    let s = Scratch::new("openssl-p256");
    let m = s.module("m.wasm");
    sh_in(
        &s.0,
        "openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out ops.pem \
         && openssl pkey -in ops.pem -pubout -out ops.pub.pem",
    );
    let trust = format!(
        "[trust]\nkeys = [{{ path = \"{}\" }}]\n",
        s.path("ops.pub.pem").display()
    );
    // ECDSA signatures are randomised and half of them have a "high" s: sign several
    // times so both halves are exercised.
    for _ in 0..4 {
        sh_in(
            &s.0,
            "openssl dgst -sha256 -sign ops.pem m.wasm | base64 -w0 > m.wasm.sig",
        );
        let arbiter = load(&toml("m", &m, &trust)).unwrap();
        assert_eq!(
            arbiter.plugins()[0].signer.as_deref(),
            Some("ops"),
            "id defaults to the file name"
        );
    }
    // The fixed 64-byte r||s encoding verifies too.
    let der = std::fs::read_to_string(signature_path(&m)).unwrap();
    let der = signature::decode(der.as_bytes()).unwrap();
    let fixed = p256::ecdsa::Signature::from_der(&der).unwrap().to_bytes();
    write_sig(&m, signature::encode(&fixed));
    load(&toml("m", &m, &trust)).unwrap();
    // The other way: Arbiter's DER signature verifies with `openssl dgst -verify`.
    let key = SigningKey::from_pem(&std::fs::read_to_string(s.path("ops.pem")).unwrap()).unwrap();
    assert_eq!(key.algorithm(), Algorithm::EcdsaP256);
    std::fs::write(
        s.path("arbiter.sig.der"),
        key.sign(&std::fs::read(&m).unwrap()),
    )
    .unwrap();
    let out = sh_in(
        &s.0,
        "openssl dgst -sha256 -verify ops.pub.pem -signature arbiter.sig.der m.wasm",
    );
    assert!(out.contains("Verified OK"), "{out}");
}

// ---------------------------------------------------------------------------------------
// The CLI: keygen → sign → verify → inspect, driving the built binary.

#[test]
fn cli_keygen_sign_verify_inspect() {
    let s = Scratch::new("cli");
    for (algorithm, id) in [("ed25519", "alice"), ("ecdsa-p256", "bob")] {
        let key = s.path(&format!("keys/{id}.pem"));
        let out = arbiter_cli(&["keygen", "--out", path_str(&key), "--algorithm", algorithm]);
        assert!(out.status.success(), "{out:?}");
        let public = s.path(&format!("keys/{id}.pub.pem"));
        assert!(public.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o077,
                0,
                "private key must not be group/world readable"
            );
        }
        // OpenSSL reads both halves.
        openssl(&["pkey", "-in", path_str(&key), "-noout"]);
        openssl(&["pkey", "-pubin", "-in", path_str(&public), "-noout"]);
        // keygen never overwrites a key by accident.
        let again = arbiter_cli(&["keygen", "--out", path_str(&key)]);
        assert_eq!(again.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

        let m = s.module(&format!("{id}.wasm"));
        let out = arbiter_cli(&["sign", path_str(&m), "--key", path_str(&key)]);
        assert!(out.status.success(), "{out:?}");
        let out = arbiter_cli(&["verify", path_str(&m), "--trust", path_str(&public)]);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("signed by `{id}` ({algorithm}")),
            "{stdout}"
        );

        let out = arbiter_cli(&["inspect", path_str(&m), "--trust", path_str(&public)]);
        assert!(out.status.success(), "{out:?}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let digest = arbiter_host::digest(&std::fs::read(&m).unwrap());
        assert_eq!(report["digest"], digest.as_str());
        assert_eq!(report["signature"]["status"], "verified");
        assert_eq!(report["signature"]["signer"], id);
        assert_eq!(report["signature"]["algorithm"], algorithm);
        assert_eq!(report["world"], "arbiter:policy/evaluator@0.1.0");
        assert_eq!(report["contract_version"], "0.1.0");
        assert_eq!(report["describe"]["name"], "misbehave");
        assert_eq!(report["describe"]["version"], "0.1.0");
    }

    // A tampered module: verify fails naming the reason; inspect refuses to describe it.
    let m = s.path("alice.wasm");
    let mut bytes = std::fs::read(&m).unwrap();
    bytes.push(0);
    std::fs::write(&m, bytes).unwrap();
    let alice_pub = s.path("keys/alice.pub.pem");
    let out = arbiter_cli(&["verify", path_str(&m), "--trust", path_str(&alice_pub)]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plugin `alice`: refused: signature"),
        "{stderr}"
    );
    assert!(stderr.contains("signature does not match"), "{stderr}");
    let out = arbiter_cli(&["inspect", path_str(&m), "--trust", path_str(&alice_pub)]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["signature"]["status"], "refused");
    assert!(report.get("describe").is_none(), "{report}");
    // --allow-unsigned does not open the gate for a module whose signature is bad.
    let out = arbiter_cli(&["inspect", path_str(&m), "--allow-unsigned"]);
    assert_eq!(out.status.code(), Some(1));

    // An unsigned module: without --trust only file facts; with --allow-unsigned it is
    // described and reported as unsigned.
    let u = s.module("u.wasm");
    let out = arbiter_cli(&["inspect", path_str(&u)]);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["signature"]["status"], "not-checked");
    assert_eq!(report["signature"]["present"], false);
    assert!(report.get("describe").is_none());
    let out = arbiter_cli(&["inspect", path_str(&u), "--allow-unsigned", "--explain"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("signature  unsigned"), "{text}");
    assert!(
        text.contains("world      arbiter:policy/evaluator@0.1.0"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// Helpers for processes.

const ACTION: &str = r#"{"request_id":"r1","agent":{"id":"spiffe://test/agent"},"tool":{"server":"fs","name":"read_file"},"arguments":{"path":"/repo/a"}}"#;

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn arbiter_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Runs the real `openssl` binary; its absence fails the test (never a skip).
fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs the `openssl` binary (Debian: `apt-get install openssl`): {e}")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh(script: &str) -> String {
    sh_in(&std::env::temp_dir(), script)
}

/// Runs a shell pipeline in `dir` (the README's commands are pipelines).
fn sh_in(dir: &Path, script: &str) -> String {
    Command::new("openssl")
        .arg("version")
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs the `openssl` binary (Debian: `apt-get install openssl`): {e}")
        });
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail; {script}"))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_signed_module_loads_only_in_the_slot_the_config_pins() {
    let example = std::fs::read_to_string(root().join("examples/arbiter.toml")).unwrap();
    let load_example = |toml: &str| {
        Config::from_toml(toml, &root().join("examples"))
            .map_err(LoadError::from)
            .and_then(|c| Arbiter::new(&c))
    };
    // As shipped, the example loads.
    let arbiter = load_example(&example).unwrap();
    assert_eq!(arbiter.plugins().len(), 3);
    // scope.wasm is signed by the trusted dev key, and accepts an empty settings table,
    // but the intent slot pins describe() name `intent`.
    let swapped = example
        .replace(
            "path = \"../build/plugins/intent.wasm\"\nexpect_plugin = \"intent\"",
            "path = \"../build/plugins/scope.wasm\"\nexpect_plugin = \"intent\"",
        )
        .replace(
            "settings_file = \"../plugins/intent/example-settings.json\"",
            "settings = {}",
        );
    assert_ne!(swapped, example);
    let err = load_example(&swapped).err().unwrap().to_string();
    assert!(
        err.contains("plugin `intent`: refused: the config expects describe() name `intent`")
            && err.contains("is `scope`"),
        "{err}"
    );
    // A digest pin refuses any other module before it is compiled.
    let intent_digest = arbiter_host::digest(&std::fs::read(plugin_path("intent")).unwrap());
    let pinned = example.replace(
        "expect_plugin = \"scope\"",
        &format!("expect_plugin = \"scope\"\ndigest = \"{intent_digest}\""),
    );
    let err = load_example(&pinned).err().unwrap().to_string();
    assert!(
        err.contains(&format!("the config expects digest `{intent_digest}`")),
        "{err}"
    );
    let bad = example.replace(
        "expect_plugin = \"scope\"",
        "expect_plugin = \"scope\"\ndigest = \"sha256:nope\"",
    );
    let err = load_example(&bad).err().unwrap().to_string();
    assert!(err.contains("plugin[1].digest"), "{err}");
    // The hostile test fixture is signed by a key the example does not trust.
    let fixture = example.replace(
        "../build/plugins/intent.wasm",
        "../build/fixtures/misbehave.wasm",
    );
    let err = load_example(&fixture).err().unwrap().to_string();
    assert!(
        err.contains("does not verify with any trusted key"),
        "{err}"
    );
    assert!(!root().join("build/plugins/misbehave.wasm").exists());
}
