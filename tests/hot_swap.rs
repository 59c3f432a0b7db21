//! Hot swap: policy sets replaced under load, atomically, never failing open.

use crate::common;

use crate::common::*;
use arbiter_host::{Arbiter, DecisionEffect, Outcome};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A scratch directory with a signed copy of the misbehave module and a config.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("arbiter-hot-swap-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let module = plugin_path("misbehave");
        std::fs::copy(&module, dir.join("echo.wasm")).unwrap();
        std::fs::copy(module.with_extension("wasm.sig"), dir.join("echo.wasm.sig")).unwrap();
        Self { dir }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("arbiter.toml")
    }

    /// Writes a config with plugins `a` and `b` both echoing `effect`.
    fn write_config(&self, effect: &str, extra_plugin: &str) {
        let trust = dev_public_key_path();
        let toml = format!(
            "[defaults]\ntimeout_ms = 2000\n[trust]\nkeys = [{{ id = \"dev\", path = \"{}\" }}, {{ id = \"fixtures\", path = \"{}\" }}]\n\
             [[plugin]]\nname = \"a\"\npath = \"echo.wasm\"\nsettings = {{ behaviour = \"echo\", effect = \"{effect}\" }}\n\
             [[plugin]]\nname = \"b\"\npath = \"echo.wasm\"\nsettings = {{ behaviour = \"echo\", effect = \"{effect}\" }}\n{extra_plugin}",
            trust.display(),
            common::fixture_public_key_path().display()
        );
        write_atomically(&self.config_path(), toml.as_bytes());
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn decide(arbiter: &Arbiter, n: u64) -> arbiter_host::Decision {
    let task = format!("t{}", n % 7);
    arbiter.decide(&action(&format!("r{n}"), Some(&task)))
}

const EFFECTS: [&str; 3] = ["allow", "step-up", "deny"];

#[test]
fn swaps_under_load_are_atomic_and_bad_updates_never_activate() {
    let scratch = Scratch::new("swap");
    scratch.write_config("allow", "");
    let arbiter = Arc::new(Arbiter::from_config_file(&scratch.config_path()).unwrap());
    // generation → the effect its config echoes; only successful reloads are recorded.
    let generations: Arc<Mutex<HashMap<u64, &'static str>>> =
        Arc::new(Mutex::new(HashMap::from([(1, "allow")])));
    let stop = Arc::new(AtomicBool::new(false));
    let mut deciders = Vec::new();
    for t in 0..4u64 {
        let arbiter = Arc::clone(&arbiter);
        let stop = Arc::clone(&stop);
        deciders.push(std::thread::spawn(move || {
            let mut decisions = Vec::new();
            let mut n = t * 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                decisions.push(decide(&arbiter, n));
                n += 1;
            }
            decisions
        }));
    }

    let mut good = 0;
    let mut refused = 0;
    for i in 0..120usize {
        let before = arbiter.policy_set().generation();
        match i % 4 {
            // A plugin refusing its settings.
            3 if i % 8 == 3 => scratch.write_config(
                "deny",
                "[[plugin]]\nname = \"c\"\npath = \"echo.wasm\"\nsettings = { behaviour = \"invalid-settings\" }\n",
            ),
            // A module that is not signed.
            3 => {
                std::fs::copy(plugin_path("misbehave"), scratch.dir.join("unsigned.wasm")).unwrap();
                scratch.write_config(
                    "deny",
                    "[[plugin]]\nname = \"c\"\npath = \"unsigned.wasm\"\n",
                );
            }
            _ => scratch.write_config(EFFECTS[i % 3], ""),
        }
        match arbiter.reload() {
            Ok(generation) => {
                assert_ne!(i % 4, 3, "bad update {i} became generation {generation}");
                generations
                    .lock()
                    .unwrap()
                    .insert(generation, EFFECTS[i % 3]);
                good += 1;
            }
            Err(e) => {
                assert_eq!(i % 4, 3, "good update {i} refused: {e}");
                assert_eq!(
                    arbiter.policy_set().generation(),
                    before,
                    "a refused update changed the set"
                );
                refused += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let decisions: Vec<_> = deciders
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let generations = generations.lock().unwrap();
    assert_eq!(good + refused, 120);
    assert!(good >= 90 && refused >= 30);
    assert!(
        decisions.len() > 100,
        "only {} decisions ran during the swaps",
        decisions.len()
    );
    let mut seen = std::collections::BTreeSet::new();
    for d in &decisions {
        let expected = generations
            .get(&d.generation)
            .unwrap_or_else(|| panic!("decision ran on unknown generation {}", d.generation));
        assert_eq!(d.plugins.len(), 2, "a bad update's plugin took part: {d:?}");
        for p in &d.plugins {
            assert_eq!(
                p.outcome,
                Outcome::Ok,
                "failed evaluation during a swap: {p:?}"
            );
            assert_eq!(
                p.reason,
                format!("echo {expected}"),
                "generation {} mixed: {d:?}",
                d.generation
            );
        }
        let effect = match *expected {
            "allow" => DecisionEffect::Allow,
            "step-up" => DecisionEffect::StepUp,
            _ => DecisionEffect::Deny,
        };
        assert_eq!(d.effect, effect);
        seen.insert(d.generation);
    }
    assert!(seen.len() > 1, "decisions should span several generations");
}

#[test]
fn removing_a_required_plugin_is_refused() {
    let scratch = Scratch::new("required");
    let trust = dev_public_key_path();
    let base = format!(
        "[defaults]\ntimeout_ms = 2000\n[trust]\nkeys = [{{ id = \"dev\", path = \"{}\" }}, {{ id = \"fixtures\", path = \"{}\" }}]\n",
        trust.display(),
        common::fixture_public_key_path().display()
    );
    let a = "[[plugin]]\nname = \"a\"\npath = \"echo.wasm\"\nrequired = true\nsettings = { behaviour = \"echo\" }\n";
    let b = "[[plugin]]\nname = \"b\"\npath = \"echo.wasm\"\nsettings = { behaviour = \"echo\" }\n";
    write_atomically(&scratch.config_path(), format!("{base}{a}{b}").as_bytes());
    let arbiter = Arbiter::from_config_file(&scratch.config_path()).unwrap();
    // Removing an optional plugin works; adding it back works.
    write_atomically(&scratch.config_path(), format!("{base}{a}").as_bytes());
    assert_eq!(arbiter.reload().unwrap(), 2);
    assert_eq!(arbiter.plugins().len(), 1);
    write_atomically(&scratch.config_path(), format!("{base}{a}{b}").as_bytes());
    assert_eq!(arbiter.reload().unwrap(), 3);
    // Removing the required one is refused and the last good set keeps serving.
    write_atomically(&scratch.config_path(), format!("{base}{b}").as_bytes());
    let err = arbiter.reload().unwrap_err().to_string();
    assert!(err.contains("required plugin `a`"), "{err}");
    assert_eq!(arbiter.policy_set().generation(), 3);
    let status = arbiter.reload_status();
    assert_eq!(status.generation, 3);
    let last = status.last.unwrap();
    assert!(!last.ok);
    assert!(last.error.unwrap().contains("required plugin `a`"));
}

#[test]
fn watcher_swaps_in_a_new_signed_module_and_waits_for_its_signature() {
    let scratch = Scratch::new("watch");
    scratch.write_config("allow", "");
    let arbiter = Arc::new(Arbiter::from_config_file(&scratch.config_path()).unwrap());
    let _watcher = Arbiter::watch(&arbiter).unwrap();
    let wait_for = |generation: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while arbiter.policy_set().generation() < generation {
            assert!(
                Instant::now() < deadline,
                "no reload to generation {generation}: {:?}",
                arbiter.reload_status()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // A settings change in the config file.
    scratch.write_config("step-up", "");
    wait_for(2);
    assert_eq!(decide(&arbiter, 1).effect, DecisionEffect::StepUp);

    // A new plugin whose module lands first and whose signature arrives a moment later:
    // the half-done state is never served, and no refusal is reported for it.
    let module = plugin_path("misbehave");
    std::fs::copy(&module, scratch.dir.join("late.wasm")).unwrap();
    scratch.write_config(
        "step-up",
        "[[plugin]]\nname = \"late\"\npath = \"late.wasm\"\nsettings = { behaviour = \"echo\", effect = \"deny\" }\n",
    );
    std::thread::sleep(Duration::from_millis(400));
    std::fs::copy(
        module.with_extension("wasm.sig"),
        scratch.dir.join("late.wasm.sig"),
    )
    .unwrap();
    wait_for(3);
    let d = decide(&arbiter, 2);
    assert_eq!(d.plugins.len(), 3);
    assert_eq!(d.effect, DecisionEffect::Deny);
    assert!(arbiter.reload_status().last.unwrap().ok);

    // A corrupt module is refused; the last good set keeps serving.
    std::fs::write(scratch.dir.join("late.wasm"), b"\0asm garbage").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = arbiter.reload_status();
        if let Some(last) = status.last.as_ref().filter(|l| !l.ok) {
            assert!(
                last.error.as_deref().unwrap_or_default().contains("late"),
                "{last:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the corrupt module was not reported: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(arbiter.policy_set().generation(), 3);
    assert_eq!(decide(&arbiter, 3).plugins.len(), 3);
}

#[test]
fn artifact_cache_hits_and_never_loads_a_forged_artifact() {
    use arbiter_host::Engine;
    use arbiter_host::{ArtifactCache, CacheResult};
    let scratch = Scratch::new("cache");
    let cache_dir = scratch.dir.join("cache");
    let key = scratch.dir.join("cache.key");
    // The key may not live in the untrusted directory.
    assert!(ArtifactCache::open(&cache_dir, &cache_dir.join("k")).is_err());
    let cache = ArtifactCache::open(&cache_dir, &key).unwrap();
    let config = common::config("");
    let module =
        arbiter_host::verify_module("echo", &scratch.dir.join("echo.wasm"), &config.trust).unwrap();
    let load = |cache: &ArtifactCache| {
        cache
            .load(Engine::new().unwrap().wasmtime(), &module)
            .unwrap()
            .1
    };
    assert_eq!(load(&cache), CacheResult::Compiled);
    assert_eq!(
        load(&cache),
        CacheResult::Hit,
        "a fresh engine loads the artifact"
    );
    let artifact = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .unwrap();
    // Flip one byte of the native code: the MAC no longer matches, so it is recompiled.
    let mut bytes = std::fs::read(&artifact).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&artifact, &bytes).unwrap();
    assert_eq!(load(&cache), CacheResult::Compiled);
    assert_eq!(load(&cache), CacheResult::Hit, "the entry was rewritten");
    // Another key (an attacker who can write the cache but not read the key) cannot
    // produce an artifact this host accepts.
    let other = ArtifactCache::open(&cache_dir, &scratch.dir.join("other.key")).unwrap();
    assert_eq!(load(&other), CacheResult::Compiled);
    assert_eq!(
        load(&cache),
        CacheResult::Compiled,
        "the other key's artifact is refused"
    );

    // Through the config: a host with [cache] starts and decides normally.
    let toml = format!(
        "[cache]\ndir = \"{}\"\nkey_file = \"{}\"\n{}",
        cache_dir.display(),
        key.display(),
        echo("a", "allow", "")
    );
    let arbiter = Arbiter::new(&common::config(&toml)).unwrap();
    assert_eq!(
        arbiter.decide(&action("r1", None)).effect,
        DecisionEffect::Allow
    );
}

/// Waits (bounded) until the host has recorded `n` reload attempts.
fn wait_for_attempts(arbiter: &Arbiter, n: usize) -> arbiter_host::ReloadStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = arbiter.reload_status();
        if status.recent.len() >= n {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} reload attempts: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reading_the_policy_files_or_logging_beside_them_never_reloads() {
    let scratch = Scratch::new("idle");
    std::fs::write(
        scratch.dir.join("settings.json"),
        br#"{"behaviour": "echo"}"#,
    )
    .unwrap();
    let trust = common::test_trust_absolute();
    write_atomically(
        &scratch.config_path(),
        format!(
            "[defaults]\ntimeout_ms = 2000\n{trust}[[plugin]]\nname = \"a\"\npath = \"echo.wasm\"\nsettings_file = \"settings.json\"\n"
        )
        .as_bytes(),
    );
    let arbiter = Arc::new(Arbiter::from_config_file(&scratch.config_path()).unwrap());
    let _watcher = Arbiter::watch(&arbiter).unwrap();
    // Before: one read of a settings file started a reload whose own reads started the
    // next, forever; a log written next to the config reloaded on every line.
    std::fs::read(scratch.dir.join("settings.json")).unwrap();
    std::fs::read(scratch.dir.join("echo.wasm")).unwrap();
    std::fs::read(scratch.config_path()).unwrap();
    for n in 0..20 {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(scratch.dir.join("decisions.log"))
            .unwrap();
        std::io::Write::write_all(&mut log, format!("{{\"line\":{n}}}\n").as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    // Debounce (300 ms) plus settle (700 ms) plus slack for a busy machine.
    std::thread::sleep(Duration::from_secs(3));
    let status = arbiter.reload_status();
    assert_eq!(status.generation, 1, "{status:?}");
    assert!(
        status.recent.is_empty(),
        "no reload was attempted: {status:?}"
    );

    // Rewriting a watched file with the same bytes is looked at, and changes nothing.
    write_atomically(
        &scratch.dir.join("settings.json"),
        br#"{"behaviour": "echo"}"#,
    );
    let status = wait_for_attempts(&arbiter, 1);
    assert_eq!(
        status.recent[0].result,
        arbiter_host::ReloadResult::Unchanged
    );
    assert_eq!(status.generation, 1);
    // A manual reload of unchanged files is idempotent too.
    assert_eq!(
        arbiter.reload_swapped().unwrap(),
        arbiter_host::Swapped::Unchanged(1)
    );
    // A real change makes generation 2, and every attempt is counted by trigger.
    write_atomically(
        &scratch.dir.join("settings.json"),
        br#"{"behaviour": "echo", "effect": "deny"}"#,
    );
    let status = wait_for_attempts(&arbiter, 3);
    assert_eq!(status.generation, 2, "{status:?}");
    let count = |trigger: &str, result: &str| {
        status
            .counts
            .iter()
            .find(|c| c.trigger.as_str() == trigger && c.result.as_str() == result)
            .unwrap()
            .count
    };
    assert_eq!(count("watch", "unchanged"), 1);
    assert_eq!(count("watch", "success"), 1);
    assert_eq!(count("manual", "unchanged"), 1);
    assert_eq!(decide(&arbiter, 1).effect, DecisionEffect::Deny);
}

#[test]
fn special_files_are_refused_at_once_and_never_block_a_reload() {
    let scratch = Scratch::new("special");
    scratch.write_config("allow", "");
    let arbiter = Arbiter::from_config_file(&scratch.config_path()).unwrap();
    // A module path pointing at a device that never ends: before, it was read whole.
    std::os::unix::fs::symlink("/dev/zero", scratch.dir.join("zero.wasm")).unwrap();
    scratch.write_config(
        "allow",
        "[[plugin]]\nname = \"zero\"\npath = \"zero.wasm\"\n",
    );
    let err = arbiter.reload().unwrap_err().to_string();
    assert!(
        err.contains("plugin `zero`") && err.contains("not a regular file but a character device"),
        "{err}"
    );
    // A FIFO as a signature: before, the reload blocked in open(2), holding the lock.
    std::fs::copy(
        scratch.dir.join("echo.wasm"),
        scratch.dir.join("piped.wasm"),
    )
    .unwrap();
    let fifo = scratch.dir.join("piped.wasm.sig");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    scratch.write_config(
        "allow",
        "[[plugin]]\nname = \"piped\"\npath = \"piped.wasm\"\n",
    );
    let err = arbiter.reload().unwrap_err().to_string();
    assert!(err.contains("FIFO"), "{err}");
    // A module over the configured bound is refused before its signature is looked at.
    let big = scratch.dir.join("big.wasm");
    std::fs::write(&big, vec![0u8; 2 * 1024 * 1024]).unwrap();
    scratch.write_config(
        "allow",
        "[[plugin]]\nname = \"big\"\npath = \"big.wasm\"\nmax_module_mib = 1\n",
    );
    let err = arbiter.reload().unwrap_err().to_string();
    assert!(
        err.contains("more than the limit of 1048576 bytes"),
        "{err}"
    );
    assert_eq!(arbiter.policy_set().generation(), 1);
}

#[test]
fn a_reload_past_its_deadline_is_reported_and_never_swapped_in() {
    let scratch = Scratch::new("deadline");
    let write = |effect: &str| {
        let trust = common::test_trust_absolute();
        write_atomically(
            &scratch.config_path(),
            format!(
                "[defaults]\ntimeout_ms = 2000\n[reload]\ntimeout_ms = 1\n{trust}\
                 [[plugin]]\nname = \"a\"\npath = \"echo.wasm\"\nsettings = {{ behaviour = \"echo\", effect = \"{effect}\" }}\n"
            )
            .as_bytes(),
        );
    };
    write("allow");
    let arbiter = Arbiter::from_config_file(&scratch.config_path()).unwrap();
    // Loading (reading, verifying, instantiating, validating) takes far more than 1 ms.
    write("deny");
    for _ in 0..2 {
        // The second attempt is not stuck behind the first: the lock was released.
        let err = arbiter.reload().unwrap_err().to_string();
        assert!(err.contains("did not finish within 1 ms"), "{err}");
    }
    // The abandoned loads finish in the background and are dropped, never activated.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(arbiter.policy_set().generation(), 1);
    assert_eq!(decide(&arbiter, 1).effect, DecisionEffect::Allow);
    let status = arbiter.reload_status();
    assert_eq!(status.recent.len(), 2);
    assert!(status.recent.iter().all(|r| !r.ok));
}
