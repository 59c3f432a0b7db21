//! Host configuration: a TOML file, read in two stages. [`RawConfig`] mirrors the file
//! with `deny_unknown_fields` (so a misspelt key is an error naming the key), and
//! [`Config::from_raw`] validates it into typed settings with defaults applied.
//!
//! ```toml
//! [defaults]
//! when_all_abstain = "deny"   # deny | step-up | allow
//! timeout_ms = 5              # per-evaluation CPU deadline
//! instantiate_timeout_ms = 250  # deadline for creating a fresh instance
//! memory_limit_mib = 64       # per-instance linear memory cap
//! isolation = "task"          # task | decision | shared
//! prewarm = 2                 # ready instances kept per plugin for new tasks (0..=64)
//! max_module_mib = 64         # largest module file read (before its signature is checked)
//! idle_instances = 1024       # idle task instances kept per plugin (0..=65536)
//! idle_memory_mib = 256       # linear memory of all idle instances per plugin, spares
//!                             # included (1..=1048576); least recently used evicted first
//!
//! [history]                  # see `crate::task` for what the bounds guarantee
//! max_entries_per_task = 64
//! max_tasks = 10000           # tasks whose entries are kept (LRU); evicted ones keep labels
//! max_known_tasks = 1000000   # tasks known at all; new tasks past it are refused
//!
//! [reload]
//! timeout_ms = 120000         # a reload attempt that takes longer is reported as failed
//!
//! [tasks]                     # see `crate::task`
//! store_timeout_ms = 1000     # deadline of one task-store operation
//! [[tasks.share]]             # these agents may act in each other's tasks
//! agents = ["spiffe://example.org/agent/orchestrator", "spiffe://example.org/agent/sub/*"]
//!
//! [task_store]                # memory (default) | redis: shared by replicas; see
//! kind = "redis"              # `task_store` for every key (URL, TLS, auth, lifetimes)
//! url = "redis://127.0.0.1:6379/0"
//!
//! [trust]                          # who may sign plugins; see `crate::trust`
//! keys = [{ id = "release", path = "keys/release.pub.pem" }]   # relative to this file
//! key_dirs = ["keys.d"]            # every `*.pem` public key inside; id = file stem
//! allow_unsigned = false           # development switch: load modules with no `.sig`
//!
//! [[plugin]]
//! name = "intent"
//! path = "plugins/intent.wasm"   # relative to this file
//! mode = "enforce"               # enforce | monitor
//! on_error = "deny"              # deny | step-up | ignore
//! expect_plugin = "intent"       # optional: describe() must give this name ...
//! expect_kind = "intent"         # ... and this kind
//! digest = "sha256:…"            # optional: the exact module (checked before compiling)
//! settings = { intents = { "summarize-repo" = { tools = [{ tool = "fs/read_file" }] } } }
//! ```

use crate::files::{FileReadError, read_regular_text};
pub use crate::model::Mode;

