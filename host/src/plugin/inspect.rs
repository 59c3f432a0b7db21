//! What `arbiter inspect` reports about a module that passed the signature gate: its
//! imports and exports, the contract version it was built against, and what it says
//! about itself when `describe()` runs in the host's sandbox.

use super::error::LoadError;
use super::loaded::{LOAD_DEADLINE, LoadedPlugin, PluginListing, linker};
use crate::config::PluginConfig;
use crate::config::{DEFAULT_MAX_MODULE_BYTES, IdleLimits, Isolation, Limits, Mode, OnError, Pin};
use crate::contract;
use crate::runtime::Engine;
use crate::trust::VerifiedModule;
use std::path::Path;
use wasmtime::component::types::ComponentItem;

/// What a compiled module is and says.
#[derive(Debug)]
pub struct ModuleInspection {
    /// Imports, as `name (kind)`.
    pub imports: Vec<String>,
    /// Exports, as `name (kind)`.
    pub exports: Vec<String>,
    /// The `arbiter:policy` version its imports name, if any.
    pub contract_version: Option<String>,
    /// `describe()`'s answer (with the module's digest and signer), or why it failed.
    pub describe: Result<PluginListing, LoadError>,
}

/// Compiles `module` (named `name`, read from `path`) and describes it, validating no
/// settings. Fails only if the bytes are not a component.
pub fn inspect_module(
    engine: &Engine,
    name: &str,
    path: &Path,
    module: &VerifiedModule,
) -> Result<ModuleInspection, LoadError> {
    let component = engine.compile(module).map_err(|e| LoadError::Compile {
        plugin: name.to_owned(),
        message: format!("{e:#}"),
    })?;
    let ty = component.component_type();
    let wasmtime = engine.wasmtime();
    let imports = ty.imports(wasmtime).map(|(n, e)| item(n, &e.ty)).collect();
    let exports = ty.exports(wasmtime).map(|(n, e)| item(n, &e.ty)).collect();
    let contract_version = contract::imported_version(wasmtime, &component)
        .into_iter()
        .next();
    let config = PluginConfig {
        name: name.to_owned(),
        path: path.to_owned(),
        mode: Mode::Enforce,
        on_error: OnError::Deny,
        limits: Limits {
            timeout: LOAD_DEADLINE,
            ..Limits::default()
        },
        isolation: Isolation::Decision,
        prewarm: 0,
        idle: IdleLimits::default(),
        settings_json: "{}".to_owned(),
        required: false,
        settings_file: None,
        max_module_bytes: DEFAULT_MAX_MODULE_BYTES,
        pin: Pin::default(),
    };
    let describe = linker(engine).and_then(|linker| {
        LoadedPlugin::describe_verified(engine, &linker, &config, module)
            .map(|plugin| plugin.listing().clone())
    });
    Ok(ModuleInspection {
        imports,
        exports,
        contract_version,
        describe,
    })
}

/// `name (kind)` for an import or export.
fn item(name: &str, item: &ComponentItem) -> String {
    let kind = match item {
        ComponentItem::ComponentFunc(_) | ComponentItem::CoreFunc(_) => "func",
        ComponentItem::Module(_) => "module",
        ComponentItem::Component(_) => "component",
        ComponentItem::ComponentInstance(_) => "instance",
        ComponentItem::Type(_) => "type",
        ComponentItem::Resource(_) => "resource",
    };
    format!("{name} ({kind})")
}
