//! The engines users would pick instead of Arbiter (Cedar and Rego), for the benchmarks
//! that compare against them (this package's `benches/decide.rs` and `benches/growth.rs`)
//! and the test that keeps the comparison like for like (`agreement`).
//!
//! This is a package of its own, apart from `arbiter-host`, so that the host's tests and
//! benchmarks never compile `cedar-policy` and `regorus`: the peers are only needed to
//! compare, and compiling them made every `cargo test -p arbiter-host` pay for two policy
//! engines. `cargo test --workspace` still runs the agreement test and the peers' own
//! tests (here, as unit tests); `cargo bench -p arbiter-peer-bench` runs the comparison.

// The shared benchmark support (Arbiter with the reference plugins, the inputs, the
// percentile sampler), which the host's own benchmarks compile as well.
#[path = "../../support/mod.rs"]
pub mod support;

pub mod peers;

#[cfg(test)]
mod agreement;
