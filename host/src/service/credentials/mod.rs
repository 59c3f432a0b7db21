//! Per-call credentials: on an allow, Arbiter mints a short-lived JWS for exactly that
//! call, so a tool server never has to accept the agent's standing credential.
//!
//! # The claims
//!
//! | claim | value |
//! | --- | --- |
//! | `iss` | `[credentials] issuer` |
//! | `sub` | the agent's **verified** SPIFFE ID (nothing is minted for an asserted one) |
//! | `aud` | the tool server: the upstream's configured audience, by default its name |
//! | `scope` | space-separated: the scopes the call needs, narrowed to those the action's credential carries and those every principal of the delegation chain delegated; never wider |
//! | `task` | the task id (absent without a task) |
//! | `server`, `tool` | the tool called |
//! | `args_sha256` | hex SHA-256 of the arguments as forwarded (after redaction), serialised as JSON with object keys sorted and no whitespace |
//! | `iat`, `exp` | issue time; expiry at most `ttl_ms` later and never after the task's expiry |
//! | `jti` | a unique id (UUID v4) |
//!
//! Signed with the host key (EdDSA for Ed25519, ES256 for P-256), `kid` its RFC 7638
//! thumbprint. Tool servers verify with the JWKS at `GET /v1/credentials/jwks`, check
//! `aud`, `tool` and `args_sha256` against the call they received, and may ask
//! `POST /v1/credentials/introspect` whether it is still valid: ending a task revokes
//! every credential minted for it.

mod config;
mod signing;

pub use config::{CredentialsConfig, DEFAULT_TTL_MS, MAX_TTL_MS, RawCredentials};
pub use signing::{CredentialKey, SigningKeyError};

use crate::decide::PostDecision;
use crate::model::{Action, Decision, DecisionEffect, IssuedCredential, OpenedTask};
use crate::task::{Revoker, StoreError};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a call's credential is for: asked by the adapter (the gateway's upstream
/// config) when the decision is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRequest {
    /// The `aud`: the tool server.
    pub audience: String,
    /// The scopes the call needs, before narrowing.
    pub scopes: Vec<String>,
}

/// The obligation kind by which a plugin asks for a credential for its allowed call;
/// its detail is the scopes the call needs, space-separated (may be empty).
pub const CREDENTIAL_OBLIGATION: &str = "credential";

/// What an adapter that can carry a credential to the tool server tells the decision
/// service: the audience, and whether its config asks for a credential on this call.
/// A plugin's [`CREDENTIAL_OBLIGATION`] asks for one too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialPlan {
    /// The tool server's audience.
    pub audience: String,
    /// `Some(scopes)`: the config asks for a credential on every allowed call, with
    /// these scopes. `None`: only when a plugin's obligation asks.
    pub always: Option<Vec<String>>,
}

impl CredentialPlan {
    /// What to mint for `decision`, if anything: the config's scopes and those every
    /// `credential` obligation names (narrowed later, never wider than delegated).
    pub fn request(&self, decision: &Decision) -> Option<CredentialRequest> {
        let asked: Vec<&str> = decision
            .obligations
            .iter()
            .filter(|o| o.kind == CREDENTIAL_OBLIGATION)
            .flat_map(|o| o.detail.split_whitespace())
            .collect();
        let asked_at_all = decision
            .obligations
            .iter()
            .any(|o| o.kind == CREDENTIAL_OBLIGATION);
        let mut scopes = match (&self.always, asked_at_all) {
            (None, false) => return None,
            (Some(scopes), _) => scopes.clone(),
            (None, true) => Vec::new(),
        };
        for scope in asked {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        Some(CredentialRequest {
            audience: self.audience.clone(),
            scopes,
        })
    }
}

/// The claims of a minted credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialClaims {
    /// Issuer.
    pub iss: String,
    /// The verified SPIFFE ID.
    pub sub: String,
    /// The tool server.
    pub aud: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The task id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The tool server name of the action.
    pub server: String,
    /// The tool.
    pub tool: String,
    /// Hash of the canonical arguments.
    pub args_sha256: String,
    /// Issued at, Unix s.
    pub iat: u64,
    /// Expiry, Unix s.
    pub exp: u64,
    /// Unique id.
    pub jti: String,
}

/// The `aud` of every task credential: no tool server accepts it as its own, and it is
/// never taken for a per-call credential (whose `aud` is a tool server).
pub const TASK_CREDENTIAL_AUDIENCE: &str = "arbiter:task";

