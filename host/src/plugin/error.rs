//! Errors raised while building a host or loading plugins. Decisions never fail with an
//! error: a plugin fault becomes an outcome inside the decision (see [`crate::Outcome`]).

use crate::config::ConfigError;
use crate::runtime::EngineError;
use crate::trust::VerifyError;
use std::path::PathBuf;

/// Why a plugin or a policy set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Wasm engine could not be configured, or a loader thread not started (a host
    /// fault).
    #[error("cannot configure the wasm engine: {0}")]
    Engine(String),
    /// The module file could not be read.
    #[error("plugin `{plugin}`: cannot read `{path}`: {cause}")]
    Read {
        /// Operator's plugin name.
        plugin: String,
        /// The path.
        path: PathBuf,
        /// Why (in the message, so not also a `source`).
        cause: crate::files::FileReadError,
    },
    /// The module's signature was refused (see [`crate::trust`]): the module is not
    /// compiled, let alone run.
    #[error("plugin `{plugin}`: refused: {reason}")]
    Signature {
        /// Operator's plugin name.
        plugin: String,
        /// Why.
        reason: crate::trust::SignatureError,
    },
    /// The bytes are not a valid component (e.g. a core module, or corrupt).
    #[error("plugin `{plugin}`: not a valid WebAssembly component: {message}")]
    Compile {
        /// Operator's plugin name.
        plugin: String,
        /// The validator's message.
        message: String,
    },
    /// The component imports something Arbiter does not provide.
    #[error("plugin `{plugin}`: imports something Arbiter does not provide: {message}")]
    Imports {
        /// Operator's plugin name.
        plugin: String,
        /// Which import.
        message: String,
    },
    /// The component does not implement the `evaluator` world of its contract version.
    #[error("plugin `{plugin}`: does not implement world `{world}`: {message}")]
    WrongWorld {
        /// Operator's plugin name.
        plugin: String,
        /// The world it was checked against, e.g. `arbiter:policy/evaluator@0.1.0`.
        world: &'static str,
        /// What is missing or mistyped.
        message: String,
    },
    /// The component was built against a contract version this host does not support.
    #[error(transparent)]
    Contract(#[from] crate::contract::ContractError),
    /// The module is not the one the config pins for this slot (`digest`,
    /// `expect_plugin`, `expect_kind`).
    #[error(
        "plugin `{plugin}`: refused: the config expects {expected}, the module at `{path}` is {found}"
    )]
    PinMismatch {
        /// Operator's plugin name.
        plugin: String,
        /// The module.
        path: PathBuf,
        /// What the config pins, e.g. "describe() name `intent`".
        expected: String,
        /// What the module is.
        found: String,
    },
    /// `describe()` failed or returned unusable metadata.
    #[error("plugin `{plugin}`: describe() failed: {message}")]
    Describe {
        /// Operator's plugin name.
        plugin: String,
        /// What went wrong.
        message: String,
    },
    /// The plugin refused its settings.
    #[error("plugin `{plugin}`: settings refused: {message}")]
    Settings {
        /// Operator's plugin name.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
    /// [`crate::Arbiter::reload`] on a host that was not built from a config file.
    #[error("cannot reload: this host was not built from a config file")]
    NoConfigFile,
    /// A reload's config lacks a plugin marked `required` when the host started.
    #[error("required plugin `{plugin}` is missing from the new config; the reload is refused")]
    RequiredPluginMissing {
        /// The plugin's name.
        plugin: String,
    },
    /// A reload did not finish within its deadline (`[reload] timeout_ms`).
    #[error(
        "the reload did not finish within {timeout_ms} ms (`reload.timeout_ms`); it was abandoned and the active set keeps serving"
    )]
    ReloadTimeout {
        /// The deadline.
        timeout_ms: u64,
    },
    /// The artifact cache could not be opened.
    #[error("cannot open the artifact cache: {0}")]
    Cache(String),
    /// The task store could not be set up (`[task_store]`).
    #[error("cannot set up the task store: {0}")]
    TaskStore(String),
}

impl From<VerifyError> for LoadError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Read {
                plugin,
                path,
                cause,
            } => Self::Read {
                plugin,
                path,
                cause,
            },
            VerifyError::Signature { plugin, reason } => Self::Signature { plugin, reason },
        }
    }
}

impl From<EngineError> for LoadError {
    fn from(e: EngineError) -> Self {
        Self::Engine(e.0)
    }
}
