//! What the shared task store costs a decision: the same decisions on the in-memory
//! store and on a real `redis-server` on loopback, in one run, side by side.
//!
//! - `same-task`: later actions of one task (its history at its bound of 64 entries):
//!   the common path, a lock-and-read and a record-and-release per decision.
//! - `new-task`: every decision in a new task (the first action of a task also writes
//!   the agent's task index).
//!
//! For each: p50/p90/p99 in µs, the p50 the Redis store adds, and the scripts run per
//! decision, counted by Redis itself (`INFO commandstats`). A decision runs three: one
//! round trip takes and reads the task, and one pipelines the record with the agent's
//! task index, so two round trips. Run: `scripts/build-plugins.sh && scripts/install-test-deps.sh &&
//! cargo bench -p arbiter-host --bench task_store`. Bounded: 2 × 2 × 5000 decisions.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark code, never on the request path: a broken setup aborts the run"
)]

mod support;

use arbiter_host::config::{HistoryConfig, TaskSharing, TaskStoreConfig};
use arbiter_host::{
    Action, Arbiter, Config, Effect, HistoryEntry, MemoryTaskStore, RedisTaskStore, TaskStore,
};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::inputs::INPUTS;

const SAMPLES: usize = 5000;

struct Redis {
    child: Child,
    port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server: run scripts/install-test-deps.sh");
    let redis = Redis { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while connection(&redis).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    redis
}

fn connection(redis: &Redis) -> redis::RedisResult<redis::Connection> {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{}/0", redis.port))?
        .get_connection_with_timeout(Duration::from_secs(1))?;
    redis::cmd("PING").query::<String>(&mut con)?;
    Ok(con)
}

/// Scripts run by clients so far (`EVALSHA` calls; the commands a script runs inside
/// Redis are not round trips and are not counted).
fn scripts_run(con: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The three reference plugins with their example settings, on `store`.
fn host(store: &str) -> Arbiter {
    let root = support::root();
    let mut toml = format!("[defaults]\ntimeout_ms = 100\n{}", support::TRUST);
    for plugin in ["intent", "scope", "sensitivity"] {
        toml.push_str(&format!(
            "[[plugin]]\nname = \"{plugin}\"\npath = \"build/plugins/{plugin}.wasm\"\n\
             settings_file = \"plugins/{plugin}/example-settings.json\"\n"
        ));
    }
    toml.push_str(store);
    let config = Config::from_toml(&toml, &root).expect("benchmark config");
    Arbiter::new(&config).expect("run scripts/build-plugins.sh first")
}

fn with_task(action: &Action, task: &str) -> Action {
    let mut action = action.clone();
    if let Some(t) = action.task.as_mut() {
        t.id = task.to_owned();
    }
    action
}

fn main() {
    let redis = start_redis();
    let mut con = connection(&redis).unwrap();
    let memory = host("");
    let shared = host(&format!(
        "[task_store]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:{}/0\"\nkey_prefix = \"bench\"\n",
        redis.port
    ));
    let action = Action::from_json(INPUTS[0].1).unwrap();
    let expected = memory.decide(&action).effect;
    assert_eq!(
        shared.decide(&action).effect,
        expected,
        "both stores decide alike"
    );
    let counter = AtomicU64::new(0);
    println!("task_store: {SAMPLES} decisions each, three reference plugins, Redis on loopback");
    // The floor: one round trip to this Redis, from the same client library.
    let ping = support::percentiles(SAMPLES, || {
        let _: String = redis::cmd("PING").query(&mut con).unwrap();
    });
    println!("  round trip (PING)  {ping}");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(0)
        .arg("slowlog-max-len")
        .arg(100_000)
        .query(&mut con)
        .unwrap();
    store_alone(&redis);
    // Where a script's time goes: its run inside Redis, as Redis measures it.
    let log: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query(&mut con)
        .unwrap();
    let mut by_script: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for entry in &log {
        if let redis::Value::Array(fields) = entry
            && let (Some(redis::Value::Int(us)), Some(redis::Value::Array(args))) =
                (fields.get(2), fields.get(3))
            && let Some(redis::Value::BulkString(name)) = args.first()
        {
            let name = String::from_utf8_lossy(name).to_lowercase();
            let key = match (args.get(2), args.get(4)) {
                (Some(redis::Value::BulkString(n)), Some(redis::Value::BulkString(k)))
                    if name == "evalsha" =>
                {
                    format!(
                        "evalsha ({} keys) {}",
                        String::from_utf8_lossy(n),
                        String::from_utf8_lossy(k)
                    )
                }
                _ => name,
            };
            by_script.entry(key).or_default().push(*us);
        }
    }
    for (script, mut us) in by_script {
        us.sort_unstable();
        println!(
            "  inside Redis: {script:<40} p50 {:>4} µs ({} runs)",
            us[us.len() / 2],
            us.len()
        );
    }
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(10_000)
        .query(&mut con)
        .unwrap();
    for case in ["same-task", "new-task"] {
        let mut p50 = [0.0; 2];
        for (i, (name, arbiter)) in [("memory", &memory), ("redis", &shared)]
            .into_iter()
            .enumerate()
        {
            let before = scripts_run(&mut con);
            let percentiles = support::percentiles_with_setup(
                SAMPLES,
                || match case {
                    "same-task" => action.clone(),
                    _ => with_task(
                        &action,
                        &format!("bench-{}", counter.fetch_add(1, Ordering::Relaxed)),
                    ),
                },
                |a| {
                    let decision = arbiter.decide(&a);
                    assert_eq!(decision.effect, expected, "{}", decision.reason);
                },
            );
            let scripts = scripts_run(&mut con) - before;
            let calls = SAMPLES + SAMPLES / 10;
            p50[i] = percentiles.p50;
            println!(
                "  {case:<10} {name:<7} {percentiles}   scripts per decision {:.2}",
                scripts as f64 / calls as f64
            );
        }
        println!("  {case:<10} added   p50 {:>8.2} µs", p50[1] - p50[0]);
    }
}

/// The store alone, without plugins: `begin` then `commit` of one entry, the task's
/// window full (64 entries), on each store.
fn store_alone(redis: &Redis) {
    let config = Config::from_toml(
        &format!(
            "[task_store]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:{}/0\"\nkey_prefix = \"alone\"\n",
            redis.port
        ),
        &support::root(),
    )
    .unwrap();
    let TaskStoreConfig::Redis(redis_config) = config.task_store else {
        unreachable!("a redis table")
    };
    let shared = RedisTaskStore::new(
        *redis_config,
        HistoryConfig::default(),
        TaskSharing::default(),
        100,
    )
    .unwrap();
    let memory = MemoryTaskStore::new(HistoryConfig::default(), TaskSharing::default());
    let entry = || HistoryEntry {
        request_id: "req-0001".to_owned(),
        server: "github".to_owned(),
        tool: "get_issue".to_owned(),
        effect: Effect::Allow,
        labels: vec!["internal".to_owned()],
        time: 1_767_268_800_000,
    };
    for (name, store) in [
        ("memory", &memory as &dyn TaskStore),
        ("redis", &shared as &dyn TaskStore),
    ] {
        let round = || {
            let deadline = Instant::now() + Duration::from_secs(1);
            let lease = store.begin("alone", "agent", deadline).unwrap().unwrap();
            lease.commit(entry(), None).unwrap();
        };
        for _ in 0..100 {
            round();
        }
        println!(
            "  store alone {name:<7} begin+commit {}",
            support::percentiles(SAMPLES, round)
        );
        let peek = || {
            let deadline = Instant::now() + Duration::from_secs(1);
            store.peek("alone", "agent", deadline).unwrap().unwrap();
        };
        println!(
            "  store alone {name:<7} read only    {}",
            support::percentiles(SAMPLES, peek)
        );
    }
}
