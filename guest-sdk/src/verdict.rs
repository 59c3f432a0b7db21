//! Verdicts, effects and obligations, with constructors.

/// A plugin's effect on one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// May proceed.
    Allow,
    /// Must not proceed.
    Deny,
    /// May proceed after human approval or stronger authentication.
    StepUp,
    /// Not this plugin's concern.
    Abstain,
}

/// Something the gateway must do if the action proceeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obligation {
    /// What to do: `redact`, `max-ttl`, `require-approval`, ...
    pub kind: String,
    /// Its parameter.
    pub detail: String,
}

impl Obligation {
    /// An obligation of `kind` with `detail`.
    pub fn new(kind: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            detail: detail.into(),
        }
    }

    /// Redact the argument at this JSON pointer before the call goes out.
    pub fn redact(pointer: impl Into<String>) -> Self {
        Self::new("redact", pointer)
    }

    /// Limit the credential's remaining lifetime to `seconds`.
    pub fn max_ttl(seconds: u64) -> Self {
        Self::new("max-ttl", seconds.to_string())
    }

    /// Require approval by `approver` (a group or role).
    pub fn require_approval(approver: impl Into<String>) -> Self {
        Self::new("require-approval", approver)
    }
}

/// A plugin's verdict on one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The effect.
    pub effect: Effect,
    /// Why, for humans.
    pub reason: String,
    /// Obligations if the action proceeds.
    pub obligations: Vec<Obligation>,
    /// Labels found in the action, recorded in the task's history.
    pub labels: Vec<String>,
}

impl Verdict {
    fn with_effect(effect: Effect, reason: impl Into<String>) -> Self {
        Self {
            effect,
            reason: reason.into(),
            obligations: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Allow, with a reason.
    pub fn allow(reason: impl Into<String>) -> Self {
        Self::with_effect(Effect::Allow, reason)
    }

    /// Deny, with a reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self::with_effect(Effect::Deny, reason)
    }

    /// Step-up, with a reason.
    pub fn step_up(reason: impl Into<String>) -> Self {
        Self::with_effect(Effect::StepUp, reason)
    }

    /// Abstain ("not my concern"), with a reason.
    pub fn abstain(reason: impl Into<String>) -> Self {
        Self::with_effect(Effect::Abstain, reason)
    }

    /// Adds an obligation.
    pub fn with_obligation(mut self, obligation: Obligation) -> Self {
        self.obligations.push(obligation);
        self
    }

    /// Adds a label to record in the task's history (e.g. `secret`).
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        let label = label.into();
        if !self.labels.contains(&label) {
            self.labels.push(label);
        }
        self
    }

    /// Adds several labels.
    pub fn with_labels<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for label in labels {
            self = self.with_label(label);
        }
        self
    }
}