mod approvals;
mod task_store;
use crate::trust::{TrustPolicy, TrustStore};
pub use approvals::{
    ApprovalsConfig, ApproverGroup, DEFAULT_APPROVAL_TTL_MS, DEFAULT_MAX_APPROVALS, GroupToken,
    RawApprovals, RawApproverGroup,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
pub use task_store::{
    DEFAULT_GRACE_MS, DEFAULT_LEASE_MS, DEFAULT_MAX_CONNECTIONS, DEFAULT_UNTIMED_TTL_MS,
    RawTaskStore, RedisStoreConfig, TaskStoreConfig,
};

/// Default per-evaluation deadline. Rust policies take microseconds, interpreted ones
/// (JavaScript, Python) tens of microseconds; 5 ms bounds a runaway loop quickly.
pub const DEFAULT_TIMEOUT_MS: u64 = 5;
/// Default deadline for creating a fresh instance, separate from the evaluation deadline.
///
/// Instantiating is mostly host-side work that grows with the module (linking, memory
/// images), not plugin logic: ~30 µs for a Rust policy, ~0.2 ms for JavaScript (QuickJS)
/// and ~1.5 ms for Python (CPython, 18 MB) in a release build, and 10 to 30 times that in
/// a debug build on a busy 2-core machine. With one 5 ms budget for both, a Python
/// policy timed out on its first action of every task; a separate, generous start-up
/// deadline lets every language deploy with the defaults while evaluation stays bounded
/// by [`DEFAULT_TIMEOUT_MS`]. Start-up code that spins is still stopped (interpreter
/// components snapshot their initialised state at build time, so legitimately they run
/// almost nothing at instantiation).
pub const DEFAULT_INSTANTIATE_TIMEOUT_MS: u64 = 250;
/// Default per-instance memory cap.
pub const DEFAULT_MEMORY_LIMIT_MIB: u64 = 64;
/// Hard ceilings that no configuration may exceed.
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Largest memory cap a plugin may be given.
pub const MAX_MEMORY_LIMIT_MIB: u64 = 4096;
/// Default number of prewarmed instances per plugin: enough for a burst of new tasks on
/// a 2-core host, few enough that idle memory stays small (a Rust plugin instance holds
/// a megabyte or two).
pub const DEFAULT_PREWARM: usize = 2;
/// Upper bound on `prewarm`.
pub const MAX_PREWARM: usize = 64;
/// Default bound on a module file, read before its signature can be checked. The
/// largest component shipped here (the Python twin, CPython inside) is 18.5 MB.
pub const DEFAULT_MAX_MODULE_MIB: u64 = 64;
/// [`DEFAULT_MAX_MODULE_MIB`] in bytes.
pub const DEFAULT_MAX_MODULE_BYTES: u64 = crate::trust::DEFAULT_MAX_MODULE_BYTES;
const _: () = assert!(DEFAULT_MAX_MODULE_BYTES == DEFAULT_MAX_MODULE_MIB * 1024 * 1024);
/// Largest `max_module_mib` a config may set.
pub const MAX_MAX_MODULE_MIB: u64 = 1024;
/// Largest config file read.
pub const MAX_CONFIG_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Default deadline of one reload attempt. Loading compiles new modules off the request
/// path: a Rust policy in well under a second, the 18 MB Python twin in about 10 s in a
/// release build (several times that in a debug build on a busy machine).
pub const DEFAULT_RELOAD_TIMEOUT_MS: u64 = 120_000;
/// Largest reload deadline.
pub const MAX_RELOAD_TIMEOUT_MS: u64 = 3_600_000;
/// Largest settings file read (settings are parsed by every instance of the plugin).
pub const MAX_SETTINGS_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Default number of idle task-bound instances kept per plugin (`idle_instances`): the
/// count bound of [`crate::runtime::instance_pool`], and the fixed capacity the pool had before
/// it was configurable, so raising `idle_memory_mib` alone restores the old pool. It
/// bounds host-side per-instance structures; the byte bound below binds first for any
/// plugin whose instances hold more than a quarter MiB (every Rust guest does).
pub const DEFAULT_IDLE_INSTANCES: usize = 1024;
/// Upper bound on `idle_instances`.
pub const MAX_IDLE_INSTANCES: usize = 65_536;
/// Default bound on the linear memory of one plugin's idle instances, spares included
/// (`idle_memory_mib`). Measured (BENCHMARKS.md, `benches/instance_memory.rs`): a Rust
/// reference plugin's idle instance holds 1.06-1.2 MiB of linear memory with its example
/// settings and 8.7 MiB with a 1 MB settings file, so 256 MiB keeps about 220 warm tasks
/// per plugin with ordinary settings, about 30 with a 1 MB file, and bounds three
/// plugins' idle instances to 768 MiB whatever their settings. Before the bound, 3,000
/// tasks with the 1 MB file took the process to 8 GiB of RSS; with it, 310 MiB.
pub const DEFAULT_IDLE_MEMORY_MIB: u64 = 256;
/// Upper bound on `idle_memory_mib` (1 TiB: "no practical bound").
pub const MAX_IDLE_MEMORY_MIB: u64 = 1_048_576;

/// Errors in the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config `{path}`: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: FileReadError,
    },
    /// The TOML is malformed, has an unknown key or a wrongly typed value.
    #[error("invalid config `{path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, including the key and line.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid config: `{key}`: {problem}")]
    Invalid {
        /// The key at fault, e.g. `plugin[1].timeout_ms`.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// What happens when every enforcing plugin abstains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DefaultEffect {
    /// Deny (the default: nobody vouched for the action).
    #[default]
    Deny,
    /// Require step-up.
    StepUp,
    /// Allow.
    Allow,
}

/// What a plugin failure (trap, timeout, out-of-memory, invalid output) counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Fail closed (the default).
    #[default]
    Deny,
    /// Require step-up.
    StepUp,
    /// Treat the failure as an abstention. The failure is still recorded.
    Ignore,
}

/// How instances are shared between evaluations; see [`crate::runtime::instance_pool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// An instance serves one task only (actions without a task get a fresh one).
    #[default]
    Task,
    /// A fresh instance for every evaluation.
    Decision,
    /// Instances are reused across tasks: fastest, but a plugin can carry data from
    /// one task's decision into another's. Explicit opt-in only.
    Shared,
}

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Defaults for every plugin.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Task history bounds.
    #[serde(default)]
    pub history: RawHistory,
    /// The plugins, evaluated in this order.
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<RawPlugin>,
    /// Trusted signing keys.
    #[serde(default)]
    pub trust: RawTrust,
    /// The on-disk cache of precompiled plugins.
    #[serde(default)]
    pub cache: Option<RawCache>,
    /// Hot-swap settings.
    #[serde(default)]
    pub reload: RawReload,
    /// Task ownership, sharing and the task store.
    #[serde(default)]
    pub tasks: RawTasks,
    /// `[server]`: the decision server's table, kept as written. The core does not read
    /// it, so an embedder's config is never refused for a server setting; `arbiter
    /// serve` validates it when it starts (`service::ServerConfig::from_config`).
    #[serde(default)]
    pub server: Option<toml::Table>,
    /// `[gateway]`: the MCP gateway's table, kept as written like `[server]` (validated
    /// by `arbiter gateway` when it starts).
    #[serde(default)]
    pub gateway: Option<toml::Table>,
    /// `[identity]`: trust bundles and the listener's TLS, kept as written like
    /// `[server]` (validated by the listeners when they start, and by
    /// `identity::IdentityConfig::from_config` for embedders).
    #[serde(default)]
    pub identity: Option<toml::Table>,
    /// `[credentials]`: the key and lifetime of per-call credentials, kept as written
    /// (validated by the decision service when it starts).
    #[serde(default)]
    pub credentials: Option<toml::Table>,
    /// `[approvals]`: how step-ups complete.
    #[serde(default)]
    pub approvals: RawApprovals,
    /// `[task_store]`: where task state lives (memory or Redis).
    #[serde(default)]
    pub task_store: RawTaskStore,
}

