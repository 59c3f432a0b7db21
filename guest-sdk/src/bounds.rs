//! The contract's bounds on a verdict, and what the SDK does with a verdict past them.
//!
//! The host checks every verdict against these bounds (`arbiter:policy@0.1.0` states
//! them) and refuses one past them as `invalid-output`: the plugin then counts as failed,
//! with its `on_error` effect, which the operator may have set to `ignore`. A policy
//! should not have to re-implement the bounds, and its verdict should not turn into a
//! failure because one value ran long. So the SDK passes every verdict through
//! [`enforce`] before it leaves the component ([`crate::export_policy!`]), and
//! [`crate::testing::run`] does the same, so native tests see what the host will see:
//!
//! - A **reason** longer than [`MAX_REASON_BYTES`] is clipped on a character boundary,
//!   the cut marked with `…` ([`crate::text::clip`]). Its tail is words, not protection.
//! - **Anything else past a bound** (more than [`MAX_OBLIGATIONS`] obligations or
//!   [`MAX_LABELS`] labels, an obligation kind or a label that is blank or longer than
//!   [`MAX_WORD_BYTES`], an obligation detail longer than [`MAX_DETAIL_BYTES`]) makes the
//!   verdict a **deny**, whose reason names the problem and quotes the verdict's own
//!   reason. Nothing is dropped or shortened silently: an obligation may be a redaction
//!   the gateway must perform, a label may be the taint that stops a later exfiltration,
//!   and a shortened detail says something else (a different JSON pointer). A verdict
//!   without them is not the verdict the policy meant, and allowing on it would fail
//!   open. The deny keeps the labels that are valid, up to [`MAX_LABELS`]: on a deny they
//!   can only make the task's later decisions stricter. It has no obligations, which
//!   apply only to an action that proceeds.
//!
//! This applies to every effect, `abstain` included: a verdict that cannot be expressed
//! is a fault of the plugin, and a fault fails closed.

use crate::text::{clip, echo};
use crate::{Effect, Verdict};

/// Longest reason, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;
/// Most obligations in one verdict.
pub const MAX_OBLIGATIONS: usize = 16;
/// Most labels in one verdict.
pub const MAX_LABELS: usize = 16;
/// Longest obligation kind or label, in bytes (both must also not be blank).
pub const MAX_WORD_BYTES: usize = 64;
/// Longest obligation detail, in bytes.
pub const MAX_DETAIL_BYTES: usize = 1024;

/// Whether `verdict` is within every bound, as the host checks it; the error names the
/// first bound it is past.
pub fn check(verdict: &Verdict) -> Result<(), String> {
    if verdict.reason.len() > MAX_REASON_BYTES {
        return Err(format!(
            "reason is {} bytes, at most {MAX_REASON_BYTES} allowed",
            verdict.reason.len()
        ));
    }
    check_all_but_reason(verdict)
}

/// `verdict` as it may leave the component: unchanged when within the bounds, its
/// reason clipped when only that is too long, and a deny otherwise (see the
/// [module documentation](self)).
pub fn enforce(verdict: Verdict) -> Verdict {
    let mut verdict = match check_all_but_reason(&verdict) {
        Ok(()) => verdict,
        Err(problem) => Verdict {
            effect: Effect::Deny,
            reason: format!(
                "the plugin's `{}` verdict is past the contract's bounds ({problem}), so it is denied; its reason: {}",
                crate::__private::effect_name(verdict.effect),
                verdict.reason
            ),
            obligations: Vec::new(),
            labels: verdict
                .labels
                .into_iter()
                .filter(|label| word_ok(label))
                .take(MAX_LABELS)
                .collect(),
        },
    };
    if verdict.reason.len() > MAX_REASON_BYTES {
        verdict.reason = clip(&verdict.reason, MAX_REASON_BYTES).into_owned();
    }
    verdict
}

fn word_ok(word: &str) -> bool {
    !word.trim().is_empty() && word.len() <= MAX_WORD_BYTES
}

/// What an offending word is called in a message: echoed, clipped, in backticks.
fn shown(word: &str) -> String {
    format!("`{}`", echo(word, MAX_WORD_BYTES))
}

