//! Loopback load benchmark of the decision server: decisions per second and latency
//! percentiles at several concurrency levels, next to a no-op axum endpoint on the same
//! stack as the ceiling, and the in-process `Arbiter::decide` cost for reference.
//!
//! `cargo bench -p arbiter-host --bench server_load` (release build). Bounded: at most
//! `REQUESTS` requests and `MAX_SECONDS` per level, 127.0.0.1 only. Client and server
//! share the machine, so the figures are a floor for a dedicated server.
//! `SERVER_LOAD_REQUESTS=N` changes the per-level request count.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "benchmark code, never on the request path: a broken setup aborts the run"
)]

use arbiter_host::adapters::http::{AppState, ServerSettings};
use arbiter_host::service::DecisionLog;
use arbiter_host::service::Metrics;
use arbiter_host::service::{DecisionLogConfig, LogSink, ServerConfig};
use arbiter_host::{Action, Arbiter};
use axum::Router;
use axum::routing::post;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LEVELS: &[usize] = &[1, 4, 16, 64];
const MAX_SECONDS: u64 = 20;

const ACTION: &str = r#"{"request_id":"bench","agent":{"id":"spiffe://example.org/agent/bot","attestation":"x509-svid"},"delegation":[{"id":"alice@example.org","kind":"user","scopes":["fs:read"]}],"task":{"id":"TASK","intent":"summarize-repo","started_at":1767225600000},"tool":{"server":"fs","name":"read_file"},"arguments":{"path":"/repo/README.md"},"credential":{"scopes":["fs:read"],"audience":"fs"},"environment":{"env":"prod"},"time":1767225600000}"#;

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`) do nothing,
    // so tests never run the long benchmark. A filter other than ours also means "not me".
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench")
        || args
            .iter()
            .any(|a| !a.starts_with("--") && !"server_load".contains(a.as_str()))
    {
        return;
    }
    let requests: usize = std::env::var("SERVER_LOAD_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = root.join("examples/arbiter.toml");
    let arbiter = Arc::new(
        Arbiter::from_config_file(&config)
            .unwrap_or_else(|e| panic!("{e} (run scripts/build-plugins.sh first)")),
    );
    let action = Action::from_json(ACTION).unwrap();
    // In-process reference.
    let n = 2000;
    let started = Instant::now();
    let mut effect = None;
    for _ in 0..n {
        effect = Some(arbiter.decide(&action).effect);
    }
    let per = started.elapsed() / n;
    println!(
        "in-process Arbiter::decide (3 reference plugins, effect {:?}): {:.1} µs/decision",
        effect.unwrap(),
        per.as_secs_f64() * 1e6
    );

    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("decisions.jsonl");
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (decide_addr, noop_addr) = server_rt.block_on(async {
        let server = ServerConfig {
            decision_log: DecisionLogConfig {
                sink: LogSink::File(log_path.clone()),
                ..DecisionLogConfig::default()
            },
            ..ServerConfig::default()
        };
        let metrics = Metrics::new().unwrap();
        let log = DecisionLog::start(&server.decision_log, metrics.clone()).unwrap();
        let state = AppState::new(
            ServerSettings::resolve(&server, |_| None).unwrap(),
            metrics,
            log,
        );
        state.activate(Arc::clone(&arbiter));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let decide_addr = listener.local_addr().unwrap();
        tokio::spawn(arbiter_host::adapters::http::run(
            listener,
            state,
            None,
            std::future::pending(),
        ));
        let noop = Router::new().route(
            "/noop",
            post(|body: axum::body::Bytes| async move {
                let _ = body;
                (
                    [("content-type", "application/json")],
                    r#"{"effect":"allow"}"#,
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let noop_addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, noop).await });
        (decide_addr, noop_addr)
    });

    println!(
        "{:<22} {:>5} {:>9} {:>12} {:>10} {:>10}",
        "endpoint", "conc", "requests", "req/s", "p50 µs", "p99 µs"
    );
    for &concurrency in LEVELS {
        for (name, addr, path) in [
            ("POST /v1/decide", decide_addr, "/v1/decide"),
            ("no-op axum (ceiling)", noop_addr, "/noop"),
        ] {
            let r = client_rt.block_on(load(addr, path, concurrency, requests));
            println!(
                "{:<22} {:>5} {:>9} {:>12.0} {:>10.0} {:>10.0}",
                name, concurrency, r.count, r.rate, r.p50_us, r.p99_us
            );
        }
    }
    let lines = std::fs::read_to_string(&log_path)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    println!("decision log lines written: {lines}");
}

struct Report {
    count: usize,
    rate: f64,
    p50_us: f64,
    p99_us: f64,
}

async fn load(addr: SocketAddr, path: &str, concurrency: usize, requests: usize) -> Report {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let url = format!("http://{addr}{path}");
    // Warm up connections.
    for _ in 0..concurrency.min(8) {
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(ACTION.replace("TASK", "warmup"))
            .send()
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(MAX_SECONDS);
    let per_client = requests.div_ceil(concurrency);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..concurrency {
        let client = client.clone();
        let url = url.clone();
        // One task per client: task history and task-bound instances as in real use.
        let body = ACTION.replace("TASK", &format!("task-{c}"));
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                if Instant::now() > deadline {
                    break;
                }
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let bytes = response.bytes().await.unwrap();
                assert!(bytes.starts_with(b"{"));
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut all = Vec::with_capacity(requests);
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let pct = |p: f64| {
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        all.get(i).map(|d| d.as_secs_f64() * 1e6).unwrap_or(0.0)
    };
    Report {
        count: all.len(),
        rate: all.len() as f64 / elapsed.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    }
}
