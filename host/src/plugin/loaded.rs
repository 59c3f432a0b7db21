//! A loaded plugin: its verified bytes compiled once, checked against the contract, and
//! ready to evaluate actions in fresh or task-bound sandboxed instances.

use super::error::LoadError;
use crate::config::{Isolation, Mode, PluginConfig};
use crate::contract::{self, ContractVersion, DecisionInput, Evaluator, EvaluatorPre, Verdict};
use crate::model::{Effect, Obligation, Outcome, TaskSnapshot};
use crate::runtime::{Engine, InstancePool, MAX_USES, StoreState, truncate};
use crate::trust::{SignatureStatus, TrustPolicy, VerifiedModule, verify_module_bounded};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime::component::Linker;

/// Longest reason accepted from a plugin, in bytes (the contract says 1024).
pub const MAX_REASON_BYTES: usize = 1024;
/// Most obligations per verdict.
pub const MAX_OBLIGATIONS: usize = 16;
/// Minimum deadline for `describe()` and `validate()` at load time.
pub const LOAD_DEADLINE: Duration = Duration::from_secs(1);
/// Most labels per verdict.
pub const MAX_LABELS: usize = 16;
/// Longest obligation kind or label, in bytes.
pub const MAX_WORD_BYTES: usize = 64;
/// Longest obligation detail, in bytes.
pub const MAX_DETAIL_BYTES: usize = 1024;

/// What a plugin says about itself, plus what Arbiter knows about its module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginListing {
    /// Operator's name.
    pub name: String,
    /// Name from `describe()`.
    pub plugin: String,
    /// Version from `describe()`.
    pub version: String,
    /// Kind from `describe()`.
    pub kind: String,
    /// Description from `describe()`.
    pub description: String,
    /// `sha256:` digest of the module.
    pub digest: String,
    /// Id of the trusted key that signed the module; `None` only for an unsigned module
    /// loaded under the development switch `trust.allow_unsigned`.
    pub signer: Option<String>,
    /// `verified`, or `unsigned` (development switch only).
    pub signature: SignatureStatus,
    /// Enforce or monitor.
    pub mode: Mode,
    /// Instance sharing.
    pub isolation: Isolation,
    /// The contract version the module was built against, e.g. `0.1.0`.
    pub contract: &'static str,
}

/// The result of one evaluation, before combining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// How it went.
    pub outcome: Outcome,
    /// The verdict's effect, when the outcome is ok.
    pub verdict: Option<Effect>,
    /// The plugin's reason, or what went wrong.
    pub reason: String,
    /// Obligations (ok outcome only).
    pub obligations: Vec<Obligation>,
    /// Labels (ok outcome only).
    pub labels: Vec<String>,
    /// Wall time in microseconds.
    pub elapsed_us: u64,
}

/// A live instance with its store.
/// Why an instance could not be validated.
#[derive(Debug)]
enum ValidateFailure {
    /// Creating the instance failed.
    Instantiate(String),
    /// `validate()` trapped, timed out or ran out of memory.
    Fault(String),
    /// `validate()` refused the settings with this message.
    Refused(String),
}

impl std::fmt::Display for ValidateFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Instantiate(m) | Self::Fault(m) => f.write_str(m),
            Self::Refused(m) => write!(f, "validate() refused the settings: {m}"),
        }
    }
}

struct Instance {
    store: Store<StoreState>,
    evaluator: Evaluator,
    uses: u32,
}

impl Instance {
    /// Linear memory this instance holds, all its memories together.
    fn linear_bytes(&self) -> usize {
        self.store.data().limiter.linear_bytes()
    }
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("uses", &self.uses)
            .finish_non_exhaustive()
    }
}

/// A plugin ready to evaluate.
pub struct LoadedPlugin {
    config: PluginConfig,
    listing: PluginListing,
    name: Arc<str>,
    settings: Arc<str>,
    engine: wasmtime::Engine,
    pre: EvaluatorPre,
    /// Idle instances: task-bound (or shared) ones, and the spares made ahead of time
    /// (see [`crate::plugin::prewarm`]), under the plugin's `idle_*` bounds.
    pool: InstancePool<Instance>,
    /// Spares to keep: `config.prewarm`, lowered once to what fits in
    /// `idle_memory_mib` if a spare was refused for lack of room.
    spare_target: AtomicUsize,
    /// Fewer spares than `spare_target`: a refill is wanted.
    wants_spares: AtomicBool,
    /// Prewarming failed once; not retried for this load of the plugin (decisions
    /// instantiate on demand and report the error themselves).
    prewarm_failed: AtomicBool,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("listing", &self.listing)
            .finish_non_exhaustive()
    }
}

