//! What the isolation scheme costs per evaluation (issue: "find the fastest scheme that
//! keeps the guarantee, measure it").
//!
//! - `plugin/<name>/fresh`: isolation `decision`: a new store and instance per evaluation
//!   (what the first action of every task pays under `task` isolation).
//! - `plugin/<name>/task-reuse`: isolation `task`, later actions of the same task.
//! - `plugin/<name>/shared`: isolation `shared` (opt-in), reuse across tasks.
//! - `decide/three-plugins/*`: the full decision by intent + scope + sensitivity from a
//!   JSON action, for a new task each time (fresh instances) and within one task.
//!
//! Run: `scripts/build-plugins.sh && cargo bench -p arbiter-host --bench isolation`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use arbiter_host::{Action, Arbiter, Config};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const ACTION: &str = r#"{
  "request_id": "req-1",
  "agent": {"id": "spiffe://example.org/agent/repo-bot", "attestation": "x509-svid"},
  "delegation": [{"id": "user:alice", "kind": "user", "scopes": ["fs:read", "repo:read"]}],
  "task": {"id": "task-42", "intent": "summarize-repo", "started_at": 1767222000000, "expires_at": 1767229200000},
  "tool": {"server": "fs", "name": "read_file"},
  "arguments": {"path": "/repo/src/main.rs", "max_bytes": 65536},
  "credential": {"scopes": ["fs:read", "repo:read"], "expires_at": 1767226000000, "audience": "fs"},
  "environment": {"env": "prod", "region": "eu-west-1"},
  "time": 1767225600000
}"#;

fn arbiter(isolation: &str, plugins: &[&str]) -> Arbiter {
    let mut toml = String::from("[defaults]\ntimeout_ms = 100\n");
    for p in plugins {
        toml.push_str(&format!(
            "[[plugin]]\nname = \"{p}\"\npath = \"build/plugins/{p}.wasm\"\nsettings_file = \"plugins/{p}/example-settings.json\"\nisolation = \"{isolation}\"\n"
        ));
    }
    let config = Config::from_toml(&toml, &root()).unwrap();
    Arbiter::new(&config).unwrap()
}

fn with_task(action: &Action, task: &str) -> Action {
    let mut action = action.clone();
    if let Some(t) = action.task.as_mut() {
        t.id = task.to_owned();
    }
    action
}

fn bench(c: &mut Criterion) {
    let action = Action::from_json(ACTION).unwrap();
    let counter = AtomicU64::new(0);
    for plugin in ["intent", "scope", "sensitivity"] {
        let mut group = c.benchmark_group(format!("plugin/{plugin}"));
        let fresh = arbiter("decision", &[plugin]);
        group.bench_function("fresh", |b| b.iter(|| black_box(fresh.decide(&action))));
        let task = arbiter("task", &[plugin]);
        task.decide(&action);
        group.bench_function("task-reuse", |b| b.iter(|| black_box(task.decide(&action))));
        let shared = arbiter("shared", &[plugin]);
        group.bench_function("shared-new-task", |b| {
            b.iter(|| {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                black_box(shared.decide(&with_task(&action, &format!("t{n}"))))
            })
        });
        group.finish();
    }

    let mut group = c.benchmark_group("decide/three-plugins");
    let three = arbiter("task", &["intent", "scope", "sensitivity"]);
    group.bench_function("json-same-task", |b| {
        b.iter(|| black_box(three.decide_json(black_box(ACTION)).unwrap()))
    });
    group.bench_function("parsed-same-task", |b| {
        b.iter(|| black_box(three.decide(&action)))
    });
    group.bench_function("parsed-new-task", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            black_box(three.decide(&with_task(&action, &format!("n{n}"))))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
