//! The `[gateway]` table: where `arbiter gateway` listens, which MCP servers it fronts,
//! where the agent's identity comes from, and its bounds. Read in two stages like the
//! rest of the file ([`RawGateway`] with `deny_unknown_fields`, validated into
//! [`GatewayConfig`]).
//!
//! ```toml
//! [gateway]
//! listen = "127.0.0.1:8490"       # loopback by default
//! denial = "error"                # or "tool-error": a CallToolResult with isError
//! max_body_bytes = 4194304        # a client's request body; larger gets 413
//! max_message_bytes = 16777216    # one message from an upstream (a stdio line, a
//!                                 # tools/list answer the gateway filters)
//! upstream_timeout_ms = 30000     # an upstream must start answering within this
//! header_read_timeout_ms = 5000   # as in [server]
//! body_read_timeout_ms = 10000
//! max_connections = 1024
//! allowed_origins = []            # browser origins allowed (DNS-rebinding guard)
//! environment = { env = "prod" }  # the action's `environment`
//!
//! [gateway.identity]
//! agent_header = "x-arbiter-agent"  # the agent id is read from this header, or:
//! # agent = "spiffe://example.org/ns/agents/sa/summarizer"   # one fixed agent
//!
//! [[gateway.upstream]]
//! name = "everything"             # the endpoint /mcp/everything; the action's tool.server
//! url = "http://127.0.0.1:3001/mcp"
//! labels = ["internal"]           # resource labels of every call to it
//! tool_labels = { read_record = ["confidential"] }
//!
//! [[gateway.upstream]]
//! name = "fs"
//! command = ["mcp-server-filesystem", "/srv/data"]   # a stdio server, spawned per session
//!                                 # (a program path with `/` is relative to this file;
//!                                 # arguments are the program's, relative to `cwd`)
//! env = { LOG_LEVEL = "info" }    # the child's environment besides PATH, HOME, LANG
//! cwd = "/srv"                    # relative to this file
//! max_sessions = 64               # children alive at once
//! idle_timeout_ms = 600000        # a session idle this long is ended (its child stopped)
//! ```

use crate::config::{Config, ConfigError};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default listen address of the gateway: loopback only.
pub const DEFAULT_GATEWAY_LISTEN: &str = "127.0.0.1:8490";
/// Default largest client request body.
pub const DEFAULT_GATEWAY_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Default largest single message from an upstream.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Largest body or message bound a config may set.
pub const MAX_GATEWAY_BYTES: usize = 256 * 1024 * 1024;
/// Default time an upstream has to start answering a request.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 30_000;
/// Longest upstream timeout a config may set (an hour: tools that run long stream
/// progress, and the timeout is until the first byte of the answer).
pub const MAX_UPSTREAM_TIMEOUT_MS: u64 = 3_600_000;
/// Default header name carrying the agent id.
pub const DEFAULT_AGENT_HEADER: &str = "x-arbiter-agent";
/// Default stdio sessions (children) alive at once, per upstream.
pub const DEFAULT_MAX_SESSIONS: usize = 64;
/// Largest `max_sessions`.
pub const MAX_MAX_SESSIONS: usize = 10_000;
/// Default idle time after which a stdio session is ended.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 600_000;

/// `[gateway]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    /// Socket address to listen on.
    pub listen: Option<String>,
    /// `error` or `tool-error`.
    pub denial: Option<String>,
    /// Largest client request body.
    pub max_body_bytes: Option<usize>,
    /// Largest message from an upstream.
    pub max_message_bytes: Option<usize>,
    /// Time for an upstream to start answering, ms.
    pub upstream_timeout_ms: Option<u64>,
    /// As `server.header_read_timeout_ms`.
    pub header_read_timeout_ms: Option<u64>,
    /// As `server.body_read_timeout_ms`.
    pub body_read_timeout_ms: Option<u64>,
    /// As `server.max_connections`.
    pub max_connections: Option<usize>,
    /// `Origin` header values accepted.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// The action's environment.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// `[gateway.identity]`.
    #[serde(default)]
    pub identity: RawIdentity,
    /// `[[gateway.upstream]]`.
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<RawUpstream>,
}

