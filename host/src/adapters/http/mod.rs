//! The HTTP adapter: `arbiter serve`, an HTTP/JSON front for gateways that do not
//! embed the library. See `docs/http-api.md` for the API.
//!
//! [`router`] builds the whole API over an [`AppState`] (tests drive it without sockets);
//! [`serve`] is the `arbiter serve` command: bind, load the policy set, serve until
//! SIGTERM/SIGINT, drain, flush the decision log. [`run`] is the accept loop, on hyper
//! directly rather than `axum::serve` because it bounds what a slow or idle client can
//! hold: the header read timeout, the connection limit (and, in the handlers that read
//! a body, the body read timeout). One file per concern: [`auth`], [`error`],
//! [`traceparent`], and the handlers in `routes/`. Decisions go through the shared
//! [`DecisionService`], which owns the log, metrics and fail-closed.

pub mod auth;
pub mod console;
pub mod error;
mod routes;
pub mod traceparent;

use crate::Arbiter;
use crate::config::{Config, ConfigError};
#[cfg(feature = "watch")]
use crate::hot_swap::{PolicyWatcher, WatchError};
use crate::service::{DecisionLog, DecisionService, Metrics, MetricsError, ServerConfig};
use auth::BearerToken;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Settings the server and its handlers need, with tokens resolved.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Time for a request's headers to arrive; also how long an idle keep-alive
    /// connection is kept.
    pub header_read_timeout: Duration,
    /// Time for a request's body to arrive once the handler starts reading it.
    pub body_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Token of the admin endpoints; `None` disables them.
    pub admin_token: Option<BearerToken>,
    /// Token of the decision endpoints; `None` leaves them open.
    pub decide_token: Option<BearerToken>,
    /// The approver groups' tokens, by group.
    pub approver_tokens: Vec<(String, BearerToken)>,
    /// `[approvals]`: the groups' verified members and the console URL.
    pub approvals: crate::config::ApprovalsConfig,
}

impl ServerSettings {
    /// The approver group whose token `token` is. Every group's token is compared, so
    /// the timing does not say which matched.
    pub fn approver_group_of(&self, token: &str) -> Option<String> {
        let mut matched = None;
        for (group, expected) in &self.approver_tokens {
            if expected.matches(token) && matched.is_none() {
                matched = Some(group.clone());
            }
        }
        matched
    }

    /// Resolves tokens (reading the environment through `env`).
    pub fn resolve(
        config: &ServerConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let admin = config.admin_token.resolve("server.admin_token", &env)?;
        let decide = config.decide_token.resolve("server.decide_token", &env)?;
        let mut approver_tokens = Vec::new();
        // Each token names one principal: a group token equal to the admin or decide
        // token (or to another group's) would let one principal act as another.
        let mut seen: Vec<(String, String)> = Vec::new();
        if let Some(admin) = &admin {
            seen.push(("server.admin_token".to_owned(), admin.expose().to_owned()));
        }
        if let Some(decide) = &decide {
            seen.push(("server.decide_token".to_owned(), decide.expose().to_owned()));
        }
        for (i, group) in config.approvals.groups.iter().enumerate() {
            let source = match &group.token {
                None => continue,
                Some(crate::config::GroupToken::Env(var)) => crate::service::TokenSource::Env {
                    var: var.clone(),
                    required: true,
                },
                Some(crate::config::GroupToken::Inline(token)) => {
                    crate::service::TokenSource::Inline(crate::service::Secret::new(token))
                }
            };
            let key = format!("approvals.group[{i}].token");
            if let Some(secret) = source.resolve(&key, &env)? {
                if let Some((other, _)) = seen.iter().find(|(_, t)| t == secret.expose()) {
                    return Err(ConfigError::Invalid {
                        key,
                        problem: format!(
                            "the same token as `{other}`: each approver group needs its own token, distinct from the admin and decide tokens"
                        ),
                    });
                }
                seen.push((key, secret.expose().to_owned()));
                approver_tokens.push((group.name.clone(), BearerToken::new(&secret)));
            }
        }
        Ok(Self {
            approver_tokens,
            approvals: config.approvals.clone(),
            max_body_bytes: config.max_body_bytes,
            header_read_timeout: config.header_read_timeout,
            body_read_timeout: config.body_read_timeout,
            max_connections: config.max_connections,
            admin_token: admin.as_ref().map(BearerToken::new),
            decide_token: decide.as_ref().map(BearerToken::new),
        })
    }
}

/// Shared state of the server: cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Decisions, the log and metrics; not ready (decision endpoints answer 503) until
    /// the first policy set has loaded.
    service: DecisionService,
    settings: ServerSettings,
    /// Operator console logins.
    console: console::session::Sessions,
    draining: AtomicBool,
    /// Watches the policy files and hot-swaps the set (kept alive for the server's life).
    #[cfg(feature = "watch")]
    watcher: OnceLock<PolicyWatcher>,
}

