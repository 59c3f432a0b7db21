//! Shared helpers for the integration tests: where the built plugins are, configs.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use arbiter_host::{Action, Arbiter, Config};
use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Path of a built plugin component; panics with the fix if it is missing.
pub fn plugin_path(name: &str) -> PathBuf {
    let path = root().join("build/plugins").join(format!("{name}.wasm"));
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

/// A config from TOML text whose relative paths resolve against the workspace root.
/// Without a `[defaults]` table, [`TEST_DEFAULTS`] is prepended.
pub fn config(toml: &str) -> Config {
    let toml = if toml.contains("[defaults]") {
        toml.to_owned()
    } else {
        format!("{TEST_DEFAULTS}{toml}")
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
        "[[plugin]]\nname = \"{name}\"\npath = \"build/plugins/misbehave.wasm\"\nsettings = {{ behaviour = \"{behaviour}\" }}\n{extra}\n"
    )
}

/// An echo plugin entry answering `effect`.
pub fn echo(name: &str, effect: &str, extra: &str) -> String {
    format!(
        "[[plugin]]\nname = \"{name}\"\npath = \"build/plugins/misbehave.wasm\"\nsettings = {{ behaviour = \"echo\", effect = \"{effect}\" }}\n{extra}\n"
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
