//! `componentize-c`: the two steps of building a C policy that need component tooling,
//! as a small native tool built from crates.io libraries (no `cargo install` of CLIs).
//!
//! - `bindings WIT_DIR WORLD OUT_DIR`: writes the C bindings for `WORLD` (what
//!   `wit-bindgen c` writes: `<world>.h`, `<world>.c`, `<world>_component_type.o`).
//! - `component CORE_WASM OUT_WASM`: turns a core module built with wasi-libc
//!   (`-mexec-model=reactor`) into a component, adapting WASI preview1 imports with the
//!   reactor adapter of the same wasmtime version as the host.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use wit_bindgen_core::wit_parser::Resolve;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generates C bindings for a world of a WIT package directory.
    Bindings {
        /// The WIT package directory, e.g. `wit/policy-0.1.0`.
        wit: PathBuf,
        /// The world, e.g. `evaluator`.
        world: String,
        /// Where to write the generated files.
        out_dir: PathBuf,
    },
    /// Wraps a core module (with embedded component type) into a component.
    Component {
        /// The core module from clang/wasm-ld.
        core: PathBuf,
        /// The component to write.
        output: PathBuf,
    },
}

fn bindings(wit: &PathBuf, world: &str, out_dir: &PathBuf) -> Result<()> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(wit)
        .with_context(|| format!("cannot read the WIT package `{}`", wit.display()))?;
    let world = resolve
        .select_world(&[package], Some(world))
        .with_context(|| format!("no world `{world}` in `{}`", wit.display()))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .context("cannot generate C bindings")?;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create `{}`", out_dir.display()))?;
    for (name, contents) in files.iter() {
        let path = out_dir.join(name);
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(())
}

fn component(core: &PathBuf, output: &PathBuf) -> Result<()> {
    let module =
        std::fs::read(core).with_context(|| format!("cannot read `{}`", core.display()))?;
    let bytes = wit_component::ComponentEncoder::default()
        .module(&module)
        .context("the core module has no usable component type")?
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("cannot use the WASI reactor adapter")?
        .validate(true)
        .encode()
        .context("cannot encode the component")?;
    std::fs::write(output, bytes).with_context(|| format!("cannot write `{}`", output.display()))
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bindings {
            wit,
            world,
            out_dir,
        } => bindings(&wit, &world, &out_dir),
        Command::Component { core, output } => component(&core, &output),
    }
}
