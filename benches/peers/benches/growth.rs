//! Cost as the rules grow: the reference rules plus 5, 20 and 50 synthetic intent/tool
//! rules (each with its scope rule), for Arbiter and the peers, on two inputs (the allowed
//! read and the step-up refund). The synthetic rules never match the inputs, so every
//! engine has to look past them, as it would in a real policy with many tools.
//!
//! Run: `scripts/build-plugins.sh && cargo bench -p arbiter-peer-bench --bench growth`.

#![expect(
    clippy::unwrap_used,
    reason = "benchmark code, never on the request path: a broken setup aborts the run"
)]

use arbiter_peer_bench::peers::{CedarPeer, INPUTS, RegoInterpreter, RegoRvm, Rules};
use arbiter_peer_bench::support;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const EXTRA: &[usize] = &[5, 20, 50];
const CASES: &[&str] = &["allow-read", "step-up-refund"];

fn growth(c: &mut Criterion) {
    for case in CASES {
        let json = INPUTS.iter().find(|(name, ..)| name == case).unwrap().1;
        let mut group = c.benchmark_group(format!("growth/{case}"));
        for &extra in EXTRA {
            let arbiter =
                support::arbiter_with_rules("task", &["intent", "scope", "sensitivity"], extra);
            group.bench_with_input(BenchmarkId::new("arbiter-json", extra), &extra, |b, _| {
                b.iter(|| black_box(arbiter.decide_json(black_box(json)).unwrap()))
            });
            let rules = Rules::reference(extra);
            let cedar = CedarPeer::new(&rules).unwrap();
            group.bench_with_input(BenchmarkId::new("cedar-json", extra), &extra, |b, _| {
                b.iter(|| black_box(cedar.decide_json(black_box(json)).unwrap()))
            });
            let mut interpreter = RegoInterpreter::new(&rules).unwrap();
            group.bench_with_input(
                BenchmarkId::new("rego-interpreter-json", extra),
                &extra,
                |b, _| b.iter(|| black_box(interpreter.decide_json(black_box(json)).unwrap())),
            );
            let mut rvm = RegoRvm::new(&rules).unwrap();
            group.bench_with_input(BenchmarkId::new("rego-rvm-json", extra), &extra, |b, _| {
                b.iter(|| black_box(rvm.decide_json(black_box(json)).unwrap()))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, growth);
criterion_main!(benches);
