//! What a policy costs per language: the `contract` policy's four twins (Rust,
//! JavaScript, Python, C), same rules, same action, host defaults.
//!
//! Per twin:
//! - `size`: component bytes (printed);
//! - `compile`: `Component::new` with the host's engine configuration (printed, median of
//!   three: seconds per run for the interpreters, too slow for criterion's sampling);
//! - `languages/<twin>/deserialize`: `Component::deserialize` of the serialized artifact,
//!   i.e. loading a precompiled module from a cache instead of compiling;
//! - `languages/<twin>/fresh`: one decision with a fresh instance (isolation `decision`;
//!   what the first action of every task pays under the default `task` isolation);
//! - `languages/<twin>/reused`: one decision reusing the task's instance.
//!
//! The decisions run with the host's default limits, so the bench also checks that every
//! twin works out of the box (a timeout or out-of-memory outcome aborts it).
//!
//! Run: `scripts/build-contract-plugins.sh && cargo bench -p arbiter-host --bench languages`.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark code, never on the request path: a broken setup aborts the run"
)]

use arbiter_host::Engine;
use arbiter_host::{Action, Arbiter, Config, Outcome};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmtime::component::Component;

const TWINS: [&str; 4] = ["rust", "js", "python", "c"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn arbiter(engine: &Engine, twin: &str, isolation: &str) -> Arbiter {
    let toml = format!(
        "[trust]\nkeys = [{{ id = \"dev\", path = \"build/keys/dev.pub.pem\" }}]\n[[plugin]]\nname = \"contract\"\npath = \"build/plugins/contract-{twin}.wasm\"\n\
         settings_file = \"tests/conformance/settings.json\"\nisolation = \"{isolation}\"\n"
    );
    let config = Config::from_toml(&toml, &root()).unwrap();
    Arbiter::with_engine(engine.clone(), &config).unwrap()
}

/// Median and 99th percentile of the plugin's `elapsed_us` over `n` decisions.
fn plugin_us(arbiter: &Arbiter, action: &Action, n: usize) -> (u64, u64) {
    let mut samples: Vec<u64> = (0..n)
        .map(|_| arbiter.decide(action).plugins[0].elapsed_us)
        .collect();
    samples.sort_unstable();
    (samples[n / 2], samples[n * 99 / 100])
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[allow(
    unsafe_code,
    reason = "deserializing an artifact this process just serialized"
)]
fn deserialize(engine: &wasmtime::Engine, artifact: &[u8]) -> Component {
    // SAFETY: `artifact` was produced by `Component::serialize` on this engine's
    // configuration in this process; it is trusted input.
    unsafe { Component::deserialize(engine, artifact).unwrap() }
}

fn bench(c: &mut Criterion) {
    let text =
        std::fs::read_to_string(root().join("tests/conformance/allow-full/action.json")).unwrap();
    let action = Action::from_json(&text).unwrap();
    // The host's own cost of a decision (parsing nothing, combining, recording): a
    // decision with no plugin, to subtract from the per-language figures.
    let engine = Engine::new().unwrap();
    let empty = Config::from_toml("", &root()).unwrap();
    let baseline = Arbiter::with_engine(engine, &empty).unwrap();
    c.bench_function("languages/baseline/no-plugin", |b| {
        b.iter(|| black_box(baseline.decide(&action)))
    });
    for twin in TWINS {
        let path = root().join(format!("build/plugins/contract-{twin}.wasm"));
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!(
                "languages: `{}` is missing: run scripts/build-contract-plugins.sh",
                path.display()
            );
            continue;
        };
        // A fresh engine per twin, so `compile` is never served by the in-memory cache.
        let engine = Engine::new().unwrap();
        let compile = median(
            (0..3)
                .map(|_| {
                    let started = Instant::now();
                    black_box(Component::new(engine.wasmtime(), &bytes).unwrap());
                    started.elapsed()
                })
                .collect(),
        );
        let artifact = Component::new(engine.wasmtime(), &bytes)
            .unwrap()
            .serialize()
            .unwrap();
        eprintln!(
            "languages/{twin}: component {} bytes, compile {:.1} ms (median of 3), artifact {} bytes",
            bytes.len(),
            compile.as_secs_f64() * 1000.0,
            artifact.len()
        );

        let mut group = c.benchmark_group(format!("languages/{twin}"));
        group.bench_function("deserialize", |b| {
            b.iter(|| black_box(deserialize(engine.wasmtime(), &artifact)))
        });
        let fresh = arbiter(&engine, twin, "decision");
        let check = fresh.decide(&action);
        assert_eq!(check.plugins[0].outcome, Outcome::Ok, "{twin}: {check:?}");
        group.bench_function("fresh", |b| b.iter(|| black_box(fresh.decide(&action))));
        let reused = arbiter(&engine, twin, "task");
        let check = reused.decide(&action);
        assert_eq!(check.plugins[0].outcome, Outcome::Ok, "{twin}: {check:?}");
        group.bench_function("reused", |b| b.iter(|| black_box(reused.decide(&action))));
        group.finish();
        // The plugin's share of a decision, as the decision records it (`elapsed_us`:
        // instance from the pool or freshly made, the call, the verdict checks).
        let fresh_us = plugin_us(&fresh, &action, 300);
        let reused_us = plugin_us(&reused, &action, 3000);
        eprintln!(
            "languages/{twin}: plugin elapsed_us median/p99: fresh {}/{}, reused {}/{}",
            fresh_us.0, fresh_us.1, reused_us.0, reused_us.1
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
