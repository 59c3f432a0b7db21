//! The decision service every adapter calls: the HTTP API today, the MCP gateway and
//! Envoy ext_authz next. An adapter parses its protocol into an [`Action`], calls
//! [`DecisionService::decide`], and answers; everything around the decision lives here
//! once:
//!
//! - **readiness**: until a policy set has loaded there is no decision, only
//!   [`NotReady`], which every adapter must answer as a refusal;
//! - **the decision log** and **strict mode**: in strict mode the log write is a
//!   post-decision stage of the pipeline, so a decision that cannot be logged is a deny
//!   *before* the task history records it; otherwise the record is queued after the
//!   answer is built, off the request path;
//! - **fail-closed**: a fault anywhere (plugin, store, log) is a deny that says so, made
//!   by the pipeline and the strict stage, never by the adapter;
//! - **metrics** (decisions by effect, plugin outcomes, reloads, the active set) and
//!   **tracing**.
//!
//! # Blocking
//!
//! A decision is microseconds of CPU, so async adapters call `decide` inline. In strict
//! mode it waits for the log write, and with a shared task store (Redis) it waits for
//! the network; [`DecisionService::blocks`] says so, and the adapter then calls it from
//! a blocking thread (`tokio::task::spawn_blocking`).

use super::credentials::{CredentialIssuer, CredentialPlan, MintStage};
use super::decision_log::{DecisionLog, LogEntry, StrictAudit};
use super::metrics::Metrics;
use super::obligation_gate::{ObligationGate, Stages};
use crate::Arbiter;
use crate::identity::{Evidence, IdentityRefusal, IdentityVerifier, ResolvedIdentity, resolve};
use crate::model::{Action, Decision, IdentityRecord};
use crate::task::StoreError;
use serde::Serialize;
use std::sync::{Arc, OnceLock};

/// No policy set has loaded yet: there is no decision to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the policy set is still loading")]
pub struct NotReady;

/// Why the service took no decision: the adapter answers it as a refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No policy set has loaded yet.
    #[error(transparent)]
    NotReady(#[from] NotReady),
    /// The request's identity was refused (see [`crate::identity::resolve`]).
    #[error(transparent)]
    Identity(#[from] IdentityRefusal),
    /// The task credential the request presented does not hold for its task and agent.
    #[error("task credential refused: {0}")]
    TaskCredential(String),
}

/// What a decision request carries besides the action.
#[derive(Debug, Clone, Default)]
pub struct DecisionContext {
    /// The W3C trace id of the request, for the decision log.
    pub trace_id: Option<String>,
    /// Which adapter asked, and what it knows about the request, for the decision log.
    pub via: Option<Via>,
    /// The obligation kinds the adapter carries out itself. `None`: it hands the
    /// decision and its obligations to its caller (the HTTP API). `Some(kinds)`: an
    /// allow with any other obligation is a deny ([`ObligationGate`]).
    pub enforces: Option<&'static [&'static str]>,
    /// Who the request acts as, from [`DecisionService::identify`]. `None`: the action's
    /// own `agent.id`, resolved by `decide` as asserted in the body (and so refused when
    /// verification is required).
    pub identity: Option<ResolvedIdentity>,
    /// Whether and for whom an allowed call gets a credential, minted as a
    /// post-decision stage (a call that needs one and cannot get it is denied). `None`:
    /// the adapter cannot carry one (and so does not enforce `credential` obligations).
    pub credential: Option<CredentialPlan>,
    /// The task credential the request presented (`x-arbiter-task-credential`), checked
    /// against the action's task and agent before anything is decided.
    pub task_credential: Option<String>,
}

/// Where a decision request came from, as the decision log records it (`"via"`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Via {
    /// The adapter: `mcp`.
    pub adapter: &'static str,
    /// The upstream the call goes to (the MCP gateway's `[[gateway.upstream]]` name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The JSON-RPC id of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jsonrpc_id: Option<serde_json::Value>,
    /// Where the agent id came from (`header:x-arbiter-agent`, `config`), and so how
    /// far it can be trusted: asserted until verified identity plugs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// The decision service: shared by every adapter of one process, cheap to clone.
#[derive(Debug, Clone)]
pub struct DecisionService {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Set once the first policy set has loaded.
    arbiter: OnceLock<Arc<Arbiter>>,
    metrics: Metrics,
    log: DecisionLog,
    /// The identity verifier, when `[identity]` is configured.
    identity: OnceLock<Arc<IdentityVerifier>>,
    /// The credential issuer, when `[credentials]` is configured.
    credentials: OnceLock<Arc<CredentialIssuer>>,
}

impl DecisionService {
    /// A service with no policy set yet (see [`DecisionService::activate`]).
    pub fn new(metrics: Metrics, log: DecisionLog) -> Self {
        Self {
            inner: Arc::new(Shared {
                arbiter: OnceLock::new(),
                metrics,
                log,
                identity: OnceLock::new(),
                credentials: OnceLock::new(),
            }),
        }
    }