impl AppState {
    /// A state with no policy set yet (not ready); see [`AppState::activate`].
    pub fn new(settings: ServerSettings, metrics: Metrics, log: DecisionLog) -> Self {
        Self::with_service(settings, DecisionService::new(metrics, log))
    }

    /// A state over a decision service that other adapters of the process may share.
    pub fn with_service(settings: ServerSettings, service: DecisionService) -> Self {
        Self {
            inner: Arc::new(Shared {
                service,
                settings,
                console: console::session::Sessions::default(),
                draining: AtomicBool::new(false),
                #[cfg(feature = "watch")]
                watcher: OnceLock::new(),
            }),
        }
    }

    /// Makes `arbiter` the host that decides; the server becomes ready. Returns false
    /// (and changes nothing) if one was already active.
    pub fn activate(&self, arbiter: Arc<Arbiter>) -> bool {
        self.inner.service.activate(arbiter)
    }

    /// Starts hot swapping: the active host reloads when its policy files change.
    #[cfg(feature = "watch")]
    pub fn watch_policy_files(&self) -> Result<(), WatchError> {
        if let Ok(arbiter) = self.inner.service.arbiter() {
            let watcher = Arbiter::watch(arbiter)?;
            let _ = self.inner.watcher.set(watcher);
        }
        Ok(())
    }

    /// The active host's reload status.
    pub fn reload_status(&self) -> Option<crate::hot_swap::ReloadStatus> {
        self.arbiter().map(|a| a.reload_status())
    }

    /// The active host, once loaded.
    pub fn arbiter(&self) -> Option<&Arc<Arbiter>> {
        self.inner.service.arbiter().ok()
    }

    /// The decision service.
    pub fn service(&self) -> &DecisionService {
        &self.inner.service
    }

    /// Handler settings.
    pub fn settings(&self) -> &ServerSettings {
        &self.inner.settings
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        self.inner.service.metrics()
    }

    /// The decision log.
    pub fn decision_log(&self) -> &DecisionLog {
        self.inner.service.decision_log()
    }

    /// Marks the server as shutting down: `/readyz` answers 503 from now on.
    pub fn begin_shutdown(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }

    /// The console's sessions.
    pub fn console_sessions(&self) -> &console::session::Sessions {
        &self.inner.console
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let client = Router::new()
        .route("/v1/decide", post(routes::decide::decide))
        .route("/v1/plugins", get(routes::plugins::list))
        .route_layer(from_fn_with_state(state.clone(), auth::require_client));
    let admin = Router::new()
        .route(
            "/v1/reload",
            post(routes::reload::reload).get(routes::reload::status),
        )
        .route("/v1/tasks/end", post(routes::tasks::end_named))
        .route("/v1/tasks/{id}/end", post(routes::tasks::end))
        .route(
            "/v1/tasks/{id}/lift-quarantine",
            post(routes::tasks::lift_quarantine),
        )
        .route_layer(from_fn_with_state(state.clone(), auth::require_admin));
    let open = Router::new()
        .route("/healthz", get(routes::health::live))
        .route("/readyz", get(routes::health::ready))
        .route("/metrics", get(routes::metrics::metrics))
        // Its own access check: the admin token, or a verified opener.
        .route("/v1/tasks", post(routes::tasks::open))
        .route("/v1/credentials/jwks", get(routes::credentials::jwks))
        .route(
            "/v1/credentials/introspect",
            post(routes::credentials::introspect),
        )
        // Their own access check: an approver (group token or verified member), or the
        // admin token to read.
        .route("/v1/approvals", get(routes::approvals::list))
        .route("/v1/approvals/{id}", get(routes::approvals::show))
        .route(
            "/v1/approvals/{id}/approve",
            post(routes::approvals::approve),
        )
        .route("/v1/approvals/{id}/reject", post(routes::approvals::reject));
    Router::new()
        .merge(client)
        .merge(admin)
        .merge(open)
        .merge(console::router())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings().max_body_bytes))
        .layer(from_fn_with_state(state.clone(), count_errors))
        .with_state(state)
}

/// Counts every error answer by its code (set by [`error::ApiError`]).
async fn count_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(code) = response.extensions().get::<error::ErrorCode>() {
        state.metrics().record_error(code.0);
    }
    response
}

/// Why `arbiter serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config file or the `[server]` table is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The policy set could not be loaded.
    #[error("cannot load the policy set: {0}")]
    Load(String),
    /// Metrics could not be set up.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The decision log sink could not be opened.
    #[error("cannot start the decision log: {0}")]
    DecisionLog(std::io::Error),
    /// Verified identity could not be set up.
    #[error(transparent)]
    Identity(#[from] crate::adapters::identity::IdentitySetupError),
    /// Per-call credentials could not be set up.
    #[error(transparent)]
    Credentials(#[from] crate::service::credentials::CredentialSetupError),
    /// The listener could not be bound or failed.
    #[error("cannot listen on `{addr}`: {cause}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        cause: std::io::Error,
    },
}

