//! The MCP gateway (feature `gateway`): `arbiter gateway`, a proxy in front of MCP
//! servers that decides every `tools/call` through the decision service before it is
//! forwarded. See `docs/mcp-gateway.md` for the operator's view.
//!
//! # One endpoint per upstream
//!
//! Each `[[gateway.upstream]]` is served at `/mcp/{name}` rather than merged behind one
//! `/mcp` with prefixed tool names. Tool names then reach the server and the policies
//! exactly as the server wrote them (`tool.server` is the upstream's name, so a rule
//! for `fs/read_file` means what it says); no separator has to be reserved (tool names
//! commonly contain `_`, `-` and `.`, the characters a prefix scheme would need), and
//! nothing is ambiguous by construction. Each upstream keeps its own sessions, server
//! capabilities, instructions, pagination and `list_changed` notifications, which a
//! merged endpoint would have to combine and could get wrong. MCP clients are
//! configured per server anyway.
//!
//! # The pieces
//!
//! - [`config`]: the `[gateway]` table;
//! - [`revision`]: protocol revisions and their headers, [`jsonrpc`]: messages and
//!   error codes, [`sse`]: event streams;
//! - [`call`]: request → action and decision → answer; [`tools_list`]: listing filter;
//! - [`handler`]: the endpoint; [`relay`]: upstream answers → client answers;
//! - [`upstream`]: Streamable HTTP and stdio servers.

pub mod call;
pub mod config;
pub mod elicitation;
pub mod handler;
pub mod jsonrpc;
pub mod relay;
pub mod revision;
pub mod sse;
pub mod tools_list;
pub mod upstream;
pub mod url_sessions;

use crate::Arbiter;
use crate::adapters::http::{AppState, ServerSettings};
use crate::config::{Config, ConfigError, TaskMode};
use crate::service::{DecisionLog, DecisionService, Metrics, MetricsError, ServerConfig};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Response;
use axum::routing::any;
use config::{GatewayConfig, Transport, UpstreamConfig};
use relay::Relay;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use upstream::child::Spawn;
use upstream::http::HttpUpstream;
use upstream::stdio::StdioUpstream;
use upstream::{Upstream, UpstreamError, UpstreamFault};

/// One upstream: its config and its connection.
#[derive(Debug)]
pub struct Route {
    /// As configured.
    pub config: Arc<UpstreamConfig>,
    /// How to reach it.
    pub upstream: Upstream,
}

/// The gateway: the decision service and the upstreams. Shared by every request.
#[derive(Debug)]
pub struct Gateway {
    service: DecisionService,
    config: Arc<GatewayConfig>,
    routes: HashMap<String, Route>,
    /// Set when the gateway stops: open streams end.
    stopping: tokio::sync::watch::Sender<bool>,
    /// Handshake sessions whose client declared URL elicitation.
    url_sessions: url_sessions::UrlElicitationSessions,
}

impl Gateway {
    /// A gateway over `service` with the upstreams of `config` (none is contacted
    /// yet: HTTP upstreams on the first request, stdio servers on `initialize`).
    pub fn new(
        service: DecisionService,
        config: GatewayConfig,
    ) -> Result<Arc<Self>, UpstreamError> {
        let mut routes = HashMap::new();
        for up in &config.upstreams {
            service.metrics().register_upstream(&up.name);
            let upstream = match &up.transport {
                Transport::Http { url } => {
                    Upstream::Http(Arc::new(HttpUpstream::new(url, config.upstream_timeout)?))
                }
                Transport::Stdio {
                    command,
                    env,
                    cwd,
                    max_sessions,
                    idle_timeout,
                } => Upstream::Stdio(StdioUpstream::new(
                    Spawn {
                        upstream: up.name.clone(),
                        command: command.clone(),
                        env: env.clone(),
                        cwd: cwd.clone(),
                        max_message_bytes: config.max_message_bytes,
                    },
                    *max_sessions,
                    *idle_timeout,
                )),
            };
            routes.insert(
                up.name.clone(),
                Route {
                    config: Arc::new(up.clone()),
                    upstream,
                },
            );
        }
        let (stopping, _) = tokio::sync::watch::channel(false);
        let gateway = Arc::new(Self {
            service,
            config: Arc::new(config),
            routes,
            stopping,
            url_sessions: url_sessions::UrlElicitationSessions::default(),
        });
        gateway.start_reapers();
        Ok(gateway)
    }