    /// Makes `arbiter` the host that decides; the service becomes ready. Every reload
    /// attempt (by the watcher or through an admin API) is then counted and publishes the
    /// set it leaves active. Returns false (and changes nothing) if one was already active.
    pub fn activate(&self, arbiter: Arc<Arbiter>) -> bool {
        let set = arbiter.policy_set();
        let host = Arc::clone(&arbiter);
        if self.inner.arbiter.set(arbiter).is_err() {
            return false;
        }
        self.inner
            .metrics
            .set_policy(set.generation(), &set.listings());
        let metrics = self.inner.metrics.clone();
        host.on_reload(Box::new(move |report, set| {
            metrics.record_reload(report.trigger, report.result);
            metrics.refresh_policy(set);
        }));
        true
    }

    /// Verifies identities with `verifier` from now on. Returns false (and changes
    /// nothing) if a verifier was already set.
    pub fn set_identity_verifier(&self, verifier: Arc<IdentityVerifier>) -> bool {
        self.inner.identity.set(verifier).is_ok()
    }

    /// Mints per-call credentials with `issuer` from now on. Returns false (and changes
    /// nothing) if an issuer was already set.
    pub fn set_credential_issuer(&self, issuer: Arc<CredentialIssuer>) -> bool {
        self.inner.credentials.set(issuer).is_ok()
    }

    /// The credential issuer, when configured.
    pub fn credential_issuer(&self) -> Option<&Arc<CredentialIssuer>> {
        self.inner.credentials.get()
    }

    /// Ends `task`: its later actions are denied, and every credential minted for it is
    /// revoked (introspection answers `active: false` until each would have expired).
    /// Returns how many live credentials were revoked (`None` without `[credentials]`).
    /// The task store failing is the inner error: the task was then not ended (or its
    /// credentials not revoked), and the caller must be told, not answered `ended`.
    pub fn end_task(&self, task: &str) -> Result<Result<Option<usize>, StoreError>, NotReady> {
        let arbiter = self.arbiter()?;
        if let Err(e) = arbiter.end_task(task) {
            return Ok(Err(e));
        }
        Ok(self
            .credential_issuer()
            .map(|issuer| issuer.revoke_task(task, &arbiter.revoker()))
            .transpose())
    }

    /// Lifts `task`'s quarantine: its actions are decided again. Credentials revoked by
    /// the quarantine stay revoked; new calls get new ones.
    pub fn lift_quarantine(&self, task: &str) -> Result<Result<bool, StoreError>, NotReady> {
        let arbiter = self.arbiter()?;
        let lifted = match arbiter.lift_quarantine(task) {
            Ok(lifted) => lifted,
            Err(e) => return Ok(Err(e)),
        };
        if lifted
            && let Some(issuer) = self.credential_issuer()
            && let Err(e) = issuer.reinstate_task(task, &arbiter.revoker())
        {
            return Ok(Err(e));
        }
        Ok(Ok(lifted))
    }

    /// Whether tasks are asserted or opened (asserted until a policy set is active).
    pub fn task_mode(&self) -> crate::model::TaskMode {
        self.arbiter().map(|a| a.task_mode()).unwrap_or_default()
    }

    /// The identity verifier, when configured.
    pub fn identity_verifier(&self) -> Option<&Arc<IdentityVerifier>> {
        self.inner.identity.get()
    }

    /// Who a request acts as: what it presented, verified, against the agent id it
    /// asserts (and where). A refusal is counted and logged; the adapter answers it
    /// without deciding anything.
    pub fn identify(
        &self,
        evidence: Evidence<'_>,
        asserted: Option<(&str, &str)>,
    ) -> Result<ResolvedIdentity, IdentityRefusal> {
        let resolved = resolve(
            self.identity_verifier().map(Arc::as_ref),
            evidence,
            asserted,
        );
        if let Err(refusal) = &resolved {
            self.inner.metrics.record_identity_refusal(refusal);
            tracing::info!(reason = %refusal, "identity refused");
        }
        resolved
    }

