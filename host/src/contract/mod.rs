//! The seam between the host and the WIT contract its plugins are built against.
//!
//! Every contract version lives in a module of its own (`v0_1_0`, and `v0_2_0` when it
//! comes) with its generated bindings and the conversions to and from the host's types.
//! The loader reads which version a component was built against from its imports
//! ([`detect`]), checks it against that version's world ([`EvaluatorPre::new`]), and from
//! then on the rest of the host calls [`Evaluator`] with its own [`Action`] and gets back
//! a version-neutral [`Verdict`]: lowering happens here, below the plugin layer.
//!
//! # How the version is read
//!
//! A component built against `arbiter:policy@X` imports `arbiter:policy/types@X` (the
//! world `use`s its types, which makes the interface an import even for a plugin that
//! calls no host function) and usually `arbiter:policy/host@X`. The world's exports are
//! plain functions whose names carry no version, so the imports are what tell. A
//! component that imports no `arbiter:policy` interface at all is checked against the
//! newest world, whose error then says what is missing.

mod v0_1_0;

use crate::model::{Action, Effect};
use crate::runtime::StoreState;
use std::cell::OnceCell;
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker};

/// The package every contract version belongs to.
pub const PACKAGE: &str = "arbiter:policy";

/// A contract version this host implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContractVersion {
    /// `arbiter:policy@0.1.0`.
    V0_1_0,
}

impl ContractVersion {
    /// Every version this host supports, oldest first.
    pub const SUPPORTED: &'static [Self] = &[Self::V0_1_0];
    /// The newest supported version.
    pub const NEWEST: Self = Self::V0_1_0;

    /// The version number, e.g. `0.1.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_1_0 => "0.1.0",
        }
    }

    /// The world a plugin of this version implements.
    pub fn world(self) -> &'static str {
        match self {
            Self::V0_1_0 => v0_1_0::WORLD,
        }
    }

    fn parse(version: &str) -> Option<Self> {
        Self::SUPPORTED
            .iter()
            .copied()
            .find(|v| v.as_str() == version)
    }
}

impl std::fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The supported versions as one readable list, e.g. `0.1.0`.
pub fn supported_versions() -> String {
    ContractVersion::SUPPORTED
        .iter()
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a component's contract version cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// Built against a version this host does not implement.
    #[error(
        "plugin `{plugin}`: built against contract `arbiter:policy@{version}`, which this host does not support; it supports {supported} (rebuild the plugin against a supported version, or upgrade Arbiter)"
    )]
    Unsupported {
        /// Operator's plugin name.
        plugin: String,
        /// The version its imports name.
        version: String,
        /// The versions this host supports.
        supported: String,
    },
    /// Imports interfaces of several versions at once.
    #[error(
        "plugin `{plugin}`: imports interfaces of several contract versions ({versions}); a plugin is built against exactly one"
    )]
    Mixed {
        /// Operator's plugin name.
        plugin: String,
        /// The versions found.
        versions: String,
    },
}

/// The versions of the `arbiter:policy` interfaces `component` imports, each once, in
/// import order (empty when it imports none; `""` for an unversioned import).
pub fn imported_version(engine: &wasmtime::Engine, component: &Component) -> Vec<String> {
    let mut versions: Vec<String> = Vec::new();
    for (name, _) in component.component_type().imports(engine) {
        let Some(rest) = name.strip_prefix(PACKAGE).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        let version = rest.split_once('@').map(|(_, v)| v).unwrap_or("");
        if !versions.iter().any(|v| v == version) {
            versions.push(version.to_owned());
        }
    }
    versions
}

/// Picks the contract version of `plugin`'s component; see the module docs.
pub fn detect(
    plugin: &str,
    engine: &wasmtime::Engine,
    component: &Component,
) -> Result<ContractVersion, ContractError> {
    let versions = imported_version(engine, component);
    match versions.as_slice() {
        [] => Ok(ContractVersion::NEWEST),
        [version] => ContractVersion::parse(version).ok_or_else(|| ContractError::Unsupported {
            plugin: plugin.to_owned(),
            version: if version.is_empty() {
                "(no version)".to_owned()
            } else {
                version.clone()
            },
            supported: supported_versions(),
        }),
        several => Err(ContractError::Mixed {
            plugin: plugin.to_owned(),
            versions: several.join(", "),
        }),
    }
}