/// `[gateway.identity]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// Header carrying the agent id.
    pub agent_header: Option<String>,
    /// One fixed agent id.
    pub agent: Option<String>,
}

/// One `[[gateway.upstream]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// Endpoint and `tool.server`.
    pub name: Option<String>,
    /// Streamable HTTP endpoint.
    pub url: Option<String>,
    /// Stdio server command line.
    pub command: Option<Vec<String>>,
    /// Extra environment of a stdio child.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory of a stdio child.
    pub cwd: Option<String>,
    /// Stdio sessions alive at once.
    pub max_sessions: Option<usize>,
    /// Idle time before a stdio session ends, ms.
    pub idle_timeout_ms: Option<u64>,
    /// Resource labels of every call.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Resource labels by tool name.
    #[serde(default)]
    pub tool_labels: BTreeMap<String, Vec<String>>,
    /// Mint a per-call credential for every allowed call.
    pub credential: Option<RawCredential>,
}

/// `[gateway.upstream.credential]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredential {
    /// The `aud`; default the upstream's name.
    pub audience: Option<String>,
    /// Scopes every call needs.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Scopes by tool name, instead of `scopes`.
    #[serde(default)]
    pub tool_scopes: BTreeMap<String, Vec<String>>,
    /// Only these tools get one (default: every tool of the upstream).
    pub tools: Option<Vec<String>>,
}

/// The credential the gateway injects into the upstream request of each allowed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCredential {
    /// The `aud`.
    pub audience: String,
    /// Scopes every call needs.
    pub scopes: Vec<String>,
    /// Scopes by tool, instead of `scopes`.
    pub tool_scopes: BTreeMap<String, Vec<String>>,
    /// Only these tools get one; `None`: every tool.
    pub tools: Option<Vec<String>>,
}

impl UpstreamConfig {
    /// Whether and for whom a call of `tool` gets a credential: always when the
    /// upstream's `credential` covers the tool, else only if a plugin's `credential`
    /// obligation asks. `None` for stdio upstreams, which cannot carry one.
    pub fn credential_plan(
        &self,
        tool: &str,
    ) -> Option<crate::service::credentials::CredentialPlan> {
        if !matches!(self.transport, Transport::Http { .. }) {
            return None;
        }
        let (audience, always) = match &self.credential {
            None => (self.name.clone(), None),
            Some(c) => {
                let covered = c
                    .tools
                    .as_ref()
                    .is_none_or(|tools| tools.iter().any(|t| t == tool));
                let scopes = c.tool_scopes.get(tool).unwrap_or(&c.scopes).clone();
                (c.audience.clone(), covered.then_some(scopes))
            }
        };
        Some(crate::service::credentials::CredentialPlan { audience, always })
    }
}

/// How a denial reaches the MCP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialStyle {
    /// A JSON-RPC error (HTTP 200) that the SDKs raise as their protocol error, with the
    /// decision in `data`: for the agent's code and the security team.
    Error,
    /// A `CallToolResult` with `isError: true` and the decision in `structuredContent`:
    /// for clients that show tool errors to the model so that it can re-plan.
    ToolError,
}

/// Where the acting agent's id comes from (until verified identity plugs in, the id is
/// asserted, and every decision says so with attestation `none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSource {
    /// This request header (lower-case).
    Header(String),
    /// One fixed agent for every request.
    Fixed(String),
}

/// How the gateway reaches an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP at this URL.
    Http {
        /// The MCP endpoint, `http://host:port/path`.
        url: String,
    },
    /// A stdio server the gateway spawns (one child per session).
    Stdio {
        /// Program and arguments.
        command: Vec<String>,
        /// Extra environment.
        env: BTreeMap<String, String>,
        /// Working directory.
        cwd: Option<PathBuf>,
        /// Children alive at once.
        max_sessions: usize,
        /// Idle time before a session ends.
        idle_timeout: Duration,
    },
}

