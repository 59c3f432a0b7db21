//! What the decision log hides: argument values and keys, and the request data that
//! plugins repeat in their reasons and obligations.
//!
//! The rules a line obeys are written down in [`super::decision_log`]; this module is
//! how. Hiding the arguments alone is not enough: plugins explain themselves by quoting
//! what they saw, often *after* normalising it (a path after `..` resolution, a URL host
//! lowercased or IDNA-encoded, a SQL statement clipped to 120 bytes), so the raw value
//! is no longer a substring of the reason. No substring search can undo every such
//! transform. The rule for quoted text is therefore the reverse of a search: a span
//! between backticks is kept only when the log can *attribute* it to something it shows
//! anyway (a field of the action logged verbatim, a plugin's name, the contract's
//! vocabulary, a string of the operator's plugin settings, or a JSON pointer into the
//! arguments as logged). Everything else in backticks is redacted, so a transform this
//! module has never heard of still cannot leak what it produced.
//!
//! Unquoted text gets the substring search as a second line of defence, for plugins
//! that echo input without quoting it: every hidden argument string (value or key) of
//! at least [`MIN_SCRUB_BYTES`], and its JSON-escaped form, is replaced wherever it
//! occurs. One Aho-Corasick automaton does all of them in one pass, so a megabyte of
//! small arguments costs a linear scan rather than one search per value.

use super::config::Redaction;
use crate::model::Action;
use crate::model::{Decision, Obligation, PluginEntry};
use crate::plugin::PolicySet;
use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// What replaces a redacted value, a redacted quoted span, or a redacted substring.
pub const REDACTED: &str = "[redacted]";

/// Shortest hidden string searched for in unquoted text. Shorter values (`a`, `id`,
/// `42`, `GET`) occur in ordinary words and numbers of almost every reason, so replacing
/// them would shred the text an auditor reads while protecting little: such values are
/// still redacted wherever a plugin quotes them, and in the arguments.
pub const MIN_SCRUB_BYTES: usize = 4;

/// Words of the plugin contract itself (effects, outcomes, the sensitivity levels and
/// tags of `wit/policy-0.1.0/types.wit`, the obligation kinds it names): a reason that
/// quotes one (`` default `deny` ``, `` handled `restricted` data ``) says nothing about
/// the request.
const CONTRACT_WORDS: &[&str] = &[
    "allow",
    "deny",
    "step-up",
    "abstain",
    "enforce",
    "monitor",
    "ok",
    "trap",
    "timeout",
    "out-of-memory",
    "invalid-output",
    "error",
    "public",
    "internal",
    "confidential",
    "restricted",
    "secret",
    "pii",
    "redact",
    "max-ttl",
    "require-approval",
    "log",
    "quarantine",
    "credential",
];

/// What the host's own reasons quote: the configuration keys behind a quarantine or a
/// store deadline, and the endpoint that opens tasks. They name configuration, never
/// the request.
const HOST_WORDS: &[&str] = &[
    "tasks.quarantine.after_denies",
    "tasks.quarantine.critical_plugins",
    "tasks.store_timeout_ms",
    "tasks.mode = \"opened\"",
    "tasks.openers",
    "POST /v1/tasks",
];

/// The words of the operator's configuration: every string, object key and number in
/// the settings of the plugins of one policy set, and every segment of the JSON
/// pointers among them (`/to` gives `to`). A reason that quotes one of them (a rule id,
/// an allowed root, a configured host, a detector's name, an approver group) quotes
/// configuration, not the request; an argument key that equals one (an argument the
/// settings constrain, such as `path` or `sql`) is logged as itself.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    words: HashSet<String>,
}

