//! One plugin at a time: what evaluation costs under each isolation mode, and what
//! loading a component costs, compiled from its bytes or from a precompiled artifact.
//!
//! - `plugin/<name>/fresh`: isolation `decision` with `prewarm = 0`: a new store and
//!   instance per evaluation, made on the request path (what the first action of every
//!   task pays under `task` isolation when no prewarmed instance is ready).
//! - `plugin/<name>/task-reuse`: isolation `task` (the default), later actions of the
//!   same task (the task's history grows to its bound of 64 entries).
//! - `plugin/<name>/shared-new-task`: isolation `shared` (opt-in), a new task each time.
//! - `load/<name>/compile`: `Component::new` from the verified bytes (a new engine each
//!   time, so no in-memory cache).
//! - `load/<name>/precompiled`: the same component from the HMAC-authenticated on-disk
//!   artifact cache.
//!
//! Run: `scripts/build-plugins.sh && cargo bench -p arbiter-host --bench plugin`.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark code, never on the request path: a broken setup aborts the run"
)]

mod support;

use arbiter_host::ArtifactCache;
use arbiter_host::Engine;
use arbiter_host::{Action, Config, verify_module};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use support::inputs::INPUTS;

const PLUGINS: &[&str] = &["intent", "scope", "sensitivity"];

fn with_task(action: &Action, task: &str) -> Action {
    let mut action = action.clone();
    if let Some(t) = action.task.as_mut() {
        t.id = task.to_owned();
    }
    action
}

fn evaluate(c: &mut Criterion) {
    let action = Action::from_json(INPUTS[0].1).unwrap();
    let counter = AtomicU64::new(0);
    for plugin in PLUGINS {
        let mut group = c.benchmark_group(format!("plugin/{plugin}"));
        let fresh = support::arbiter_prewarm("decision", &[plugin], 0);
        group.bench_function("fresh", |b| b.iter(|| black_box(fresh.decide(&action))));
        let task = support::arbiter("task", &[plugin]);
        task.decide(&action);
        group.bench_function("task-reuse", |b| b.iter(|| black_box(task.decide(&action))));
        let shared = support::arbiter("shared", &[plugin]);
        group.bench_function("shared-new-task", |b| {
            b.iter_batched(
                || {
                    with_task(
                        &action,
                        &format!("t{}", counter.fetch_add(1, Ordering::Relaxed)),
                    )
                },
                |action| black_box(shared.decide(&action)),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

fn load(c: &mut Criterion) {
    let trust = Config::from_toml(support::TRUST, &support::root())
        .unwrap()
        .trust;
    let cache_dir = tempfile::tempdir().unwrap();
    let key_file = cache_dir.path().join("cache.key");
    let cache = ArtifactCache::open(&cache_dir.path().join("artifacts"), &key_file).unwrap();
    let engine = Engine::new().unwrap();
    for plugin in PLUGINS {
        let path = support::root().join(format!("build/plugins/{plugin}.wasm"));
        let module = verify_module(plugin, &path, &trust).unwrap();
        let mut group = c.benchmark_group(format!("load/{plugin}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(10));
        group.bench_function("compile", |b| {
            b.iter_batched(
                || Engine::new().unwrap(),
                |engine| black_box(engine.compile(&module).unwrap()),
                BatchSize::PerIteration,
            )
        });
        cache.load(engine.wasmtime(), &module).unwrap();
        group.bench_function("precompiled", |b| {
            b.iter(|| black_box(cache.load(engine.wasmtime(), &module).unwrap()))
        });
        group.finish();
    }
}

criterion_group!(benches, evaluate, load);
criterion_main!(benches);