/// The linker every plugin is instantiated with: the `host` interface of every supported
/// contract version plus a capability-less WASI (see [`crate::runtime::sandbox`]).
pub fn linker(engine: &Engine) -> Result<Linker<StoreState>, LoadError> {
    let mut linker = Linker::new(engine.wasmtime());
    contract::add_to_linker(&mut linker).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
    Ok(linker)
}

impl LoadedPlugin {
    /// Reads the plugin named in `config`, checks its signature against `trust`, then
    /// compiles and checks it.
    pub fn load(
        engine: &Engine,
        linker: &Linker<StoreState>,
        config: &PluginConfig,
        trust: &TrustPolicy,
    ) -> Result<Self, LoadError> {
        let module =
            verify_module_bounded(&config.name, &config.path, trust, config.max_module_bytes)?;
        Self::from_verified(engine, linker, config, &module)
    }

    /// Compiles and checks a module that passed the signature gate, for `config`:
    /// `describe()`, then `validate()` with the configured settings.
    pub fn from_verified(
        engine: &Engine,
        linker: &Linker<StoreState>,
        config: &PluginConfig,
        module: &VerifiedModule,
    ) -> Result<Self, LoadError> {
        let loaded = Self::describe_verified(engine, linker, config, module)?;
        loaded.validate()?;
        Ok(loaded)
    }

