//! `[approvals]`: how long a step-up's approval waits, how many are held, and who may
//! answer them.
//!
//! ```toml
//! [approvals]
//! ttl_ms = 900000                      # an approval lapses 15 minutes after it was asked for
//! max_approvals = 10000                # held at once (pending, decided, used until expiry)
//! console_url = "https://arbiter.internal:8480/console"   # links in step-up answers
//!
//! [[approvals.group]]
//! name = "finance"                     # what `require-approval` obligations name
//! token_env = "ARBITER_APPROVERS_FINANCE"   # a bearer token for the group's approvers
//! members = ["spiffe://example.org/user/alice"]   # and/or verified identities
//! ```

use super::{ConfigError, invalid};
use serde::Deserialize;
use std::time::Duration;

/// `[approvals]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprovals {
    /// Lifetime of an approval, in ms.
    pub ttl_ms: Option<u64>,
    /// Approvals held at once.
    pub max_approvals: Option<usize>,
    /// Base URL of the operator console, for links to an approval's page.
    pub console_url: Option<String>,
    /// The approver groups.
    #[serde(default, rename = "group")]
    pub groups: Vec<RawApproverGroup>,
}

/// `[[approvals.group]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApproverGroup {
    /// The group's name, as `require-approval` obligations name it.
    pub name: String,
    /// Environment variable holding the group's bearer token.
    pub token_env: Option<String>,
    /// The token itself (prefer `token_env`: a config file is often readable).
    pub token: Option<String>,
    /// Verified identities (SPIFFE IDs) that are members.
    #[serde(default)]
    pub members: Vec<String>,
}

/// Where a group's token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupToken {
    /// Read from this environment variable when a server starts.
    Env(String),
    /// Written in the config.
    Inline(String),
}

/// One approver group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproverGroup {
    /// Its name.
    pub name: String,
    /// Its bearer token, if it has one.
    pub token: Option<GroupToken>,
    /// Its verified members.
    pub members: Vec<String>,
}

/// Validated `[approvals]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalsConfig {
    /// Lifetime of an approval.
    pub ttl: Duration,
    /// Approvals held at once.
    pub max_approvals: usize,
    /// Base URL of the console (no trailing slash).
    pub console_url: Option<String>,
    /// The approver groups.
    pub groups: Vec<ApproverGroup>,
}

/// Default lifetime of an approval: long enough for a human to answer, short enough
/// that an old approval is not a standing permission.
pub const DEFAULT_APPROVAL_TTL_MS: u64 = 15 * 60 * 1000;
/// Default bound of the approvals a store holds.
pub const DEFAULT_MAX_APPROVALS: usize = 10_000;
/// At most a week.
pub const MAX_APPROVAL_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

impl Default for ApprovalsConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_millis(DEFAULT_APPROVAL_TTL_MS),
            max_approvals: DEFAULT_MAX_APPROVALS,
            console_url: None,
            groups: Vec::new(),
        }
    }
}

impl ApprovalsConfig {
    /// The groups `identity` is a member of.
    pub fn groups_of(&self, identity: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == identity))
            .map(|g| g.name.clone())
            .collect()
    }

    /// The console page of approval `id`, when a console URL is configured.
    pub fn page_of(&self, id: &str) -> Option<String> {
        self.console_url
            .as_ref()
            .map(|base| format!("{base}/approvals/{id}"))
    }
}

