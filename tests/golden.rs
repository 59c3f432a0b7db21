//! Golden decision cases: one folder per case under `tests/golden/`, one runner.
//!
//! A case folder holds `actions.json` (one action, or an array of actions of one task in
//! order), `expected.json` (one entry per action) and optionally its own `config.toml`
//! (otherwise `tests/golden/config.toml` applies). Each case gets its own [`Arbiter`],
//! so task history accumulates across the actions of a case and never leaks between
//! cases; all cases share one engine, so each component is compiled once.
//!
//! An expectation pins what must not drift: the final effect, every plugin's verdict
//! and outcome (and labels, which feed later decisions of the task), the decision's
//! obligations, and optionally a fragment of the decision's reason. It leaves out what
//! changes from run to run (ids, times, latencies, digests).
//!
//! `BLESS=1 cargo test -p arbiter-host --test integration golden::` rewrites every
//! `expected.json` from the actual decisions, keeping each hand-written `reason_contains`
//! that still matches; `GOLDEN_EXPLAIN=1` prints every decision's readable summary (with
//! `--nocapture`). Keep the `golden::` filter when blessing: `tests/conformance.rs`, in
//! the same binary, reads `BLESS` too.
//! Read the rewritten files before committing them: blessing records behaviour, it
//! does not judge it. See `tests/golden/README.md`.

use crate::common;

use arbiter_host::Engine;
use arbiter_host::{Action, Arbiter, Config, Decision};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The suite must not silently shrink: fewer cases than this is a failure.
const MIN_CASES: usize = 25;

/// Deadline for configs that set none: tests run a debug build on a small, busy machine.
const TEST_TIMEOUT_MS: i64 = 2000;

/// What one decision must look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    request_id: String,
    /// `allow`, `deny` or `step-up`.
    effect: String,
    /// A fragment the decision's reason must contain (hand-written; kept when blessing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason_contains: Option<String>,
    /// Every plugin that took part, by its operator name.
    plugins: BTreeMap<String, ExpectedPlugin>,
    /// The decision's merged obligations, in order.
    obligations: Vec<ExpectedObligation>,
}

/// One plugin's part in a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedPlugin {
    /// What the plugin returned; absent when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verdict: Option<String>,
    /// `ok`, `trap`, `timeout`, ...
    outcome: String,
    /// The effect that counted, only when it is not the verdict (a failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    effect: Option<String>,
    /// `monitor` for shadow-mode plugins; absent for `enforce`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    /// Labels the plugin attached (they go into the task history).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    labels: Vec<String>,
}

/// One obligation of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedObligation {
    kind: String,
    detail: String,
    plugin: String,
}

/// The JSON word of a serialisable enum (`step-up`, `out-of-memory`, `monitor`).
fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value).unwrap() {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The stable part of a decision.
fn project(decision: &Decision) -> Expected {
    let plugins = decision
        .plugins
        .iter()
        .map(|p| {
            let verdict = p.verdict.map(|v| word(&v));
            let effect = (p.verdict != Some(p.effect)).then(|| word(&p.effect));
            let mode = word(&p.mode);
            let entry = ExpectedPlugin {
                verdict,
                outcome: word(&p.outcome),
                effect,
                mode: (mode != "enforce").then_some(mode),
                labels: p.labels.clone(),
            };
            (p.name.clone(), entry)
        })
        .collect();
    Expected {
        request_id: decision.request_id.clone(),
        effect: word(&decision.effect),
        reason_contains: None,
        plugins,
        obligations: decision
            .obligations
            .iter()
            .map(|o| ExpectedObligation {
                kind: o.kind.clone(),
                detail: o.detail.clone(),
                plugin: o.plugin.clone(),
            })
            .collect(),
    }
}

fn golden_dir() -> PathBuf {
    common::root().join("tests/golden")
}

fn bless() -> bool {
    std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Loads a config file, giving it the generous test deadline unless it sets its own, and
/// trust in the development key unless it has a `[trust]` table.
fn load_config(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let defaults = table
        .entry("defaults")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(defaults) = defaults.as_table_mut() else {
        return Err(format!("`{}`: `defaults` is not a table", path.display()));
    };
    defaults
        .entry("timeout_ms")
        .or_insert(toml::Value::Integer(TEST_TIMEOUT_MS));
    // Trust the development key the build signed the plugins with, unless the case
    // brings its own trust table.
    if !table.contains_key("trust") {
        let mut key = toml::Table::new();
        key.insert("id".into(), toml::Value::String("dev".into()));
        key.insert(
            "path".into(),
            toml::Value::String(common::dev_public_key_path().display().to_string()),
        );
        let mut trust = toml::Table::new();
        trust.insert(
            "keys".into(),
            toml::Value::Array(vec![toml::Value::Table(key)]),
        );
        table.insert("trust".into(), toml::Value::Table(trust));
    }
    let text = toml::to_string(&table).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    Config::from_toml(&text, base).map_err(|e| format!("`{}`: {e}", path.display()))
}

/// The actions of a case, in order.
fn load_actions(path: &Path) -> Result<Vec<Action>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let items = match value {
        Value::Array(items) if items.is_empty() => {
            return Err(format!("`{}` holds no actions", path.display()));
        }
        Value::Array(items) => items,
        one => vec![one],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            Action::from_value(item).map_err(|e| format!("`{}` [{i}]: {e}", path.display()))
        })
        .collect()
}

