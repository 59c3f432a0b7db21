//! What the MCP gateway adds: the same `tools/call` sent straight to a real MCP server and
//! through `arbiter gateway` (in this process, deciding with the reference intent and
//! sensitivity plugins on a reused task), in the same run, interleaved so that drift
//! hits both alike.
//!
//! The upstream is npm `@modelcontextprotocol/server-everything` over Streamable HTTP
//! (`tests/mcp/servers/everything_http.mjs`, on 127.0.0.1; install it with
//! `scripts/install-mcp-test-deps.sh`), and the call is its `echo`. Each path holds its own
//! MCP session.
//!
//! - **Latency**: `LATENCY_CALLS` calls one at a time on each path, alternating; the
//!   percentiles of each, and the added p50/p99.
//! - **Throughput**: `CONCURRENCY` clients for `THROUGHPUT_CALLS` calls (at most
//!   `MAX_SECONDS`) on each path; calls per second, and the gateway's as a share of direct.
//!
//! `cargo bench -p arbiter-host --bench mcp_gateway` (release build). Bounded in calls and
//! seconds; the server and the gateway stop with the run. Client, gateway and upstream
//! share the machine's cores, so the figures are a floor.
//! `MCP_BENCH_CALLS=N` changes the latency sample.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark code, never on the request path: a broken setup aborts the run"
)]

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 8;
const THROUGHPUT_CALLS: usize = 4000;
const MAX_SECONDS: u64 = 30;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One MCP session over Streamable HTTP.
#[derive(Clone)]
struct Session {
    client: reqwest::Client,
    url: String,
    headers: reqwest::header::HeaderMap,
}