/// The claims of a task credential: what `POST /v1/tasks` gives each agent of the task,
/// bound to that agent and that task, to present with the task's actions
/// (`x-arbiter-task-credential`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCredentialClaims {
    /// Issuer.
    pub iss: String,
    /// The agent it was issued to.
    pub sub: String,
    /// Always [`TASK_CREDENTIAL_AUDIENCE`].
    pub aud: String,
    /// The task.
    pub task: String,
    /// The task's intent, as opened.
    pub intent: String,
    /// Issued at, Unix s.
    pub iat: u64,
    /// Expiry, Unix s: the task's, or at most [`MAX_TTL_MS`] without one.
    pub exp: u64,
    /// Unique id.
    pub jti: String,
}

/// What introspection says of a credential (RFC 7662 in spirit: `active` plus why not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Introspection {
    /// Whether it is valid now, for what was asked.
    pub active: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its claims, when its signature verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<CredentialClaims>,
}

/// What a tool server may ask introspection to check besides validity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    /// The audience it must be for.
    pub audience: Option<String>,
    /// The tool it must be for.
    pub tool: Option<String>,
    /// The arguments it must be for.
    pub arguments: Option<Value>,
}

/// Mints, verifies and revokes credentials.
#[derive(Debug)]
pub struct CredentialIssuer {
    config: CredentialsConfig,
    key: CredentialKey,
    decoding: DecodingKey,
}

/// Why no credential could be minted (the call is then denied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// The agent's identity is only asserted.
    #[error(
        "a credential is minted only for a verified identity; agent `{0}` is asserted (attestation `none`)"
    )]
    Unverified(String),
    /// The task has expired: no lifetime is left.
    #[error("the task expires at {0} (Unix ms): no lifetime is left for a credential")]
    Expired(u64),
    /// Narrowing left no scope the call needs.
    #[error(
        "none of the scopes the call needs ({needed}) is both carried by the credential and delegated by the chain"
    )]
    NoScope {
        /// What the call needs.
        needed: String,
    },
    /// Signing failed.
    #[error("the credential could not be signed: {0}")]
    Signing(String),
    /// The task store could not record it (so it could not be revoked later).
    #[error("the credential could not be recorded for revocation: {0}")]
    Store(StoreError),
}

/// Why credentials could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CredentialSetupError {
    /// `[credentials]` is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The signing key cannot be used.
    #[error(transparent)]
    Key(#[from] SigningKeyError),
}

impl CredentialIssuer {
    /// The issuer `[credentials]` of `config` describes; `None` without the table.
    pub fn from_config(config: &crate::Config) -> Result<Option<Self>, CredentialSetupError> {
        match CredentialsConfig::from_config(config)? {
            None => Ok(None),
            Some(credentials) => Ok(Some(Self::new(credentials)?)),
        }
    }

    /// An issuer signing with the key `config` names.
    pub fn new(config: CredentialsConfig) -> Result<Self, SigningKeyError> {
        let key = CredentialKey::from_pem_file(&config.signing_key)?;
        let decoding = key
            .jwks()
            .keys
            .first()
            .ok_or_else(|| SigningKeyError {
                path: config.signing_key.display().to_string(),
                problem: "no public key".to_owned(),
            })
            .and_then(|jwk| {
                DecodingKey::from_jwk(jwk).map_err(|e| SigningKeyError {
                    path: config.signing_key.display().to_string(),
                    problem: e.to_string(),
                })
            })?;
        Ok(Self {
            config,
            key,
            decoding,
        })
    }

    /// The public keys tool servers verify with.
    pub fn jwks(&self) -> &JwkSet {
        self.key.jwks()
    }