/// Adds the `host` interface of every supported version to `linker`, so one linker
/// instantiates plugins of any of them.
pub fn add_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    v0_1_0::add_to_linker(linker)
}

/// What `describe()` returned, in any version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The plugin's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its evaluator kind.
    pub kind: String,
    /// A one-line description.
    pub description: String,
}

/// An obligation as the plugin returned it (before the host names the plugin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictObligation {
    /// What to do.
    pub kind: String,
    /// Its parameter.
    pub detail: String,
}

/// What `evaluate()` returned, in any version, before the host checks its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The effect.
    pub effect: Effect,
    /// Why.
    pub reason: String,
    /// Obligations.
    pub obligations: Vec<VerdictObligation>,
    /// Labels for the task history.
    pub labels: Vec<String>,
}

/// The action of one decision as every plugin of the set receives it: the host's action,
/// the decision time, and what each contract version gathers from them once per decision
/// (so that lowering for the next plugin copies strings straight into the guest, with no
/// work repeated on the host).
#[derive(Debug)]
pub struct DecisionInput<'a> {
    action: &'a Action,
    time: u64,
    v0_1_0: OnceCell<v0_1_0::ActionLists<'a>>,
}

impl<'a> DecisionInput<'a> {
    /// The input for `action` decided at `time` (Unix ms).
    pub fn new(action: &'a Action, time: u64) -> Self {
        Self {
            action,
            time,
            v0_1_0: OnceCell::new(),
        }
    }

    /// The host's action.
    pub fn action(&self) -> &'a Action {
        self.action
    }

    /// The decision time, Unix ms.
    pub fn time(&self) -> u64 {
        self.time
    }
}

/// A compiled component checked against its contract version's world.
pub enum EvaluatorPre {
    /// `arbiter:policy@0.1.0`.
    V0_1_0(v0_1_0::Pre),
}

impl std::fmt::Debug for EvaluatorPre {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EvaluatorPre({})", self.version())
    }
}

impl EvaluatorPre {
    /// Checks `pre`'s exports against `version`'s world.
    pub fn new(version: ContractVersion, pre: InstancePre<StoreState>) -> wasmtime::Result<Self> {
        match version {
            ContractVersion::V0_1_0 => v0_1_0::Pre::new(pre).map(Self::V0_1_0),
        }
    }

    /// The contract version.
    pub fn version(&self) -> ContractVersion {
        match self {
            Self::V0_1_0(_) => ContractVersion::V0_1_0,
        }
    }

    /// A new instance in `store`.
    pub fn instantiate(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Evaluator> {
        match self {
            Self::V0_1_0(pre) => pre.instantiate(store).map(Evaluator::V0_1_0),
        }
    }
}

/// A live plugin instance of some contract version.
pub enum Evaluator {
    /// `arbiter:policy@0.1.0`.
    V0_1_0(v0_1_0::Instance),
}

impl Evaluator {
    /// `describe()`.
    pub fn describe(&self, store: &mut Store<StoreState>) -> wasmtime::Result<PluginInfo> {
        match self {
            Self::V0_1_0(i) => i.describe(store),
        }
    }

    /// `validate(settings)`.
    pub fn validate(
        &self,
        store: &mut Store<StoreState>,
        settings: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Self::V0_1_0(i) => i.validate(store, settings),
        }
    }

    /// `evaluate(action)`, lowering `input` for this instance's contract version.
    pub fn evaluate(
        &self,
        store: &mut Store<StoreState>,
        input: &DecisionInput<'_>,
    ) -> wasmtime::Result<Verdict> {
        match self {
            Self::V0_1_0(i) => {
                let lists = input
                    .v0_1_0
                    .get_or_init(|| v0_1_0::ActionLists::new(input.action));
                i.evaluate(store, input.action, lists, input.time)
            }
        }
    }
}
