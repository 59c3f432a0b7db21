//! The host's integration tests, in one test binary (`cargo test -p arbiter-host --test
//! integration`; a module name filters, e.g. `-- golden::`). Each file of `tests/` is a
//! module, `common` their shared helpers; the case folders (`tests/golden/`,
//! `tests/conformance/`) are data, found from the workspace root.
//!
//! One binary, not one per file: each test binary links wasmtime and axum (~400 MB in a
//! debug build), and linking nine of them dominated the test build.
//!
//! Every test runs on a thread of this one process, next to tests of other modules. So no
//! test may change process-wide state: environment variables are given to child
//! processes (`Command::env`), never set in-process (`BLESS` and `GOLDEN_EXPLAIN` are
//! only read); log captures use scoped, thread-local subscribers
//! (`tracing::subscriber::with_default`), never a global one; paths are resolved from
//! the workspace root, never from the current directory; and scratch directories are
//! named after their module or test (plus the process id), or made by `tempfile`.

// Always true here (an integration test is only built as a test); it marks the whole crate,
// helper functions included, as test code for clippy's `allow-*-in-tests` (clippy.toml),
// which otherwise covers only `#[test]` functions in an integration test.
#![cfg(test)]

mod common;

mod conformance;
mod golden;
mod hot_swap;
mod identity;
mod mcp_gateway;
mod prewarm;
mod sandbox;
mod server;
mod signing;
mod task_history;
mod task_store_redis;
