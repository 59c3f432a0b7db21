//! Settings: intents mapped to tool rules, compiled once when the plugin loads.

use crate::hosts::{EmailConstraint, RawEmail, RawUrl, UrlConstraint};
use crate::path::{PathConstraint, RawPath};
use crate::sql::{RawSql, SqlConstraint};
use crate::text::echo;
use arbiter_guest::ToolPattern;
use arbiter_guest::serde_json::{self, Value};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The plugin's settings, compiled. Parsed from:
///
/// ```json
/// {"intents": {"summarize-repo": {"tools": [
///   {"tool": "fs/read_file", "path": {"argument": "/path", "roots": ["/repo"]}},
///   {"tool": "github/get_*"}
/// ]}}}
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSettings")]
pub struct Settings {
    /// Intent name to its rules.
    pub intents: BTreeMap<String, Intent>,
}

/// One intent: the rules saying which tools fit it.
#[derive(Debug, Clone)]
pub struct Intent {
    /// Rules, in order; the first rule that matches the tool and whose constraints
    /// pass decides.
    pub rules: Vec<Rule>,
}

/// What a matching rule yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleEffect {
    /// The call fits the intent.
    #[default]
    Allow,
    /// The call fits the intent but needs human approval or stronger authentication.
    StepUp,
}

/// One tool rule of an intent.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name used in reasons and logs: `id`, or the tool pattern.
    pub name: String,
    /// The tools it covers.
    pub pattern: ToolPattern,
    /// Allow or step-up.
    pub effect: RuleEffect,
    /// Approver for the `require-approval` obligation of a step-up rule.
    pub approver: Option<String>,
    /// Argument constraints; all must pass.
    pub constraints: Vec<Constraint>,
}

/// An argument constraint.
#[derive(Debug, Clone)]
pub enum Constraint {
    /// A path under allowed roots.
    Path(PathConstraint),
    /// A URL to an allowed host.
    Url(UrlConstraint),
    /// One read-only SQL statement.
    Sql(SqlConstraint),
    /// E-mail addresses at allowed domains.
    Email(EmailConstraint),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    intents: BTreeMap<String, RawIntent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    tools: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    tool: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    effect: RuleEffect,
    #[serde(default)]
    approver: Option<String>,
    #[serde(default)]
    path: Option<Value>,
    #[serde(default)]
    url: Option<Value>,
    #[serde(default)]
    sql: Option<Value>,
    #[serde(default)]
    email: Option<Value>,
}

/// `field` holds one constraint object or an array of them.
fn one_or_many<T: serde::de::DeserializeOwned>(
    field: &str,
    value: Option<Value>,
) -> Result<Vec<T>, String> {
    let items = match value {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(item @ Value::Object(_)) => vec![item],
        Some(_) => {
            return Err(format!(
                "`{field}` must be an object or an array of objects"
            ));
        }
    };
    items
        .into_iter()
        .map(|item| serde_json::from_value(item).map_err(|e| format!("`{field}`: {e}")))
        .collect()
}

impl RawRule {
    fn compile(self) -> Result<Rule, String> {
        if !self.tool.contains('/') {
            return Err(format!(
                "tool `{}` must be a `server/name` pattern (use `*/name` to match any server)",
                echo(&self.tool)
            ));
        }
        let pattern = ToolPattern::parse(&self.tool)?;
        let name = match self.id {
            Some(id) if id.trim().is_empty() => return Err("id must not be empty".to_owned()),
            Some(id) => id,
            None => self.tool.clone(),
        };
        if self.approver.is_some() && self.effect != RuleEffect::StepUp {
            return Err("approver is only meaningful with `\"effect\": \"step-up\"`".to_owned());
        }
        let mut constraints = Vec::new();
        for raw in one_or_many::<RawPath>("path", self.path)? {
            constraints.push(Constraint::Path(PathConstraint::compile(raw)?));
        }
        for raw in one_or_many::<RawUrl>("url", self.url)? {
            constraints.push(Constraint::Url(UrlConstraint::compile(raw)?));
        }
        for raw in one_or_many::<RawSql>("sql", self.sql)? {
            constraints.push(Constraint::Sql(SqlConstraint::compile(raw)?));
        }
        for raw in one_or_many::<RawEmail>("email", self.email)? {
            constraints.push(Constraint::Email(EmailConstraint::compile(raw)?));
        }
        Ok(Rule {
            name,
            pattern,
            effect: self.effect,
            approver: self.approver,
            constraints,
        })
    }
}

impl TryFrom<RawSettings> for Settings {
    type Error = String;

    fn try_from(raw: RawSettings) -> Result<Self, String> {
        let mut intents = BTreeMap::new();
        for (name, intent) in raw.intents {
            if name.trim().is_empty() {
                return Err("intents: an intent name is empty".to_owned());
            }
            let mut rules = Vec::with_capacity(intent.tools.len());
            for (index, rule) in intent.tools.into_iter().enumerate() {
                let tool = rule.tool.clone();
                rules.push(rule.compile().map_err(|e| {
                    format!(
                        "intents.{}.tools[{index}] (`{}`): {e}",
                        echo(&name),
                        echo(&tool)
                    )
                })?);
            }
            intents.insert(name, Intent { rules });
        }
        Ok(Self { intents })
    }
}
