//! # arbiter-host
//!
//! Arbiter runs every action an AI agent is about to take through sandboxed WebAssembly
//! policy plugins (components implementing `arbiter:policy/evaluator@0.1.0`) and combines
//! their verdicts into `allow`, `deny` or `step-up`, failing closed.
//!
//! ```no_run
//! use arbiter_host::{Action, Arbiter};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let arbiter = Arbiter::from_config_file("arbiter.toml".as_ref())?;
//! let decision = arbiter.decide_json(r#"{
//!     "request_id": "req-1",
//!     "agent": {"id": "spiffe://example.org/agent/bot"},
//!     "tool": {"server": "fs", "name": "read_file"},
//!     "arguments": {"path": "/repo/README.md"}
//! }"#)?;
//! println!("{}", serde_json::to_string_pretty(&decision)?);
//! # Ok(()) }
//! ```
//!
//! # Architecture
//!
//! One decision, whatever the transport:
//!
//! ```text
//!  HTTP · MCP · ext_authz        adapters/     parse the protocol into an Action
//!            │
//!            ▼
//!  DecisionService               service/      readiness, decision log, strict mode,
//!            │                                 metrics (feature `server`)
//!            ▼
//!  Arbiter (embedding API)       arbiter.rs    the facade embedders call directly
//!            │
//!            ▼
//!  Pipeline                      decide/       validate → identify → task gate →
//!            │                                 evaluate → combine → post-decision → record
//!      ┌─────┴──────────┐
//!      ▼                ▼
//!  PolicySet          TaskStore                plugin/ (hot_swap/ replaces the set);
//!  LoadedPlugin       (history, owners,        task/
//!      │               ended tasks)
//!      ▼
//!  contract/  lowers the host's Action for the plugin's WIT contract version
//!  runtime/   wasmtime engine, sandbox, instance pool
//!  trust/     signature gate: only verified bytes reach the compiler
//!  config/    the TOML file      model/  Action, Decision, TaskSnapshot      files/
//! ```
//!
//! Each layer imports only the layers below it (no cycles between top-level modules).
//! Where each concept lives:
//!
//! | concept | module |
//! |---|---|
//! | the input and output ([`Action`], [`Decision`]) | `model/` |
//! | the config file ([`Config`]) | [`config`] |
//! | trusted keys, `.sig` files, the gate ([`verify_module`]) | `trust/` |
//! | engine, sandbox, instance isolation ([`Engine`]) | `runtime/` |
//! | WIT contract versions, lowering ([`ContractVersion`]) | `contract/` |
//! | one plugin, a generation of them ([`PolicySet`]) | `plugin/` |
//! | task history, ownership, the [`TaskStore`] trait | `task/` |
//! | the stages of a decision, combining ([`PostDecision`]) | `decide/` |
//! | reloads and the file watcher ([`Swapped`], [`ReloadStatus`]) | `hot_swap/` |
//! | the embedding API ([`Arbiter`]) | `arbiter.rs` |
//! | decision log, metrics, strict mode (`server` feature) | [`service`] |
//! | the HTTP API (`server` feature) | [`adapters::http`] |
//! | the MCP gateway (`gateway` feature) | [`adapters::mcp`] |
//! | verified identity: X.509-SVID and JWT-SVID verifiers (`identity` feature) | [`identity`] |
//! | per-call credentials, their JWKS and revocation (`server` feature) | [`service::credentials`] |
//! | the `arbiter` command line | `src/bin/arbiter/` (feature `cli`) |
//!
//! # Cargo features
//!
//! - `watch` (default): the file watcher that hot-swaps on change (`notify`).
//! - `server` (default): the decision service and the HTTP adapter (tokio, axum, hyper,
//!   prometheus).
//! - `gateway` (default): the MCP gateway (`arbiter gateway`): hyper's HTTP client and
//!   tokio's child processes on top of `server`.
//! - `identity` (default, through `server`): the SPIFFE verifiers (rustls, jsonwebtoken,
//!   spiffe) as a library API, without a server.
//! - `cli` (default): the `arbiter` binary (clap, tracing-subscriber).
//!
//! An embedder that wants only the decision path uses `default-features = false`
//! and gets wasmtime and serde without any of them.

mod arbiter;
pub mod config;
mod contract;
mod decide;
mod files;
mod hot_swap;
mod model;
mod plugin;
mod runtime;
mod task;
mod trust;

