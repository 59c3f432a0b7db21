//! The trait a policy implements.

use crate::{Action, Verdict};
use serde::de::DeserializeOwned;

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Plugin name.
    pub name: String,
    /// Semver version.
    pub version: String,
    /// `intent`, `scope`, `sensitivity`, or another kind.
    pub kind: String,
    /// One line saying what it checks.
    pub description: String,
}

impl PluginInfo {
    /// Builds plugin metadata.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            kind: kind.into(),
            description: description.into(),
        }
    }
}

/// A policy: metadata, typed settings and an evaluation function.
///
/// `evaluate` must be a pure function of the settings and the action: the host may run
/// each evaluation in a fresh instance, so state kept in statics does not survive.
pub trait Policy {
    /// The operator's settings for this policy, parsed from the JSON of the plugin's
    /// `settings` table. Use `#[serde(deny_unknown_fields)]` so typos are refused at load.
    type Settings: DeserializeOwned;

    /// Name, version, kind and description.
    fn describe() -> PluginInfo;

    /// Extra checks on parsed settings (e.g. pattern syntax); the message refuses the
    /// plugin at load time.
    fn validate(_settings: &Self::Settings) -> Result<(), String> {
        Ok(())
    }

    /// The verdict on one action.
    fn evaluate(settings: &Self::Settings, action: &Action) -> Verdict;
}

/// Parses and validates settings JSON for policy `P`.
pub fn parse_settings<P: Policy>(json: &str) -> Result<P::Settings, String> {
    let settings = parse_settings_unchecked::<P>(json)?;
    P::validate(&settings).map_err(|e| format!("invalid settings: {e}"))?;
    Ok(settings)
}

/// Parses settings JSON for policy `P` without [`Policy::validate`]: for settings the host
/// already validated when it loaded the plugin.
pub(crate) fn parse_settings_unchecked<P: Policy>(json: &str) -> Result<P::Settings, String> {
    let text = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(text).map_err(|e| format!("invalid settings: {e}"))
}
