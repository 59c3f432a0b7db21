//! Process memory (RSS) against the number of tasks: how much the idle instances that
//! `task` isolation keeps cost, and that `idle_instances` / `idle_memory_mib` bound it.
//!
//! Each task is one decision of a new task through the three reference plugins (the
//! allowed `fs/read_file` of the quick start), so each task leaves one idle instance per
//! plugin. RSS (`VmRSS` from `/proc/self/status`) is read after 0, 100, 300, 1000 and 3000
//! tasks, for:
//!
//! - settings: `example` (the plugins' example settings) or `large` (the intent plugin's
//!   example settings plus synthetic intents, about 1 MB of JSON; it passes `validate()`);
//! - caps: `default` (`idle_instances` and `idle_memory_mib` left at their defaults) or
//!   `unbounded` (`idle_instances = 1024`, `idle_memory_mib = 1048576`: the behaviour
//!   before the byte bound existed, when 1,024 idle instances per plugin were kept).
//!
//! Every combination runs in a child process of its own, so one's freed memory does not
//! blur the next one's figures. Bounded: at most `MAX_TASKS` tasks and `MAX_SECONDS` per
//! combination, and a combination stops early if RSS passes `RSS_CEILING_MIB` (reported
//! as such), so it cannot take the machine's memory.
//!
//! Run: `scripts/build-plugins.sh && cargo bench -p arbiter-host --bench instance_memory`
//! (add `--profile dev` to skip the release build: the guests run compiled by Cranelift
//! either way, and RSS hardly depends on the host's optimisation).
//! `INSTANCE_MEMORY_TASKS=100,300` changes the checkpoints.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark code, never on the request path: a broken setup aborts the run"
)]

mod support;

use arbiter_host::{Arbiter, Config, DecisionEffect};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

const CHECKPOINTS: &[usize] = &[0, 100, 300, 1000, 3000];
const MAX_TASKS: usize = 3000;
const MAX_SECONDS: u64 = 900;
const RSS_CEILING_MIB: u64 = 10 * 1024;
/// Target size of the large settings file.
const LARGE_SETTINGS_BYTES: usize = 1_000_000;
/// The evaluation deadline: generous, because this measures memory, and the first
/// evaluation in a fresh instance parses 1 MB of settings, which takes hundreds of
/// milliseconds with a debug host on a busy 2-core machine.
const TIMEOUT_MS: u64 = 10_000;
const SCENARIO_ENV: &str = "INSTANCE_MEMORY_SCENARIO";