/// `[tasks]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTasks {
    /// Groups of agents that may act in each other's tasks.
    #[serde(default)]
    pub share: Vec<RawShare>,
    /// Deadline of one task-store operation, in ms.
    pub store_timeout_ms: Option<u64>,
    /// When a task is quarantined for deviating from policy.
    pub quarantine: Option<RawQuarantine>,
    /// `asserted` or `opened`; unset, the adapter decides (see [`TasksConfig::mode_or`]).
    pub mode: Option<String>,
    /// Verified identities allowed to open tasks (besides the admin token).
    #[serde(default)]
    pub openers: Vec<String>,
}

pub use crate::model::TaskMode;

/// `[tasks.quarantine]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuarantine {
    /// Quarantine at the N-th deny within one task.
    pub after_denies: Option<usize>,
    /// Plugins (by `[[plugin]] name`) whose deny is critical: it quarantines at once.
    #[serde(default)]
    pub critical_plugins: Vec<String>,
    /// Whether a `quarantine` obligation of a denying plugin quarantines (default true).
    pub on_obligation: Option<bool>,
}

/// When a task is quarantined: denied from then on, its credentials revoked, until an
/// operator lifts it. Checked on every deny that reaches the task history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRules {
    /// At the N-th deny within the task's retained history.
    pub after_denies: Option<usize>,
    /// A deny by one of these enforcing plugins.
    pub critical_plugins: Vec<String>,
    /// A deny whose obligations include `quarantine` (a plugin asking for it).
    pub on_obligation: bool,
}

impl Default for QuarantineRules {
    fn default() -> Self {
        Self {
            after_denies: None,
            critical_plugins: Vec::new(),
            on_obligation: true,
        }
    }
}

/// One `[[tasks.share]]` group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShare {
    /// Agent ids; a trailing `*` matches any id with that prefix.
    pub agents: Vec<String>,
}

/// Which agents may act in a task another agent started. Empty (the default): none, a
/// task belongs to the agent that started it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskSharing {
    groups: Vec<Vec<String>>,
}

impl TaskSharing {
    /// Sharing among each group of agent patterns (exact ids, or a prefix ending in `*`).
    pub fn new(groups: Vec<Vec<String>>) -> Self {
        Self { groups }
    }

    /// Whether `agent` may act in a task `owner` started: both match one group.
    pub fn allows(&self, owner: &str, agent: &str) -> bool {
        let matches = |pattern: &String, id: &str| match pattern.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => pattern == id,
        };
        self.groups.iter().any(|group| {
            group.iter().any(|p| matches(p, owner)) && group.iter().any(|p| matches(p, agent))
        })
    }
}

/// Validated `[tasks]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TasksConfig {
    /// Who may share tasks.
    pub sharing: TaskSharing,
    /// Deadline of one task-store operation.
    pub store_timeout: Duration,
    /// When a task is quarantined.
    pub quarantine: QuarantineRules,
    /// Asserted or opened tasks; `None` when `[tasks] mode` is not set, and then the
    /// adapter's default applies ([`TasksConfig::mode_or`]).
    pub mode: Option<TaskMode>,
    /// Verified identities allowed to open tasks.
    pub openers: Vec<String>,
}

impl TasksConfig {
    /// The configured mode, or `default` when `[tasks] mode` is not set. The library and
    /// `arbiter serve` default to asserted tasks (their callers are gateways that manage
    /// tasks themselves); `arbiter gateway` defaults to opened tasks, because it faces
    /// the agents directly and an agent must not choose its own task or intent.
    pub fn mode_or(&self, default: TaskMode) -> TaskMode {
        self.mode.unwrap_or(default)
    }
}

/// Default deadline of a task-store operation. In memory it bounds how long a decision
/// waits for another decision of the same task (a few plugin evaluations).
pub const DEFAULT_STORE_TIMEOUT_MS: u64 = 1_000;

/// `[reload]`: hot swaps.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReload {
    /// Deadline of one reload attempt, in ms.
    pub timeout_ms: Option<u64>,
}

/// `[cache]`: precompiled plugins on disk, so restarts and reloads skip compilation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// Directory for artifacts; treated as untrusted.
    pub dir: PathBuf,
    /// The secret key authenticating artifacts; must be outside `dir` and as protected
    /// as this config file. Created (mode 0600) if missing.
    pub key_file: PathBuf,
}

/// `[trust]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrust {
    /// Key files, each with an optional id.
    #[serde(default)]
    pub keys: Vec<RawTrustKey>,
    /// Directories of `*.pem` public keys.
    #[serde(default)]
    pub key_dirs: Vec<PathBuf>,
    /// The development switch: load modules that have no signature.
    #[serde(default)]
    pub allow_unsigned: bool,
}

/// One entry of `trust.keys`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrustKey {
    /// The id decisions record as the signer (default: the file name without
    /// `.pub.pem`/`.pem`).
    pub id: Option<String>,
    /// PEM public key file, relative to the config file.
    pub path: PathBuf,
}