#[cfg(feature = "server")]
pub mod adapters;
#[cfg(feature = "identity")]
pub mod identity;
#[cfg(feature = "server")]
pub mod service;

pub use arbiter::{ApprovalError, Arbiter, TaskOpenError};
pub use config::{Config, ConfigError};
pub use contract::{ContractError, ContractVersion};
pub use decide::{NoPostDecision, PostDecision, Recording};
pub use files::{FileReadError, read_regular_file};
#[cfg(feature = "watch")]
pub use hot_swap::{PolicyWatcher, WatchError};
pub use hot_swap::{ReloadCount, ReloadReport, ReloadResult, ReloadStatus, ReloadTrigger, Swapped};
pub use model::{
    APPROVAL_OBLIGATION, Action, ActionError, ActionErrorKind, Agent, Approval, ApprovalBinding,
    ApprovalMatch, ApprovalRef, ApprovalRefusal, ApprovalStatus, ApprovalVerdict, ApproverRecord,
    Credential, Decision, DecisionEffect, Effect, HistoryEntry, ID_PUNCTUATION, IdentityRecord,
    IssuedCredential, MAX_AGENT_ID_BYTES, MAX_ARGUMENTS_BYTES, MAX_FIELD_BYTES, MAX_ID_BYTES,
    MAX_LIST_LEN, Mode, Obligation, OpenTask, OpenedTask, Outcome, PHASE_KEY, PluginEntry,
    Principal, RESERVED_ENVIRONMENT_PREFIX, Resource, SignatureStatus, StepUpCause, Task, TaskMode,
    TaskSnapshot, Tool, arguments_sha256, canonical_json, check_agent_id, check_id, outcome_word,
};
pub use plugin::{LoadError, ModuleInspection, PluginListing, PolicySet, inspect_module};
pub use runtime::{ArtifactCache, CacheError, CacheResult, Engine, EngineError};
#[cfg(feature = "redis")]
pub use task::RedisTaskStore;
pub use task::{
    ApprovalBook, HISTORY_EVICTED_LABEL, MAX_CREDENTIAL_TTL_MS, MAX_TASK_CO_AGENTS,
    MAX_TASK_LABELS, MemoryTaskStore, Revocations, Revoker, StoreError, TaskLease, TaskRefusal,
    TaskStore,
};
pub use trust::{
    Algorithm, DEFAULT_MAX_MODULE_BYTES, KeyError, SignatureError, Signer, SigningKey, TrustError,
    TrustPolicy, TrustStore, VerifiedModule, VerifyError, digest, signature, signature_path,
    verify_module,
};

/// The file watcher's timing, for tools and tests that wait for it.
#[cfg(feature = "watch")]
pub mod watch {
    pub use crate::hot_swap::watcher::{DEBOUNCE, SETTLE};
}

#[cfg(test)]
mod embedder_build {
    /// The crate names of `cargo tree` for the build without default features, one per
    /// line (`extra` narrows it, e.g. to direct dependencies).
    fn minimal_tree(extra: &[&str]) -> Vec<String> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let out = std::process::Command::new(cargo)
            .args(["tree", "--offline", "-p", "arbiter-host", "-e", "normal"])
            .args([
                "--no-default-features",
                "--prefix",
                "none",
                "--format",
                "{p}",
            ])
            .args(extra)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    }

    /// What an embedder gets with `default-features = false`: the decision path and
    /// nothing of the server or the CLI. (tokio is there only as a dependency of
    /// wasmtime-wasi, the WASI implementation plugins built against WASI need.)
    #[test]
    fn the_minimal_embedder_build_has_no_server_dependencies() {
        let crates = minimal_tree(&[]);
        assert!(crates.iter().any(|c| c == "wasmtime"), "{crates:?}");
        for server_only in [
            "axum",
            "hyper",
            "hyper-util",
            "tower",
            "prometheus",
            "clap",
            "tracing-subscriber",
            "notify",
            "notify-debouncer-full",
            "aho-corasick",
        ] {
            assert!(
                !crates.iter().any(|c| c == server_only),
                "`{server_only}` is in the minimal embedder build: {crates:?}"
            );
        }
        // tokio only through wasmtime-wasi, never as Arbiter's own dependency.
        let direct = minimal_tree(&["--depth", "1"]);
        assert!(!direct.iter().any(|c| c == "tokio"), "{direct:?}");
    }
}
