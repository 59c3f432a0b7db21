//! # sensitivity: what data a call carries, and where it flows
//!
//! Detects secrets and personal data in a tool call's arguments (every string, object key
//! and number, including base64 / hex / percent-encoded content), knows which tools send
//! data out of the trust boundary and where, and combines that with the resource's labels
//! and the task's history to stop exfiltration chains. See README.md for the rules.

mod dest;
mod scan;
mod settings;

use arbiter_guest::prelude::*;
use arbiter_guest::text::echo;
pub use dest::DestinationCheck;
pub use scan::{Builtin, Detector, Finding, Scan};
pub use settings::{DestinationKind, EgressRule, OnOversize, Settings};

/// The sensitivity policy.
#[derive(Debug)]
pub struct SensitivityPolicy;

impl Policy for SensitivityPolicy {
    type Settings = Settings;

    fn describe() -> PluginInfo {
        PluginInfo::new(
            "sensitivity",
            "0.1.0",
            "sensitivity",
            "detects secrets and personal data in tool arguments and stops sensitive data leaving through egress tools",
        )
    }

    fn evaluate(settings: &Settings, action: &Action) -> Verdict {
        evaluate(settings, action)
    }
}

arbiter_guest::export_policy!(SensitivityPolicy);

/// At most this many redact obligations: the contract allows
/// [`MAX_OBLIGATIONS`](arbiter_guest::bounds::MAX_OBLIGATIONS) in all, and a step-up
/// also carries its approval.
const MAX_REDACTIONS: usize = arbiter_guest::bounds::MAX_OBLIGATIONS - 1;

fn describe_finding(settings: &Settings, finding: &Finding, what: &str) -> String {
    let place = if finding.in_key {
        if finding.pointer.is_empty() {
            "a top-level object key".to_owned()
        } else {
            format!("an object key in `{}`", echo(&finding.pointer, 100))
        }
    } else {
        format!("argument `{}`", echo(&finding.pointer, 100))
    };
    let name = echo(finding.detector.name(settings), 64);
    match finding.encoding {
        Some(encoding) => format!("{place} carries {what} (`{name}`, {encoding}-encoded)"),
        None => format!("{place} carries {what} (`{name}`)"),
    }
}

fn more(count: usize) -> String {
    if count > 1 {
        format!(
            " (and {} more finding{})",
            count - 1,
            if count > 2 { "s" } else { "" }
        )
    } else {
        String::new()
    }
}

/// Redact obligations for the findings selected by `pick`. Too many distinct pointers
/// collapse to their top-level arguments, then to the whole arguments (`""`); a truncated
/// scan always redacts the whole arguments, since some findings were not kept.
fn redactions(scan: &Scan, pick: impl Fn(&Finding) -> bool) -> Vec<Obligation> {
    let mut pointers: Vec<&str> = Vec::new();
    for finding in scan.findings.iter().filter(|f| pick(f)) {
        if !pointers.contains(&finding.pointer.as_str()) {
            pointers.push(&finding.pointer);
        }
    }
    if scan.truncated {
        return vec![Obligation::redact("")];
    }
    if pointers.len() > MAX_REDACTIONS {
        let mut top: Vec<&str> = Vec::new();
        for pointer in &pointers {
            let end = pointer
                .get(1..)
                .and_then(|rest| rest.find('/'))
                .map_or(pointer.len(), |i| i + 1);
            let head = pointer.get(..end).unwrap_or(pointer);
            if !top.contains(&head) {
                top.push(head);
            }
        }
        pointers = if top.len() > MAX_REDACTIONS {
            vec![""]
        } else {
            top
        };
    }
    pointers.into_iter().map(Obligation::redact).collect()
}

fn step_up(settings: &Settings, reason: String) -> Verdict {
    let verdict = Verdict::step_up(reason);
    match &settings.approver {
        Some(approver) => verdict.with_obligation(Obligation::require_approval(approver.clone())),
        None => verdict,
    }
}

fn with_obligations(mut verdict: Verdict, obligations: Vec<Obligation>) -> Verdict {
    for obligation in obligations {
        verdict = verdict.with_obligation(obligation);
    }
    verdict
}

