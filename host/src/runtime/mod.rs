//! Where plugin code runs: the shared wasmtime [`Engine`] with its epoch ticker, the
//! on-disk [`ArtifactCache`] of compiled components, the [`sandbox`] each instance runs
//! in, and the [`InstancePool`] that decides which instance serves which task. Nothing
//! here knows a contract version; that is `crate::contract`.

pub mod artifact_cache;
mod engine;
pub mod instance_pool;
pub mod sandbox;

pub use artifact_cache::{ArtifactCache, CacheError, CacheResult};
pub use engine::{Engine, EngineError};
pub use instance_pool::{InstancePool, MAX_USES};
pub use sandbox::{PluginLogLevel, StoreState, truncate};