    /// The active host, once loaded.
    pub fn arbiter(&self) -> Result<&Arc<Arbiter>, NotReady> {
        self.inner.arbiter.get().ok_or(NotReady)
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The decision log.
    pub fn decision_log(&self) -> &DecisionLog {
        &self.inner.log
    }

    /// Whether [`DecisionService::decide`] may block on I/O (a strict decision log, or
    /// a task store on the network), so that an async adapter should call it from a
    /// blocking thread.
    pub fn blocks(&self) -> bool {
        self.inner.log.is_strict() || self.arbiter().is_ok_and(|a| a.task_store_is_remote())
    }

    /// Decides `action`, which the adapter's parser has validated
    /// ([`Action::from_json`] or [`Action::validate`]), logs it and counts it, and hands
    /// the decision to `answer` (which builds the adapter's response) before the record
    /// is queued: the decision moves into the log without a copy.
    pub fn decide<R>(
        &self,
        mut action: Action,
        mut context: DecisionContext,
        answer: impl FnOnce(&Decision) -> R,
    ) -> Result<R, Refused> {
        let arbiter = self.arbiter()?;
        let identity = self.apply_identity(&mut action, context.identity.take())?;
        if let Some(token) = context.task_credential.as_deref() {
            self.check_task_credential(&action, token)?;
        }
        // Taken before deciding: the log keeps it only if the decision ran on it (same
        // generation), for the words of its settings that reasons may quote.
        let policy_set = Some(arbiter.policy_set());
        let log = &self.inner.log;
        let strict = log.is_strict();
        // In order: obligations the adapter cannot apply deny; then an allowed call
        // gets its credential (or is denied); then, in strict mode, the log write.
        let gate = context.enforces.map(|enforces| ObligationGate { enforces });
        let verified = !identity.source.starts_with("asserted");
        let mint = context.credential.as_ref().map(|plan| MintStage {
            issuer: self.credential_issuer().map(Arc::as_ref),
            plan,
            verified,
            revoker: arbiter.revoker(),
        });
        let audit = strict.then(|| StrictAudit {
            log,
            trace_id: context.trace_id.clone(),
            via: context.via.clone(),
            policy_set: policy_set.clone(),
            identity: Some(identity.clone()),
        });
        let mut decision = arbiter.decide_validated(&action, &Stages(gate, Stages(mint, audit)));
        decision.identity = Some(identity);
        if decision.effect != crate::model::DecisionEffect::Allow
            && let Some(credential) = decision.credential.take()
            && let Some(issuer) = self.credential_issuer()
        {
            // Minted, then the decision became a deny (its record failed): never usable.
            // It was not handed out; if the store cannot record the revocation either,
            // say so (the credential expires at its `exp`).
            if let Err(e) = issuer.revoke(&credential, &arbiter.revoker()) {
                tracing::error!(credential = %credential.id, error = %e, "task store: cannot revoke a credential minted for a denied call");
            }
        }
        if decision.quarantine.is_some()
            && let (Some(task), Some(issuer)) =
                (decision.task_id.as_deref(), self.credential_issuer())
        {
            match issuer.revoke_task(task, &arbiter.revoker()) {
                Ok(revoked) => {
                    tracing::warn!(task, revoked, reason = ?decision.quarantine, "task quarantined; its credentials are revoked");
                }
                Err(e) => {
                    tracing::error!(task, error = %e, reason = ?decision.quarantine, "task quarantined; the task store could not revoke its credentials");
                }
            }
        }
        self.count(&decision);
        let answered = answer(&decision);
        if strict {
            return Ok(answered);
        }
        if let Err(failure) = log.submit(LogEntry {
            decision,
            action,
            trace_id: context.trace_id,
            via: context.via,
            policy_set,
        }) {
            tracing::debug!(error = %failure, "decision not logged");
        }
        Ok(answered)
    }

    /// What `action` would be decided, without recording it anywhere: not in the task
    /// history, the decision log or the decision metrics. The MCP gateway previews each
    /// listed tool this way to hide those a call would be denied.
    pub fn preview(&self, action: &Action) -> Result<Decision, NotReady> {
        Ok(self.arbiter()?.preview(action))
    }

    /// A presented task credential must be this host's, live, for the action's task and
    /// its (resolved) agent: presenting a wrong one is a refusal, never ignored.
    fn check_task_credential(&self, action: &Action, token: &str) -> Result<(), Refused> {
        let Some(issuer) = self.credential_issuer() else {
            return Err(Refused::TaskCredential(
                "this host issues no task credentials (no `[credentials]`)".to_owned(),
            ));
        };
        let Some(task) = action.task_id() else {
            return Err(Refused::TaskCredential(
                "the action names no task".to_owned(),
            ));
        };
        let revoker = self.arbiter()?.revoker();
        issuer
            .verify_task(token, task, &action.agent.id, &revoker)
            .map_err(Refused::TaskCredential)
    }

    /// Makes the action's agent the resolved identity (resolving the body's own when the
    /// adapter did not), and returns what the decision records of it.
    fn apply_identity(
        &self,
        action: &mut Action,
        identity: Option<ResolvedIdentity>,
    ) -> Result<IdentityRecord, IdentityRefusal> {
        let identity = match identity {
            Some(identity) => identity,
            // No `[identity]`: nothing was verified or could be; the action passes as
            // written, and the decision says it was asserted.
            None if self.identity_verifier().is_none() => {
                return Ok(IdentityRecord {
                    id: action.agent.id.clone(),
                    attestation: action.agent.attestation.clone(),
                    source: "asserted:body".to_owned(),
                    trust_domain: None,
                });
            }
            None => self.identify(Evidence::default(), Some((&action.agent.id, "body")))?,
        };
        action.agent.id.clone_from(&identity.id);
        // An attestation the body claims is not evidence: only a verifier's counts.
        identity
            .attestation
            .as_str()
            .clone_into(&mut action.agent.attestation);
        Ok(identity.record())
    }

    fn count(&self, decision: &Decision) {
        self.inner.metrics.record_decision(decision);
        tracing::debug!(
            decision_id = %decision.decision_id,
            request_id = %decision.request_id,
            effect = decision.effect.as_str(),
            generation = decision.generation,
            elapsed_us = decision.elapsed_us,
            "decided"
        );
    }
}
