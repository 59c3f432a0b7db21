//! Shared helpers for the integration tests: where the built plugins are, configs.

pub mod svid;

use arbiter_host::{Action, Arbiter, Config};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Path of a built plugin component; panics with the fix if it is missing. The hostile
/// test fixture `misbehave` lives apart, in build/fixtures/, signed with its own key
/// that only tests trust (see [`TEST_TRUST`]).
pub fn plugin_path(name: &str) -> PathBuf {
    let dir = if name == "misbehave" {
        "build/fixtures"
    } else {
        "build/plugins"
    };
    let path = root().join(dir).join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `scripts/build-plugins.sh` (the README's test command does)",
        path.display()
    );
    path
}

/// Tests run many plugins in parallel on a small, busy machine with a debug build of the
/// host: a generous default deadline keeps tests that are not about timeouts from
/// flaking. Tests about timeouts set `timeout_ms` on the plugin, which overrides this.
pub const TEST_DEFAULTS: &str = "[defaults]\ntimeout_ms = 2000\n";

/// The development signing key the build makes (`scripts/build-plugins.sh`), which
/// signed every module in build/plugins/.
pub fn dev_key_path() -> PathBuf {
    let path = root().join("build/keys/dev.pem");
    assert!(
        path.exists(),
        "{} is missing: run `scripts/build-plugins.sh` (it makes the development key and signs the plugins)",
        path.display()
    );
    path
}

/// The development key's public half.
pub fn dev_public_key_path() -> PathBuf {
    dev_key_path().with_file_name("dev.pub.pem")
}

/// The public key of the test-fixture signing key (build/keys/fixtures.pem), which signed
/// build/fixtures/misbehave.wasm.
pub fn fixture_public_key_path() -> PathBuf {
    let path = root().join("build/keys/fixtures.pub.pem");
    assert!(
        path.exists(),
        "{} is missing: run `scripts/build-plugins.sh` (it makes the fixture key and signs the fixtures)",
        path.display()
    );
    path
}

/// A `[trust]` table with absolute paths trusting the development and fixture keys, for
/// configs written outside the workspace.
pub fn test_trust_absolute() -> String {
    format!(
        "[trust]\nkeys = [{{ id = \"dev\", path = \"{}\" }}, {{ id = \"fixtures\", path = \"{}\" }}]\n",
        dev_public_key_path().display(),
        fixture_public_key_path().display()
    )
}

/// Trusts the development key (id `dev`) and the test-fixture key (id `fixtures`, which
/// signed build/fixtures/misbehave.wasm and which no example config trusts); prepended
/// to test configs without `[trust]`.
pub const TEST_TRUST: &str = "[trust]\nkeys = [{ id = \"dev\", path = \"build/keys/dev.pub.pem\" }, { id = \"fixtures\", path = \"build/keys/fixtures.pub.pem\" }]\n";

/// Signs the module at `path` with the development key, writing `<path>.sig`, so a
/// hand-written fixture passes the signature gate and reaches the check it tests.
pub fn sign_with_dev_key(path: &Path) {
    let key = arbiter_host::signature::SigningKey::from_pem(
        &std::fs::read_to_string(dev_key_path()).unwrap(),
    )
    .unwrap();
    let signature = key.sign(&std::fs::read(path).unwrap());
    std::fs::write(
        arbiter_host::signature::signature_path(path),
        arbiter_host::signature::encode(&signature),
    )
    .unwrap();
}

/// A config from TOML text whose relative paths resolve against the workspace root.
/// Without a `[defaults]` table, [`TEST_DEFAULTS`] is prepended; without a `[trust]`
/// table, [`TEST_TRUST`] (the development key) is.
pub fn config(toml: &str) -> Config {
    let toml = if toml.contains("[defaults]") {
        toml.to_owned()
    } else {
        format!("{TEST_DEFAULTS}{toml}")
    };
    let toml = if toml.contains("[trust]") {
        toml
    } else {
        dev_key_path();
        format!("{TEST_TRUST}{toml}")
    };
    Config::from_toml(&toml, &root()).unwrap_or_else(|e| panic!("bad test config: {e}"))
}

/// An Arbiter from TOML text.
pub fn arbiter(toml: &str) -> Arbiter {
    Arbiter::new(&config(toml)).unwrap_or_else(|e| panic!("cannot load: {e}"))
}

/// A `misbehave` plugin entry with the given behaviour.
pub fn misbehave(name: &str, behaviour: &str, extra: &str) -> String {
    format!(
        "[[plugin]]\nname = \"{name}\"\npath = \"build/fixtures/misbehave.wasm\"\nsettings = {{ behaviour = \"{behaviour}\" }}\n{extra}\n"
    )
}

/// An echo plugin entry answering `effect`.
pub fn echo(name: &str, effect: &str, extra: &str) -> String {
    format!(
        "[[plugin]]\nname = \"{name}\"\npath = \"build/fixtures/misbehave.wasm\"\nsettings = {{ behaviour = \"echo\", effect = \"{effect}\" }}\n{extra}\n"
    )
}

/// A simple valid action for `task`.
pub fn action(request_id: &str, task: Option<&str>) -> Action {
    let task = task
        .map(|t| format!(r#","task":{{"id":"{t}","intent":"test","started_at":0}}"#))
        .unwrap_or_default();
    Action::from_json(&format!(
        r#"{{"request_id":"{request_id}","agent":{{"id":"spiffe://test/agent"}},"tool":{{"server":"fs","name":"read_file"}},"arguments":{{"path":"/repo/a"}},"time":1767225600000{task}}}"#
    ))
    .unwrap()
}

/// `promtool check metrics` finds nothing to say about `text`.
pub fn promtool_accepts(text: &str) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `promtool` ({e}): run `scripts/install-test-deps.sh`")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
