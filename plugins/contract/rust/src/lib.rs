//! The `contract` conformance policy, Rust reference twin. The rules are specified in
//! `plugins/contract/README.md`; the JavaScript, Python and C twins implement the same
//! rules and must give the same verdict, reason, obligations, labels and logs on every
//! case in `tests/conformance/`.

use arbiter_guest::prelude::*;

/// The settings keys this policy knows; each is a list of strings.
const KEYS: [&str; 5] = [
    "blocked",
    "ignored",
    "sensitive_tools",
    "egress",
    "secret_keys",
];

/// The conformance policy.
#[derive(Debug)]
pub struct Contract;

/// A list setting, empty when absent (validation has checked the shape).
fn list<'a>(settings: &'a Value, key: &str) -> Vec<&'a str> {
    settings
        .get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// RFC 6901 escaping of one reference token.
fn pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn effect_word(effect: Effect) -> &'static str {
    match effect {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
        Effect::StepUp => "step-up",
        Effect::Abstain => "abstain",
    }
}

/// Which rule decided, and the verdict before labels and logging.
fn decide(settings: &Value, action: &Action, redacts: &[Obligation]) -> (&'static str, Verdict) {
    let tool = format!("{}/{}", action.tool.server, action.tool.name);
    let now = action.time;
    if list(settings, "blocked").contains(&tool.as_str()) {
        return ("blocked", Verdict::deny(format!("`{tool}` is blocked")));
    }
    if list(settings, "ignored").contains(&tool.as_str()) {
        let reason = format!("`{tool}` is not governed by this policy");
        return ("ignored", Verdict::abstain(reason));
    }
    if let Some(task) = &action.task {
        if now < task.started_at {
            let reason = format!(
                "task `{}` starts at {}, after {now}",
                task.id, task.started_at
            );
            return ("task-not-started", Verdict::deny(reason));
        }
        if let Some(expires_at) = task.expires_at
            && expires_at <= now
        {
            let reason = format!(
                "task `{}` (intent `{}`) expired at {expires_at}",
                task.id, task.intent
            );
            return ("task-expired", Verdict::deny(reason));
        }
    }
    if let Some(credential) = &action.credential {
        if let Some(expires_at) = credential.expires_at
            && expires_at <= now
        {
            let reason = format!("credential expired at {expires_at}");
            return ("credential-expired", Verdict::deny(reason));
        }
        if let Some(audience) = &credential.audience
            && *audience != action.tool.server
        {
            let reason = format!(
                "credential audience `{audience}` does not match server `{}`",
                action.tool.server
            );
            return ("audience", Verdict::deny(reason));
        }
        if let Some(last) = action.delegation.last()
            && let Some(scope) = credential.scopes.iter().find(|s| !last.scopes.contains(s))
        {
            let reason = format!(
                "scope `{scope}` was not delegated by {} `{}`",
                last.kind, last.id
            );
            return ("delegation", Verdict::deny(reason));
        }
    }
    if list(settings, "egress").contains(&tool.as_str())
        && let Some(h) = action
            .history()
            .iter()
            .find(|h| h.labels.iter().any(|l| l == "secret"))
    {
        let reason = format!(
            "`{tool}` sends data out after `{}` (`{}/{}`, {}) touched a secret at {}",
            h.request_id,
            h.tool.server,
            h.tool.name,
            effect_word(h.effect),
            h.time
        );
        let verdict = Verdict::deny(reason).with_obligation(Obligation::new("notify", "security"));
        return ("exfiltration", verdict);
    }
    let with_redacts = |mut verdict: Verdict| {
        verdict.obligations.extend(redacts.iter().cloned());
        verdict
    };
    if action.env("env") == Some("prod")
        && list(settings, "sensitive_tools").contains(&tool.as_str())
    {
        let verdict = Verdict::step_up(format!("`{tool}` is sensitive in prod"))
            .with_obligation(Obligation::require_approval("security"));
        return ("sensitive-in-prod", with_redacts(verdict));
    }
    if action.agent.attestation == "none" {
        let verdict = Verdict::step_up(format!("agent `{}` is not attested", action.agent.id))
            .with_obligation(Obligation::require_approval("identity"));
        return ("unattested", with_redacts(verdict));
    }
    let resource = action.resource.as_ref().map_or("-", |r| r.id.as_str());
    let mut verdict = with_redacts(Verdict::allow(format!(
        "`{}`: `{}` ({}, {} claims) may call `{tool}` on `{resource}`",
        action.request_id,
        action.agent.id,
        action.agent.attestation,
        action.agent.claims.len()
    )));
    if let Some(expires_at) = action.credential.as_ref().and_then(|c| c.expires_at) {
        verdict = verdict.with_obligation(Obligation::max_ttl((expires_at - now) / 1000));
    }
    ("default", verdict)
}

impl Policy for Contract {
    type Settings = Value;

    fn describe() -> PluginInfo {
        PluginInfo::new(
            "contract",
            "0.1.0",
            "conformance",
            "exercises the whole policy contract; the same rules in Rust, JavaScript, Python and C",
        )
    }

    fn validate(settings: &Self::Settings) -> Result<(), String> {
        let Some(settings) = settings.as_object() else {
            return Err("expected a JSON object".to_owned());
        };
        for (key, value) in settings {
            if !KEYS.contains(&key.as_str()) {
                return Err(format!("unknown setting `{key}`"));
            }
            let is_list = value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string));
            if !is_list {
                return Err(format!("setting `{key}` must be a list of strings"));
            }
        }
        Ok(())
    }

    fn evaluate(settings: &Self::Settings, action: &Action) -> Verdict {
        let mut redacts: Vec<Obligation> = Vec::new();
        if let Some(arguments) = action.arguments.as_object() {
            for key in list(settings, "secret_keys") {
                let redact = Obligation::redact(pointer(key));
                if arguments.contains_key(key) && !redacts.contains(&redact) {
                    redacts.push(redact);
                }
            }
        }
        let (rule, mut verdict) = decide(settings, action, &redacts);
        if !redacts.is_empty() && verdict.effect != Effect::Abstain {
            verdict = verdict.with_label("secret");
        }
        let message = format!(
            "{}: {} by rule {rule}",
            action.request_id,
            effect_word(verdict.effect)
        );
        match verdict.effect {
            Effect::Allow | Effect::Abstain => log::info(&message),
            Effect::Deny | Effect::StepUp => log::warn(&message),
        }
        verdict
    }
}

arbiter_guest::export_policy!(Contract);
