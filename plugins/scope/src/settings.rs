//! The operator's settings, parsed and precompiled once per instance.
//!
//! `Settings` deserializes through [`TryFrom<Value>`]: the JSON is first read into
//! [`RawSettings`] (unknown fields refused, every error prefixed with the path of the
//! offending field, e.g. `rules[1].scopes[0]`), then checked and compiled (tool patterns
//! parsed, shadowed rules refused, scopes validated) so evaluation does no parsing.

use arbiter_guest::serde_json::Value;
use arbiter_guest::{Obligation, ToolPattern};
use serde::Deserialize;

/// Default for `max_delegation_depth`: a user, an orchestrating agent and one sub-agent.
pub const DEFAULT_MAX_DELEGATION_DEPTH: usize = 3;

/// One rule as written in the settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    tools: Vec<String>,
    scopes: Vec<String>,
}

/// The settings as written, before checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    rules: Vec<RawRule>,
    #[serde(default)]
    unknown_tools: Option<String>,
    #[serde(default)]
    require_task: Option<bool>,
    #[serde(default)]
    require_audience: Option<bool>,
    #[serde(default)]
    max_delegation_depth: Option<u32>,
    #[serde(default)]
    max_credential_ttl_seconds: Option<u64>,
    #[serde(default)]
    long_lived_credentials: Option<String>,
    #[serde(default)]
    high_risk_tools: Vec<String>,
    #[serde(default)]
    approver_group: Option<String>,
    #[serde(default)]
    wildcard_scopes: Option<bool>,
}

/// What to do with a tool that matches no rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownTools {
    /// Deny it (the default): the scope policy cannot vouch for a tool it does not know.
    Deny,
    /// Abstain: leave the tool to other plugins and the host's default.
    Abstain,
}

/// What to do with a credential that lives longer than `max_credential_ttl_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongLived {
    /// Let the action proceed with a `max-ttl` obligation (the default).
    MaxTtl,
    /// Deny the action.
    Deny,
}

/// The shape of one part of a tool pattern, for the load-time shadowing check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// `*` or an omitted server: anything.
    Any,
    Exact(String),
    /// `prefix*` with a non-empty prefix.
    Prefix(String),
}

impl Part {
    fn parse(text: &str, pattern: &str, what: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err(format!("tool pattern `{pattern}` has an empty {what}"));
        }
        match text.find('*') {
            None => Ok(Self::Exact(text.to_owned())),
            Some(0) if text.len() == 1 => Ok(Self::Any),
            Some(at) if at + 1 == text.len() => {
                Ok(Self::Prefix(text.get(..at).unwrap_or_default().to_owned()))
            }
            Some(_) => Err(format!(
                "tool pattern `{pattern}` has a `*` that does not end the {what}"
            )),
        }
    }

    /// Whether every value `other` matches is also matched by `self`.
    fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Any, _) => true,
            (_, Self::Any) => false,
            (Self::Exact(a), Self::Exact(b)) => a == b,
            (Self::Exact(_), Self::Prefix(_)) => false,
            (Self::Prefix(p), Self::Exact(b)) => b.starts_with(p.as_str()),
            (Self::Prefix(p), Self::Prefix(q)) => q.starts_with(p.as_str()),
        }
    }
}

/// A tool pattern: its text (for reasons), the SDK matcher (for evaluation) and its
/// shape (for the shadowing check).
#[derive(Debug)]
pub struct Pattern {
    /// The pattern as written.
    pub text: String,
    matcher: ToolPattern,
    server: Part,
    name: Part,
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("tool pattern is empty".to_owned());
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "tool pattern `{}` contains whitespace",
                text.escape_debug()
            ));
        }
        let (server, name) = match text.split_once('/') {
            Some((_, name)) if name.contains('/') => {
                return Err(format!("tool pattern `{text}` has more than one `/`"));
            }
            Some((server, name)) => (
                Part::parse(server, text, "server")?,
                Part::parse(name, text, "name")?,
            ),
            None => (Part::Any, Part::parse(text, text, "name")?),
        };
        let matcher = ToolPattern::parse(text)?;
        Ok(Self {
            text: text.to_owned(),
            matcher,
            server,
            name,
        })
    }

    /// Whether the tool matches (SDK semantics: exact, case-sensitive, trailing `*`).
    pub fn matches(&self, tool: &arbiter_guest::Tool) -> bool {
        self.matcher.matches_tool(tool)
    }

    /// Whether every tool `other` matches is also matched by `self`.
    fn covers(&self, other: &Self) -> bool {
        self.server.covers(&other.server) && self.name.covers(&other.name)
    }
}