/// `[defaults]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Effect when every enforcing plugin abstains.
    pub when_all_abstain: Option<DefaultEffect>,
    /// Default deadline in ms.
    pub timeout_ms: Option<u64>,
    /// Default instantiation deadline in ms.
    pub instantiate_timeout_ms: Option<u64>,
    /// Default memory cap in MiB.
    pub memory_limit_mib: Option<u64>,
    /// Default isolation; `shared` is refused here (it must be chosen per plugin).
    pub isolation: Option<Isolation>,
    /// Default number of prewarmed instances per plugin.
    pub prewarm: Option<usize>,
    /// Default bound on a module file, in MiB.
    pub max_module_mib: Option<u64>,
    /// Default bound on idle task instances per plugin.
    pub idle_instances: Option<usize>,
    /// Default bound on the linear memory of a plugin's idle instances, in MiB.
    pub idle_memory_mib: Option<u64>,
}

/// `[history]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHistory {
    /// Entries kept per task (oldest evicted).
    pub max_entries_per_task: Option<usize>,
    /// Tasks whose entries are kept (least recently used evicted; labels stay).
    pub max_tasks: Option<usize>,
    /// Tasks known at all (with entries, evicted or ended); new tasks past it are refused.
    pub max_known_tasks: Option<usize>,
}

/// One `[[plugin]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugin {
    /// Operator's name for the plugin, unique in the file.
    pub name: String,
    /// Path of the component, relative to the config file.
    pub path: PathBuf,
    /// Enforce or monitor.
    pub mode: Option<Mode>,
    /// Failure handling.
    pub on_error: Option<OnError>,
    /// Deadline in ms.
    pub timeout_ms: Option<u64>,
    /// Instantiation deadline in ms.
    pub instantiate_timeout_ms: Option<u64>,
    /// Memory cap in MiB.
    pub memory_limit_mib: Option<u64>,
    /// Instance sharing.
    pub isolation: Option<Isolation>,
    /// Prewarmed instances kept ready.
    pub prewarm: Option<usize>,
    /// Idle task instances kept.
    pub idle_instances: Option<usize>,
    /// Linear memory of idle instances kept, in MiB.
    pub idle_memory_mib: Option<u64>,
    /// Inline settings (a table), passed to the plugin as JSON.
    pub settings: Option<Value>,
    /// Settings from a JSON file, relative to the config file.
    pub settings_file: Option<PathBuf>,
    /// A reload whose config lacks this plugin is refused.
    pub required: Option<bool>,
    /// Bound on the module file, in MiB.
    pub max_module_mib: Option<u64>,
    /// The module's expected `sha256:` digest.
    pub digest: Option<String>,
    /// The name the module's `describe()` must give.
    pub expect_plugin: Option<String>,
    /// The kind the module's `describe()` must give.
    pub expect_kind: Option<String>,
}

/// Validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Effect when every enforcing plugin abstains.
    pub when_all_abstain: DefaultEffect,
    /// Task history bounds.
    pub history: HistoryConfig,
    /// Plugins in evaluation order.
    pub plugins: Vec<PluginConfig>,
    /// Trusted keys and the unsigned-module switch.
    pub trust: TrustPolicy,
    /// The on-disk artifact cache, if configured.
    pub cache: Option<CacheConfig>,
    /// Files and directories a policy set is made of (besides the config file itself):
    /// plugin modules (and, beside them, their signatures), settings files, trust keys.
    pub watch_paths: Vec<PathBuf>,
    /// `[server]` as written (validated by the decision server, not here).
    pub server: Option<toml::Table>,
    /// `[gateway]` as written (validated by the MCP gateway, not here).
    pub gateway: Option<toml::Table>,
    /// `[identity]` as written (validated by the listeners, not here).
    pub identity: Option<toml::Table>,
    /// `[credentials]` as written (validated by the decision service, not here).
    pub credentials: Option<toml::Table>,
    /// The directory relative paths resolve against (the config file's).
    pub base_dir: PathBuf,
    /// Deadline of one reload attempt (from the config the host started with).
    pub reload_timeout: Duration,
    /// Task ownership, sharing and the store's deadline.
    pub tasks: TasksConfig,
    /// Approvals of step-ups.
    pub approvals: ApprovalsConfig,
    /// Where task state lives.
    pub task_store: TaskStoreConfig,
}

/// Task history bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Entries kept per task.
    pub max_entries_per_task: usize,
    /// Tasks whose entries are kept.
    pub max_tasks: usize,
    /// Tasks known at all; see `crate::task`.
    pub max_known_tasks: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            max_entries_per_task: 64,
            max_tasks: 10_000,
            max_known_tasks: 1_000_000,
        }
    }
}

/// Limits of one plugin's sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// CPU deadline per evaluation.
    pub timeout: Duration,
    /// Deadline for creating a fresh instance (before its first evaluation).
    pub instantiate_timeout: Duration,
    /// Linear memory cap per instance, in bytes.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            instantiate_timeout: Duration::from_millis(DEFAULT_INSTANTIATE_TIMEOUT_MS),
            memory_bytes: mib(DEFAULT_MEMORY_LIMIT_MIB),
        }
    }
}

/// Bounds on a plugin's idle instances, see [`crate::runtime::instance_pool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleLimits {
    /// Most idle task-bound (or shared) instances; spares are bounded by `prewarm`.
    pub instances: usize,
    /// Most linear memory across all idle instances, spares included, in bytes.
    pub memory_bytes: usize,
}

