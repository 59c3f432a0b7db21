//! The shared Wasm engine and the epoch ticker that enforces CPU deadlines.
//!
//! Deadlines use epoch interruption rather than fuel: it costs about 1% at run time where
//! fuel costs about 20%, and its budget is wall-clock time, which is what a gateway's
//! latency budget is written in. A background thread advances the epoch every
//! [`EPOCH_TICK`]; each store's deadline is a number of ticks.

use super::artifact_cache::ArtifactCache;
use crate::trust::VerifiedModule;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::Component;

/// How often the epoch advances: the granularity of plugin deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Maximum wasm stack per instance; unbounded recursion traps cleanly at this depth.
pub const MAX_WASM_STACK: usize = 512 * 1024;

/// The Wasm engine could not be configured (a host fault, not a plugin's).
#[derive(Debug, thiserror::Error)]
#[error("cannot configure the wasm engine: {0}")]
pub struct EngineError(pub String);

/// A configured wasmtime engine with its epoch ticker.
#[derive(Debug, Clone)]
pub struct Engine {
    engine: wasmtime::Engine,
    compiled: Arc<Mutex<HashMap<String, Component>>>,
    artifacts: Arc<Mutex<Option<Arc<ArtifactCache>>>>,
    _ticker: Arc<Ticker>,
}

#[derive(Debug)]
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Engine {
    /// Builds the engine: epoch interruption on, bounded stack, no component-model async
    /// (saves ~0.5 µs per call; plugins are synchronous functions).
    pub fn new() -> Result<Self, EngineError> {
        let mut config = wasmtime::Config::new();
        config
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .concurrency_support(false)
            // Copy-on-write initial memory makes fresh instances cheap to create.
            .memory_init_cow(true);
        let engine = wasmtime::Engine::new(&config).map_err(|e| EngineError(format!("{e:#}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.weak();
        let ticker_stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("arbiter-epoch".to_owned())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match ticker_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| EngineError(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Self {
            engine,
            compiled: Arc::new(Mutex::new(HashMap::new())),
            artifacts: Arc::new(Mutex::new(None)),
            _ticker: Arc::new(Ticker { stop }),
        })
    }

    /// Compiles a module that passed the signature gate, reusing an earlier compilation
    /// of the same bytes by this engine. Only a [`VerifiedModule`] is accepted, so
    /// unverified bytes cannot reach the compiler (see [`crate::trust`]). The cache
    /// key is the digest the gate computed from exactly these bytes, so a cached
    /// component is always the compilation of exactly those bytes.
    pub fn compile(&self, module: &VerifiedModule) -> wasmtime::Result<Component> {
        let (digest, bytes) = (module.digest(), module.bytes());
        let cached = self
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .cloned();
        if let Some(component) = cached {
            return Ok(component);
        }
        let disk = self
            .artifacts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let component = match disk {
            Some(cache) => cache.load(&self.engine, module)?.0,
            None => Component::new(&self.engine, bytes)?,
        };
        self.compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.to_owned(), component.clone());
        Ok(component)
    }

    /// Uses an on-disk artifact cache for compilations this engine has not done yet in
    /// this process (see [`crate::runtime::artifact_cache`] for why the cache can be untrusted).
    pub fn set_artifact_cache(&self, cache: Option<Arc<ArtifactCache>>) {
        *self.artifacts.lock().unwrap_or_else(|p| p.into_inner()) = cache;
    }

    /// The wasmtime engine.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.engine
    }

    /// Deadline in epoch ticks for a timeout: rounded up, plus one because the current
    /// tick may be about to end, so a plugin never gets less than its timeout.
    pub fn deadline_ticks(timeout: Duration) -> u64 {
        let tick = EPOCH_TICK.as_micros().max(1);
        let ticks = timeout.as_micros().div_ceil(tick);
        u64::try_from(ticks)
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }
}
