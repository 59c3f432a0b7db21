//! The `arbiter` command line (feature `cli`): one file per subcommand. All policy logic
//! lives in the library; this binary parses arguments, calls it, and maps results to
//! exit statuses.

mod approvals;
mod eval;
mod gateway;
mod inspect;
mod keygen;
mod serve;
mod sign;
mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit status for an `allow` decision.
const EXIT_ALLOW: u8 = 0;
/// Exit status for errors (bad config, bad input, plugin load failure).
const EXIT_ERROR: u8 = 1;
/// Exit status for a `deny` decision.
const EXIT_DENY: u8 = 3;
/// Exit status for a `step-up` decision.
const EXIT_STEP_UP: u8 = 4;

/// Arbiter: WebAssembly policy plugins for AI-agent gateways.
#[derive(Debug, Parser)]
#[command(name = "arbiter", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decide one action (or a list of actions of one task, in order) and print the
    /// decision JSON. Exit status: 0 allow, 3 deny, 4 step-up, 1 error; for a list, the
    /// most restrictive decision counts.
    Eval(eval::EvalArgs),
    /// Make a signing key pair: a PKCS#8 PEM private key and its public key
    /// (`<name>.pub.pem`) to put in a trust store.
    Keygen(keygen::KeygenArgs),
    /// Sign modules: writes `<module>.sig` (base64 signature over the module's bytes).
    Sign(sign::SignArgs),
    /// Verify modules' signatures against trusted keys, as the host does at load.
    Verify(verify::VerifyArgs),
    /// Show a module's digest, signature status and signer, WIT world and `describe()`.
    Inspect(inspect::InspectArgs),
    /// Run the HTTP decision server until SIGTERM or SIGINT.
    Serve(serve::ServeArgs),
    /// Run the MCP gateway until SIGTERM or SIGINT: every `tools/call` to the
    /// configured upstreams is decided before it is forwarded.
    Gateway(gateway::GatewayArgs),
    /// List, show, approve or reject the approvals step-ups wait for, on a running
    /// server or gateway.
    Approvals(approvals::ApprovalsArgs),
}

/// Parses arguments and runs the command.
fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server's operators want its lifecycle in the log; one-shot commands stay quiet.
    init_tracing(match cli.command {
        Command::Serve(_) | Command::Gateway(_) => "info",
        _ => "warn",
    });
    let result = match cli.command {
        Command::Eval(args) => eval::run(&args),
        Command::Keygen(args) => keygen::run(&args),
        Command::Sign(args) => sign::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Gateway(args) => gateway::run(&args),
        Command::Approvals(args) => approvals::run(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARBITER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