impl Default for IdleLimits {
    fn default() -> Self {
        Self {
            instances: DEFAULT_IDLE_INSTANCES,
            memory_bytes: mib(DEFAULT_IDLE_MEMORY_MIB),
        }
    }
}

fn mib(n: u64) -> usize {
    usize::try_from(n.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
}

/// One validated plugin entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// Operator's name.
    pub name: String,
    /// Absolute or config-relative-resolved path of the component.
    pub path: PathBuf,
    /// Enforce or monitor.
    pub mode: Mode,
    /// Failure handling.
    pub on_error: OnError,
    /// Sandbox limits.
    pub limits: Limits,
    /// Instance sharing.
    pub isolation: Isolation,
    /// Fresh, never-used instances kept ready off the request path (see
    /// `crate::plugin::prewarm`), so the first action of a task does not wait for instantiation.
    pub prewarm: usize,
    /// Bounds on idle instances kept between evaluations.
    pub idle: IdleLimits,
    /// Settings as JSON text.
    pub settings_json: String,
    /// Whether a reload may drop this plugin (`false`) or not (`true`).
    pub required: bool,
    /// The settings file, if settings came from one (watched for changes).
    pub settings_file: Option<PathBuf>,
    /// The largest module file read for this plugin, in bytes.
    pub max_module_bytes: u64,
    /// What the module in this slot must be; see [`Pin`].
    pub pin: Pin,
}

/// What the config pins about the module in a plugin's slot.
///
/// A signature says *who* vouched for a module, not *which plugin* it is: a module
/// signed for one slot (or a test fixture signed with the same key) would otherwise load
/// in another slot whose settings it happens to accept. A mismatch refuses the plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pin {
    /// The module's exact `sha256:` digest (checked before compiling).
    pub digest: Option<String>,
    /// The name `describe()` must return.
    pub plugin: Option<String>,
    /// The kind `describe()` must return.
    pub kind: Option<String>,
}

/// Where precompiled artifacts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Artifact directory.
    pub dir: PathBuf,
    /// MAC key file.
    pub key_file: PathBuf,
}

