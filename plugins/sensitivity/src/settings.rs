//! Operator settings, parsed and validated once per instance. Operator regular
//! expressions are compiled here, so evaluation never compiles anything.

use crate::scan::Builtin;
use arbiter_guest::serde_json::Value;
use arbiter_guest::{Sensitivity, ToolPattern};
use serde::Deserialize;

/// Default cap on the bytes of argument text (strings, object keys, numbers) scanned per call.
pub const DEFAULT_MAX_SCAN_BYTES: usize = 64 * 1024;
/// Largest accepted `max_scan_bytes`.
pub const MAX_MAX_SCAN_BYTES: usize = 16 * 1024 * 1024;
/// Default number of decoding levels (base64, hex, percent) re-scanned.
pub const DEFAULT_DECODE_DEPTH: u8 = 2;
/// Largest accepted `decode_depth`.
pub const MAX_DECODE_DEPTH: u8 = 3;
/// Most operator patterns accepted.
const MAX_PATTERNS: usize = 64;
/// Compiled-size cap for one operator regex (bytes), so a pattern cannot blow memory.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// What an egress rule's destination argument holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestinationKind {
    /// E-mail addresses; allowed entries are domains.
    Email,
    /// Absolute URLs; allowed entries are hosts.
    Url,
    /// Channel or room names; allowed entries are names (a leading `#` is ignored).
    Channel,
}

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// Exactly this domain, host or channel.
    Exact(String),
    /// Any subdomain: holds the suffix including the leading dot (`.example.com`).
    Subdomains(String),
    /// Channels whose name starts with this prefix (written `prefix*`).
    Prefix(String),
}

impl Allowed {
    /// Whether the normalised destination `value` is allowed by this entry.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(exact) => exact == value,
            Self::Subdomains(suffix) => {
                value.len() > suffix.len() && value.ends_with(suffix.as_str())
            }
            Self::Prefix(prefix) => value.starts_with(prefix.as_str()),
        }
    }
}

/// A tool that sends data out of the trust boundary.
#[derive(Debug, Clone)]
pub struct EgressRule {
    /// Which tools.
    pub tool: ToolPattern,
    /// JSON pointers of the destination arguments (e.g. `/to`, `/cc`).
    pub destinations: Vec<String>,
    /// What the destination arguments hold.
    pub kind: DestinationKind,
    /// Destinations inside the trust boundary.
    pub allowed: Vec<Allowed>,
}

/// What a custom pattern's match means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternLabel {
    /// Credentials or key material.
    Secret,
    /// Personal data.
    Pii,
    /// A sensitivity level.
    Level(Sensitivity),
}

impl PatternLabel {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "secret" => Some(Self::Secret),
            "pii" => Some(Self::Pii),
            other => Sensitivity::from_label(other).map(Self::Level),
        }
    }
}

/// An operator-defined detector.
#[derive(Debug, Clone)]
pub struct CustomPattern {
    /// Detector name used in reasons.
    pub name: String,
    /// What a match means.
    pub label: PatternLabel,
    /// The compiled expression.
    pub regex: regex_lite::Regex,
    /// A literal every match starts with, derived from the pattern; texts without it
    /// skip the (comparatively slow) regex engine.
    pub prefilter: Option<String>,
}

/// The literal prefix every match of `pattern` must contain, if one can be derived
/// safely: leading `^`, `\b`, `\B` or `\A` are skipped, then literal characters (and
/// escaped punctuation) are taken until the first metacharacter. A character followed by
/// `*`, `?` or `{` is optional, so it ends the prefix without being included. Patterns
/// with `|` anywhere get no prefilter.
pub fn required_prefix(pattern: &str) -> Option<String> {
    if pattern.contains('|') {
        return None;
    }
    let mut rest = pattern;
    loop {
        if let Some(r) = rest.strip_prefix('^') {
            rest = r;
        } else if let Some(r) = rest
            .strip_prefix("\\b")
            .or_else(|| rest.strip_prefix("\\B"))
            .or_else(|| rest.strip_prefix("\\A"))
        {
            rest = r;
        } else {
            break;
        }
    }
    let mut chars = rest.chars().peekable();
    let mut literal = String::new();
    while let Some(c) = chars.next() {
        let c = match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() => e,
                _ => break,
            },
            '.' | '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$' => break,
            c => c,
        };
        match chars.peek() {
            Some('*' | '?' | '{') => break,
            Some('+') => {
                literal.push(c);
                break;
            }
            _ => literal.push(c),
        }
    }
    (!literal.is_empty()).then_some(literal)
}