impl Vocabulary {
    /// The vocabulary of settings documents (JSON text; one that does not parse adds
    /// nothing).
    pub fn from_settings<'a>(documents: impl IntoIterator<Item = &'a str>) -> Self {
        let mut words = HashSet::new();
        for text in documents {
            let Ok(document) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            // Iterative, like every walk here: settings can nest deeply.
            let mut stack = vec![&document];
            while let Some(value) = stack.pop() {
                match value {
                    Value::Object(map) => {
                        for (key, child) in map {
                            add_word(&mut words, key);
                            stack.push(child);
                        }
                    }
                    Value::Array(items) => stack.extend(items),
                    Value::String(s) => add_word(&mut words, s),
                    Value::Number(n) => {
                        words.insert(n.to_string());
                    }
                    Value::Bool(_) | Value::Null => {}
                }
            }
        }
        Self { words }
    }

    /// The vocabulary of a policy set's plugin settings.
    pub fn of_policy_set(set: &PolicySet) -> Self {
        Self::from_settings(
            set.plugins()
                .iter()
                .map(|p| p.config().settings_json.as_str()),
        )
    }

    /// Whether `word` is in the vocabulary.
    pub fn contains(&self, word: &str) -> bool {
        self.words.contains(word)
    }
}

fn add_word(words: &mut HashSet<String>, word: &str) {
    if word.starts_with('/') {
        for segment in word.split('/').skip(1) {
            words.insert(unescape_segment(segment).into_owned());
        }
    }
    words.insert(word.to_owned());
}

/// What [`redact_arguments`] hid: the replacement of every hidden string, and under
/// [`Redaction::All`] how each argument key is shown.
#[derive(Debug, Default)]
pub struct Hidden {
    /// Every argument key as logged (its label, or itself when the vocabulary has it).
    /// Empty unless keys are redacted.
    keys: HashMap<String, String>,
    /// Every hidden string (a value's text, a redacted key) and what replaces it.
    strings: HashMap<String, String>,
}

impl Hidden {
    /// `text` with every hidden string replaced (longest first, so a value that contains
    /// another is hidden whole): for text shown next to redacted arguments, such as an
    /// approval's reasons in the console.
    pub fn hide_in(&self, text: &str) -> String {
        let mut strings: Vec<(&String, &String)> =
            self.strings.iter().filter(|(s, _)| !s.is_empty()).collect();
        strings.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        let mut out = text.to_owned();
        for (hidden, shown) in strings {
            if out.contains(hidden.as_str()) {
                out = out.replace(hidden.as_str(), shown);
            }
        }
        out
    }
}

/// Redacts an argument document in place and says what it hid.
///
/// - Under [`Redaction::All`] every scalar becomes [`REDACTED`]; every object key becomes
///   `[redacted-N]` (one number per distinct key in the record, so a list of records of
///   one shape still shows it), except keys the operator's configuration names.
/// - Under [`Redaction::Pointers`] the values at the pointers become [`REDACTED`] (keys on
///   the way stay); what they held, keys included, is hidden.
/// - Under [`Redaction::None`] nothing is hidden.
pub fn redact_arguments(
    arguments: &mut Value,
    redaction: &Redaction,
    vocabulary: &Vocabulary,
) -> Hidden {
    let mut hidden = Hidden::default();
    match redaction {
        Redaction::None => {}
        Redaction::All => label_all(arguments, vocabulary, &mut hidden),
        Redaction::Pointers(pointers) => {
            for pointer in pointers {
                if let Some(value) = arguments.pointer_mut(pointer) {
                    collect(value, &mut hidden.strings);
                    *value = Value::String(REDACTED.to_owned());
                }
            }
        }
    }
    hidden
}

/// Replaces every scalar and relabels every key not in the vocabulary, keeping the
/// structure (which says what kind of call it was without saying what it carried).
fn label_all(value: &mut Value, vocabulary: &Vocabulary, hidden: &mut Hidden) {
    let mut next = 0usize;
    // Iterative, so a deep document cannot overflow the writer's stack.
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (key, child) in std::mem::take(map) {
                    let shown = match hidden.keys.get(&key) {
                        Some(shown) => shown.clone(),
                        // A key that looks like a label is relabelled, so it can never
                        // collide with one.
                        None if vocabulary.contains(&key) && !key.starts_with("[redacted") => {
                            hidden.keys.insert(key.clone(), key.clone());
                            key
                        }
                        None => {
                            next += 1;
                            let label = format!("[redacted-{next}]");
                            hidden.keys.insert(key.clone(), label.clone());
                            hidden.strings.entry(key).or_insert_with(|| label.clone());
                            label
                        }
                    };
                    map.insert(shown, child);
                }
                // In reverse, so labels are numbered in the order the line lists keys.
                stack.extend(map.values_mut().rev());
            }
            Value::Array(items) => stack.extend(items.iter_mut().rev()),
            other => {
                if let Some(text) = scalar_text(other) {
                    // A value wins over a key of the same text: it says less.
                    hidden
                        .strings
                        .insert(text.into_owned(), REDACTED.to_owned());
                }
                *other = Value::String(REDACTED.to_owned());
            }
        }
    }
}