impl Config {
    /// Reads and validates a config file; relative paths resolve against its directory.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text =
            read_regular_text(path, MAX_CONFIG_FILE_BYTES).map_err(|cause| ConfigError::Read {
                path: path.to_owned(),
                cause,
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text; relative paths resolve against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<inline>"),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Self::from_raw(raw, base)
    }

    /// Validates a raw config.
    pub fn from_raw(raw: RawConfig, base: &Path) -> Result<Self, ConfigError> {
        let defaults = &raw.defaults;
        if defaults.isolation == Some(Isolation::Shared) {
            return Err(invalid(
                "defaults.isolation",
                "`shared` lets data cross tasks and must be chosen per plugin, not as a default",
            ));
        }
        let default_timeout = check_timeout("defaults.timeout_ms", defaults.timeout_ms)?;
        let default_instantiate_timeout = check_timeout(
            "defaults.instantiate_timeout_ms",
            Some(
                defaults
                    .instantiate_timeout_ms
                    .unwrap_or(DEFAULT_INSTANTIATE_TIMEOUT_MS),
            ),
        )?;
        let default_memory = check_memory("defaults.memory_limit_mib", defaults.memory_limit_mib)?;
        let default_prewarm = check_prewarm("defaults.prewarm", defaults.prewarm)?;
        let default_max_module =
            check_module_bound("defaults.max_module_mib", defaults.max_module_mib)?;
        let default_idle = IdleLimits {
            instances: check_idle_instances("defaults.idle_instances", defaults.idle_instances)?,
            memory_bytes: check_idle_memory("defaults.idle_memory_mib", defaults.idle_memory_mib)?,
        };
        let history = HistoryConfig {
            max_entries_per_task: positive(
                "history.max_entries_per_task",
                raw.history.max_entries_per_task,
                HistoryConfig::default().max_entries_per_task,
            )?,
            max_tasks: positive(
                "history.max_tasks",
                raw.history.max_tasks,
                HistoryConfig::default().max_tasks,
            )?,
            max_known_tasks: positive(
                "history.max_known_tasks",
                raw.history.max_known_tasks,
                HistoryConfig::default().max_known_tasks,
            )?,
        };
        if history.max_known_tasks < history.max_tasks {
            return Err(invalid(
                "history.max_known_tasks",
                format!(
                    "{}, expected at least `history.max_tasks` ({})",
                    history.max_known_tasks, history.max_tasks
                ),
            ));
        }
        let mut plugins: Vec<PluginConfig> = Vec::with_capacity(raw.plugins.len());
        for (i, p) in raw.plugins.into_iter().enumerate() {
            let key = |k: &str| format!("plugin[{i}].{k}");
            if p.name.trim().is_empty() {
                return Err(invalid(key("name"), "must be a non-empty string"));
            }
            if plugins.iter().any(|q| q.name == p.name) {
                return Err(invalid(
                    key("name"),
                    format!("`{}` is used by an earlier plugin", p.name),
                ));
            }
            let settings_path = p.settings_file.as_ref().map(|f| base.join(f));
            let settings_json = match (p.settings, p.settings_file) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        key("settings_file"),
                        "give either `settings` or `settings_file`, not both",
                    ));
                }
                (Some(value), None) => {
                    if !value.is_object() {
                        return Err(invalid(key("settings"), "expected a table"));
                    }
                    value.to_string()
                }
                (None, Some(file)) => {
                    let path = base.join(&file);
                    let text = read_regular_text(&path, MAX_SETTINGS_FILE_BYTES).map_err(|e| {
                        invalid(
                            key("settings_file"),
                            format!("cannot read `{}`: {e}", path.display()),
                        )
                    })?;
                    let value: Value = serde_json::from_str(&text).map_err(|e| {
                        invalid(
                            key("settings_file"),
                            format!("`{}` is not valid JSON: {e}", path.display()),
                        )
                    })?;
                    value.to_string()
                }
                (None, None) => "{}".to_owned(),
            };
            let timeout = match p.timeout_ms {
                Some(_) => check_timeout(&key("timeout_ms"), p.timeout_ms)?,
                None => default_timeout,
            };
            let instantiate_timeout = match p.instantiate_timeout_ms {
                Some(_) => check_timeout(&key("instantiate_timeout_ms"), p.instantiate_timeout_ms)?,
                None => default_instantiate_timeout,
            };
            let memory_bytes = match p.memory_limit_mib {
                Some(_) => check_memory(&key("memory_limit_mib"), p.memory_limit_mib)?,
                None => default_memory,
            };
            plugins.push(PluginConfig {
                name: p.name,
                path: base.join(&p.path),
                mode: p.mode.unwrap_or_default(),
                on_error: p.on_error.unwrap_or_default(),
                limits: Limits {
                    timeout,
                    instantiate_timeout,
                    memory_bytes,
                },
                isolation: p.isolation.or(defaults.isolation).unwrap_or_default(),
                prewarm: match p.prewarm {
                    Some(_) => check_prewarm(&key("prewarm"), p.prewarm)?,
                    None => default_prewarm,
                },
                idle: IdleLimits {
                    instances: match p.idle_instances {
                        Some(_) => check_idle_instances(&key("idle_instances"), p.idle_instances)?,
                        None => default_idle.instances,
                    },
                    memory_bytes: match p.idle_memory_mib {
                        Some(_) => check_idle_memory(&key("idle_memory_mib"), p.idle_memory_mib)?,
                        None => default_idle.memory_bytes,
                    },
                },
                settings_json,
                required: p.required.unwrap_or(false),
                settings_file: settings_path,
                max_module_bytes: match p.max_module_mib {
                    Some(_) => check_module_bound(&key("max_module_mib"), p.max_module_mib)?,
                    None => default_max_module,
                },
                pin: Pin {
                    digest: check_digest(&key("digest"), p.digest)?,
                    plugin: check_word(&key("expect_plugin"), p.expect_plugin)?,
                    kind: check_word(&key("expect_kind"), p.expect_kind)?,
                },
            });
        }
        let trust = trust_policy(&raw.trust, base)?;
        let mut watch_paths: Vec<PathBuf> = Vec::new();
        watch_paths.extend(raw.trust.keys.iter().map(|k| base.join(&k.path)));
        watch_paths.extend(raw.trust.key_dirs.iter().map(|d| base.join(d)));
        for p in &plugins {
            watch_paths.push(p.path.clone());
            watch_paths.push(crate::trust::signature::signature_path(&p.path));
            watch_paths.extend(p.settings_file.clone());
        }
        let names: Vec<String> = plugins.iter().map(|p| p.name.clone()).collect();
        let tasks = tasks_config(raw.tasks, &names, history.max_entries_per_task)?;
        let reload_timeout_ms = raw.reload.timeout_ms.unwrap_or(DEFAULT_RELOAD_TIMEOUT_MS);
        if reload_timeout_ms == 0 || reload_timeout_ms > MAX_RELOAD_TIMEOUT_MS {
            return Err(invalid(
                "reload.timeout_ms",
                format!("{reload_timeout_ms} ms, expected 1 to {MAX_RELOAD_TIMEOUT_MS}"),
            ));
        }
        Ok(Self {
            when_all_abstain: defaults.when_all_abstain.unwrap_or_default(),
            history,
            plugins,
            trust,
            cache: raw.cache.map(|c| CacheConfig {
                dir: base.join(c.dir),
                key_file: base.join(c.key_file),
            }),
            watch_paths,
            server: raw.server,
            gateway: raw.gateway,
            identity: raw.identity,
            credentials: raw.credentials,
            base_dir: base.to_owned(),
            reload_timeout: Duration::from_millis(reload_timeout_ms),
            tasks,
            approvals: approvals::validate(raw.approvals)?,
            task_store: task_store::validate(raw.task_store, base)?,
        })
    }
}

/// Loads the trusted keys; a key that cannot be used is an error naming its entry and
/// file, so a misconfigured trust store stops the host instead of refusing every plugin
/// for an obscure reason later.
fn trust_policy(raw: &RawTrust, base: &Path) -> Result<TrustPolicy, ConfigError> {
    let mut store = TrustStore::new();
    for (i, key) in raw.keys.iter().enumerate() {
        store
            .add_key_file(key.id.as_deref(), &base.join(&key.path))
            .map_err(|e| invalid(format!("trust.keys[{i}]"), e.to_string()))?;
    }
    for (i, dir) in raw.key_dirs.iter().enumerate() {
        store
            .add_key_dir(&base.join(dir))
            .map_err(|e| invalid(format!("trust.key_dirs[{i}]"), e.to_string()))?;
    }
    Ok(TrustPolicy {
        store,
        allow_unsigned: raw.allow_unsigned,
    })
}