/// One compiled rule: the tools it governs and the scopes they all require.
#[derive(Debug)]
pub struct Rule {
    /// Tool patterns.
    pub tools: Vec<Pattern>,
    /// Required scopes (all of them), deduplicated, in the order written.
    pub scopes: Vec<String>,
    /// The scopes for reasons, precomputed: "`a`, `b`".
    pub scope_list: String,
}

/// The scope policy's settings, compiled.
#[derive(Debug, Deserialize)]
#[serde(try_from = "Value")]
pub struct Settings {
    /// Ordered rules; the first rule with a matching pattern wins.
    pub rules: Vec<Rule>,
    /// What to do with a tool that matches no rule.
    pub unknown_tools: UnknownTools,
    /// Deny actions that carry no task.
    pub require_task: bool,
    /// Deny credentials that are not audience-bound.
    pub require_audience: bool,
    /// Longest delegation chain allowed.
    pub max_delegation_depth: usize,
    /// Longest remaining credential lifetime allowed without a `max-ttl`, in seconds.
    pub max_credential_ttl_seconds: Option<u64>,
    /// What to do with longer-lived credentials.
    pub long_lived_credentials: LongLived,
    /// Tools that need human approval once everything else passes.
    pub high_risk_tools: Vec<Pattern>,
    /// Who approves high-risk tools.
    pub approver_group: Option<String>,
    /// Whether a granted `prefix:*` covers required `prefix:anything`.
    pub wildcard_scopes: bool,
    /// Precomputed `max-ttl` obligation, when `max_credential_ttl_seconds` is set.
    pub max_ttl_obligation: Option<Obligation>,
    /// Precomputed `require-approval` obligation, when `approver_group` is set.
    pub approval_obligation: Option<Obligation>,
}

