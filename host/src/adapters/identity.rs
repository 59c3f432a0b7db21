//! What every listener does for verified identity: read `[identity]`, load the trust
//! bundles into the decision service's verifier, watch them, set up TLS, and collect a
//! request's evidence (its connection's [`PeerSvid`], its bearer token) for
//! [`crate::service::DecisionService::identify`].

use super::tls::{PeerSvid, TlsError, TlsListener};
use crate::config::{Config, ConfigError};
use crate::identity::{BundleError, Evidence, IdentityConfig, IdentityVerifier};
use crate::service::DecisionService;
use axum::http::{Extensions, HeaderMap, header};
use std::sync::Arc;

/// The header a request carries its task credential in (from `POST /v1/tasks`), on
/// the decision API and the MCP gateway alike.
pub const TASK_CREDENTIAL_HEADER: &str = "x-arbiter-task-credential";

/// The task credential of a request, if it carries one.
pub fn task_credential(headers: &HeaderMap) -> Option<String> {
    headers
        .get(TASK_CREDENTIAL_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
}

/// Why identity could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IdentitySetupError {
    /// `[identity]` is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A bundle file could not be used.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The listener's certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A listener's identity machinery, kept for as long as it serves.
#[derive(Debug, Default)]
pub struct ListenerIdentity {
    /// TLS, when `[identity.tls]` is configured.
    pub tls: Option<TlsListener>,
    /// Re-reads the bundles when their files change; dropped with the listener.
    #[cfg(feature = "watch")]
    _watcher: Option<crate::hot_swap::PolicyWatcher>,
}

/// Reads `[identity]` of `config` and, when present, gives `service` its verifier.
/// Without `[identity]` nothing is verified and identities pass as asserted.
/// `decide_token` says whether the decision API takes a bearer token of its own, which
/// cannot share the `Authorization` header with JWT-SVIDs.
pub fn start(
    config: &Config,
    service: &DecisionService,
    decide_token: bool,
) -> Result<ListenerIdentity, IdentitySetupError> {
    let Some(identity) = IdentityConfig::from_config(config)? else {
        return Ok(ListenerIdentity::default());
    };
    if decide_token
        && identity
            .trust_domains
            .iter()
            .any(|d| d.jwt_bundle.is_some())
    {
        return Err(IdentitySetupError::Config(ConfigError::Invalid {
            key: "server.decide_token".to_owned(),
            problem: "cannot be combined with an `identity.trust_domain` `jwt_bundle`: both \
                      are sent as `Authorization: Bearer`; with verified identity, callers \
                      authenticate with their SVID instead"
                .to_owned(),
        }));
    }
    let tls_files = identity.tls.clone();
    let verifier = Arc::new(IdentityVerifier::from_config(identity)?);
    let tls = tls_files
        .map(|files| TlsListener::new(&files, Arc::clone(&verifier)))
        .transpose()?;
    #[cfg(feature = "watch")]
    let watcher = watch(&verifier);
    service.set_identity_verifier(verifier);
    Ok(ListenerIdentity {
        tls,
        #[cfg(feature = "watch")]
        _watcher: watcher,
    })
}

/// Hot reload of the bundle files, by the watcher that reloads policy sets: a rotated
/// bundle verifies from the next connection or token on; a broken one is refused and
/// the last good bundles stay.
#[cfg(feature = "watch")]
fn watch(verifier: &Arc<IdentityVerifier>) -> Option<crate::hot_swap::PolicyWatcher> {
    let files = verifier.bundle_files();
    if files.is_empty() {
        return None;
    }
    let reloading = Arc::clone(verifier);
    let watched = crate::hot_swap::PolicyWatcher::start(
        move || files.clone(),
        move |final_attempt| match reloading.reload() {
            Ok(()) => {
                tracing::info!("trust bundles reloaded");
                true
            }
            Err(e) => {
                if final_attempt {
                    tracing::error!(error = %e, "trust bundles not reloaded; the previous ones stay in use");
                }
                false
            }
        },
    );
    match watched {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the trust bundles; they reload only on restart");
            None
        }
    }
}

/// What a request presented: its connection's client certificate and its bearer token,
/// taken from the request before its body is read.
#[derive(Debug, Clone, Default)]
pub struct Presented {
    peer: Option<PeerSvid>,
    bearer: Option<String>,
}

impl Presented {
    /// Takes the evidence of a request.
    pub fn of(headers: &HeaderMap, extensions: &Extensions) -> Self {
        Self {
            peer: extensions.get::<PeerSvid>().cloned(),
            bearer: bearer(headers).map(str::to_owned),
        }
    }

    /// As [`crate::service::DecisionService::identify`] takes it.
    pub fn evidence(&self) -> Evidence<'_> {
        Evidence {
            peer: self.peer.as_ref().map(|svid| svid.0.as_ref()),
            bearer: self.bearer.as_deref(),
        }
    }
}

/// The token of `Authorization: Bearer <token>`, if that is what the header holds.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