    /// Ends idle stdio sessions in the background (each reaper holds a weak handle,
    /// so it stops with the gateway).
    fn start_reapers(self: &Arc<Self>) {
        for route in self.routes.values() {
            if let Upstream::Stdio(stdio) = &route.upstream {
                let weak = Arc::downgrade(stdio);
                let every = stdio.reap_interval();
                let name = route.config.name.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(every);
                    loop {
                        tick.tick().await;
                        let Some(stdio) = weak.upgrade() else { return };
                        let ended = stdio.reap();
                        if ended > 0 {
                            tracing::info!(upstream = name, ended, "idle stdio sessions ended");
                        }
                    }
                });
            }
        }
    }

    /// The decision service.
    pub fn service(&self) -> &DecisionService {
        &self.service
    }

    /// The upstream named `name`.
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.get(name)
    }

    /// The configured upstream names, in config order.
    pub fn upstream_names(&self) -> Vec<&str> {
        self.config
            .upstreams
            .iter()
            .map(|u| u.name.as_str())
            .collect()
    }

    fn relay(
        &self,
        route: &Route,
        id: Option<serde_json::Value>,
        filter: Option<tools_list::ListFilter>,
    ) -> Relay {
        Relay {
            upstream: route.config.name.clone(),
            id,
            filter,
            max_message_bytes: self.config.max_message_bytes,
            stopping: self.stopping.subscribe(),
        }
    }

    fn fault_counter(&self, route: &Route) -> impl Fn(UpstreamFault) + Send + Sync + 'static {
        let metrics = self.service.metrics().clone();
        let name = route.config.name.clone();
        move |fault| metrics.record_upstream_error(&name, fault.as_str())
    }

    /// The answer for an upstream failure, counted and logged.
    fn failed(&self, route: &Route, relay: &Relay, error: &UpstreamError) -> Response {
        self.service
            .metrics()
            .record_upstream_error(&route.config.name, error.fault.as_str());
        tracing::warn!(upstream = route.config.name, fault = error.fault.as_str(), error = %error.message, "upstream failed");
        relay::upstream_failure(relay, error)
    }

    /// Ends open streams and stdio sessions (the gateway is stopping).
    pub async fn stop(&self) {
        let _ = self.stopping.send(true);
        for route in self.routes.values() {
            if let Upstream::Stdio(stdio) = &route.upstream {
                stdio.close_all().await;
            }
        }
    }
}

/// The gateway's own routes: `/mcp/{upstream}`. [`serve_until`] serves them next to the
/// decision server's API ([`crate::adapters::http::router`]) on the same listener and
/// the same decision service, so that operators reach one process for both: `/healthz`,
/// `/readyz`, `/metrics`, and the admin endpoints (ending a task, reloading the policy
/// set) with the `[server]` tokens.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/mcp/{name}", any(handler::endpoint))
        .layer(DefaultBodyLimit::max(gateway.config.max_body_bytes))
        .with_state(gateway)
}