/// Records every key and scalar of `value` as hidden behind [`REDACTED`].
fn collect(value: &Value, strings: &mut HashMap<String, String>) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (key, child) in map {
                    strings.insert(key.clone(), REDACTED.to_owned());
                    stack.push(child);
                }
            }
            Value::Array(items) => stack.extend(items),
            other => {
                if let Some(text) = scalar_text(other) {
                    strings.insert(text.into_owned(), REDACTED.to_owned());
                }
            }
        }
    }
}

/// The text a plugin would quote for a scalar: a string itself, a number's digits.
/// Booleans and null say nothing worth hiding and would only match ordinary words.
fn scalar_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

fn unescape_segment(segment: &str) -> Cow<'_, str> {
    if segment.contains('~') {
        Cow::Owned(segment.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(segment)
    }
}

fn escape_segment(segment: &str) -> Cow<'_, str> {
    if segment.contains(['~', '/']) {
        Cow::Owned(segment.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(segment)
    }
}

/// The plugin-written parts of a decision, as logged.
#[derive(Debug)]
pub struct Scrubbed {
    /// The decision's reason.
    pub reason: String,
    /// The decision's obligations.
    pub obligations: Vec<Obligation>,
    /// The plugin entries, with their reasons, obligations and labels scrubbed.
    pub plugins: Vec<PluginEntry>,
}

/// Scrubs the texts a decision carries from its plugins, given the arguments as logged
/// (already redacted by [`redact_arguments`], which produced `hidden`).
pub fn scrub_decision(
    decision: &Decision,
    action: &Action,
    logged_arguments: &Value,
    hidden: &Hidden,
    vocabulary: &Vocabulary,
) -> Scrubbed {
    let mut scrubber = Scrubber::new(decision, action, logged_arguments, hidden, vocabulary);
    // Labels first: they are logged, so a reason may quote them as they are logged.
    let mut plugins = decision.plugins.clone();
    for entry in &mut plugins {
        for label in &mut entry.labels {
            *label = scrubber.prose(label).into_owned();
        }
    }
    for entry in &plugins {
        for label in &entry.labels {
            scrubber.shown.insert(Cow::Owned(label.clone()));
        }
    }
    for entry in &mut plugins {
        entry.reason = scrubber.text(&entry.reason);
        for obligation in &mut entry.obligations {
            scrubber.obligation(obligation);
        }
    }
    let mut obligations = decision.obligations.clone();
    for obligation in &mut obligations {
        scrubber.obligation(obligation);
    }
    Scrubbed {
        reason: scrubber.text(&decision.reason),
        obligations,
        plugins,
    }
}

struct Scrubber<'a> {
    vocabulary: &'a Vocabulary,
    hidden: &'a Hidden,
    logged: &'a Value,
    /// Strings the log shows verbatim anyway.
    shown: HashSet<Cow<'a, str>>,
    /// The substring search over unquoted text, and each pattern's replacement.
    search: Option<(AhoCorasick, Vec<&'a str>)>,
    /// The automaton could not be built: unquoted text is redacted whole.
    search_failed: bool,
}

impl<'a> Scrubber<'a> {
    fn new(
        decision: &'a Decision,
        action: &'a Action,
        logged: &'a Value,
        hidden: &'a Hidden,
        vocabulary: &'a Vocabulary,
    ) -> Self {
        let mut shown = shown_strings(decision, action, logged);
        shown.extend(CONTRACT_WORDS.iter().map(|w| Cow::Borrowed(*w)));
        shown.extend(HOST_WORDS.iter().map(|w| Cow::Borrowed(*w)));
        let mut scrubber = Self {
            vocabulary,
            hidden,
            logged,
            shown,
            search: None,
            search_failed: false,
        };
        scrubber.build_search(decision);
        scrubber
    }