/// A validated upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Endpoint name and `tool.server`.
    pub name: String,
    /// How to reach it.
    pub transport: Transport,
    /// Resource labels of every call.
    pub labels: Vec<String>,
    /// Resource labels by tool.
    pub tool_labels: BTreeMap<String, Vec<String>>,
    /// The per-call credential injected as `Authorization: Bearer`, when configured.
    pub credential: Option<UpstreamCredential>,
}

impl UpstreamConfig {
    /// The resource labels of a call to `tool`: the upstream's, then the tool's.
    pub fn labels_of(&self, tool: &str) -> Vec<String> {
        let mut labels = self.labels.clone();
        if let Some(extra) = self.tool_labels.get(tool) {
            for label in extra {
                if !labels.contains(label) {
                    labels.push(label.clone());
                }
            }
        }
        labels
    }
}

/// Validated `[gateway]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// How denials are answered.
    pub denial: DenialStyle,
    /// Largest client request body.
    pub max_body_bytes: usize,
    /// Largest upstream message.
    pub max_message_bytes: usize,
    /// Time for an upstream to start answering.
    pub upstream_timeout: Duration,
    /// Time for a request's headers to arrive.
    pub header_read_timeout: Duration,
    /// Time for a request's body to arrive.
    pub body_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Accepted `Origin` values.
    pub allowed_origins: Vec<String>,
    /// The action's environment.
    pub environment: BTreeMap<String, String>,
    /// Where the agent id comes from.
    pub agent: AgentSource,
    /// The upstreams, by configured order.
    pub upstreams: Vec<UpstreamConfig>,
    /// The operator console's base URL (`[approvals] console_url`), for links to an
    /// approval's page in step-up answers.
    pub console_url: Option<String>,
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

fn millis(key: &str, value: Option<u64>, default: u64, max: u64) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(Duration::from_millis(default)),
        Some(ms) if ms == 0 || ms > max => Err(invalid(
            key,
            format!("{ms}, expected 1 to {max} milliseconds"),
        )),
        Some(ms) => Ok(Duration::from_millis(ms)),
    }
}

fn bytes(key: &str, value: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(n) if n == 0 || n > MAX_GATEWAY_BYTES => Err(invalid(
            key,
            format!("{n}, expected 1 to {MAX_GATEWAY_BYTES} bytes"),
        )),
        Some(n) => Ok(n),
    }
}

/// An upstream name is a URL path segment and a `tool.server`: letters, digits, `-`, `_`
/// and `.`, 1 to 64 bytes, so that `/mcp/{name}` needs no escaping.
fn check_upstream_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!(
                "`{name}`: expected 1 to 64 ASCII letters, digits, `-`, `_` or `.` \
                 (it is the URL path segment of /mcp/{{name}})"
            ),
        ))
    }
}