fn check_scope(scope: &str, field: &str) -> Result<(), String> {
    if scope.is_empty() {
        return Err(format!("`{field}`: scope is empty"));
    }
    if scope.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{field}`: scope `{}` contains whitespace",
            scope.escape_debug()
        ));
    }
    if scope.contains('*') {
        return Err(format!(
            "`{field}`: required scope `{scope}` contains `*`; required scopes are exact strings (wildcards are only honoured in granted scopes, see `wildcard_scopes`)"
        ));
    }
    Ok(())
}

impl TryFrom<Value> for Settings {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        let raw: RawSettings = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.inner().to_string()
            } else {
                format!("`{path}`: {}", e.inner())
            }
        })?;
        compile(raw)
    }
}

fn compile(raw: RawSettings) -> Result<Settings, String> {
    if raw.rules.is_empty() {
        return Err("`rules`: expected at least one rule".to_owned());
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(raw.rules.len());
    for (r, rule) in raw.rules.iter().enumerate() {
        if rule.tools.is_empty() {
            return Err(format!(
                "`rules[{r}].tools`: expected at least one tool pattern"
            ));
        }
        let mut tools = Vec::with_capacity(rule.tools.len());
        for (t, text) in rule.tools.iter().enumerate() {
            let pattern =
                Pattern::parse(text).map_err(|e| format!("`rules[{r}].tools[{t}]`: {e}"))?;
            for (earlier_index, earlier) in rules.iter().enumerate() {
                if let Some(cover) = earlier.tools.iter().find(|p| p.covers(&pattern)) {
                    return Err(format!(
                        "`rules[{r}].tools[{t}]`: pattern `{text}` can never match: `rules[{earlier_index}]` comes first and its pattern `{}` covers it (the first matching rule wins; put more specific rules first)",
                        cover.text
                    ));
                }
            }
            tools.push(pattern);
        }
        let mut scopes: Vec<String> = Vec::with_capacity(rule.scopes.len());
        for (s, scope) in rule.scopes.iter().enumerate() {
            check_scope(scope, &format!("rules[{r}].scopes[{s}]"))?;
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        let scope_list = scopes
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ");
        rules.push(Rule {
            tools,
            scopes,
            scope_list,
        });
    }

    let unknown_tools = match raw.unknown_tools.as_deref() {
        None | Some("deny") => UnknownTools::Deny,
        Some("abstain") => UnknownTools::Abstain,
        Some(other) => {
            return Err(format!(
                "`unknown_tools`: expected `deny` or `abstain`, got `{}`",
                other.escape_debug()
            ));
        }
    };
    let long_lived_credentials = match raw.long_lived_credentials.as_deref() {
        None | Some("max-ttl") => LongLived::MaxTtl,
        Some("deny") => LongLived::Deny,
        Some(other) => {
            return Err(format!(
                "`long_lived_credentials`: expected `max-ttl` or `deny`, got `{}`",
                other.escape_debug()
            ));
        }
    };
    if raw.max_credential_ttl_seconds == Some(0) {
        return Err(
            "`max_credential_ttl_seconds`: expected a number of seconds of at least 1".to_owned(),
        );
    }
    if raw.long_lived_credentials.is_some() && raw.max_credential_ttl_seconds.is_none() {
        return Err(
            "`long_lived_credentials`: has no effect without `max_credential_ttl_seconds`"
                .to_owned(),
        );
    }

    let mut high_risk_tools = Vec::with_capacity(raw.high_risk_tools.len());
    for (t, text) in raw.high_risk_tools.iter().enumerate() {
        high_risk_tools
            .push(Pattern::parse(text).map_err(|e| format!("`high_risk_tools[{t}]`: {e}"))?);
    }
    let approver_group = match raw.approver_group {
        Some(group) if group.trim().is_empty() => {
            return Err("`approver_group`: expected a non-empty group name".to_owned());
        }
        other => other,
    };
    if !high_risk_tools.is_empty() && approver_group.is_none() {
        return Err(
            "`approver_group`: required when `high_risk_tools` is set (it names who approves them)"
                .to_owned(),
        );
    }

    Ok(Settings {
        rules,
        unknown_tools,
        require_task: raw.require_task.unwrap_or(true),
        require_audience: raw.require_audience.unwrap_or(true),
        max_delegation_depth: raw
            .max_delegation_depth
            .map_or(DEFAULT_MAX_DELEGATION_DEPTH, |d| d as usize),
        max_credential_ttl_seconds: raw.max_credential_ttl_seconds,
        max_ttl_obligation: raw.max_credential_ttl_seconds.map(Obligation::max_ttl),
        approval_obligation: approver_group.as_deref().map(Obligation::require_approval),
        long_lived_credentials,
        high_risk_tools,
        approver_group,
        wildcard_scopes: raw.wildcard_scopes.unwrap_or(false),
    })
}

impl Settings {
    /// The first rule with a pattern matching `tool`, and that pattern.
    pub fn rule_for(&self, tool: &arbiter_guest::Tool) -> Option<(&Rule, &Pattern)> {
        self.rules.iter().find_map(|rule| {
            rule.tools
                .iter()
                .find(|p| p.matches(tool))
                .map(|p| (rule, p))
        })
    }

    /// The first high-risk pattern matching `tool`.
    pub fn high_risk(&self, tool: &arbiter_guest::Tool) -> Option<&Pattern> {
        self.high_risk_tools.iter().find(|p| p.matches(tool))
    }
}
