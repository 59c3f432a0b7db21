//! The sandbox each plugin instance runs in: what its store holds and what it may do.
//!
//! Deny by default. A plugin gets the contract's host functions (log, settings, its
//! task's history and labels: see [`StoreState::log`] and below) and, if it was
//! built against WASI (as Rust `std`, JavaScript and Python guests are), a WASI context
//! with **no** preopened directories, no environment variables, no arguments, closed
//! stdin and discarded stdout/stderr, all sockets denied, no name lookup, and frozen
//! clocks (policies read the action's `time`, so decisions are reproducible and a plugin
//! cannot time side channels). The WASI context is created lazily on the first WASI call,
//! so plugins that never touch WASI pay nothing for it.
//!
//! Memory is capped per instance by [`MemoryLimiter`], which also records that a grow
//! was refused so the failure is reported as `out-of-memory` rather than a generic trap.

use crate::model::TaskSnapshot;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

/// Most log lines a plugin may write per evaluation; the rest are dropped (and counted).
pub const MAX_LOG_LINES: u32 = 32;
/// Longest log line kept, in bytes.
pub const MAX_LOG_BYTES: usize = 1024;
/// Most table elements per instance.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Most core instances, tables and memories a component may create.
pub const MAX_INSTANCES: usize = 64;

/// Per-instance state held in the wasmtime store.
pub struct StoreState {
    plugin: Arc<str>,
    settings: Arc<str>,
    pub(crate) limiter: MemoryLimiter,
    log_lines: u32,
    dropped_log_lines: u32,
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    /// The task of the action being evaluated, served by `host.history` and
    /// `host.task-labels`; empty between evaluations.
    task: TaskSnapshot,
}

impl std::fmt::Debug for StoreState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreState")
            .field("plugin", &self.plugin)
            .field("wasi", &self.wasi.is_some())
            .finish_non_exhaustive()
    }
}

impl StoreState {
    /// Fresh state for one instance of `plugin`.
    pub fn new(plugin: Arc<str>, settings: Arc<str>, memory_bytes: usize) -> Self {
        Self {
            plugin,
            settings,
            limiter: MemoryLimiter::new(memory_bytes),
            log_lines: 0,
            dropped_log_lines: 0,
            wasi: None,
            table: ResourceTable::new(),
            task: TaskSnapshot::default(),
        }
    }

    /// Resets per-evaluation counters before an instance is reused.
    pub fn begin_evaluation(&mut self, task: TaskSnapshot) {
        self.task = task;
        self.log_lines = 0;
        self.dropped_log_lines = 0;
        self.limiter.exhausted = false;
    }

    /// Forgets the evaluated action's task, so an instance shared across tasks
    /// (`isolation = "shared"`) never shows one task's history to another.
    pub fn end_evaluation(&mut self) {
        self.task = TaskSnapshot::default();
    }
}

/// A wall clock stuck at the Unix epoch.
struct FrozenWallClock;

impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// A monotonic clock that never advances.
struct FrozenMonotonicClock;

impl HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

fn empty_wasi_ctx() -> WasiCtx {
    WasiCtxBuilder::new()
        .wall_clock(FrozenWallClock)
        .monotonic_clock(FrozenMonotonicClock)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let ctx = self.wasi.get_or_insert_with(empty_wasi_ctx);
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

/// The level of a plugin's log line (each contract version's `log-level` maps to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginLogLevel {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

/// The host services behind the contract's `host` interface, independent of its version:
/// each contract module (`crate::contract`) implements its generated `Host` trait by
/// calling these.
impl StoreState {
    /// `host.log`: at most [`MAX_LOG_LINES`] lines of at most [`MAX_LOG_BYTES`] per
    /// evaluation, under the `arbiter::plugin` target.
    pub fn log(&mut self, level: PluginLogLevel, message: &str) {
        if self.log_lines >= MAX_LOG_LINES {
            self.dropped_log_lines = self.dropped_log_lines.saturating_add(1);
            return;
        }
        self.log_lines += 1;
        let message = truncate(message, MAX_LOG_BYTES);
        let plugin = &*self.plugin;
        match level {
            PluginLogLevel::Trace => {
                tracing::trace!(target: "arbiter::plugin", plugin, "{message}")
            }
            PluginLogLevel::Debug => {
                tracing::debug!(target: "arbiter::plugin", plugin, "{message}")
            }
            PluginLogLevel::Info => tracing::info!(target: "arbiter::plugin", plugin, "{message}"),
            PluginLogLevel::Warn => tracing::warn!(target: "arbiter::plugin", plugin, "{message}"),
            PluginLogLevel::Error => {
                tracing::error!(target: "arbiter::plugin", plugin, "{message}")
            }
        }
    }

    /// `host.settings`: the operator's settings as JSON text.
    pub fn settings(&self) -> &str {
        &self.settings
    }

    /// `host.history` and `host.task-labels`: the task of the action being evaluated.
    pub fn task(&self) -> &TaskSnapshot {
        &self.task
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// Caps linear memory and table growth, remembers a refused memory grow, and keeps the
/// store's total linear memory (what [`crate::runtime::instance_pool`] bounds for idle instances).
#[derive(Debug)]
pub struct MemoryLimiter {
    memory_bytes: usize,
    /// Set when the plugin tried to grow memory past the cap.
    pub exhausted: bool,
    /// Linear memory of every memory in the store, in bytes.
    linear_bytes: usize,
    /// The last permitted growth, taken back if the grow then failed.
    last_growth: usize,
}

impl MemoryLimiter {
    fn new(memory_bytes: usize) -> Self {
        Self {
            memory_bytes,
            exhausted: false,
            linear_bytes: 0,
            last_growth: 0,
        }
    }

    /// The store's linear memory in bytes, all its memories together. wasmtime asks the
    /// limiter before creating a memory (from size 0) and before each growth, and a
    /// memory never shrinks, so the sum of permitted growths is the current size.
    pub fn linear_bytes(&self) -> usize {
        self.linear_bytes
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            // Trap at once instead of returning -1: a guest told "no" usually aborts in a
            // way that looks like any other trap (or spins retrying), and the operator
            // deserves to see `out-of-memory`.
            self.exhausted = true;
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes exceeded (wanted {desired})",
                self.memory_bytes
            ));
        }
        self.last_growth = desired.saturating_sub(current);
        self.linear_bytes = self.linear_bytes.saturating_add(self.last_growth);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // Permitted, but the host could not map it: the memory kept its old size.
        self.linear_bytes = self.linear_bytes.saturating_sub(self.last_growth);
        self.last_growth = 0;
        tracing::debug!(target: "arbiter::plugin", "memory grow failed: {error:#}");
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_INSTANCES
    }
}
