//! Plugins: one loaded plugin ([`LoadedPlugin`]: verified bytes compiled once, checked
//! against its contract version, evaluated in sandboxed instances), an immutable
//! generation of them ([`PolicySet`]), the thread that keeps spare instances ready
//! ([`prewarm`]), what `arbiter inspect` reports ([`inspect_module`]), and why loading
//! fails ([`LoadError`]).

mod error;
mod inspect;
mod loaded;
mod policy_set;
pub mod prewarm;

pub use error::LoadError;
pub use inspect::{ModuleInspection, inspect_module};
pub use loaded::{LoadedPlugin, PluginListing, linker};
pub use policy_set::PolicySet;
pub use prewarm::Prewarmer;