/// Checks `[approvals]`; every error names its key.
pub fn validate(raw: RawApprovals) -> Result<ApprovalsConfig, ConfigError> {
    let ttl_ms = raw.ttl_ms.unwrap_or(DEFAULT_APPROVAL_TTL_MS);
    if !(1_000..=MAX_APPROVAL_TTL_MS).contains(&ttl_ms) {
        return Err(invalid(
            "approvals.ttl_ms",
            format!("{ttl_ms} ms, expected 1000 to {MAX_APPROVAL_TTL_MS}"),
        ));
    }
    let max_approvals = raw.max_approvals.unwrap_or(DEFAULT_MAX_APPROVALS);
    if !(1..=1_000_000).contains(&max_approvals) {
        return Err(invalid(
            "approvals.max_approvals",
            format!("{max_approvals}, expected 1 to 1000000"),
        ));
    }
    let console_url = match raw.console_url {
        None => None,
        Some(url) => {
            let trimmed = url.trim_end_matches('/');
            if !(trimmed.starts_with("https://") || trimmed.starts_with("http://"))
                || trimmed.contains(char::is_whitespace)
            {
                return Err(invalid(
                    "approvals.console_url",
                    format!("`{url}`, expected an http:// or https:// URL"),
                ));
            }
            Some(trimmed.to_owned())
        }
    };
    let mut groups: Vec<ApproverGroup> = Vec::new();
    for (i, g) in raw.groups.into_iter().enumerate() {
        let key = format!("approvals.group[{i}]");
        crate::model::check_id("name", &g.name)
            .map_err(|e| invalid(format!("{key}.name"), e.problem))?;
        if groups.iter().any(|other| other.name == g.name) {
            return Err(invalid(
                format!("{key}.name"),
                format!("`{}` is named twice", g.name),
            ));
        }
        let token = match (g.token_env, g.token) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    format!("{key}.token"),
                    "give `token_env` or `token`, not both",
                ));
            }
            (Some(var), None) if var.trim().is_empty() => {
                return Err(invalid(format!("{key}.token_env"), "empty variable name"));
            }
            (Some(var), None) => Some(GroupToken::Env(var)),
            (None, Some(token)) if token.len() < 16 => {
                return Err(invalid(
                    format!("{key}.token"),
                    "shorter than 16 bytes: too easy to guess",
                ));
            }
            (None, Some(token)) => Some(GroupToken::Inline(token)),
            (None, None) => None,
        };
        for (j, member) in g.members.iter().enumerate() {
            if member.trim().is_empty() {
                return Err(invalid(format!("{key}.members[{j}]"), "empty identity"));
            }
        }
        if token.is_none() && g.members.is_empty() {
            return Err(invalid(
                key,
                format!(
                    "group `{}` has neither a token (`token_env`) nor `members`: nobody could approve for it",
                    g.name
                ),
            ));
        }
        groups.push(ApproverGroup {
            name: g.name,
            token,
            members: g.members,
        });
    }
    Ok(ApprovalsConfig {
        ttl: Duration::from_millis(ttl_ms),
        max_approvals,
        console_url,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> RawApprovals {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn defaults_and_errors_name_their_key() {
        let config = validate(RawApprovals::default()).unwrap();
        assert_eq!(config.ttl, Duration::from_millis(DEFAULT_APPROVAL_TTL_MS));
        let cases = [
            ("ttl_ms = 10", "approvals.ttl_ms"),
            ("max_approvals = 0", "approvals.max_approvals"),
            ("console_url = \"ftp://x\"", "approvals.console_url"),
            (
                "[[group]]\nname = \"a b\"\ntoken_env = \"X\"",
                "approvals.group[0].name",
            ),
            ("[[group]]\nname = \"ops\"", "approvals.group[0]"),
            (
                "[[group]]\nname = \"ops\"\ntoken = \"short\"",
                "approvals.group[0].token",
            ),
            (
                "[[group]]\nname = \"ops\"\ntoken_env = \"A\"\n[[group]]\nname = \"ops\"\ntoken_env = \"B\"",
                "approvals.group[1].name",
            ),
        ];
        for (text, key) in cases {
            match validate(raw(text)) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        let config = validate(raw(
            "console_url = \"https://a.example/console/\"\n[[group]]\nname = \"ops\"\nmembers = [\"spiffe://x/u\"]",
        ))
        .unwrap();
        assert_eq!(
            config.page_of("apr-1").unwrap(),
            "https://a.example/console/approvals/apr-1"
        );
        assert_eq!(config.groups_of("spiffe://x/u"), ["ops"]);
    }
}