    /// Mints the credential for an allowed `action` whose forwarded arguments are
    /// `arguments`, recording it with `revoker` so that its task's end revokes it.
    pub fn mint(
        &self,
        action: &Action,
        arguments: &Value,
        request: &CredentialRequest,
        revoker: &Revoker<'_>,
    ) -> Result<IssuedCredential, MintError> {
        if action.agent.attestation == "none" {
            return Err(MintError::Unverified(action.agent.id.clone()));
        }
        let now = unix_now();
        let mut exp = now.saturating_add(self.config.ttl.as_secs().max(1));
        if let Some(task_expiry) = action.task.as_ref().and_then(|t| t.expires_at) {
            let task_exp = task_expiry / 1000;
            if task_exp <= now {
                return Err(MintError::Expired(task_expiry));
            }
            exp = exp.min(task_exp);
        }
        let scopes = narrow(action, &request.scopes);
        if scopes.is_empty() && !request.scopes.is_empty() {
            return Err(MintError::NoScope {
                needed: request.scopes.join(" "),
            });
        }
        let claims = CredentialClaims {
            iss: self.config.issuer.clone(),
            sub: action.agent.id.clone(),
            aud: request.audience.clone(),
            scope: scopes.join(" "),
            task: action.task_id().map(str::to_owned),
            server: action.tool.server.clone(),
            tool: action.tool.name.clone(),
            args_sha256: arguments_sha256(arguments),
            iat: now,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let token = self.sign(&claims)?;
        if let Some(task) = &claims.task {
            revoker
                .minted(task, &claims.jti, exp, now)
                .map_err(MintError::Store)?;
        }
        Ok(IssuedCredential {
            id: claims.jti,
            token,
            audience: claims.aud,
            scopes,
            expires_at: exp,
        })
    }

    /// Signs `claims` with the host key, `kid` its thumbprint.
    fn sign<T: Serialize>(&self, claims: &T) -> Result<String, MintError> {
        let mut header = Header::new(self.key.algorithm);
        header.kid = Some(self.key.kid.clone());
        header.typ = Some("JWT".to_owned());
        jsonwebtoken::encode(&header, claims, &self.key.key)
            .map_err(|e| MintError::Signing(e.to_string()))
    }

    /// Mints the task credential of `agent` for an opened `task`.
    pub fn mint_task(
        &self,
        task: &OpenedTask,
        agent: &str,
        revoker: &Revoker<'_>,
    ) -> Result<String, MintError> {
        let now = unix_now();
        let longest = now.saturating_add(MAX_TTL_MS / 1000);
        let exp = task
            .expires_at
            .map_or(longest, |ms| (ms / 1000).min(longest));
        if exp <= now {
            return Err(MintError::Expired(task.expires_at.unwrap_or(0)));
        }
        let claims = TaskCredentialClaims {
            iss: self.config.issuer.clone(),
            sub: agent.to_owned(),
            aud: TASK_CREDENTIAL_AUDIENCE.to_owned(),
            task: task.id.clone(),
            intent: task.intent.clone(),
            iat: now,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let token = self.sign(&claims)?;
        revoker
            .minted(&task.id, &claims.jti, exp, now)
            .map_err(MintError::Store)?;
        Ok(token)
    }

    /// Checks that `token` is a live task credential of this issuer for `task` and
    /// `agent`; says why not otherwise (a store that cannot say whether it was revoked
    /// refuses it).
    pub fn verify_task(
        &self,
        token: &str,
        task: &str,
        agent: &str,
        revoker: &Revoker<'_>,
    ) -> Result<(), String> {
        let mut validation = Validation::new(self.key.algorithm);
        validation.algorithms = vec![self.key.algorithm];
        validation.leeway = 0;
        validation.validate_exp = false;
        validation.set_audience(&[TASK_CREDENTIAL_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud", "jti"]);
        let claims =
            jsonwebtoken::decode::<TaskCredentialClaims>(token, &self.decoding, &validation)
                .map_err(|e| format!("the task credential is not one this host issued: {e}"))?
                .claims;
        if unix_now() >= claims.exp {
            return Err(format!("the task credential expired at {}", claims.exp));
        }
        match revoker.is_revoked(&claims.jti, Some(&claims.task), claims.iat) {
            Ok(false) => {}
            Ok(true) => {
                return Err(
                    "the task credential was revoked: its task ended or was quarantined".to_owned(),
                );
            }
            Err(e) => return Err(format!("cannot tell whether it was revoked: {e}")),
        }
        if claims.task != task {
            return Err(format!(
                "the task credential is for task `{}`, not `{task}`",
                claims.task
            ));
        }
        if claims.sub != agent {
            return Err(format!(
                "the task credential was issued to `{}`, not to agent `{agent}`",
                claims.sub
            ));
        }
        Ok(())
    }

    /// Revokes every credential minted for `task`, including any a decision in flight
    /// mints afterwards.
    pub fn revoke_task(&self, task: &str, revoker: &Revoker<'_>) -> Result<usize, StoreError> {
        let now = unix_now();
        revoker.revoke_task(task, now, now.saturating_add(MAX_TTL_MS / 1000))
    }

    /// Lets `task` get credentials again (its quarantine was lifted).
    pub fn reinstate_task(&self, task: &str, revoker: &Revoker<'_>) -> Result<(), StoreError> {
        revoker.reinstate_task(task)
    }

    /// Revokes one credential: minted for a call whose decision then became a deny.
    pub fn revoke(
        &self,
        credential: &IssuedCredential,
        revoker: &Revoker<'_>,
    ) -> Result<(), StoreError> {
        revoker.revoke(&credential.id, credential.expires_at)
    }

    /// Whether `token` is a valid credential of this issuer now, and, for what
    /// `binding` names, bound to it (not active when the store cannot say whether it
    /// was revoked).
    pub fn introspect(
        &self,
        token: &str,
        binding: &Binding,
        revoker: &Revoker<'_>,
    ) -> Introspection {
        let inactive = |reason: String, claims: Option<CredentialClaims>| Introspection {
            active: false,
            reason: Some(reason),
            claims,
        };
        let mut validation = Validation::new(self.key.algorithm);
        validation.algorithms = vec![self.key.algorithm];
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "sub", "aud", "jti"]);
        let claims =
            match jsonwebtoken::decode::<CredentialClaims>(token, &self.decoding, &validation) {
                Ok(data) => data.claims,
                Err(e) => return inactive(format!("not a credential of this issuer: {e}"), None),
            };
        if unix_now() >= claims.exp {
            return inactive(format!("expired at {}", claims.exp), Some(claims));
        }
        match revoker.is_revoked(&claims.jti, claims.task.as_deref(), claims.iat) {
            Ok(false) => {}
            Ok(true) => {
                return inactive(
                    "revoked: its task ended or was quarantined".to_owned(),
                    Some(claims),
                );
            }
            Err(e) => {
                return inactive(
                    format!("cannot tell whether it was revoked: {e}"),
                    Some(claims),
                );
            }
        }
        if let Some(audience) = &binding.audience
            && *audience != claims.aud
        {
            return inactive(
                format!("issued for audience `{}`, not `{audience}`", claims.aud),
                Some(claims),
            );
        }
        if let Some(tool) = &binding.tool
            && *tool != claims.tool
        {
            return inactive(
                format!("issued for tool `{}`, not `{tool}`", claims.tool),
                Some(claims),
            );
        }
        if let Some(arguments) = &binding.arguments
            && arguments_sha256(arguments) != claims.args_sha256
        {
            return inactive("issued for other arguments".to_owned(), Some(claims));
        }
        Introspection {
            active: true,
            reason: None,
            claims: Some(claims),
        }
    }
}

/// The scopes the call needs that the action's credential carries and every principal
/// of the delegation chain delegated (a principal that lists no scopes delegates none).
fn narrow(action: &Action, needed: &[String]) -> Vec<String> {
    needed
        .iter()
        .filter(|scope| {
            action
                .credential
                .as_ref()
                .is_none_or(|c| c.scopes.contains(scope))
                && action.delegation.iter().all(|p| p.scopes.contains(scope))
        })
        .cloned()
        .collect()
}

pub use crate::model::arguments_sha256;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(u64::MAX)
}

/// The post-decision stage that mints the credential of an allowed call: a call that
/// needs one and cannot get one is denied, saying why.
#[derive(Debug)]
pub struct MintStage<'a> {
    /// The issuer; `None` when `[credentials]` is not configured (then nothing that
    /// needs a credential is allowed).
    pub issuer: Option<&'a CredentialIssuer>,
    /// What the credential would be for.
    pub plan: &'a CredentialPlan,
    /// Whether the decision service verified the agent's identity (an attestation the
    /// action carries is not enough: without `[identity]` it is only asserted).
    pub verified: bool,
    /// Where minted credentials are recorded for revocation.
    pub revoker: Revoker<'a>,
}

