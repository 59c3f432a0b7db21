//! `arbiter gateway`: the MCP gateway (see `docs/mcp-gateway.md`).

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Arguments of `arbiter gateway`.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// The Arbiter config file (TOML); its `[gateway]` table names the upstreams.
    #[arg(long, short)]
    config: PathBuf,
    /// Listen address, overriding `gateway.listen` (default `127.0.0.1:8490`).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

/// Runs the gateway until SIGTERM or SIGINT.
pub fn run(args: &GatewayArgs) -> Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("arbiter-gateway")
        .build()
        .context("cannot start the async runtime")?;
    runtime
        .block_on(arbiter_host::adapters::mcp::serve_until(
            &args.config,
            args.listen,
            arbiter_host::adapters::http::shutdown_signal(),
        ))
        .with_context(|| {
            format!(
                "running the MCP gateway with config `{}`",
                args.config.display()
            )
        })?;
    Ok(super::EXIT_ALLOW)
}
