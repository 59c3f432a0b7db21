//! Hot-swap latency: the time from a new signed module landing in the plugin directory to
//! the first decision served by it, through the file watcher, for
//!
//! - a cold compile (a module never seen before: new digest), and
//! - a cache hit (a module this engine compiled before: same digest),
//!
//! plus a restart with and without the on-disk artifact cache. Run:
//! `scripts/build-plugins.sh && cargo bench -p arbiter-host --bench hot_swap`.
//! Bounded: a handful of swaps, each with a 30 s ceiling.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark code, never on the request path: a broken setup aborts the run"
)]

use arbiter_host::signature::{SigningKey, encode, signature_path};
use arbiter_host::{Action, Arbiter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The module with a custom section appended: a valid component with a new digest.
fn variant(module: &[u8], n: usize) -> Vec<u8> {
    let name = b"arbiter-bench";
    let payload = format!("variant-{n}-{}", std::process::id());
    let body_len = 1 + name.len() + payload.len();
    let mut out = module.to_vec();
    out.push(0); // custom section id
    out.push(u8::try_from(body_len).unwrap());
    out.push(u8::try_from(name.len()).unwrap());
    out.extend_from_slice(name);
    out.extend_from_slice(payload.as_bytes());
    out
}

fn install(dir: &Path, key: &SigningKey, bytes: &[u8]) {
    // As an operator would: the signature first, then the module by rename.
    let path = dir.join("intent.wasm");
    std::fs::write(signature_path(&path), encode(&key.sign(bytes))).unwrap();
    let tmp = dir.join("intent.wasm.part");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

fn digest(bytes: &[u8]) -> String {
    arbiter_host::digest(bytes)
}

fn wait_for_digest(arbiter: &Arbiter, action: &Action, expected: &str) -> Duration {
    let started = Instant::now();
    loop {
        let d = arbiter.decide(action);
        if d.plugins.first().is_some_and(|p| p.digest == expected) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "swap never happened: {:?}",
            arbiter.reload_status().last
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn main() {
    let root = root();
    let dir = std::env::temp_dir().join(format!("arbiter-bench-swap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key =
        SigningKey::from_pem(&std::fs::read_to_string(root.join("build/keys/dev.pem")).unwrap())
            .unwrap();
    let original = std::fs::read(root.join("build/plugins/intent.wasm")).unwrap();
    let config = |cache: bool| {
        let cache = if cache {
            format!(
                "[cache]\ndir = \"{0}/cache\"\nkey_file = \"{0}/cache.key\"\n",
                dir.display()
            )
        } else {
            String::new()
        };
        format!(
            "[defaults]\ntimeout_ms = 100\n{cache}[trust]\nkeys = [{{ id = \"dev\", path = \"{}\" }}]\n\
             [[plugin]]\nname = \"intent\"\npath = \"intent.wasm\"\nsettings_file = \"{}\"\n",
            root.join("build/keys/dev.pub.pem").display(),
            root.join("plugins/intent/example-settings.json").display()
        )
    };
    install(&dir, &key, &original);
    std::fs::write(dir.join("arbiter.toml"), config(false)).unwrap();
    let action = Action::from_json(
        r#"{"request_id":"r","agent":{"id":"spiffe://b/a"},"task":{"id":"t","intent":"summarize-repo","started_at":0},
            "tool":{"server":"fs","name":"read_file"},"arguments":{"path":"/repo/README.md"},"time":1767225600000}"#,
    )
    .unwrap();
    let arbiter = Arc::new(Arbiter::from_config_file(&dir.join("arbiter.toml")).unwrap());
    let _watcher = Arbiter::watch(&arbiter).unwrap();

    let mut cold = Vec::new();
    let mut hit = Vec::new();
    for n in 0..ROUNDS {
        let fresh = variant(&original, n);
        install(&dir, &key, &fresh);
        cold.push(wait_for_digest(&arbiter, &action, &digest(&fresh)));
        install(&dir, &key, &original);
        hit.push(wait_for_digest(&arbiter, &action, &digest(&original)));
    }
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        ms(&v[v.len() / 2])
    };
    println!(
        "hot swap, module landing -> first decision by it (watcher debounce {} ms included), {ROUNDS} rounds:",
        arbiter_host::watch::DEBOUNCE.as_millis()
    );
    println!(
        "  cold compile (new digest):        median {:8.1} ms",
        median(&mut cold)
    );
    println!(
        "  cache hit (digest compiled before): median {:8.1} ms",
        median(&mut hit)
    );

    // Restart: load the set from scratch with and without the on-disk artifact cache.
    let restart = |cache: bool| {
        std::fs::write(dir.join("arbiter.toml"), config(cache)).unwrap();
        let started = Instant::now();
        let a = Arbiter::from_config_file(&dir.join("arbiter.toml")).unwrap();
        let t = started.elapsed();
        assert_eq!(a.plugins().len(), 1);
        t
    };
    let no_cache = restart(false);
    let _warm = restart(true); // writes the artifact
    let with_cache = restart(true);
    println!("restart, config -> policy set ready:");
    println!(
        "  compile from module bytes:        {:8.1} ms",
        ms(&no_cache)
    );
    println!(
        "  from the on-disk artifact cache:  {:8.1} ms",
        ms(&with_cache)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