impl PostDecision for MintStage<'_> {
    fn after_decision(&self, action: &Action, decision: &mut Decision) {
        if decision.effect != DecisionEffect::Allow {
            return;
        }
        let Some(request) = self.plan.request(decision) else {
            return;
        };
        // Hashed as the tool server will receive them: after the redactions the
        // decision asks for (the obligation gate ran before this stage).
        let mut arguments = action.arguments.clone();
        for obligation in &decision.obligations {
            if obligation.kind == super::obligation_gate::REDACT {
                super::obligation_gate::redact(&mut arguments, &obligation.detail);
            }
        }
        if !self.verified {
            decision.effect = DecisionEffect::Deny;
            decision.reason = format!(
                "denied: no credential for this call: {}",
                MintError::Unverified(action.agent.id.clone())
            );
            decision.obligations.clear();
            return;
        }
        let Some(issuer) = self.issuer else {
            decision.effect = DecisionEffect::Deny;
            decision.reason =
                "denied: this call needs a credential and no `[credentials]` key is configured to mint it"
                    .to_owned();
            decision.obligations.clear();
            return;
        };
        match issuer.mint(action, &arguments, &request, &self.revoker) {
            Ok(credential) => decision.credential = Some(credential),
            Err(e) => {
                decision.effect = DecisionEffect::Deny;
                decision.reason = format!("denied: no credential for this call: {e}");
                decision.obligations.clear();
            }
        }
    }
}