fn check_all_but_reason(verdict: &Verdict) -> Result<(), String> {
    if verdict.obligations.len() > MAX_OBLIGATIONS {
        return Err(format!(
            "{} obligations, at most {MAX_OBLIGATIONS} allowed",
            verdict.obligations.len()
        ));
    }
    if verdict.labels.len() > MAX_LABELS {
        return Err(format!(
            "{} labels, at most {MAX_LABELS} allowed",
            verdict.labels.len()
        ));
    }
    for (at, obligation) in verdict.obligations.iter().enumerate() {
        let n = at + 1;
        if !word_ok(&obligation.kind) {
            return Err(format!(
                "obligation {n} has kind {} of {} bytes, expected 1 to {MAX_WORD_BYTES} bytes, not blank",
                shown(&obligation.kind),
                obligation.kind.len()
            ));
        }
        if obligation.detail.len() > MAX_DETAIL_BYTES {
            return Err(format!(
                "obligation {n} ({}) has a detail of {} bytes, at most {MAX_DETAIL_BYTES} allowed",
                shown(&obligation.kind),
                obligation.detail.len()
            ));
        }
    }
    for (at, label) in verdict.labels.iter().enumerate() {
        if !word_ok(label) {
            return Err(format!(
                "label {} is {} of {} bytes, expected 1 to {MAX_WORD_BYTES} bytes, not blank",
                at + 1,
                shown(label),
                label.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Obligation;

    #[test]
    fn a_verdict_within_the_bounds_is_unchanged() {
        let verdict = Verdict::step_up("needs approval")
            .with_obligation(Obligation::require_approval("sre"))
            .with_labels(["secret", "pii"]);
        assert_eq!(check(&verdict), Ok(()));
        assert_eq!(enforce(verdict.clone()), verdict);
        let mut full = Verdict::allow("x".repeat(MAX_REASON_BYTES));
        for i in 0..MAX_OBLIGATIONS {
            full = full.with_obligation(Obligation::redact(format!("/{i}")));
        }
        full.labels = vec!["l".repeat(MAX_WORD_BYTES); MAX_LABELS];
        assert_eq!(check(&full), Ok(()));
        assert_eq!(enforce(full.clone()), full);
    }

    #[test]
    fn a_long_reason_is_clipped_and_nothing_else_changes() {
        let verdict = Verdict::allow(format!("{}é", "x".repeat(MAX_REASON_BYTES - 1)))
            .with_obligation(Obligation::redact("/body"))
            .with_label("pii");
        assert!(
            check(&verdict)
                .unwrap_err()
                .contains("reason is 1025 bytes")
        );
        let bounded = enforce(verdict.clone());
        assert_eq!(bounded.effect, Effect::Allow);
        assert!(bounded.reason.len() <= MAX_REASON_BYTES);
        assert!(bounded.reason.ends_with('…'));
        assert_eq!(bounded.obligations, verdict.obligations);
        assert_eq!(bounded.labels, verdict.labels);
        assert_eq!(check(&bounded), Ok(()));
    }

    #[test]
    fn too_many_obligations_deny_instead_of_dropping_one() {
        let mut verdict = Verdict::allow("redact them all");
        for i in 0..=MAX_OBLIGATIONS {
            verdict = verdict.with_obligation(Obligation::redact(format!("/{i}")));
        }
        let bounded = enforce(verdict.with_label("secret"));
        assert_eq!(bounded.effect, Effect::Deny);
        assert_eq!(
            bounded.reason,
            "the plugin's `allow` verdict is past the contract's bounds (17 obligations, at most 16 allowed), so it is denied; its reason: redact them all"
        );
        assert!(bounded.obligations.is_empty());
        assert_eq!(bounded.labels, ["secret"]);
        assert_eq!(check(&bounded), Ok(()));
    }

    #[test]
    fn every_other_bound_denies_and_names_the_problem() {
        let deny = |verdict: Verdict| {
            let bounded = enforce(verdict);
            assert_eq!(bounded.effect, Effect::Deny);
            assert_eq!(check(&bounded), Ok(()));
            bounded
        };
        let many_labels = Verdict::abstain("many").with_labels((0..17).map(|i| format!("l{i}")));
        let v = deny(many_labels);
        assert!(v.reason.contains("`abstain` verdict"), "{}", v.reason);
        assert!(v.reason.contains("17 labels, at most 16 allowed"));
        assert_eq!(v.labels.len(), MAX_LABELS);

        let v = deny(Verdict::allow("ok").with_obligation(Obligation::new(" ", "x")));
        assert!(
            v.reason.contains("obligation 1 has kind ` ` of 1 bytes"),
            "{}",
            v.reason
        );
        let v = deny(Verdict::allow("ok").with_obligation(Obligation::new("k`\n".repeat(40), "")));
        assert!(v.reason.contains("of 120 bytes"), "{}", v.reason);
        assert_eq!(v.reason.matches('`').count() % 2, 0, "{}", v.reason);
        assert!(!v.reason.contains('\n'));

        let detail = "/".repeat(MAX_DETAIL_BYTES + 1);
        let v = deny(
            Verdict::step_up("ok")
                .with_obligation(Obligation::redact("/a"))
                .with_obligation(Obligation::redact(detail)),
        );
        assert!(
            v.reason
                .contains("obligation 2 (`redact`) has a detail of 1025 bytes"),
            "{}",
            v.reason
        );

        let v = deny(Verdict::allow("ok").with_labels(["pii", "", &"t".repeat(65)]));
        assert!(
            v.reason.contains("label 2 is `` of 0 bytes"),
            "{}",
            v.reason
        );
        assert_eq!(v.labels, ["pii"], "valid labels are kept on the deny");
    }

    #[test]
    fn the_deny_reason_is_itself_bounded() {
        let mut verdict = Verdict::allow("y".repeat(5000));
        verdict.labels = vec![String::new()];
        let bounded = enforce(verdict);
        assert_eq!(bounded.effect, Effect::Deny);
        assert!(bounded.reason.len() <= MAX_REASON_BYTES);
        assert!(bounded.reason.starts_with("the plugin's `allow` verdict"));
    }
}