/// What to do when the arguments are larger than `max_scan_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnOversize {
    /// Deny (the default: what cannot be scanned cannot be judged).
    #[default]
    Deny,
    /// Ask for step-up.
    StepUp,
}

/// The policy's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSettings")]
pub struct Settings {
    /// Egress tools, first match wins.
    pub egress: Vec<EgressRule>,
    /// Operator-defined detectors.
    pub patterns: Vec<CustomPattern>,
    /// Cap on bytes scanned per call.
    pub max_scan_bytes: usize,
    /// Decoding levels.
    pub decode_depth: u8,
    /// Effect when the cap is exceeded.
    pub on_oversize: OnOversize,
    /// Bit set of disabled built-in detectors (bit = `Builtin as u32`).
    pub disabled: u32,
    /// Approver group for `require-approval` obligations on step-up.
    pub approver: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            egress: Vec::new(),
            patterns: Vec::new(),
            max_scan_bytes: DEFAULT_MAX_SCAN_BYTES,
            decode_depth: DEFAULT_DECODE_DEPTH,
            on_oversize: OnOversize::Deny,
            disabled: 0,
            approver: None,
        }
    }
}

impl Settings {
    /// Whether built-in detector `b` is enabled.
    pub fn enabled(&self, b: Builtin) -> bool {
        self.disabled & (1 << (b as u32)) == 0
    }
}

fn default_max_scan_bytes() -> usize {
    DEFAULT_MAX_SCAN_BYTES
}

fn default_decode_depth() -> u8 {
    DEFAULT_DECODE_DEPTH
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(default)]
    egress: Vec<RawEgress>,
    #[serde(default)]
    patterns: Vec<RawPattern>,
    #[serde(default = "default_max_scan_bytes")]
    max_scan_bytes: usize,
    #[serde(default = "default_decode_depth")]
    decode_depth: u8,
    #[serde(default)]
    on_oversize: OnOversize,
    #[serde(default)]
    disabled_detectors: Vec<String>,
    #[serde(default)]
    approver: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEgress {
    tool: ToolPattern,
    destination: Value,
    kind: DestinationKind,
    #[serde(default)]
    allowed: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPattern {
    name: String,
    label: String,
    regex: String,
}

fn check_pointer(field: &str, pointer: &str) -> Result<(), String> {
    if !pointer.starts_with('/') {
        return Err(format!(
            "{field}: `{pointer}` is not a JSON pointer to an argument (expected e.g. `/to`)"
        ));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "{field}: `{pointer}` has a `~` not followed by `0` or `1`"
            ));
        }
    }
    Ok(())
}

fn parse_destinations(index: usize, value: &Value) -> Result<Vec<String>, String> {
    let field = format!("egress[{index}].destination");
    let pointers: Vec<String> = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    format!("{field}[{i}]: expected a JSON pointer string such as `/to`")
                })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(format!(
                "{field}: expected a JSON pointer string such as `/to`, or a list of them"
            ));
        }
    };
    if pointers.is_empty() {
        return Err(format!("{field}: expected at least one JSON pointer"));
    }
    for pointer in &pointers {
        check_pointer(&field, pointer)?;
    }
    Ok(pointers)
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'
}

fn parse_allowed(
    index: usize,
    kind: DestinationKind,
    entries: &[String],
) -> Result<Vec<Allowed>, String> {
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let field = format!("egress[{index}].allowed[{i}]");
            match kind {
                DestinationKind::Channel => {
                    let name = entry.strip_prefix('#').unwrap_or(entry);
                    let (prefix, name) = match name.strip_suffix('*') {
                        Some(prefix) => (true, prefix),
                        None => (false, name),
                    };
                    if name.is_empty() || name.contains('*') {
                        return Err(format!(
                            "{field}: `{entry}` is not a channel name (expected e.g. `#reports` or `#team-*`)"
                        ));
                    }
                    Ok(if prefix {
                        Allowed::Prefix(name.to_owned())
                    } else {
                        Allowed::Exact(name.to_owned())
                    })
                }
                DestinationKind::Email | DestinationKind::Url => {
                    let lower = entry.to_ascii_lowercase();
                    let (wild, host) = match lower.strip_prefix("*.") {
                        Some(rest) => (true, rest),
                        None => (false, lower.as_str()),
                    };
                    let host = host.strip_suffix('.').unwrap_or(host);
                    if host.is_empty()
                        || !host.chars().all(is_host_char)
                        || host.starts_with('.')
                        || host.contains("..")
                    {
                        return Err(format!(
                            "{field}: `{entry}` is not a domain (expected e.g. `example.com` or `*.example.com`)"
                        ));
                    }
                    Ok(if wild {
                        Allowed::Subdomains(format!(".{host}"))
                    } else {
                        Allowed::Exact(host.to_owned())
                    })
                }
            }
        })
        .collect()
}

