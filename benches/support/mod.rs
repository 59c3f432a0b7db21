//! What the benchmarks share: Arbiter configured with the reference plugins (optionally
//! with extra synthetic rules for the growth benchmark), the benchmark inputs, and a
//! latency sampler for percentiles, which criterion does not report.
//!
//! Two packages compile this module: `arbiter-host` (its benchmarks, as `mod support;`)
//! and `arbiter-peer-bench` (`benches/peers/`, as a module of its library, next to the
//! Cedar and Rego peers). Nothing here may depend on a peer engine.

#![allow(dead_code, reason = "each benchmark uses a part of it")]
#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark setup, never on the request path: a missing plugin or settings file aborts the run, with the fix"
)]

pub mod inputs;

use arbiter_host::{Arbiter, Config};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The workspace root: the nearest directory above the compiling package (`host/` or
/// `benches/peers/`, at different depths) that holds the workspace's `Cargo.lock`.
pub fn root() -> PathBuf {
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    package
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or(package)
        .to_path_buf()
}

static SETTINGS_WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The trust table for the development key that `scripts/build-plugins.sh` signs with.
pub const TRUST: &str = "[trust]\nkeys = [{ id = \"dev\", path = \"build/keys/dev.pub.pem\" }]\n";

/// Arbiter with the given reference plugins, their example settings and `isolation`
/// (`task` is the default).
pub fn arbiter(isolation: &str, plugins: &[&str]) -> Arbiter {
    arbiter_with_rules(isolation, plugins, 0)
}

/// Arbiter with the given reference plugins, their example settings plus `extra`
/// synthetic intent and scope rules (as the peers' `Rules::reference` adds them: intent
/// `synthetic-{i}` allows tool `svc{i}/op{i}`, which needs scope `svc{i}:use`).
/// The synthetic scope rules come *first*, so every lookup of a real tool scans them.
pub fn arbiter_with_rules(isolation: &str, plugins: &[&str], extra: usize) -> Arbiter {
    arbiter_with(isolation, plugins, extra, None)
}

/// Arbiter with the reference plugins and `prewarm` spare instances per plugin
/// (`None`: the default).
pub fn arbiter_prewarm(isolation: &str, plugins: &[&str], prewarm: usize) -> Arbiter {
    arbiter_with(isolation, plugins, 0, Some(prewarm))
}

fn arbiter_with(
    isolation: &str,
    plugins: &[&str],
    extra: usize,
    prewarm: Option<usize>,
) -> Arbiter {
    let prewarm = prewarm
        .map(|n| format!("prewarm = {n}\n"))
        .unwrap_or_default();
    let mut toml = format!("[defaults]\ntimeout_ms = 100\n{prewarm}{TRUST}");
    let dir = root().join("target/bench-settings");
    std::fs::create_dir_all(&dir).expect("target/bench-settings");
    for plugin in plugins {
        let file = dir.join(format!("{plugin}-{extra}.json"));
        // Tests build hosts from several threads: write aside and rename, so a reader
        // never sees a half-written file.
        let unique = SETTINGS_WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let aside = dir.join(format!(
            "{plugin}-{extra}.json.{}-{unique}",
            std::process::id()
        ));
        std::fs::write(&aside, settings(plugin, extra).to_string()).expect("settings file");
        std::fs::rename(&aside, &file).expect("settings file");
        toml.push_str(&format!(
            "[[plugin]]\nname = \"{plugin}\"\npath = \"build/plugins/{plugin}.wasm\"\n\
             isolation = \"{isolation}\"\nsettings_file = {:?}\n",
            file.display().to_string()
        ));
    }
    let config = Config::from_toml(&toml, &root()).expect("benchmark config");
    Arbiter::new(&config).expect("run scripts/build-plugins.sh first")
}

/// A plugin's example settings with `extra` synthetic rules.
pub fn settings(plugin: &str, extra: usize) -> Value {
    let path = root().join(format!("plugins/{plugin}/example-settings.json"));
    let text = std::fs::read_to_string(&path).expect("example settings");
    let mut settings: Value = serde_json::from_str(&text).expect("example settings JSON");
    match plugin {
        "intent" => {
            let intents = settings["intents"].as_object_mut().expect("intents");
            for i in 0..extra {
                intents.insert(
                    format!("synthetic-{i}"),
                    json!({"description": "synthetic", "tools": [{"tool": format!("svc{i}/op{i}")}]}),
                );
            }
        }
        "scope" => {
            let rules = settings["rules"].as_array_mut().expect("rules");
            let synthetic = (0..extra).map(
                |i| json!({"tools": [format!("svc{i}/op{i}")], "scopes": [format!("svc{i}:use")]}),
            );
            let real = std::mem::take(rules);
            rules.extend(synthetic);
            rules.extend(real);
        }
        _ => {}
    }
    settings
}

/// The benchmark input as a JSON text with its task id replaced, so each decision can
/// belong to a new task.
pub fn with_task_id(json: &str, task: &str) -> String {
    let mut value: Value = serde_json::from_str(json).expect("input JSON");
    value["task"]["id"] = Value::String(task.to_owned());
    value.to_string()
}

/// Latency percentiles of `f`, from `samples` timed calls after `samples / 10` warm-up
/// calls. Criterion reports a mean and its confidence interval; the targets are about
/// the median and the tail, so those are measured here, one call at a time.
pub fn percentiles(samples: usize, mut f: impl FnMut()) -> Percentiles {
    percentiles_with_setup(samples, || (), |()| f())
}

/// Like [`percentiles`], with an untimed `setup` before each timed call of `f`.
pub fn percentiles_with_setup<I>(
    samples: usize,
    mut setup: impl FnMut() -> I,
    mut f: impl FnMut(I),
) -> Percentiles {
    for _ in 0..samples / 10 {
        f(setup());
    }
    let mut times: Vec<u64> = Vec::with_capacity(samples);
    for _ in 0..samples {
        let input = setup();
        let started = Instant::now();
        f(input);
        times.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    times.sort_unstable();
    let at = |q: f64| {
        let index = ((times.len() as f64 - 1.0) * q).round() as usize;
        times[index.min(times.len() - 1)] as f64 / 1000.0
    };
    Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
    }
}

/// Latency percentiles, µs.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:>8.2} µs   p90 {:>8.2} µs   p99 {:>8.2} µs",
            self.p50, self.p90, self.p99
        )
    }
}