    /// Compiles a verified module, checks it implements the contract, and runs
    /// `describe()` in the sandbox, without validating settings (`arbiter inspect`).
    pub fn describe_verified(
        engine: &Engine,
        linker: &Linker<StoreState>,
        config: &PluginConfig,
        module: &VerifiedModule,
    ) -> Result<Self, LoadError> {
        let plugin = config.name.clone();
        let digest = module.digest().to_owned();
        let mismatch = |expected: String, found: String| LoadError::PinMismatch {
            plugin: plugin.clone(),
            path: config.path.clone(),
            expected,
            found,
        };
        // Before compiling: a module that is not the pinned one never reaches the compiler.
        if let Some(pinned) = &config.pin.digest
            && *pinned != digest
        {
            return Err(mismatch(
                format!("digest `{pinned}`"),
                format!("`{digest}`"),
            ));
        }
        let component = engine.compile(module).map_err(|e| LoadError::Compile {
            plugin: plugin.clone(),
            message: format!("{e:#}"),
        })?;
        let version = contract::detect(&plugin, engine.wasmtime(), &component)?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Imports {
                plugin: plugin.clone(),
                message: format!("{e:#}"),
            })?;
        let pre = EvaluatorPre::new(version, instance_pre).map_err(|e| LoadError::WrongWorld {
            plugin: plugin.clone(),
            world: version.world(),
            message: format!("{e:#}"),
        })?;
        let mut loaded = Self {
            config: config.clone(),
            listing: PluginListing {
                name: plugin.clone(),
                plugin: String::new(),
                version: String::new(),
                kind: String::new(),
                description: String::new(),
                digest,
                signer: module.signer().map(|s| s.id.clone()),
                signature: module.status(),
                mode: config.mode,
                isolation: config.isolation,
                contract: version.as_str(),
            },
            name: Arc::from(plugin.as_str()),
            settings: Arc::from(config.settings_json.as_str()),
            engine: engine.wasmtime().clone(),
            pre,
            pool: InstancePool::new(config.isolation, config.idle),
            spare_target: AtomicUsize::new(config.prewarm),
            wants_spares: AtomicBool::new(config.prewarm > 0),
            prewarm_failed: AtomicBool::new(false),
        };
        // describe() and validate() run in throwaway instances under the plugin's memory
        // cap and a load-time deadline, so a plugin that loops or explodes at load time is
        // refused. The deadline is more generous than the per-decision one because
        // loading is off the request path and validate() may compile patterns.
        let load_deadline = config
            .limits
            .timeout
            .max(config.limits.instantiate_timeout)
            .max(LOAD_DEADLINE);
        let describe_err = |message: String| LoadError::Describe {
            plugin: plugin.clone(),
            message,
        };
        let mut instance = loaded
            .instantiate_with_deadline(load_deadline)
            .map_err(|(_, m)| describe_err(m))?;
        let info = instance
            .evaluator
            .describe(&mut instance.store)
            .map_err(|e| describe_err(loaded.classify(&instance.store, &e).1))?;
        for (field, value) in [
            ("name", &info.name),
            ("version", &info.version),
            ("kind", &info.kind),
        ] {
            if value.trim().is_empty() || value.len() > MAX_WORD_BYTES {
                return Err(describe_err(format!(
                    "`{field}` must be 1 to {MAX_WORD_BYTES} bytes, got {} bytes",
                    value.len()
                )));
            }
        }
        for (field, pinned, found) in [
            ("name", &config.pin.plugin, &info.name),
            ("kind", &config.pin.kind, &info.kind),
        ] {
            if let Some(pinned) = pinned
                && pinned != found
            {
                return Err(mismatch(
                    format!("describe() {field} `{pinned}`"),
                    format!("`{found}`"),
                ));
            }
        }
        loaded.listing.plugin = info.name;
        loaded.listing.version = info.version;
        loaded.listing.kind = info.kind;
        loaded.listing.description = truncate(&info.description, MAX_DETAIL_BYTES).to_owned();
        Ok(loaded)
    }

    /// Runs `validate()` with the configured settings; an error refuses the plugin. The
    /// instance it ran in has seen no action, so it becomes the first spare.
    fn validate(&self) -> Result<(), LoadError> {
        let plugin = self.config.name.clone();
        let instance = self.validated_instance().map_err(|failure| match failure {
            ValidateFailure::Instantiate(message) => LoadError::Describe { plugin, message },
            ValidateFailure::Fault(message) => LoadError::Settings {
                plugin,
                message: format!("validate() failed: {message}"),
            },
            ValidateFailure::Refused(message) => LoadError::Settings {
                plugin,
                message: truncate(&message, MAX_DETAIL_BYTES).to_owned(),
            },
        })?;
        if self.config.prewarm > 0 {
            self.keep_spare(instance);
        }
        Ok(())
    }

    /// Adds a spare to the pool. If it does not fit in `idle_memory_mib` beside the
    /// spares already kept, the plugin keeps only as many spares as it has now, so the
    /// prewarm thread does not make (and drop) an instance every round.
    fn keep_spare(&self, instance: Instance) -> bool {
        let bytes = instance.linear_bytes();
        if self.pool.put_spare(instance, bytes) {
            return true;
        }
        let kept = self.pool.spares();
        self.spare_target.store(kept, Ordering::Relaxed);
        tracing::warn!(
            plugin = %self.config.name,
            prewarm = self.config.prewarm,
            kept,
            instance_mib = bytes / (1024 * 1024),
            idle_memory_mib = self.config.idle.memory_bytes / (1024 * 1024),
            "spare instances do not fit in idle_memory_mib; keeping fewer than prewarm"
        );
        false
    }

    /// A fresh instance that has run `validate()` with the configured settings (and
    /// nothing else), under the load-time deadline: how plugins are checked at load and
    /// how spares are made.
    fn validated_instance(&self) -> Result<Instance, ValidateFailure> {
        let deadline = self.config.limits.timeout.max(LOAD_DEADLINE);
        let mut instance = self
            .instantiate_with_deadline(deadline)
            .map_err(|(_, message)| ValidateFailure::Instantiate(message))?;
        match instance
            .evaluator
            .validate(&mut instance.store, &self.config.settings_json)
        {
            Ok(Ok(())) => Ok(instance),
            Ok(Err(message)) => Err(ValidateFailure::Refused(message)),
            Err(e) => Err(ValidateFailure::Fault(self.classify(&instance.store, &e).1)),
        }
    }

    /// What the plugin says about itself, plus what Arbiter knows about its module.
    pub fn listing(&self) -> &PluginListing {
        &self.listing
    }

    /// The plugin's configuration.
    pub fn config(&self) -> &PluginConfig {
        &self.config
    }

    /// Idle instances held for reuse by their task (or, under `shared` isolation, by
    /// anyone); spares are not counted. At most `idle_instances`.
    pub fn idle_instances(&self) -> usize {
        self.pool.idle()
    }

    /// Linear memory held by this plugin's idle instances, spares included, in bytes.
    /// At most `idle_memory_mib`.
    pub fn idle_memory_bytes(&self) -> usize {
        self.pool.idle_bytes()
    }

    /// Drops the task's idle instance.
    pub fn forget_task(&self, task: &str) {
        self.pool.forget_task(task);
    }

    /// Spare (prewarmed, never used) instances ready now.
    pub fn spare_instances(&self) -> usize {
        self.pool.spares()
    }

    /// Whether this plugin has fewer spares than configured.
    pub fn wants_spares(&self) -> bool {
        self.wants_spares.load(Ordering::Relaxed)
    }

    fn take_spare(&self) -> Option<Instance> {
        // `spare_target` is 0 when `prewarm` is, or when not even one spare fits.
        if self.spare_target.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let spare = self.pool.take_spare();
        if !self.prewarm_failed.load(Ordering::Relaxed) {
            self.wants_spares.store(true, Ordering::Relaxed);
        }
        spare
    }

    /// Makes fresh instances until `prewarm` are ready (or as many as fit in
    /// `idle_memory_mib`). Runs on the prewarm thread: each spare is instantiated and
    /// given `validate(settings)` under the load-time deadline, exactly as at load, and
    /// has seen no action.
    pub fn refill_spares(&self) {
        self.wants_spares.store(false, Ordering::Relaxed);
        while self.pool.spares() < self.spare_target.load(Ordering::Relaxed) {
            match self.validated_instance() {
                Ok(instance) => {
                    if !self.keep_spare(instance) {
                        return;
                    }
                }
                Err(failure) => {
                    let message = failure.to_string();
                    self.prewarm_failed.store(true, Ordering::Relaxed);
                    tracing::warn!(
                        plugin = %self.config.name,
                        error = %message,
                        "cannot prewarm instances; they are created on demand"
                    );
                    return;
                }
            }
        }
    }

    /// A fresh instance in a fresh store, under the instantiation deadline (set before
    /// instantiating, so a plugin whose start-up code spins is stopped too). It is
    /// separate from the evaluation deadline because instantiation cost grows with the
    /// module (an interpreter component takes a millisecond or more), not with the
    /// action; see [`crate::config::DEFAULT_INSTANTIATE_TIMEOUT_MS`].
    fn instantiate(&self) -> Result<Instance, (Outcome, String)> {
        let timeout = self.config.limits.instantiate_timeout;
        self.instantiate_with_deadline(timeout)
            .map_err(|(outcome, reason)| match outcome {
                Outcome::Timeout => (
                    outcome,
                    format!(
                        "plugin exceeded its instantiation deadline of {} ms",
                        timeout.as_millis()
                    ),
                ),
                _ => (outcome, reason),
            })
    }

    fn instantiate_with_deadline(&self, timeout: Duration) -> Result<Instance, (Outcome, String)> {
        let state = StoreState::new(
            Arc::clone(&self.name),
            Arc::clone(&self.settings),
            self.config.limits.memory_bytes,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(Engine::deadline_ticks(timeout));
        match self.pre.instantiate(&mut store) {
            Ok(evaluator) => Ok(Instance {
                store,
                evaluator,
                uses: 0,
            }),
            Err(e) => Err(self.classify(&store, &e)),
        }
    }

    /// Maps a wasmtime error to an outcome and a message for the decision.
    fn classify(&self, store: &Store<StoreState>, error: &wasmtime::Error) -> (Outcome, String) {
        if store.data().limiter.exhausted {
            return (
                Outcome::OutOfMemory,
                format!(
                    "plugin exceeded its memory limit of {} MiB",
                    self.config.limits.memory_bytes / (1024 * 1024)
                ),
            );
        }
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => (
                Outcome::Timeout,
                format!(
                    "plugin exceeded its deadline of {} ms",
                    self.config.limits.timeout.as_millis()
                ),
            ),
            Some(trap) => (Outcome::Trap, format!("plugin trapped: {trap}")),
            None => (
                Outcome::Error,
                format!(
                    "plugin failed: {}",
                    truncate(&format!("{error:#}"), MAX_DETAIL_BYTES)
                ),
            ),
        }
    }

    /// Evaluates one action. Never fails: a fault becomes an outcome, and the instance
    /// that faulted is dropped so the next evaluation starts clean.
    pub fn evaluate(
        &self,
        input: &DecisionInput<'_>,
        task: Option<&str>,
        history: &TaskSnapshot,
    ) -> Evaluation {
        let started = Instant::now();
        let failure = |outcome: Outcome, reason: String| Evaluation {
            outcome,
            verdict: None,
            reason,
            obligations: Vec::new(),
            labels: Vec::new(),
            elapsed_us: elapsed_us(started),
        };
        let mut instance = match self.pool.take(task).or_else(|| self.take_spare()) {
            Some(instance) => instance,
            None => match self.instantiate() {
                Ok(instance) => instance,
                Err((outcome, reason)) => return failure(outcome, reason),
            },
        };
        // The evaluation gets its full deadline whether or not the instance is fresh.
        instance
            .store
            .set_epoch_deadline(Engine::deadline_ticks(self.config.limits.timeout));
        instance.store.data_mut().begin_evaluation(history.clone());
        let result = instance.evaluator.evaluate(&mut instance.store, input);
        instance.store.data_mut().end_evaluation();
        let verdict = match result {
            Ok(verdict) => verdict,
            Err(e) => {
                let (outcome, reason) = self.classify(&instance.store, &e);
                return failure(outcome, reason);
            }
        };
        match self.check_verdict(verdict) {
            Ok(mut evaluation) => {
                instance.uses += 1;
                if instance.uses < MAX_USES {
                    let bytes = instance.linear_bytes();
                    self.pool.put(task, instance, bytes);
                }
                evaluation.elapsed_us = elapsed_us(started);
                evaluation
            }
            Err(reason) => failure(Outcome::InvalidOutput, reason),
        }
    }

    /// Enforces the contract's bounds on a verdict.
    fn check_verdict(&self, verdict: Verdict) -> Result<Evaluation, String> {
        if verdict.reason.len() > MAX_REASON_BYTES {
            return Err(format!(
                "verdict reason is {} bytes, at most {MAX_REASON_BYTES} allowed",
                verdict.reason.len()
            ));
        }
        if verdict.obligations.len() > MAX_OBLIGATIONS {
            return Err(format!(
                "verdict has {} obligations, at most {MAX_OBLIGATIONS} allowed",
                verdict.obligations.len()
            ));
        }
        if verdict.labels.len() > MAX_LABELS {
            return Err(format!(
                "verdict has {} labels, at most {MAX_LABELS} allowed",
                verdict.labels.len()
            ));
        }
        for o in &verdict.obligations {
            if o.kind.trim().is_empty()
                || o.kind.len() > MAX_WORD_BYTES
                || o.detail.len() > MAX_DETAIL_BYTES
            {
                return Err(format!(
                    "obligation kind must be 1 to {MAX_WORD_BYTES} bytes and detail at most {MAX_DETAIL_BYTES} bytes"
                ));
            }
        }
        for l in &verdict.labels {
            if l.trim().is_empty() || l.len() > MAX_WORD_BYTES {
                return Err(format!("label must be 1 to {MAX_WORD_BYTES} bytes"));
            }
        }
        let name = &self.config.name;
        Ok(Evaluation {
            outcome: Outcome::Ok,
            verdict: Some(verdict.effect),
            reason: verdict.reason,
            obligations: verdict
                .obligations
                .into_iter()
                .map(|o| Obligation {
                    kind: o.kind,
                    detail: o.detail,
                    plugin: name.clone(),
                })
                .collect(),
            labels: verdict.labels,
            elapsed_us: 0,
        })
    }
}

fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

impl LoadedPlugin {
    /// The contract version the plugin was built against.
    pub fn contract_version(&self) -> ContractVersion {
        self.pre.version()
    }
}