/// Differences between two JSON values, one line per differing path.
fn diff(path: &str, expected: &Value, actual: &Value, out: &mut String) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for key in e.keys().chain(a.keys().filter(|k| !e.contains_key(*k))) {
                let null = Value::Null;
                let child = format!("{path}/{key}");
                diff(
                    &child,
                    e.get(key).unwrap_or(&null),
                    a.get(key).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                diff(&format!("{path}/{i}"), e, a, out);
            }
        }
        _ if expected == actual => {}
        _ => {
            let _ = writeln!(out, "    {path}: expected {expected}, actual {actual}");
        }
    }
}

/// Runs one case; returns its failures (empty when it passed).
fn run_case(engine: &Engine, dir: &Path, default_config: &Path) -> Vec<String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let fail = |msg: String| vec![format!("case `{name}`: {msg}")];
    let actions_path = dir.join("actions.json");
    if !actions_path.is_file() {
        return fail("has no actions.json".to_owned());
    }
    let own_config = dir.join("config.toml");
    let config_path = if own_config.is_file() {
        own_config
    } else {
        default_config.to_owned()
    };
    let config = match load_config(&config_path) {
        Ok(c) => c,
        Err(e) => return fail(format!("bad config: {e}")),
    };
    let actions = match load_actions(&actions_path) {
        Ok(a) => a,
        Err(e) => return fail(format!("bad actions: {e}")),
    };
    let arbiter = match Arbiter::with_engine(engine.clone(), &config) {
        Ok(a) => a,
        Err(e) => return fail(format!("cannot load `{}`: {e}", config_path.display())),
    };
    let decisions: Vec<Decision> = actions.iter().map(|a| arbiter.decide(a)).collect();
    if std::env::var_os("GOLDEN_EXPLAIN").is_some() {
        for decision in &decisions {
            eprintln!("case `{name}`:\n{}", indent(&decision.explain()));
        }
    }
    let actual: Vec<Expected> = decisions.iter().map(project).collect();

    let expected_path = dir.join("expected.json");
    let previous: Option<Vec<Expected>> = match std::fs::read_to_string(&expected_path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(v) => Some(v),
            Err(e) if bless() => {
                eprintln!("case `{name}`: replacing unreadable expected.json ({e})");
                None
            }
            Err(e) => return fail(format!("bad expected.json: {e}")),
        },
        Err(_) => None,
    };

    if bless() {
        let mut blessed = actual;
        for (i, (entry, decision)) in blessed.iter_mut().zip(&decisions).enumerate() {
            let kept = previous
                .as_ref()
                .and_then(|p| p.get(i))
                .and_then(|p| p.reason_contains.clone());
            if let Some(fragment) = kept {
                if decision.reason.contains(&fragment) {
                    entry.reason_contains = Some(fragment);
                } else {
                    eprintln!(
                        "case `{name}` action [{i}]: dropping reason_contains {fragment:?}, \
                         the reason is now {:?}",
                        decision.reason
                    );
                }
            }
        }
        let text = serde_json::to_string_pretty(&blessed).unwrap() + "\n";
        std::fs::write(&expected_path, text).unwrap();
        return Vec::new();
    }

    let Some(expected) = previous else {
        return fail(
            "has no expected.json (run with BLESS=1 to write it, then review it)".to_owned(),
        );
    };
    let mut failures = Vec::new();
    if expected.len() != actual.len() {
        failures.push(format!(
            "case `{name}`: expected.json has {} entries for {} actions",
            expected.len(),
            actual.len()
        ));
    }
    for (i, ((want, got), decision)) in expected.iter().zip(&actual).zip(&decisions).enumerate() {
        let mut report = String::new();
        let mut want_pinned = want.clone();
        want_pinned.reason_contains = None;
        if want_pinned != *got {
            diff(
                "",
                &serde_json::to_value(&want_pinned).unwrap(),
                &serde_json::to_value(got).unwrap(),
                &mut report,
            );
        }
        if let Some(fragment) = &want.reason_contains
            && !decision.reason.contains(fragment.as_str())
        {
            let _ = writeln!(
                report,
                "    reason: expected to contain {fragment:?}, actual {:?}",
                decision.reason
            );
        }
        if !report.is_empty() {
            failures.push(format!(
                "case `{name}` action [{i}] (`{}`):\n{report}  actual decision:\n{}",
                decision.request_id,
                indent(&decision.explain())
            ));
        }
    }
    failures
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

#[test]
fn golden_cases() {
    for plugin in ["intent", "scope", "sensitivity"] {
        // Panics with the fix (`scripts/build-plugins.sh`) if the component is missing.
        common::plugin_path(plugin);
    }
    let root = golden_dir();
    let default_config = root.join("config.toml");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", root.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let engine = Engine::new().unwrap();
    let mut failures: Vec<String> = Vec::new();
    if dirs.len() < MIN_CASES {
        failures.push(format!(
            "only {} golden cases in `{}`, expected at least {MIN_CASES}",
            dirs.len(),
            root.display()
        ));
    }
    for dir in &dirs {
        failures.extend(run_case(&engine, dir, &default_config));
    }
    if bless() {
        eprintln!(
            "blessed {} cases: review every changed expected.json against the plugin READMEs",
            dirs.len()
        );
    }
    assert!(
        failures.is_empty(),
        "{} golden failure(s):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
