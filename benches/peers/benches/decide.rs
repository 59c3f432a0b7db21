//! The full decision, side by side with the engines users would pick instead.
//!
//! - `decide/json/<input>`: Arbiter with the three reference plugins (intent, scope,
//!   sensitivity; example settings; default `task` isolation), from the action JSON to a
//!   decision, for later actions of a task (its plugin instances are reused).
//! - `decide/parsed/<input>`: the same from an already parsed [`Action`].
//! - `decide/new-task/<input>`: the first action of a new task each time: three fresh
//!   plugin instances.
//! - `peers/<engine>/<input>`: the same decisions by equivalent Cedar policies (from the
//!   JSON, and from a prepared request) and Rego policies (regorus interpreter and RVM).
//!
//! The inputs are `support::inputs::INPUTS`; `src/agreement.rs` checks that every
//! engine reaches the same effect on each, so the comparison is like for like. After the
//! criterion groups, the binary prints latency percentiles over all inputs (criterion
//! reports means), which is what BENCHMARKS.md quotes.
//!
//! Run: `scripts/build-plugins.sh && cargo bench -p arbiter-peer-bench --bench decide`.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark code, never on the request path: a broken setup aborts the run"
)]

use arbiter_host::Action;
use arbiter_peer_bench::peers::{CedarPeer, INPUTS, RegoInterpreter, RegoRvm, Rules};
use arbiter_peer_bench::support;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

const PLUGINS: &[&str] = &["intent", "scope", "sensitivity"];

fn decide(c: &mut Criterion) {
    let arbiter = support::arbiter("task", PLUGINS);
    let counter = AtomicU64::new(0);
    let mut group = c.benchmark_group("decide");
    for (name, json, _) in INPUTS {
        let action = Action::from_json(json).unwrap();
        group.bench_function(format!("json/{name}"), |b| {
            b.iter(|| black_box(arbiter.decide_json(black_box(json)).unwrap()))
        });
        group.bench_function(format!("parsed/{name}"), |b| {
            b.iter(|| black_box(arbiter.decide(black_box(&action))))
        });
        group.bench_function(format!("new-task/{name}"), |b| {
            b.iter_batched(
                || {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let mut action = action.clone();
                    if let Some(task) = action.task.as_mut() {
                        task.id = format!("bench-{n}");
                    }
                    action
                },
                |action| black_box(arbiter.decide(&action)),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn peers(c: &mut Criterion) {
    let rules = Rules::reference(0);
    let cedar = CedarPeer::new(&rules).unwrap();
    let mut interpreter = RegoInterpreter::new(&rules).unwrap();
    let mut rvm = RegoRvm::new(&rules).unwrap();
    let mut group = c.benchmark_group("peers");
    for (name, json, _) in INPUTS {
        group.bench_function(format!("cedar-json/{name}"), |b| {
            b.iter(|| black_box(cedar.decide_json(black_box(json)).unwrap()))
        });
        let request = cedar.prepare(json).unwrap();
        group.bench_function(format!("cedar-prepared/{name}"), |b| {
            b.iter(|| black_box(cedar.decide_prepared(black_box(&request))))
        });
        group.bench_function(format!("rego-interpreter-json/{name}"), |b| {
            b.iter(|| black_box(interpreter.decide_json(black_box(json)).unwrap()))
        });
        group.bench_function(format!("rego-rvm-json/{name}"), |b| {
            b.iter(|| black_box(rvm.decide_json(black_box(json)).unwrap()))
        });
        let value = regorus::Value::from_json_str(json).unwrap();
        group.bench_function(format!("rego-rvm-value/{name}"), |b| {
            b.iter(|| black_box(rvm.decide_value(black_box(&value)).unwrap()))
        });
    }
    group.finish();
}

/// Percentiles over all inputs in turn, one decision per sample.
fn latency(_: &mut Criterion) {
    const SAMPLES: usize = 20_000;
    // Set when profiling one criterion benchmark (`--profile-time`), so the profile holds
    // only that benchmark.
    if std::env::var_os("ARBITER_BENCH_SKIP_LATENCY").is_some() {
        return;
    }
    let arbiter = support::arbiter("task", PLUGINS);
    let rules = Rules::reference(0);
    let cedar = CedarPeer::new(&rules).unwrap();
    let mut interpreter = RegoInterpreter::new(&rules).unwrap();
    let mut rvm = RegoRvm::new(&rules).unwrap();
    let mut i = 0usize;
    let mut next = || {
        i += 1;
        INPUTS[i % INPUTS.len()].1
    };
    println!("\nlatency over all inputs ({SAMPLES} decisions each):");
    let same_task = support::percentiles(SAMPLES, || {
        black_box(arbiter.decide_json(next()).unwrap());
    });
    println!("  arbiter json, same task    {same_task}");
    let new_task_inputs: Vec<String> = (0..SAMPLES + SAMPLES / 10)
        .map(|n| support::with_task_id(INPUTS[n % INPUTS.len()].1, &format!("lat-{n}")))
        .collect();
    let mut n = 0usize;
    let new_task = support::percentiles(SAMPLES, || {
        n += 1;
        black_box(arbiter.decide_json(&new_task_inputs[n - 1]).unwrap());
    });
    println!("  arbiter json, new task     {new_task}");
    // New tasks arriving one per millisecond (1,000 new tasks/s, each decision then idle
    // until the next): the prewarm thread has time to refill, as on a gateway that is not
    // saturated. Measured with the default `prewarm = 2` and with prewarming off.
    for prewarm in [2, 0] {
        let paced = support::arbiter_prewarm("task", PLUGINS, prewarm);
        let mut n = 0usize;
        let spaced = support::percentiles_with_setup(
            2_000,
            || {
                std::thread::sleep(std::time::Duration::from_millis(1));
                n += 1;
                support::with_task_id(INPUTS[n % INPUTS.len()].1, &format!("p{n}"))
            },
            |input| {
                black_box(paced.decide_json(&input).unwrap());
            },
        );
        println!("  arbiter json, new task every 1 ms, prewarm {prewarm}: {spaced}");
    }
    // The control for the paced runs: the same pacing within one task (reused
    // instances), which shows what idling between decisions costs by itself.
    let paced = support::arbiter("task", PLUGINS);
    let mut n = 0usize;
    let control = support::percentiles_with_setup(
        2_000,
        || {
            std::thread::sleep(std::time::Duration::from_millis(1));
            n += 1;
            INPUTS[n % INPUTS.len()].1
        },
        |input| {
            black_box(paced.decide_json(input).unwrap());
        },
    );
    println!("  arbiter json, same task every 1 ms (control): {control}");
    let cedar_json = support::percentiles(SAMPLES, || {
        black_box(cedar.decide_json(next()).unwrap());
    });
    println!("  cedar json                 {cedar_json}");
    let interp = support::percentiles(SAMPLES, || {
        black_box(interpreter.decide_json(next()).unwrap());
    });
    println!("  rego interpreter json      {interp}");
    let rvm_json = support::percentiles(SAMPLES, || {
        black_box(rvm.decide_json(next()).unwrap());
    });
    println!("  rego rvm json              {rvm_json}");
}

criterion_group!(benches, decide, peers, latency);
criterion_main!(benches);
