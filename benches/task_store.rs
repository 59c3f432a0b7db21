//! What the shared task store costs a decision: the same decisions on the in-memory
//! store and on a real `redis-server` on loopback, in one run, side by side.
//!
//! - `same-task`: later actions of one task (its history at its bound of 64 entries):
//!   the common path, a lock-and-read and a record-and-release per decision.
//! - `new-task`: every decision in a new task (the first action of a task also writes
//!   the agent's task index).
//!
//! For each: p50/p90/p99 in µs, the p50 the Redis store adds, and the Redis commands per
//! decision, counted by Redis itself (`INFO stats`); each command here is one round
//! trip. Run: `scripts/build-plugins.sh && scripts/install-test-deps.sh &&
//! cargo bench -p arbiter-host --bench task_store`. Bounded: 2 × 2 × 5000 decisions.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark code, never on the request path: a broken setup aborts the run"
)]

mod support;

use arbiter_host::{Action, Arbiter, Config};
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

fn commands_processed(con: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
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
    for case in ["same-task", "new-task"] {
        let mut p50 = [0.0; 2];
        for (i, (name, arbiter)) in [("memory", &memory), ("redis", &shared)]
            .into_iter()
            .enumerate()
        {
            let before = commands_processed(&mut con);
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
            // INFO itself is one command.
            let commands = commands_processed(&mut con) - before - 1;
            let calls = SAMPLES + SAMPLES / 10;
            p50[i] = percentiles.p50;
            println!(
                "  {case:<10} {name:<7} {percentiles}   Redis commands per decision {:.2}",
                commands as f64 / calls as f64
            );
        }
        println!("  {case:<10} added   p50 {:>8.2} µs", p50[1] - p50[0]);
    }
}