impl TryFrom<RawSettings> for Settings {
    type Error = String;

    fn try_from(raw: RawSettings) -> Result<Self, String> {
        if raw.max_scan_bytes == 0 || raw.max_scan_bytes > MAX_MAX_SCAN_BYTES {
            return Err(format!(
                "max_scan_bytes: expected 1 to {MAX_MAX_SCAN_BYTES}, got {}",
                raw.max_scan_bytes
            ));
        }
        if raw.decode_depth > MAX_DECODE_DEPTH {
            return Err(format!(
                "decode_depth: expected 0 to {MAX_DECODE_DEPTH}, got {}",
                raw.decode_depth
            ));
        }
        let mut disabled = 0u32;
        for (i, name) in raw.disabled_detectors.iter().enumerate() {
            let Some(b) = Builtin::ALL.iter().find(|b| b.name() == name) else {
                let known: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
                return Err(format!(
                    "disabled_detectors[{i}]: unknown detector `{name}` (expected one of {})",
                    known.join(", ")
                ));
            };
            disabled |= 1 << (*b as u32);
        }
        if let Some(approver) = &raw.approver
            && approver.trim().is_empty()
        {
            return Err("approver: expected a non-empty group or role name".to_owned());
        }
        let egress = raw
            .egress
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                Ok(EgressRule {
                    destinations: parse_destinations(i, &e.destination)?,
                    allowed: parse_allowed(i, e.kind, &e.allowed)?,
                    tool: e.tool,
                    kind: e.kind,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if raw.patterns.len() > MAX_PATTERNS {
            return Err(format!(
                "patterns: at most {MAX_PATTERNS} patterns are accepted, got {}",
                raw.patterns.len()
            ));
        }
        let mut patterns: Vec<CustomPattern> = Vec::with_capacity(raw.patterns.len());
        for (i, p) in raw.patterns.into_iter().enumerate() {
            let field = format!("patterns[{i}]");
            if p.name.is_empty()
                || p.name.len() > 64
                || !p
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "{field}.name: expected 1 to 64 letters, digits, `-` or `_`, got `{}`",
                    p.name.chars().take(64).collect::<String>()
                ));
            }
            if patterns.iter().any(|q| q.name == p.name)
                || Builtin::ALL.iter().any(|b| b.name() == p.name)
            {
                return Err(format!(
                    "{field}.name: `{}` is already used by another detector",
                    p.name
                ));
            }
            let label = PatternLabel::parse(&p.label).ok_or_else(|| {
                format!(
                    "{field}.label: expected one of `secret`, `pii`, `public`, `internal`, `confidential`, `restricted`, got `{}`",
                    p.label.chars().take(64).collect::<String>()
                )
            })?;
            if p.regex.is_empty() {
                return Err(format!(
                    "{field}.regex: expected a non-empty regular expression"
                ));
            }
            let regex = regex_lite::RegexBuilder::new(&p.regex)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| format!("{field}.regex: invalid regular expression: {e}"))?;
            if regex.is_match("") {
                return Err(format!(
                    "{field}.regex: the expression matches the empty string, so it would match every argument"
                ));
            }
            patterns.push(CustomPattern {
                prefilter: required_prefix(&p.regex),
                name: p.name,
                label,
                regex,
            });
        }
        Ok(Self {
            egress,
            patterns,
            max_scan_bytes: raw.max_scan_bytes,
            decode_depth: raw.decode_depth,
            on_oversize: raw.on_oversize,
            disabled,
            approver: raw.approver,
        })
    }
}
