//! `arbiter serve`: the HTTP decision server (see `docs/http-api.md`).

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Arguments of `arbiter serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The Arbiter config file (TOML); its `[server]` table configures the server.
    #[arg(long, short)]
    config: PathBuf,
    /// Listen address, overriding `server.listen` (default `127.0.0.1:8480`).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

/// Runs the server until SIGTERM or SIGINT.
pub fn run(args: &ServeArgs) -> Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("arbiter-server")
        .build()
        .context("cannot start the async runtime")?;
    runtime
        .block_on(arbiter_host::adapters::http::serve(
            &args.config,
            args.listen,
        ))
        .with_context(|| format!("serving with config `{}`", args.config.display()))?;
    Ok(super::EXIT_ALLOW)
}