/// `arbiter serve`: reads the config, binds (`listen` overrides `server.listen`), loads
/// the policy set in the background (live but not ready meanwhile), and serves until
/// SIGTERM or SIGINT; then stops accepting, finishes in-flight requests and flushes the
/// decision log.
pub async fn serve(config_path: &Path, listen: Option<SocketAddr>) -> Result<(), ServeError> {
    serve_until(config_path, listen, shutdown_signal()).await
}

/// [`serve`] with a caller-chosen shutdown trigger.
pub async fn serve_until(
    config_path: &Path,
    listen: Option<SocketAddr>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = Config::from_file(config_path)?;
    let server = ServerConfig::from_config(&config)?;
    let settings = ServerSettings::resolve(&server, |var| std::env::var(var).ok())?;
    let addr = listen.unwrap_or(server.listen);
    if !addr.ip().is_loopback() && settings.decide_token.is_none() {
        tracing::warn!(%addr, "listening beyond loopback without a decide token: anyone who can reach this address can ask for decisions");
    }
    let metrics = Metrics::new()?;
    let log = DecisionLog::start(&server.decision_log, metrics.clone())
        .map_err(ServeError::DecisionLog)?;
    let state = AppState::new(settings, metrics, log);
    let identity = crate::adapters::identity::start(
        &config,
        state.service(),
        state.settings().decide_token.is_some(),
    )?;
    if let Some(issuer) = crate::service::credentials::CredentialIssuer::from_config(&config)? {
        state.service().set_credential_issuer(Arc::new(issuer));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|cause| ServeError::Listen { addr, cause })?;
    let local = listener
        .local_addr()
        .map_err(|cause| ServeError::Listen { addr, cause })?;
    tracing::info!(addr = %local, "listening");

    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<()>();
    let loader_state = state.clone();
    let loader_failure = Arc::clone(&failure);
    let path: PathBuf = config_path.to_owned();
    tokio::spawn(async move {
        let loaded = tokio::task::spawn_blocking(move || Arbiter::from_config_file(&path)).await;
        let error = match loaded {
            Ok(Ok(arbiter)) => {
                let set = arbiter.policy_set();
                loader_state.activate(Arc::new(arbiter));
                #[cfg(feature = "watch")]
                if let Err(e) = loader_state.watch_policy_files() {
                    // Still serving the loaded set; manual reloads keep working.
                    tracing::error!(error = %e, "cannot watch the policy files; hot swap is off");
                }
                tracing::info!(
                    generation = set.generation(),
                    plugins = set.plugins().len(),
                    digest = set.digest(),
                    "policy set active; ready"
                );
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::error!(error = %error, "cannot load the policy set; shutting down");
        *loader_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
        let _ = failed_tx.send(());
    });
    let load_failed = async move {
        // A dropped sender means loading succeeded: never stop for that.
        if failed_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            () = load_failed => {}
        }
    };
    run(listener, state, identity.tls.clone(), stop)
        .await
        .map_err(|cause| ServeError::Listen { addr: local, cause })?;
    let failed = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
    match failed {
        Some(message) => Err(ServeError::Load(message)),
        None => Ok(()),
    }
}

/// Serves `state` on `listener` until `shutdown` completes, then stops accepting,
/// finishes in-flight requests and flushes the decision log. The accept loop and its
/// bounds are [`super::listener::serve`]'s.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<crate::adapters::tls::TlsListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let settings = state.settings();
    let limits = super::listener::ConnectionLimits {
        header_read_timeout: settings.header_read_timeout,
        max_connections: settings.max_connections,
    };
    let draining = state.clone();
    super::listener::serve(listener, app, limits, tls, shutdown, move || {
        draining.begin_shutdown();
    })
    .await?;
    state.decision_log().flush().await;
    tracing::info!("decision log flushed; stopped");
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApproverGroup, GroupToken};
    use crate::service::{Secret, TokenSource};

    fn with_group_token(token: &str) -> ServerConfig {
        let mut config = ServerConfig {
            admin_token: TokenSource::Inline(Secret::new("admin-token-of-the-settings-test")),
            ..ServerConfig::default()
        };
        config.approvals.groups = vec![ApproverGroup {
            name: "ops".to_owned(),
            token: Some(GroupToken::Inline(token.to_owned())),
            members: Vec::new(),
        }];
        config
    }

    #[test]
    fn an_approver_token_equal_to_the_admin_token_is_refused_naming_both_keys() {
        let same = with_group_token("admin-token-of-the-settings-test");
        match ServerSettings::resolve(&same, |_| None) {
            Err(ConfigError::Invalid { key, problem }) => {
                assert_eq!(key, "approvals.group[0].token");
                assert!(problem.contains("`server.admin_token`"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
        let distinct = with_group_token("ops-token-of-the-settings-test");
        let settings = ServerSettings::resolve(&distinct, |_| None).unwrap();
        assert_eq!(settings.approver_tokens.len(), 1);
        assert!(
            settings.approver_tokens[0]
                .1
                .matches("ops-token-of-the-settings-test")
        );
    }
}