    fn is_shown(&self, text: &str) -> bool {
        self.shown.contains(text) || self.vocabulary.contains(text)
    }

    fn build_search(&mut self, decision: &Decision) {
        // A pattern longer than every text cannot occur in one: skipping those keeps a
        // large argument document from costing an automaton it cannot use.
        let longest = decision
            .plugins
            .iter()
            .flat_map(|p| {
                std::iter::once(p.reason.len())
                    .chain(p.labels.iter().map(String::len))
                    .chain(p.obligations.iter().map(|o| o.kind.len()))
            })
            .chain(std::iter::once(decision.reason.len()))
            .max()
            .unwrap_or(0);
        let hidden: &'a Hidden = self.hidden;
        let mut patterns: Vec<Cow<'a, str>> = Vec::new();
        let mut replacements: Vec<&'a str> = Vec::new();
        for (text, replacement) in &hidden.strings {
            if text.len() < MIN_SCRUB_BYTES || text.len() > longest || self.is_shown(text) {
                continue;
            }
            patterns.push(Cow::Borrowed(text.as_str()));
            replacements.push(replacement.as_str());
            // A plugin that embeds JSON shows `a\"b` for `a"b`.
            if let Ok(json) = serde_json::to_string(text.as_str())
                && let Some(inner) = json.get(1..json.len().saturating_sub(1))
                && inner != text
                && inner.len() <= longest
            {
                patterns.push(Cow::Owned(inner.to_owned()));
                replacements.push(replacement.as_str());
            }
        }
        if patterns.is_empty() {
            return;
        }
        match AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns.iter().map(|p| p.as_bytes()))
        {
            Ok(automaton) => self.search = Some((automaton, replacements)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot build the decision-log scrubber; unquoted reason text is redacted whole");
                self.search_failed = true;
            }
        }
    }

    /// Unquoted text: hidden strings replaced wherever they occur.
    fn prose<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.search_failed {
            return Cow::Borrowed(REDACTED);
        }
        let Some((automaton, replacements)) = &self.search else {
            return Cow::Borrowed(text);
        };
        match automaton.try_replace_all(text, replacements) {
            Ok(out) => Cow::Owned(out),
            Err(_) => Cow::Borrowed(REDACTED),
        }
    }

    /// A quoted span (or an obligation's detail): kept when the log shows it anyway,
    /// rewritten when it is a pointer into the arguments as logged, redacted otherwise.
    fn span<'t>(&self, span: &'t str) -> Cow<'t, str> {
        if span.is_empty() || self.is_shown(span) {
            return Cow::Borrowed(span);
        }
        if let Some(pointer) = self.logged_pointer(span) {
            return Cow::Owned(pointer);
        }
        match self.hidden.strings.get(span) {
            Some(replacement) => Cow::Owned(replacement.clone()),
            None => Cow::Borrowed(REDACTED),
        }
    }

    /// `pointer` as it reads in the logged arguments (keys replaced by their labels),
    /// if it names something there.
    fn logged_pointer(&self, pointer: &str) -> Option<String> {
        if !pointer.starts_with('/') {
            return None;
        }
        let mut out = String::with_capacity(pointer.len());
        let mut node = self.logged;
        for raw in pointer.split('/').skip(1) {
            let segment = unescape_segment(raw);
            out.push('/');
            node = match node {
                Value::Object(map) => {
                    let key = if self.hidden.keys.is_empty() {
                        segment.as_ref()
                    } else {
                        self.hidden.keys.get(segment.as_ref())?.as_str()
                    };
                    out.push_str(&escape_segment(key));
                    map.get(key)?
                }
                Value::Array(items) => {
                    out.push_str(raw);
                    items.get(raw.parse::<usize>().ok()?)?
                }
                _ => return None,
            };
        }
        Some(out)
    }

    /// A reason: backtick-quoted spans by [`Self::span`], the rest by [`Self::prose`].
    /// An unmatched backtick quotes the rest of the text, so a plugin that forgets to
    /// close its quote cannot put a value outside one.
    fn text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for (i, piece) in text.split('`').enumerate() {
            if i % 2 == 0 {
                if i > 0 {
                    out.push('`');
                }
                out.push_str(&self.prose(piece));
            } else {
                out.push('`');
                out.push_str(&self.span(piece));
            }
        }
        out
    }

    /// An obligation's kind is a word (searched like prose); its detail is a parameter
    /// (a pointer, a group, a number) and is judged whole, like a quoted span.
    fn obligation(&self, obligation: &mut Obligation) {
        obligation.kind = self.prose(&obligation.kind).into_owned();
        obligation.detail = self.span(&obligation.detail).into_owned();
    }
}

