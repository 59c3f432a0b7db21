//! An immutable set of loaded plugins. Every decision runs entirely on one set; a new
//! configuration produces a new set with the next generation number.

use crate::config::{Config, DefaultEffect};
use crate::plugin::LoadError;
use crate::plugin::{LoadedPlugin, PluginListing, linker};
use crate::runtime::Engine;
use crate::trust::{VerifiedModule, verify_module_bounded};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};

/// Loaded plugins plus the combining defaults, tagged with a generation.
#[derive(Debug)]
pub struct PolicySet {
    generation: u64,
    digest: String,
    plugins: Vec<LoadedPlugin>,
    when_all_abstain: DefaultEffect,
    /// A refill of spare instances is queued with the prewarmer.
    refill_queued: AtomicBool,
    /// The configuration this set was loaded from, to tell an unchanged reload.
    config: Config,
}

impl PolicySet {
    /// Loads every plugin in `config`. Any plugin that fails to load fails the whole
    /// set: starting with a policy missing is failing open.
    pub fn load(engine: &Engine, config: &Config, generation: u64) -> Result<Self, LoadError> {
        let modules = Self::verify(config)?;
        Self::build(engine, config, &modules, generation)
    }

    /// Reads every plugin's module and checks its signature (no compiling): the first
    /// half of [`PolicySet::load`], enough to tell whether anything changed.
    pub(crate) fn verify(config: &Config) -> Result<Vec<VerifiedModule>, LoadError> {
        config
            .plugins
            .iter()
            .map(|p| {
                verify_module_bounded(&p.name, &p.path, &config.trust, p.max_module_bytes)
                    .map_err(LoadError::from)
            })
            .collect()
    }

    /// Compiles and checks verified modules (one per plugin of `config`, in order).
    pub(crate) fn build(
        engine: &Engine,
        config: &Config,
        modules: &[VerifiedModule],
        generation: u64,
    ) -> Result<Self, LoadError> {
        let linker = linker(engine)?;
        let mut plugins = Vec::with_capacity(config.plugins.len());
        for (plugin, module) in config.plugins.iter().zip(modules) {
            plugins.push(LoadedPlugin::from_verified(
                engine, &linker, plugin, module,
            )?);
        }
        let mut hasher = Sha256::new();
        for p in &plugins {
            hasher.update(p.listing().name.as_bytes());
            hasher.update([0]);
            hasher.update(p.listing().digest.as_bytes());
            hasher.update([0]);
            hasher.update(p.config().settings_json.as_bytes());
            hasher.update([0]);
        }
        Ok(Self {
            generation,
            digest: format!("sha256:{}", hex::encode(hasher.finalize())),
            plugins,
            when_all_abstain: config.when_all_abstain,
            refill_queued: AtomicBool::new(false),
            config: config.clone(),
        })
    }

    /// Whether `config` with these verified modules is exactly what this set was loaded
    /// from: the same configuration (plugins, settings, limits, trust keys) and, plugin by
    /// plugin, the same module bytes signed by the same key.
    pub(crate) fn is_same(&self, config: &Config, modules: &[VerifiedModule]) -> bool {
        self.config == *config
            && self.plugins.len() == modules.len()
            && self.plugins.iter().zip(modules).all(|(p, m)| {
                p.listing().digest == m.digest()
                    && p.listing().signer.as_deref() == m.signer().map(|s| s.id.as_str())
            })
    }

    /// The configuration this set was loaded from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The generation number.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Digest over the plugins' names, module digests and settings.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The plugins in evaluation order.
    pub fn plugins(&self) -> &[LoadedPlugin] {
        &self.plugins
    }

    /// Effect when all enforcing plugins abstain.
    pub fn when_all_abstain(&self) -> DefaultEffect {
        self.when_all_abstain
    }

    /// Whether any plugin has fewer spare instances than it should.
    pub fn wants_spares(&self) -> bool {
        self.plugins.iter().any(LoadedPlugin::wants_spares)
    }

    /// Marks a refill as queued; `false` if one already was.
    pub(crate) fn claim_refill(&self) -> bool {
        !self.refill_queued.swap(true, Ordering::AcqRel)
    }

    /// Allows the next refill request to be queued.
    pub(crate) fn release_refill(&self) {
        self.refill_queued.store(false, Ordering::Release);
    }

    /// Listings of all plugins.
    pub fn listings(&self) -> Vec<PluginListing> {
        self.plugins.iter().map(|p| p.listing().clone()).collect()
    }
}