impl GatewayConfig {
    /// Validates the config's `[gateway]` table; it must exist and name an upstream.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let Some(table) = &config.gateway else {
            return Err(invalid(
                "gateway",
                "missing: `arbiter gateway` needs a [gateway] table with at least one [[gateway.upstream]]",
            ));
        };
        let raw: RawGateway = table
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| invalid("gateway", e.message().trim_end().to_owned()))?;
        let mut gateway = Self::from_raw(raw, &config.base_dir)?;
        gateway
            .console_url
            .clone_from(&config.approvals.console_url);
        Ok(gateway)
    }

    /// Validates `[gateway]`; relative `cwd`s resolve against `base`.
    pub fn from_raw(raw: RawGateway, base: &Path) -> Result<Self, ConfigError> {
        let listen_text = raw
            .listen
            .unwrap_or_else(|| DEFAULT_GATEWAY_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|e| {
            invalid(
                "gateway.listen",
                format!(
                    "`{listen_text}` is not a socket address like `{DEFAULT_GATEWAY_LISTEN}`: {e}"
                ),
            )
        })?;
        let denial = match raw.denial.as_deref() {
            None | Some("error") => DenialStyle::Error,
            Some("tool-error") => DenialStyle::ToolError,
            Some(other) => {
                return Err(invalid(
                    "gateway.denial",
                    format!("`{other}`, expected `error` or `tool-error`"),
                ));
            }
        };
        let max_body_bytes = bytes(
            "gateway.max_body_bytes",
            raw.max_body_bytes,
            DEFAULT_GATEWAY_MAX_BODY_BYTES,
        )?;
        let max_message_bytes = bytes(
            "gateway.max_message_bytes",
            raw.max_message_bytes,
            DEFAULT_MAX_MESSAGE_BYTES,
        )?;
        let upstream_timeout = millis(
            "gateway.upstream_timeout_ms",
            raw.upstream_timeout_ms,
            DEFAULT_UPSTREAM_TIMEOUT_MS,
            MAX_UPSTREAM_TIMEOUT_MS,
        )?;
        let header_read_timeout = millis(
            "gateway.header_read_timeout_ms",
            raw.header_read_timeout_ms,
            crate::service::DEFAULT_HEADER_READ_TIMEOUT_MS,
            crate::service::MAX_READ_TIMEOUT_MS,
        )?;
        let body_read_timeout = millis(
            "gateway.body_read_timeout_ms",
            raw.body_read_timeout_ms,
            crate::service::DEFAULT_BODY_READ_TIMEOUT_MS,
            crate::service::MAX_READ_TIMEOUT_MS,
        )?;
        let max_connections = match raw.max_connections {
            None => crate::service::DEFAULT_MAX_CONNECTIONS,
            Some(n) if n == 0 || n > crate::service::MAX_MAX_CONNECTIONS => {
                return Err(invalid(
                    "gateway.max_connections",
                    format!("{n}, expected 1 to {}", crate::service::MAX_MAX_CONNECTIONS),
                ));
            }
            Some(n) => n,
        };
        for (i, origin) in raw.allowed_origins.iter().enumerate() {
            if origin.is_empty() || !origin.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    format!("gateway.allowed_origins[{i}]"),
                    format!("`{origin}`: expected an origin such as `https://console.example.com`"),
                ));
            }
        }
        for key in raw.environment.keys() {
            if key.starts_with(crate::model::RESERVED_ENVIRONMENT_PREFIX) {
                return Err(invalid(
                    format!("gateway.environment.{key}"),
                    format!(
                        "keys starting with `{}` are set by Arbiter itself",
                        crate::model::RESERVED_ENVIRONMENT_PREFIX
                    ),
                ));
            }
        }
        let agent = match (raw.identity.agent_header, raw.identity.agent) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "gateway.identity",
                    "set `agent_header` or `agent`, not both",
                ));
            }
            (None, Some(agent)) if agent.trim().is_empty() => {
                return Err(invalid("gateway.identity.agent", "empty agent id"));
            }
            (None, Some(agent)) => AgentSource::Fixed(agent),
            (header, None) => {
                let header = header.unwrap_or_else(|| DEFAULT_AGENT_HEADER.to_owned());
                if axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err(invalid(
                        "gateway.identity.agent_header",
                        format!("`{header}` is not an HTTP header name"),
                    ));
                }
                AgentSource::Header(header.to_ascii_lowercase())
            }
        };
        if raw.upstreams.is_empty() {
            return Err(invalid(
                "gateway.upstream",
                "no upstream: add a [[gateway.upstream]] with a `name` and a `url` or `command`",
            ));
        }
        let mut names = HashSet::new();
        let mut upstreams = Vec::with_capacity(raw.upstreams.len());
        for (i, up) in raw.upstreams.into_iter().enumerate() {
            let key = format!("gateway.upstream[{i}]");
            let name = up
                .name
                .ok_or_else(|| invalid(format!("{key}.name"), "missing"))?;
            check_upstream_name(&format!("{key}.name"), &name)?;
            if !names.insert(name.clone()) {
                return Err(invalid(
                    format!("{key}.name"),
                    format!("`{name}` names two upstreams; each needs its own endpoint"),
                ));
            }
            let stdio_only = !up.env.is_empty()
                || up.cwd.is_some()
                || up.max_sessions.is_some()
                || up.idle_timeout_ms.is_some();
            let transport = match (up.url, up.command) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        &key,
                        format!("upstream `{name}` has both `url` and `command`; choose one"),
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        &key,
                        format!(
                            "upstream `{name}` needs `url = \"http://…/mcp\"` (Streamable HTTP) or `command = [...]` (stdio)"
                        ),
                    ));
                }
                (Some(url), None) => {
                    if stdio_only {
                        return Err(invalid(
                            &key,
                            format!(
                                "upstream `{name}` is reached by `url`: `env`, `cwd`, `max_sessions` and `idle_timeout_ms` apply to `command` upstreams only"
                            ),
                        ));
                    }
                    check_url(&format!("{key}.url"), &url)?;
                    Transport::Http { url }
                }
                (None, Some(command)) => {
                    if command.first().is_none_or(|p| p.trim().is_empty()) {
                        return Err(invalid(
                            format!("{key}.command"),
                            "expected the program and its arguments, e.g. [\"mcp-server-filesystem\", \"/srv\"]",
                        ));
                    }
                    let max_sessions = match up.max_sessions {
                        None => DEFAULT_MAX_SESSIONS,
                        Some(n) if n == 0 || n > MAX_MAX_SESSIONS => {
                            return Err(invalid(
                                format!("{key}.max_sessions"),
                                format!("{n}, expected 1 to {MAX_MAX_SESSIONS}"),
                            ));
                        }
                        Some(n) => n,
                    };
                    let idle_timeout = millis(
                        &format!("{key}.idle_timeout_ms"),
                        up.idle_timeout_ms,
                        DEFAULT_IDLE_TIMEOUT_MS,
                        24 * 3_600_000,
                    )?;
                    // A relative program path with a `/` is the config file's, like
                    // every other path in it (a bare name is looked up in PATH).
                    let mut command = command;
                    if let Some(program) = command.first_mut()
                        && program.contains('/')
                        && Path::new(program.as_str()).is_relative()
                    {
                        *program = base.join(program.as_str()).display().to_string();
                    }
                    Transport::Stdio {
                        command,
                        env: up.env,
                        cwd: up.cwd.map(|c| base.join(c)),
                        max_sessions,
                        idle_timeout,
                    }
                }
            };
            let credential = match (up.credential, &transport) {
                (None, _) => None,
                (Some(_), Transport::Stdio { .. }) => {
                    return Err(invalid(
                        format!("{key}.credential"),
                        "credentials are injected as an `Authorization` header: Streamable HTTP upstreams (`url`) only",
                    ));
                }
                (Some(c), Transport::Http { .. }) => Some(UpstreamCredential {
                    audience: c.audience.unwrap_or_else(|| name.clone()),
                    scopes: c.scopes,
                    tool_scopes: c.tool_scopes,
                    tools: c.tools,
                }),
            };
            upstreams.push(UpstreamConfig {
                name,
                transport,
                labels: up.labels,
                tool_labels: up.tool_labels,
                credential,
            });
        }
        Ok(Self {
            listen,
            denial,
            max_body_bytes,
            max_message_bytes,
            upstream_timeout,
            header_read_timeout,
            body_read_timeout,
            max_connections,
            allowed_origins: raw.allowed_origins,
            environment: raw.environment,
            agent,
            upstreams,
            console_url: None,
        })
    }
}