/// Why `arbiter gateway` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The config file, `[gateway]` or `[server.decision_log]` is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The policy set could not be loaded.
    #[error("cannot load the policy set: {0}")]
    Load(#[from] crate::LoadError),
    /// Metrics could not be set up.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The decision log could not be opened.
    #[error("cannot start the decision log: {0}")]
    DecisionLog(std::io::Error),
    /// Verified identity could not be set up.
    #[error(transparent)]
    Identity(#[from] crate::adapters::identity::IdentitySetupError),
    /// Per-call credentials could not be set up.
    #[error(transparent)]
    Credentials(#[from] crate::service::credentials::CredentialSetupError),
    /// An upstream is misconfigured.
    #[error("upstream: {0}")]
    Upstream(#[from] UpstreamError),
    /// The listener could not be bound or failed.
    #[error("cannot listen on `{addr}`: {cause}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        cause: std::io::Error,
    },
}

/// `arbiter gateway`: loads the policy set (the gateway serves no call before it has
/// one), binds `[gateway] listen` (or `listen`), and serves until `shutdown`; then ends
/// streams and stdio sessions and flushes the decision log. The decision log is the
/// one `[server.decision_log]` configures.
pub async fn serve_until(
    config_path: &Path,
    listen: Option<SocketAddr>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let mut config = Config::from_file(config_path)?;
    // The gateway faces the agents: unless the config says otherwise, tasks are opened
    // by an opener and an action only names one (docs/identity.md#opening-tasks).
    config.tasks.mode = Some(config.tasks.mode_or(TaskMode::Opened));
    let gateway_config = GatewayConfig::from_config(&config)?;
    let server = ServerConfig::from_config(&config)?;
    let addr = listen.unwrap_or(gateway_config.listen);
    let metrics = Metrics::new()?;
    let log = DecisionLog::start(&server.decision_log, metrics.clone())
        .map_err(GatewayError::DecisionLog)?;
    let service = DecisionService::new(metrics, log);
    let settings = ServerSettings::resolve(&server, |var| std::env::var(var).ok())?;
    let identity =
        crate::adapters::identity::start(&config, &service, settings.decide_token.is_some())?;
    match crate::service::credentials::CredentialIssuer::from_config(&config)? {
        Some(issuer) => {
            service.set_credential_issuer(Arc::new(issuer));
        }
        None => {
            if let Some(up) = gateway_config
                .upstreams
                .iter()
                .find(|u| u.credential.is_some())
            {
                return Err(GatewayError::Config(ConfigError::Invalid {
                    key: format!("gateway.upstream `{}`.credential", up.name),
                    problem: "needs a `[credentials]` table with the key that signs credentials"
                        .to_owned(),
                }));
            }
        }
    }
    let path = config_path.to_owned();
    let arbiter =
        tokio::task::spawn_blocking(move || Arbiter::from_config_read_from(&config, &path))
            .await
            .map_err(|e| GatewayError::DecisionLog(std::io::Error::other(e.to_string())))??;
    let set = arbiter.policy_set();
    let arbiter = Arc::new(arbiter);
    service.activate(Arc::clone(&arbiter));
    #[cfg(feature = "watch")]
    let _watcher = match Arbiter::watch(&arbiter) {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the policy files; hot swap is off");
            None
        }
    };
    tracing::info!(
        generation = set.generation(),
        plugins = set.plugins().len(),
        digest = set.digest(),
        "policy set active"
    );
    let limits = crate::adapters::listener::ConnectionLimits {
        header_read_timeout: gateway_config.header_read_timeout,
        max_connections: gateway_config.max_connections,
    };
    let upstreams: Vec<String> = gateway_config
        .upstreams
        .iter()
        .map(|u| u.name.clone())
        .collect();
    let gateway = Gateway::new(service.clone(), gateway_config)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|cause| GatewayError::Listen { addr, cause })?;
    let local = listener
        .local_addr()
        .map_err(|cause| GatewayError::Listen { addr, cause })?;
    tracing::info!(addr = %local, upstreams = ?upstreams, "MCP gateway listening; endpoints are /mcp/{{name}}");
    let api = AppState::with_service(settings, service.clone());
    let app = router(Arc::clone(&gateway)).merge(crate::adapters::http::router(api.clone()));
    let stopping = Arc::clone(&gateway);
    let stop_streams = async move {
        shutdown.await;
        stopping.stop().await;
    };
    crate::adapters::listener::serve(
        listener,
        app,
        limits,
        identity.tls.clone(),
        stop_streams,
        move || {
            api.begin_shutdown();
        },
    )
    .await
    .map_err(|cause| GatewayError::Listen { addr: local, cause })?;
    gateway.stop().await;
    service.decision_log().flush().await;
    tracing::info!("decision log flushed; stopped");
    Ok(())
}
