//! The `arbiter` binary: all logic lives in the library (`arbiter_host::cli`).

fn main() -> std::process::ExitCode {
    arbiter_host::cli::run()
}