/// An upstream URL must be plain `http://` (TLS to upstreams comes with the identity
/// work) with a host, and parse as a URI.
fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|e| invalid(key, format!("`{url}` is not a URL: {e}")))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(invalid(
            key,
            format!(
                "`{url}`: expected `http://host:port/path` (https upstreams are not supported yet)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| invalid("test", e.to_string()))?;
        let gateway = table
            .get("gateway")
            .cloned()
            .unwrap_or(toml::Value::Table(toml::Table::new()));
        let raw: RawGateway = gateway
            .try_into()
            .map_err(|e: toml::de::Error| invalid("gateway", e.message().to_owned()))?;
        GatewayConfig::from_raw(raw, Path::new("/etc/arbiter"))
    }

    fn problem(text: &str) -> String {
        match parse(text) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_minimal_gateway_has_loopback_defaults() {
        let c = parse("[[gateway.upstream]]\nname = \"fs\"\ncommand = [\"srv\"]\ncwd = \"data\"\n")
            .unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_GATEWAY_LISTEN);
        assert_eq!(c.denial, DenialStyle::Error);
        assert_eq!(
            c.agent,
            AgentSource::Header(DEFAULT_AGENT_HEADER.to_owned())
        );
        match &c.upstreams[0].transport {
            Transport::Stdio {
                cwd, max_sessions, ..
            } => {
                assert_eq!(cwd.as_deref(), Some(Path::new("/etc/arbiter/data")));
                assert_eq!(*max_sessions, DEFAULT_MAX_SESSIONS);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mistakes_name_the_key_and_what_was_expected() {
        assert!(problem("[gateway]\n").contains("`gateway.upstream`: no upstream"));
        assert!(
            problem("[[gateway.upstream]]\nname = \"a/b\"\nurl = \"http://x/mcp\"\n")
                .contains("gateway.upstream[0].name")
        );
        assert!(problem("[[gateway.upstream]]\nname = \"a\"\nurl = \"http://x/mcp\"\n[[gateway.upstream]]\nname = \"a\"\nurl = \"http://y/mcp\"\n").contains("names two upstreams"));
        assert!(
            problem("[[gateway.upstream]]\nname = \"a\"\nurl = \"https://x/mcp\"\n")
                .contains("https upstreams are not supported")
        );
        assert!(
            problem(
                "[[gateway.upstream]]\nname = \"a\"\nurl = \"http://x/mcp\"\ncommand = [\"x\"]\n"
            )
            .contains("both `url` and `command`")
        );
        assert!(problem("[[gateway.upstream]]\nname = \"a\"\n").contains("needs `url"));
        assert!(
            problem("[[gateway.upstream]]\nname = \"a\"\ncommand = []\n")
                .contains("gateway.upstream[0].command")
        );
        assert!(
            problem("[[gateway.upstream]]\nname = \"a\"\nurl = \"http://x/mcp\"\ncwd = \"/\"\n")
                .contains("apply to `command` upstreams only")
        );
        assert!(problem("[gateway]\ndenial = \"silent\"\n[[gateway.upstream]]\nname = \"a\"\nurl = \"http://x/mcp\"\n").contains("expected `error` or `tool-error`"));
        assert!(problem("[gateway]\nenvironment = { \"arbiter.phase\" = \"call\" }\n[[gateway.upstream]]\nname = \"a\"\nurl = \"http://x/mcp\"\n").contains("set by Arbiter itself"));
        assert!(problem("[gateway.identity]\nagent = \"a\"\nagent_header = \"x\"\n[[gateway.upstream]]\nname = \"a\"\nurl = \"http://x/mcp\"\n").contains("not both"));
        assert!(problem("[gateway]\nlisten = \"nowhere\"\n[[gateway.upstream]]\nname = \"a\"\nurl = \"http://x/mcp\"\n").contains("gateway.listen"));
        assert!(problem("[gateway]\nlisten_on = 1\n").contains("unknown field `listen_on`"));
    }

    #[test]
    fn tool_labels_add_to_the_upstream_labels() {
        let c = parse("[[gateway.upstream]]\nname = \"a\"\nurl = \"http://x/mcp\"\nlabels = [\"internal\"]\ntool_labels = { read = [\"secret\", \"internal\"] }\n").unwrap();
        assert_eq!(c.upstreams[0].labels_of("read"), vec!["internal", "secret"]);
        assert_eq!(c.upstreams[0].labels_of("other"), vec!["internal"]);
    }
}