fn check_timeout(key: &str, value: Option<u64>) -> Result<Duration, ConfigError> {
    let ms = value.unwrap_or(DEFAULT_TIMEOUT_MS);
    if ms == 0 || ms > MAX_TIMEOUT_MS {
        return Err(invalid(
            key,
            format!("{ms} ms, expected 1 to {MAX_TIMEOUT_MS}"),
        ));
    }
    Ok(Duration::from_millis(ms))
}

fn check_memory(key: &str, value: Option<u64>) -> Result<usize, ConfigError> {
    let n = value.unwrap_or(DEFAULT_MEMORY_LIMIT_MIB);
    if n == 0 || n > MAX_MEMORY_LIMIT_MIB {
        return Err(invalid(
            key,
            format!("{n} MiB, expected 1 to {MAX_MEMORY_LIMIT_MIB}"),
        ));
    }
    Ok(mib(n))
}

fn check_prewarm(key: &str, value: Option<usize>) -> Result<usize, ConfigError> {
    let n = value.unwrap_or(DEFAULT_PREWARM);
    if n > MAX_PREWARM {
        return Err(invalid(
            key,
            format!("{n} instances, expected 0 to {MAX_PREWARM}"),
        ));
    }
    Ok(n)
}

fn tasks_config(
    raw: RawTasks,
    plugin_names: &[String],
    max_entries_per_task: usize,
) -> Result<TasksConfig, ConfigError> {
    let mut groups = Vec::with_capacity(raw.share.len());
    for (i, group) in raw.share.into_iter().enumerate() {
        if group.agents.len() < 2 {
            return Err(invalid(
                format!("tasks.share[{i}].agents"),
                "expected at least two agent ids (or patterns ending in `*`) that may share tasks",
            ));
        }
        for (j, agent) in group.agents.iter().enumerate() {
            if agent.trim().is_empty() || agent == "*" {
                return Err(invalid(
                    format!("tasks.share[{i}].agents[{j}]"),
                    format!(
                        "`{agent}`: expected an agent id or a prefix ending in `*` (a bare `*` would let every agent into every task)"
                    ),
                ));
            }
        }
        groups.push(group.agents);
    }
    let ms = raw.store_timeout_ms.unwrap_or(DEFAULT_STORE_TIMEOUT_MS);
    if ms == 0 || ms > MAX_TIMEOUT_MS {
        return Err(invalid(
            "tasks.store_timeout_ms",
            format!("{ms} ms, expected 1 to {MAX_TIMEOUT_MS}"),
        ));
    }
    let quarantine = match raw.quarantine {
        None => QuarantineRules::default(),
        Some(q) => {
            if q.after_denies == Some(0) {
                return Err(invalid(
                    "tasks.quarantine.after_denies",
                    "0: expected the number of denies (1 or more) that quarantines a task",
                ));
            }
            if let Some(n) = q.after_denies
                && n > max_entries_per_task
            {
                return Err(invalid(
                    "tasks.quarantine.after_denies",
                    format!(
                        "{n}, more than the {max_entries_per_task} entries a task's history keeps (`history.max_entries_per_task`): it could never be reached"
                    ),
                ));
            }
            for (i, name) in q.critical_plugins.iter().enumerate() {
                if !plugin_names.contains(name) {
                    return Err(invalid(
                        format!("tasks.quarantine.critical_plugins[{i}]"),
                        format!(
                            "`{name}` is not the name of a `[[plugin]]` (known: {})",
                            plugin_names.join(", ")
                        ),
                    ));
                }
            }
            QuarantineRules {
                after_denies: q.after_denies,
                critical_plugins: q.critical_plugins,
                on_obligation: q.on_obligation.unwrap_or(true),
            }
        }
    };
    let mode = match raw.mode.as_deref() {
        None => None,
        Some("asserted") => Some(TaskMode::Asserted),
        Some("opened") => Some(TaskMode::Opened),
        Some(other) => {
            return Err(invalid(
                "tasks.mode",
                format!("`{other}`, expected `asserted` or `opened`"),
            ));
        }
    };
    for (i, opener) in raw.openers.iter().enumerate() {
        if opener.trim().is_empty() {
            return Err(invalid(format!("tasks.openers[{i}]"), "empty identity"));
        }
    }
    Ok(TasksConfig {
        sharing: TaskSharing::new(groups),
        store_timeout: Duration::from_millis(ms),
        quarantine,
        mode,
        openers: raw.openers,
    })
}

fn check_digest(key: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(digest) = value else {
        return Ok(None);
    };
    let hex = digest.strip_prefix("sha256:").unwrap_or("");
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid(
            key,
            format!(
                "`{digest}`, expected `sha256:` and 64 lowercase hex digits (as `arbiter inspect` prints)"
            ),
        ));
    }
    Ok(Some(digest))
}

fn check_word(key: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(word) if word.trim().is_empty() => Err(invalid(key, "expected a non-empty string")),
        other => Ok(other),
    }
}