/// The verdict on one action.
pub fn evaluate(settings: &Settings, action: &Action) -> Verdict {
    let tool = format!(
        "{}/{}",
        echo(&action.tool.server, 64),
        echo(&action.tool.name, 64)
    );
    let resource_labels = action.resource_labels();
    let resource_level = Sensitivity::highest(resource_labels);
    let has = |label: &str| resource_labels.iter().any(|l| l == label);
    let (resource_secret, resource_pii) = (has("secret"), has("pii"));
    let egress = settings
        .egress
        .iter()
        .find(|rule| rule.tool.matches_tool(&action.tool));

    // Fail closed on arguments too large to scan within the time budget.
    let bytes = scan::measure(&action.arguments, settings.max_scan_bytes);
    if bytes > settings.max_scan_bytes {
        let reason = format!(
            "arguments of `{tool}` exceed the scan limit of {} bytes, so they cannot be checked for secrets or personal data",
            settings.max_scan_bytes
        );
        let verdict = match settings.on_oversize {
            OnOversize::Deny => Verdict::deny(reason),
            OnOversize::StepUp => step_up(settings, reason),
        };
        return verdict.with_labels(resource_level.map(Sensitivity::label));
    }

    let email_exempt: &[String] = match egress {
        Some(rule) if rule.kind == DestinationKind::Email => &rule.destinations,
        _ => &[],
    };
    let scan = scan::scan(settings, &action.arguments, email_exempt);

    let mut labels: Vec<&str> = Vec::new();
    if scan.secret {
        labels.push("secret");
    }
    if scan.pii {
        labels.push("pii");
    }
    if let Some(level) = resource_level.max(scan.level) {
        labels.push(level.label());
    }
    let is_secret = |f: &Finding| f.detector.class(settings).secret;
    let is_pii = |f: &Finding| f.detector.class(settings).pii;
    let secrets: Vec<&Finding> = scan.findings.iter().filter(|f| is_secret(f)).collect();
    let pii: Vec<&Finding> = scan.findings.iter().filter(|f| is_pii(f)).collect();

    let Some(rule) = egress else {
        // Not an egress tool: secrets are allowed through only with redaction; anything
        // sensitive is labelled so a later egress call in the same task is judged by it.
        if let Some(first) = secrets.first() {
            let reason = format!(
                "{}{}; redact it before `{tool}` runs",
                describe_finding(settings, first, "a secret"),
                more(secrets.len())
            );
            return with_obligations(Verdict::allow(reason), redactions(&scan, is_secret))
                .with_labels(labels);
        }
        if let Some(first) = pii.first() {
            let reason = format!(
                "{}{}; labelled for the task history",
                describe_finding(settings, first, "personal data"),
                more(pii.len())
            );
            return Verdict::allow(reason).with_labels(labels);
        }
        if let Some(first) = scan.findings.first() {
            let level = scan.level.map_or("sensitive", Sensitivity::label);
            let reason = format!(
                "{}{}; labelled for the task history",
                describe_finding(settings, first, &format!("`{level}` data")),
                more(scan.findings.len())
            );
            return Verdict::allow(reason).with_labels(labels);
        }
        if resource_secret
            || resource_pii
            || resource_level.is_some_and(|l| l >= Sensitivity::Confidential)
        {
            let what = resource_level
                .map_or_else(|| "sensitive".to_owned(), |l| format!("`{}`", l.label()));
            return Verdict::allow(format!(
                "`{tool}` touches {what} data; labelled for the task history"
            ))
            .with_labels(labels);
        }
        return Verdict::abstain(format!(
            "`{tool}` is not an egress tool and carries no detected secrets or personal data"
        ))
        .with_labels(labels);
    };

    let destination = dest::check(rule, &action.arguments);
    let shown = &destination.shown;

    // 1. Secrets never leave.
    if let Some(first) = secrets.first() {
        let reason = format!(
            "{}{}; secrets must not leave through egress tool `{tool}`",
            describe_finding(settings, first, "a secret"),
            more(secrets.len())
        );
        return Verdict::deny(reason).with_labels(labels);
    }

    let task_level = resource_level
        .max(scan.level)
        .max(action.history_sensitivity());
    let task_secret = resource_secret || action.history_has_label("secret");
    let task_pii = resource_pii || action.history_has_label("pii");
    let restricted = task_level == Some(Sensitivity::Restricted);
    let handled = match (restricted, task_secret) {
        (true, true) => "`restricted` data and secrets".to_owned(),
        (false, true) => "secrets".to_owned(),
        _ => task_level.map_or_else(String::new, |l| format!("`{}` data", l.label())),
    };
    let pii_redactions = || redactions(&scan, is_pii);

    // 2. A task that touched restricted data or secrets sends nothing outside.
    if (restricted || task_secret) && !destination.allowed {
        let reason = format!(
            "the task has handled {handled}, and {shown} is not an allowed destination for egress tool `{tool}`"
        );
        return Verdict::deny(reason).with_labels(labels);
    }

    // 3. Confidential (or higher) data to an egress tool needs approval.
    if task_secret || task_level.is_some_and(|l| l >= Sensitivity::Confidential) {
        let reason = format!(
            "the task has handled {handled}; sending through egress tool `{tool}` to {shown} needs approval"
        );
        return with_obligations(step_up(settings, reason), pii_redactions()).with_labels(labels);
    }

    // 4. Personal data in the arguments: approval, and redaction if it proceeds.
    if let Some(first) = pii.first() {
        let reason = format!(
            "{}{}; sending it through egress tool `{tool}` to {shown} needs approval",
            describe_finding(settings, first, "personal data"),
            more(pii.len())
        );
        return with_obligations(step_up(settings, reason), pii_redactions()).with_labels(labels);
    }

    // 5. Personal data earlier in the task, going outside the allowed destinations.
    if task_pii && !destination.allowed {
        let reason = format!(
            "the task has handled personal data, and {shown} is not an allowed destination for egress tool `{tool}`"
        );
        return step_up(settings, reason).with_labels(labels);
    }

    Verdict::allow(format!(
        "egress through `{tool}` to {shown} carries no detected secrets or personal data"
    ))
    .with_labels(labels)
}

#[cfg(test)]
mod tests;