/// Everything the log writes verbatim besides plugin texts: the action's fields other
/// than the arguments, the arguments as logged, and the plugins' identities.
fn shown_strings<'a>(
    decision: &'a Decision,
    action: &'a Action,
    logged: &'a Value,
) -> HashSet<Cow<'a, str>> {
    let mut shown: HashSet<Cow<'a, str>> = HashSet::new();
    let mut add = |s: &'a str| {
        shown.insert(Cow::Borrowed(s));
    };
    add(&action.request_id);
    add(&action.agent.id);
    add(&action.agent.attestation);
    for (k, v) in &action.agent.claims {
        add(k);
        add(v);
    }
    for principal in &action.delegation {
        add(&principal.id);
        add(&principal.kind);
        principal.scopes.iter().for_each(|s| add(s));
    }
    if let Some(task) = &action.task {
        add(&task.id);
        add(&task.intent);
    }
    add(&action.tool.server);
    add(&action.tool.name);
    if let Some(credential) = &action.credential {
        credential.scopes.iter().for_each(|s| add(s));
        if let Some(audience) = &credential.audience {
            add(audience);
        }
    }
    if let Some(resource) = &action.resource {
        add(&resource.id);
        resource.labels.iter().for_each(|s| add(s));
    }
    for (k, v) in &action.environment {
        add(k);
        add(v);
    }
    for entry in &decision.plugins {
        add(&entry.name);
        add(&entry.plugin);
        add(&entry.version);
        add(&entry.kind);
    }
    let mut stack = vec![logged];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    add(key);
                    stack.push(child);
                }
            }
            Value::Array(items) => stack.extend(items),
            Value::String(s) => add(s),
            Value::Number(_) | Value::Bool(_) | Value::Null => {}
        }
    }
    shown.insert(Cow::Owned(format!(
        "{}/{}",
        action.tool.server, action.tool.name
    )));
    let times = [
        action.time,
        action.task.as_ref().map(|t| t.started_at),
        action.task.as_ref().and_then(|t| t.expires_at),
        action.credential.as_ref().and_then(|c| c.expires_at),
    ];
    shown.extend(
        times
            .into_iter()
            .flatten()
            .map(|t| Cow::Owned(t.to_string())),
    );
    let mut numbers = vec![logged];
    while let Some(value) = numbers.pop() {
        match value {
            Value::Object(map) => numbers.extend(map.values()),
            Value::Array(items) => numbers.extend(items),
            Value::Number(n) => {
                shown.insert(Cow::Owned(n.to_string()));
            }
            _ => {}
        }
    }
    shown
}

#[cfg(test)]
mod tests {

    use super::*;
    use serde_json::json;