fn check_module_bound(key: &str, value: Option<u64>) -> Result<u64, ConfigError> {
    let n = value.unwrap_or(DEFAULT_MAX_MODULE_MIB);
    if n == 0 || n > MAX_MAX_MODULE_MIB {
        return Err(invalid(
            key,
            format!("{n} MiB, expected 1 to {MAX_MAX_MODULE_MIB}"),
        ));
    }
    Ok(n * 1024 * 1024)
}

fn check_idle_instances(key: &str, value: Option<usize>) -> Result<usize, ConfigError> {
    let n = value.unwrap_or(DEFAULT_IDLE_INSTANCES);
    if n > MAX_IDLE_INSTANCES {
        return Err(invalid(
            key,
            format!("{n} instances, expected 0 to {MAX_IDLE_INSTANCES}"),
        ));
    }
    Ok(n)
}

fn check_idle_memory(key: &str, value: Option<u64>) -> Result<usize, ConfigError> {
    let n = value.unwrap_or(DEFAULT_IDLE_MEMORY_MIB);
    // 0 would keep no spare either, silently undoing `prewarm`; `idle_instances = 0`
    // is the way to keep no task instances.
    if n == 0 || n > MAX_IDLE_MEMORY_MIB {
        return Err(invalid(
            key,
            format!("{n} MiB, expected 1 to {MAX_IDLE_MEMORY_MIB}"),
        ));
    }
    Ok(mib(n))
}

fn positive(key: &str, value: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match value {
        Some(0) => Err(invalid(key, "expected a positive number")),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml(
            "[[plugin]]\nname='a'\npath='a.wasm'\ntimeout='5'\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `timeout`"), "{err}");
    }

    #[test]
    fn defaults_apply_and_paths_resolve() {
        let c = Config::from_toml(
            "[defaults]\ntimeout_ms=7\n[[plugin]]\nname='a'\npath='p/a.wasm'\nsettings={x=1}\n",
            Path::new("/etc/arbiter"),
        )
        .unwrap();
        let p = &c.plugins[0];
        assert_eq!(p.path, PathBuf::from("/etc/arbiter/p/a.wasm"));
        assert_eq!(p.limits.timeout, Duration::from_millis(7));
        assert_eq!(
            p.limits.instantiate_timeout,
            Duration::from_millis(DEFAULT_INSTANTIATE_TIMEOUT_MS)
        );
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.on_error, OnError::Deny);
        assert_eq!(p.isolation, Isolation::Task);
        assert_eq!(p.settings_json, r#"{"x":1}"#);
        assert_eq!(c.when_all_abstain, DefaultEffect::Deny);
    }

    #[test]
    fn shared_isolation_is_not_a_default() {
        let err =
            Config::from_toml("[defaults]\nisolation='shared'\n", Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("defaults.isolation"), "{err}");
    }

    #[test]
    fn duplicate_names_and_bad_limits_are_refused() {
        let err = Config::from_toml(
            "[[plugin]]\nname='a'\npath='a'\n[[plugin]]\nname='a'\npath='b'\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(err.to_string().contains("plugin[1].name"), "{err}");
        let err = Config::from_toml(
            "[[plugin]]\nname='a'\npath='a'\ntimeout_ms=0\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(err.to_string().contains("plugin[0].timeout_ms"), "{err}");
        let err = Config::from_toml(
            "[defaults]\ninstantiate_timeout_ms=0\n[[plugin]]\nname='a'\npath='a'\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("defaults.instantiate_timeout_ms"),
            "{err}"
        );
    }

    #[test]
    fn idle_bounds_default_override_and_are_checked() {
        let c = Config::from_toml(
            "[defaults]\nidle_instances=10\nidle_memory_mib=32\n\
             [[plugin]]\nname='a'\npath='a'\n\
             [[plugin]]\nname='b'\npath='b'\nidle_instances=0\nidle_memory_mib=2048\n\
             [[plugin]]\nname='c'\npath='c'\nidle_memory_mib=1\n",
            Path::new("."),
        )
        .unwrap();
        let mib = 1024 * 1024;
        assert_eq!(
            c.plugins[0].idle,
            IdleLimits {
                instances: 10,
                memory_bytes: 32 * mib
            }
        );
        assert_eq!(
            c.plugins[1].idle,
            IdleLimits {
                instances: 0,
                memory_bytes: 2048 * mib
            }
        );
        assert_eq!(
            c.plugins[2].idle,
            IdleLimits {
                instances: 10,
                memory_bytes: mib
            }
        );
        let c = Config::from_toml("[[plugin]]\nname='a'\npath='a'\n", Path::new(".")).unwrap();
        assert_eq!(c.plugins[0].idle, IdleLimits::default());
        for (toml, key) in [
            (
                "[defaults]\nidle_memory_mib=0\n",
                "defaults.idle_memory_mib",
            ),
            (
                "[defaults]\nidle_instances=65537\n",
                "defaults.idle_instances",
            ),
            (
                "[[plugin]]\nname='a'\npath='a'\nidle_memory_mib=1048577\n",
                "plugin[0].idle_memory_mib",
            ),
            (
                "[[plugin]]\nname='a'\npath='a'\nidle_instances=100000\n",
                "plugin[0].idle_instances",
            ),
        ] {
            let err = Config::from_toml(toml, Path::new(".")).unwrap_err();
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
        let err = Config::from_toml("[defaults]\nidle_instances=-1\n", Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("idle_instances"), "{err}");
    }
}
