//! The action a policy evaluates, as plain Rust types.

use crate::task_context::TaskContext;
use crate::verdict::Effect;
use serde_json::Value;
use std::collections::BTreeMap;

/// The environment key the host sets to `call` or `list` (see [`Action::is_listing`]).
pub const PHASE_KEY: &str = "arbiter.phase";
/// [`PHASE_KEY`]'s value for a listing preview.
pub const PHASE_LIST: &str = "list";

/// Everything Arbiter knows about one action an agent is about to take.
///
/// The task's history and labels are read through [`Action::history`] and
/// [`Action::task_labels`]; build actions for tests with [`crate::testing::ActionBuilder`].
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// The gateway's id for this request.
    pub request_id: String,
    /// Who is acting.
    pub agent: Agent,
    /// On whose behalf, outermost principal first.
    pub delegation: Vec<Principal>,
    /// The task the action belongs to, if any.
    pub task: Option<Task>,
    /// The tool being called.
    pub tool: Tool,
    /// The tool's arguments, parsed from JSON.
    pub arguments: Value,
    /// The credential the call would use, if any.
    pub credential: Option<Credential>,
    /// The resource touched, where known.
    pub resource: Option<Resource>,
    /// Environment key/values (e.g. `env` = `prod`).
    pub environment: BTreeMap<String, String>,
    /// When the gateway received the request, Unix ms. Use this instead of a clock.
    pub time: u64,
    /// The task's history and sticky labels, fetched from the host on first use.
    pub(crate) task_context: TaskContext,
}

/// The agent's workload identity.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Agent {
    /// Workload identity, normally a SPIFFE ID.
    pub id: String,
    /// How it was attested: `x509-svid`, `jwt-svid`, `mtls`, `oidc`, `none`.
    pub attestation: String,
    /// Extra identity claims.
    pub claims: BTreeMap<String, String>,
}

/// One principal in a delegation chain.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Principal {
    /// User id, e-mail or SPIFFE ID.
    pub id: String,
    /// `user`, `agent` or `service`.
    pub kind: String,
    /// Scopes this principal delegated onward.
    pub scopes: Vec<String>,
}

/// The task an action belongs to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Task {
    /// Task identifier.
    pub id: String,
    /// Declared intent.
    pub intent: String,
    /// Start, Unix ms.
    pub started_at: u64,
    /// Expiry, Unix ms.
    pub expires_at: Option<u64>,
}

/// The tool being called.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tool {
    /// Server (MCP server name or API host).
    pub server: String,
    /// Tool name on that server.
    pub name: String,
}

/// The credential a call would use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Credential {
    /// Scopes carried.
    pub scopes: Vec<String>,
    /// Expiry, Unix ms.
    pub expires_at: Option<u64>,
    /// Audience the credential is bound to.
    pub audience: Option<String>,
}

/// The resource a call touches.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resource {
    /// Identifier (URI, path, table).
    pub id: String,
    /// Sensitivity labels.
    pub labels: Vec<String>,
}

/// An earlier action of the same task.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// Its request id.
    pub request_id: String,
    /// The tool it called.
    pub tool: Tool,
    /// Arbiter's final effect for it.
    pub effect: Effect,
    /// Labels it touched.
    pub labels: Vec<String>,
    /// When it was decided, Unix ms.
    pub time: u64,
}

/// The ordered sensitivity levels: `public < internal < confidential < restricted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sensitivity {
    /// Anyone may see it.
    Public,
    /// Inside the organisation.
    Internal,
    /// Need-to-know.
    Confidential,
    /// The most sensitive: secrets, regulated data.
    Restricted,
}

impl Sensitivity {
    /// Parses a level label; other labels (tags such as `pii`) give `None`.
    pub fn from_label(label: &str) -> Option<Self> {
        match label {
            "public" => Some(Self::Public),
            "internal" => Some(Self::Internal),
            "confidential" => Some(Self::Confidential),
            "restricted" => Some(Self::Restricted),
            _ => None,
        }
    }

    /// The label for this level.
    pub fn label(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
            Self::Confidential => "confidential",
            Self::Restricted => "restricted",
        }
    }

    /// The highest level among `labels`, if any label is a level.
    pub fn highest<'a>(labels: impl IntoIterator<Item = &'a String>) -> Option<Self> {
        labels.into_iter().filter_map(|l| Self::from_label(l)).max()
    }
}

impl Action {
    /// The task's intent, if there is a task.
    pub fn intent(&self) -> Option<&str> {
        self.task.as_ref().map(|t| t.intent.as_str())
    }

    /// The argument at a JSON pointer (e.g. `/path`), if present.
    pub fn argument(&self, pointer: &str) -> Option<&Value> {
        self.arguments.pointer(pointer)
    }

    /// The argument at a JSON pointer as a string, if it is one.
    pub fn argument_str(&self, pointer: &str) -> Option<&str> {
        self.argument(pointer).and_then(Value::as_str)
    }

    /// The environment value for `key`.
    pub fn env(&self, key: &str) -> Option<&str> {
        self.environment.get(key).map(String::as_str)
    }

    /// Whether this is a **listing preview** rather than a call: the MCP gateway asks,
    /// for each tool an MCP server lists, whether a call could be allowed at all, and
    /// hides the tool when the answer is deny. The arguments are then empty, so a
    /// policy should judge only what does not depend on them (the tool, the task, the
    /// agent) and let argument checks pass; the real call is decided on its arguments
    /// later. Set by the host (`environment["arbiter.phase"] = "list"`), never by a
    /// caller of the decision API, whose parser refuses `arbiter.` keys.
    pub fn is_listing(&self) -> bool {
        self.env(PHASE_KEY) == Some(PHASE_LIST)
    }

    /// Earlier actions of the same task, oldest first: the most recent ones, as many as
    /// the host keeps. Fetched from the host on first call; only call it when you need it.
    pub fn history(&self) -> &[HistoryEntry] {
        self.task_context.history()
    }

    /// Every label the task touched before this action, since it began (sorted, without
    /// duplicates). Unlike [`Action::history`] this is not limited to recent actions.
    pub fn task_labels(&self) -> &[String] {
        self.task_context.labels()
    }

    /// Whether any earlier action of this task carried `label`, however long ago.
    pub fn history_has_label(&self, label: &str) -> bool {
        self.task_labels().iter().any(|l| l == label)
    }

    /// The highest sensitivity level this task touched before this action.
    pub fn history_sensitivity(&self) -> Option<Sensitivity> {
        Sensitivity::highest(self.task_labels())
    }

    /// The resource's labels, or an empty slice.
    pub fn resource_labels(&self) -> &[String] {
        self.resource
            .as_ref()
            .map(|r| r.labels.as_slice())
            .unwrap_or_default()
    }
}