impl Session {
    async fn open(url: &str, extra: &[(&'static str, &str)]) -> Self {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CONCURRENCY * 2)
            .build()
            .unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert(
            "accept",
            "application/json, text/event-stream".parse().unwrap(),
        );
        for (k, v) in extra {
            headers.insert(*k, v.parse().unwrap());
        }
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}});
        let response = client
            .post(url)
            .headers(headers.clone())
            .body(init.to_string())
            .send()
            .await
            .unwrap();
        let session = response
            .headers()
            .get("mcp-session-id")
            .expect("a session id")
            .to_str()
            .unwrap()
            .to_owned();
        let _ = response.text().await.unwrap();
        headers.insert("mcp-session-id", session.parse().unwrap());
        headers.insert("mcp-protocol-version", "2025-11-25".parse().unwrap());
        let session = Self {
            client,
            url: url.to_owned(),
            headers,
        };
        let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
        session.post(&initialized.to_string()).await;
        session
    }

    async fn post(&self, body: &str) -> String {
        let response = self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }

    /// One `ping` (relayed undecided): what the relay costs alone.
    async fn ping(&self, id: u64) -> Duration {
        let body = json!({"jsonrpc":"2.0","id":id,"method":"ping"}).to_string();
        let started = Instant::now();
        let answer = self.post(&body).await;
        let elapsed = started.elapsed();
        assert!(answer.contains("\"result\""), "unexpected answer: {answer}");
        elapsed
    }

    /// One `echo` call; panics unless it came back with the echoed text.
    async fn echo(&self, id: u64) -> Duration {
        let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
            "params":{"name":"echo","arguments":{"message":"hello"}}})
        .to_string();
        let started = Instant::now();
        let answer = self.post(&body).await;
        let elapsed = started.elapsed();
        assert!(
            answer.contains("Echo: hello"),
            "unexpected answer: {answer}"
        );
        elapsed
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn throughput(session: &Session) -> (f64, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(MAX_SECONDS);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let session = session.clone();
        let next = Arc::clone(&next);
        workers.push(tokio::spawn(async move {
            let mut done = 0;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= THROUGHPUT_CALLS || Instant::now() > deadline {
                    return done;
                }
                session.echo(n as u64 + 1_000_000).await;
                done += 1;
            }
        }));
    }
    let mut calls = 0;
    for w in workers {
        calls += w.await.unwrap();
    }
    (calls as f64 / started.elapsed().as_secs_f64(), calls)
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`) do nothing.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench")
        || args
            .iter()
            .any(|a| !a.starts_with("--") && !"mcp_gateway".contains(a.as_str()))
    {
        return;
    }
    let calls: usize = std::env::var("MCP_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let peers = root().join("tests/mcp/node_modules/@modelcontextprotocol");
    assert!(
        peers.exists(),
        "{} is missing: run scripts/install-mcp-test-deps.sh",
        peers.display()
    );
    // The upstream, on a port below the ephemeral range; it exits when its stdin closes.
    let mut upstream = Command::new("node")
        .arg(root().join("tests/mcp/servers/everything_http.mjs"))
        .arg("0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(upstream.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("listening ")
        .unwrap()
        .parse()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("intent.json"),
        json!({"intents": {"bench": {"tools": [{"tool": "everything/echo"}]}}}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sensitivity.json"),
        json!({"egress": []}).to_string(),
    )
    .unwrap();
    const ADMIN: &str = "bench-admin-token";
    let gateway_port = 20_000 + (std::process::id() % 10_000) as u16;
    let config = format!(
        "[trust]\nkeys = [{{ id = \"dev\", path = \"{root}/build/keys/dev.pub.pem\" }}]\n\
         [[plugin]]\nname = \"intent\"\npath = \"{root}/build/plugins/intent.wasm\"\nsettings_file = \"intent.json\"\n\
         [[plugin]]\nname = \"sensitivity\"\npath = \"{root}/build/plugins/sensitivity.wasm\"\nsettings_file = \"sensitivity.json\"\n\
         [server]\nadmin_token = \"{ADMIN}\"\n\
         [server.decision_log]\nsink = \"decisions.jsonl\"\n\
         [gateway]\nlisten = \"127.0.0.1:{gateway_port}\"\n\
         [[gateway.upstream]]\nname = \"everything\"\nurl = \"http://127.0.0.1:{port}/mcp\"\n",
        root = root().display()
    );
    let config_path = dir.path().join("arbiter.toml");
    std::fs::write(&config_path, config).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway_addr: SocketAddr = ([127, 0, 0, 1], gateway_port).into();
    let served = runtime.spawn(async move {
        arbiter_host::adapters::mcp::serve_until(&config_path, Some(gateway_addr), async {
            let _ = stopped.await;
        })
        .await
    });
    runtime.block_on(async {
        for _ in 0..300 {
            if let Ok(r) = reqwest::get(format!("http://{gateway_addr}/readyz")).await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the gateway did not get ready (run scripts/build-plugins.sh first)");
    });

    // The gateway's default: the task is opened first, and calls only name it.
    let task = runtime.block_on(async {
        let opened: serde_json::Value = reqwest::Client::new()
            .post(format!("http://{gateway_addr}/v1/tasks"))
            .bearer_auth(ADMIN)
            .json(&json!({"agents": ["spiffe://example.org/agent/bench"], "intent": "bench"}))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("open the bench task")
            .json()
            .await
            .expect("the opened task");
        opened["id"].as_str().expect("the task id").to_owned()
    });
    let agent = [
        ("x-arbiter-agent", "spiffe://example.org/agent/bench"),
        ("x-arbiter-task", task.as_str()),
    ];
    let (direct, via) = runtime.block_on(async {
        let direct = Session::open(&format!("http://127.0.0.1:{port}/mcp"), &[]).await;
        let via = Session::open(&format!("http://{gateway_addr}/mcp/everything"), &agent).await;
        (direct, via)
    });

    // Warm up both paths (connections, JIT, instance pools).
    runtime.block_on(async {
        for i in 0..200 {
            direct.echo(i).await;
            via.echo(i).await;
        }
    });
    let (mut direct_times, mut via_times) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    runtime.block_on(async {
        for i in 0..calls as u64 {
            // Alternate which goes first, so neither always follows the other.
            if i % 2 == 0 {
                direct_times.push(direct.echo(i).await);
                via_times.push(via.echo(i).await);
            } else {
                via_times.push(via.echo(i).await);
                direct_times.push(direct.echo(i).await);
            }
        }
    });
    direct_times.sort();
    via_times.sort();
    let (d50, d99) = (
        percentile(&direct_times, 0.5),
        percentile(&direct_times, 0.99),
    );
    let (g50, g99) = (percentile(&via_times, 0.5), percentile(&via_times, 0.99));
    println!(
        "MCP gateway vs direct, server-everything `echo` over Streamable HTTP (SSE answers), {calls} sequential calls each, interleaved"
    );
    println!("| path | p50 µs | p90 µs | p99 µs |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| direct | {:.0} | {:.0} | {:.0} |",
        us(d50),
        us(percentile(&direct_times, 0.9)),
        us(d99)
    );
    println!(
        "| through the gateway | {:.0} | {:.0} | {:.0} |",
        us(g50),
        us(percentile(&via_times, 0.9)),
        us(g99)
    );
    println!(
        "| added | {:.0} | {:.0} | {:.0} |",
        us(g50) - us(d50),
        us(percentile(&via_times, 0.9)) - us(percentile(&direct_times, 0.9)),
        us(g99) - us(d99)
    );

    let (mut direct_pings, mut via_pings) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    runtime.block_on(async {
        for i in 0..calls as u64 {
            direct_pings.push(direct.ping(i).await);
            via_pings.push(via.ping(i).await);
        }
    });
    direct_pings.sort();
    via_pings.sort();
    println!(
        "| `ping`, relayed undecided: direct / through the gateway / added | {:.0} / {:.0} / {:.0} | | |",
        us(percentile(&direct_pings, 0.5)),
        us(percentile(&via_pings, 0.5)),
        us(percentile(&via_pings, 0.5)) - us(percentile(&direct_pings, 0.5))
    );

    let (direct_rate, direct_calls) = runtime.block_on(throughput(&direct));
    let (via_rate, via_calls) = runtime.block_on(throughput(&via));
    println!();
    println!(
        "Throughput, {CONCURRENCY} concurrent clients, up to {THROUGHPUT_CALLS} calls or {MAX_SECONDS} s each"
    );
    println!("| path | calls | calls/s |");
    println!("| --- | --- | --- |");
    println!("| direct | {direct_calls} | {direct_rate:.0} |");
    println!("| through the gateway | {via_calls} | {via_rate:.0} |");
    println!(
        "| gateway / direct | | {:.0}% |",
        100.0 * via_rate / direct_rate
    );

    let _ = stop.send(());
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), served).await })
        .expect("the gateway stops")
        .unwrap()
        .unwrap();
    drop(upstream.stdin.take());
    let _ = upstream.wait();
    // Of the added time, the decision itself (as each decision measured it).
    let log = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap();
    let mut decided: Vec<u64> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|r| r["elapsed_us"].as_u64())
        .collect();
    decided.sort_unstable();
    if !decided.is_empty() {
        println!();
        println!(
            "Decision inside the gateway (intent + sensitivity, from the decision log, {} calls): p50 {} µs, p99 {} µs",
            decided.len(),
            decided[decided.len() / 2],
            decided[(decided.len() * 99) / 100]
        );
    }
}