    fn vocabulary() -> Vocabulary {
        Vocabulary::from_settings([r#"{"argument": "/sql", "roots": ["/repo"], "n": 900}"#])
    }

    #[test]
    fn vocabulary_has_strings_keys_numbers_and_pointer_segments() {
        let v = vocabulary();
        for word in [
            "argument", "/sql", "sql", "roots", "/repo", "repo", "n", "900",
        ] {
            assert!(v.contains(word), "{word}");
        }
        assert!(!v.contains("true"));
        assert!(!Vocabulary::from_settings(["not json"]).contains("not json"));
    }

    #[test]
    fn all_labels_keys_except_configured_ones() {
        // Keys in sorted order, so the numbering is the same whether or not serde_json
        // preserves insertion order (a feature some dependency may turn on).
        let mut doc = json!({"b": {"c": [{"k-1": true}], "k-1": 1}, "sql": "x"});
        let hidden = redact_arguments(&mut doc, &Redaction::All, &vocabulary());
        assert_eq!(
            doc,
            json!({"[redacted-1]": {"[redacted-2]": [{"[redacted-3]": REDACTED}], "[redacted-3]": REDACTED}, "sql": REDACTED}),
        );
        assert_eq!(hidden.keys["k-1"], "[redacted-3]");
        assert_eq!(hidden.strings["k-1"], "[redacted-3]");
        assert_eq!(hidden.strings["x"], REDACTED);
        assert_eq!(hidden.strings["1"], REDACTED);
        assert!(!hidden.strings.contains_key("sql"));
    }

    #[test]
    fn a_value_hides_behind_redacted_even_when_it_is_also_a_key() {
        let mut doc = json!({"same": "same"});
        let hidden = redact_arguments(&mut doc, &Redaction::All, &Vocabulary::default());
        assert_eq!(hidden.strings["same"], REDACTED);
    }

    #[test]
    fn pointers_hide_what_they_replace() {
        let mut doc = json!({"a": {"inner-key": "v1"}, "b": "visible"});
        let hidden = redact_arguments(
            &mut doc,
            &Redaction::Pointers(vec!["/a".into(), "/missing".into()]),
            &Vocabulary::default(),
        );
        assert_eq!(doc, json!({"a": REDACTED, "b": "visible"}));
        assert!(hidden.strings.contains_key("inner-key"));
        assert!(hidden.strings.contains_key("v1"));
        assert!(!hidden.strings.contains_key("visible"));
        assert!(hidden.keys.is_empty());
    }

    fn decision(reason: &str, detail: &str, labels: &[&str]) -> (Decision, Action) {
        let action = Action::from_json(
            r#"{"request_id":"r1","agent":{"id":"spiffe://t/a"},"task":{"id":"t1","intent":"read-docs","started_at":5},"tool":{"server":"fs","name":"read_file"},"arguments":{}}"#,
        )
        .unwrap();
        let entry: PluginEntry = serde_json::from_value(json!({
            "name": "intent", "plugin": "intent", "version": "0.1.0", "kind": "intent",
            "digest": "sha256:00", "signer": "dev", "signature": "verified", "mode": "enforce",
            "outcome": "ok", "verdict": "deny", "effect": "deny", "counted": true,
            "reason": reason, "obligations": [{"kind": "redact", "detail": detail, "plugin": "intent"}],
            "labels": labels, "elapsed_us": 1
        }))
        .unwrap();
        let decision = Decision {
            decision_id: "d".into(),
            request_id: "r1".into(),
            task_id: Some("t1".into()),
            time: "now".into(),
            effect: crate::model::DecisionEffect::Deny,
            reason: format!("denied by `intent`: {reason}"),
            generation: 1,
            obligations: entry.obligations.clone(),
            plugins: vec![entry],
            elapsed_us: 1,
            identity: None,
            credential: None,
            quarantine: None,
            tasks: None,
            approval: None,
        };
        (decision, action)
    }

    fn scrub(arguments: Value, redaction: &Redaction, reason: &str, detail: &str) -> Scrubbed {
        scrub_labelled(arguments, redaction, reason, detail, &["secret"])
    }

    fn scrub_labelled(
        arguments: Value,
        redaction: &Redaction,
        reason: &str,
        detail: &str,
        labels: &[&str],
    ) -> Scrubbed {
        let (decision, action) = decision(reason, detail, labels);
        let mut logged = arguments;
        let vocabulary = vocabulary();
        let hidden = redact_arguments(&mut logged, redaction, &vocabulary);
        scrub_decision(&decision, &action, &logged, &hidden, &vocabulary)
    }

    #[test]
    fn quoted_spans_are_kept_only_when_attributable() {
        let s = scrub(
            json!({"sql": "DELETE FROM t WHERE pan = '4111111111111111' -- long enough to be clipped"}),
            &Redaction::All,
            "tool `fs/read_file` is denied for intent `read-docs`: argument `/sql` sql `DELETE FROM t WHERE pan = '4111111111111111' -- long…` is a `DELETE` statement; roots `/repo`, task `t1` at `5`, default `deny`, ``",
            "/sql",
        );
        assert_eq!(
            s.plugins[0].reason,
            "tool `fs/read_file` is denied for intent `read-docs`: argument `/sql` sql `[redacted]` is a `[redacted]` statement; roots `/repo`, task `t1` at `5`, default `deny`, ``"
        );
        assert!(
            s.reason
                .starts_with("denied by `intent`: tool `fs/read_file`")
        );
        assert_eq!(s.obligations[0].detail, "/sql");
    }

    #[test]
    fn pointers_into_the_arguments_follow_the_key_labels() {
        let s = scrub(
            json!({"cfg-KEY": {"a/b": ["x", "ghp_token_value"]}}),
            &Redaction::All,
            "argument `/cfg-KEY/a~1b/1` carries a secret; `/cfg-KEY/nope` `/cfg-KEY/a~1b/7`",
            "/cfg-KEY/a~1b/1",
        );
        assert_eq!(
            s.plugins[0].reason,
            "argument `/[redacted-1]/[redacted-2]/1` carries a secret; `[redacted]` `[redacted]`"
        );
        assert_eq!(
            s.plugins[0].obligations[0].detail,
            "/[redacted-1]/[redacted-2]/1"
        );
        assert_eq!(s.obligations[0].detail, "/[redacted-1]/[redacted-2]/1");
    }

    #[test]
    fn unquoted_values_and_keys_are_replaced_and_short_ones_kept() {
        let s = scrub(
            json!({"id": "abc", "n": 4111111111111111_u64, "q": "a\"quoted\"", "user-key": "hunter2"}),
            &Redaction::All,
            "saw hunter2 under user-key, {\"q\":\"a\\\"quoted\\\"\"}, card 4111111111111111, abc",
            "",
        );
        assert_eq!(
            s.plugins[0].reason,
            // `n` is configured, so it keeps its name: `user-key` is the third label.
            "saw [redacted] under [redacted-3], {\"q\":\"[redacted]\"}, card [redacted], abc"
        );
    }

    #[test]
    fn an_unclosed_quote_runs_to_the_end() {
        let s = scrub(
            json!({}),
            &Redaction::All,
            "path `/etc/derived-secret is bad",
            "",
        );
        assert_eq!(s.plugins[0].reason, "path `[redacted]");
    }

    #[test]
    fn pointer_mode_keeps_what_it_shows_and_hides_the_rest() {
        let s = scrub(
            json!({"sql": "SELECT 4111111111111111", "path": "/repo/x", "deep": {"k": "v"}}),
            &Redaction::Pointers(vec!["/sql".into(), "/deep".into()]),
            "`/repo/x` `/sql` `/deep` `/deep/k` `SELECT 4111111111111111…` `/repo/../etc`; SELECT 4111111111111111",
            "/deep/k",
        );
        assert_eq!(
            s.plugins[0].reason,
            "`/repo/x` `/sql` `/deep` `[redacted]` `[redacted]` `[redacted]`; [redacted]"
        );
        assert_eq!(s.plugins[0].obligations[0].detail, REDACTED);
    }

    #[test]
    fn labels_are_searched_and_then_may_be_quoted() {
        let s = scrub_labelled(
            json!({"v": "leaky-label"}),
            &Redaction::All,
            "labelled `secret`, `leaky-label`",
            "",
            &["secret", "leaky-label", "x-leaky-label"],
        );
        assert_eq!(s.plugins[0].labels, ["secret", REDACTED, "x-[redacted]"]);
        assert_eq!(s.plugins[0].reason, "labelled `secret`, `[redacted]`");
    }
}