const ACTION: &str = r#"{"request_id":"bench","agent":{"id":"spiffe://example.org/agent/bot","attestation":"x509-svid"},"delegation":[{"id":"alice@example.org","kind":"user","scopes":["fs:read"]}],"task":{"id":"TASK","intent":"summarize-repo","started_at":1767225600000},"tool":{"server":"fs","name":"read_file"},"arguments":{"path":"/repo/README.md"},"credential":{"scopes":["fs:read"],"audience":"fs"},"environment":{"env":"prod"},"time":1767225600000}"#;

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`) do nothing.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Ok(scenario) = std::env::var(SCENARIO_ENV) {
        run_scenario(&scenario);
        return;
    }
    if !args.iter().any(|a| a == "--bench")
        || args
            .iter()
            .any(|a| !a.starts_with("--") && !"instance_memory".contains(a.as_str()))
    {
        return;
    }
    let checkpoints = checkpoints();
    println!(
        "RSS in MiB after N tasks (one new task = one decision through intent, scope, \
         sensitivity; prewarm = 2)"
    );
    print!("{:<10} {:<10}", "settings", "caps");
    for n in &checkpoints {
        print!(" {:>9}", format!("{n} tasks"));
    }
    println!("  idle instances / idle MiB per plugin at the end");
    for settings in ["example", "large"] {
        for caps in ["default", "unbounded"] {
            let scenario = format!("{settings}/{caps}");
            let output = Command::new(std::env::current_exe().unwrap())
                .env(SCENARIO_ENV, &scenario)
                .output()
                .expect("run the scenario");
            let stdout = String::from_utf8_lossy(&output.stdout);
            if !output.status.success() {
                println!(
                    "{settings:<10} {caps:<10} failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                continue;
            }
            // The child prints one line per checkpoint, `rss <tasks> <MiB>`, then
            // `idle ...` and possibly `stopped ...`.
            let mut line = format!("{settings:<10} {caps:<10}");
            let mut tail = String::new();
            for n in &checkpoints {
                let rss = stdout.lines().find_map(|l| {
                    let mut words = l.split_whitespace();
                    (words.next() == Some("rss") && words.next() == Some(&n.to_string()))
                        .then(|| words.next().map(str::to_owned))
                        .flatten()
                });
                line.push_str(&format!(" {:>9}", rss.unwrap_or_else(|| "-".to_owned())));
            }
            for l in stdout.lines() {
                if let Some(rest) = l.strip_prefix("idle ") {
                    tail.push_str(&format!("  {rest}"));
                }
                if let Some(rest) = l.strip_prefix("time ") {
                    tail.push_str(&format!("  ({rest})"));
                }
                if let Some(rest) = l.strip_prefix("stopped ") {
                    tail.push_str(&format!("  (stopped: {rest})"));
                }
                if let Some(rest) = l.strip_prefix("settings ")
                    && caps == "default"
                {
                    println!("({settings} settings: {rest})");
                }
            }
            println!("{line}{tail}");
        }
    }
}

fn checkpoints() -> Vec<usize> {
    match std::env::var("INSTANCE_MEMORY_TASKS") {
        Ok(list) => {
            let mut v: Vec<usize> = std::iter::once(0)
                .chain(list.split(',').filter_map(|n| n.trim().parse().ok()))
                .map(|n: usize| n.min(MAX_TASKS))
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        }
        Err(_) => CHECKPOINTS.to_vec(),
    }
}

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024
}

/// One combination, in this (child) process.
fn run_scenario(scenario: &str) {
    let (settings, caps) = scenario.split_once('/').expect("settings/caps");
    let dir = support::root().join("target/bench-settings");
    std::fs::create_dir_all(&dir).unwrap();
    let idle = match caps {
        "default" => "",
        "unbounded" => "idle_instances = 1024\nidle_memory_mib = 1048576\n",
        other => panic!("unknown caps `{other}`"),
    };
    let mut toml = format!(
        "[defaults]\ntimeout_ms = {TIMEOUT_MS}\nprewarm = 2\n{idle}{}",
        support::TRUST
    );
    for plugin in ["intent", "scope", "sensitivity"] {
        let value = match (plugin, settings) {
            ("intent", "large") => large_intent_settings(),
            _ => support::settings(plugin, 0),
        };
        let text = value.to_string();
        let file = dir.join(format!("memory-{plugin}-{settings}.json"));
        let aside = dir.join(format!(
            "memory-{plugin}-{settings}.json.{}",
            std::process::id()
        ));
        std::fs::write(&aside, &text).unwrap();
        std::fs::rename(&aside, &file).unwrap();
        if plugin == "intent" {
            println!("settings intent {} bytes", text.len());
        }
        toml.push_str(&format!(
            "[[plugin]]\nname = \"{plugin}\"\npath = \"build/plugins/{plugin}.wasm\"\n\
             settings_file = {:?}\n",
            file.display().to_string()
        ));
    }
    let config = Config::from_toml(&toml, &support::root()).expect("benchmark config");
    let arbiter = Arbiter::new(&config).expect("run scripts/build-plugins.sh first");
    let checkpoints = checkpoints();
    let started = Instant::now();
    let mut done = 0;
    let mut not_allowed = 0;
    'run: for &target in &checkpoints {
        while done < target {
            let json = support::with_task_id(ACTION, &format!("task-{done}"));
            let decision = arbiter.decide_json(&json).expect("benchmark input");
            if decision.effect != DecisionEffect::Allow {
                // Reported, not fatal: a deadline missed on a busy machine fails closed,
                // and the task still leaves (or does not leave) its instances.
                not_allowed += 1;
            }
            done += 1;
            if started.elapsed() > Duration::from_secs(MAX_SECONDS) {
                println!("stopped after {done} tasks: {MAX_SECONDS} s bound");
                break 'run;
            }
            if done % 50 == 0 && rss_mib() > RSS_CEILING_MIB {
                println!("stopped after {done} tasks: RSS over {RSS_CEILING_MIB} MiB");
                break 'run;
            }
        }
        // Let the prewarm thread finish refilling spares, so every checkpoint is taken
        // in the same state.
        let settle = Instant::now();
        while arbiter.policy_set().wants_spares() && settle.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(50));
        println!("rss {target} {}", rss_mib());
    }
    println!(
        "time {:.1} s for {done} tasks, {not_allowed} not allowed",
        started.elapsed().as_secs_f64()
    );
    report_idle(&arbiter);
}

fn report_idle(arbiter: &Arbiter) {
    let set = arbiter.policy_set();
    let parts: Vec<String> = set
        .plugins()
        .iter()
        .map(|p| {
            format!(
                "{} {}+{}/{:.0}",
                p.listing().name,
                p.idle_instances(),
                p.spare_instances(),
                p.idle_memory_bytes() as f64 / (1024.0 * 1024.0)
            )
        })
        .collect();
    println!("idle {}", parts.join(", "));
}

/// The intent plugin's example settings plus synthetic intents, each with a few rules
/// of the shapes the real ones use, until the JSON is about [`LARGE_SETTINGS_BYTES`].
fn large_intent_settings() -> serde_json::Value {
    let mut settings = support::settings("intent", 0);
    let intents = settings["intents"].as_object_mut().expect("intents");
    let mut i = 0;
    let mut bytes = 0;
    while bytes < LARGE_SETTINGS_BYTES {
        let intent = json!({
            "description": format!("synthetic intent {i}: read service {i}, write nothing"),
            "tools": [
                {
                    "tool": format!("svc{i}/read_file"),
                    "path": { "argument": "/path", "roots": [format!("/srv/{i}")], "base": format!("/srv/{i}") }
                },
                { "tool": format!("svc{i}/get_*"), "id": format!("svc{i}-read") },
                {
                    "tool": format!("svc{i}/fetch"),
                    "url": { "argument": "/url", "hosts": [format!("svc{i}.example.com")], "schemes": ["https"] }
                }
            ]
        });
        bytes += intent.to_string().len() + format!("\"synthetic-{i}\":,").len();
        intents.insert(format!("synthetic-{i}"), intent);
        i += 1;
    }
    settings
}
