//! The MCP gateway against real parts: the Python `mcp` SDK and the TypeScript SDKs
//! (`@modelcontextprotocol/sdk` 1.x, `@modelcontextprotocol/client` 2.x) as clients, and
//! as upstreams npm `server-everything` over Streamable HTTP, npm `server-filesystem`
//! over stdio and a small Python `mcp` server over stdio and HTTP
//! (`tests/mcp/servers/`), behind a real gateway on 127.0.0.1 with the reference
//! plugins. The peers are installed by `scripts/install-mcp-test-deps.sh` (the test
//! command runs it); the scripted clients are `tests/mcp/clients/`.
//!
//! Every denied call is checked twice: the client raised the SDK's error with the
//! decision, and the upstream's own record of executed calls does not have it.

use crate::common::{TEST_DEFAULTS, plugin_path, promtool_accepts, root, test_trust_absolute};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a scripted client may run.
const CLIENT_DEADLINE: Duration = Duration::from_secs(120);

fn mcp_dir() -> PathBuf {
    root().join("tests/mcp")
}

fn python() -> PathBuf {
    let path = mcp_dir().join(".venv/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run `scripts/install-mcp-test-deps.sh` (the README's test command does)",
        path.display()
    );
    path
}

fn node_modules() -> PathBuf {
    let path = mcp_dir().join("node_modules/@modelcontextprotocol");
    assert!(
        path.exists(),
        "{} is missing: run `scripts/install-mcp-test-deps.sh` (the README's test command does)",
        path.display()
    );
    mcp_dir().join("node_modules")
}

/// A port below the kernel's ephemeral range that is free now.
fn free_port() -> u16 {
    for _ in 0..200 {
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-32000");
}

/// A peer process, killed when dropped.
struct Peer {
    child: Child,
    port: u16,
    /// Kept open: the HTTP peers exit when their stdin closes.
    _stdin: Option<std::process::ChildStdin>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts an HTTP peer that prints `listening <port>`.
fn http_peer(mut command: Command) -> Peer {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("peer did not start: {command:?}"));
    let port = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("peer said {line:?}"));
    Peer {
        child,
        port,
        _stdin: stdin,
    }
}

fn py_http_server(call_log: &Path) -> Peer {
    let mut command = Command::new(python());
    command
        .arg(mcp_dir().join("servers/py_server.py"))
        .args(["http", "0", "--call-log"])
        .arg(call_log);
    http_peer(command)
}

fn everything_server() -> Peer {
    node_modules();
    let mut command = Command::new("node");
    command
        .arg(mcp_dir().join("servers/everything_http.mjs"))
        .arg("0");
    http_peer(command)
}

/// The policy of these tests: intent `mcp-demo` allows the harmless tools of each
/// upstream, not `delete_everything`, `get-env` or `write_file`; the sensitivity plugin
/// lets `post_message` reach `#reports` only, so once the task has read a record
/// (labelled `restricted` by the gateway's config) a post elsewhere is denied.
fn policy(dir: &Path, fs_root: &Path) -> String {
    let intent = json!({"intents": {
        "mcp-approval": {"tools": [
            {"tool": "*/delete_everything", "effect": "step-up", "approver": "ops-approvers"},
            {"tool": "*/add"}
        ]},
        "mcp-demo": {"tools": [
        {"tool": "*/echo"}, {"tool": "*/add"}, {"tool": "*/read_record"},
        {"tool": "*/post_message"}, {"tool": "*/slow_count"},
        {"tool": "*/unlock"}, {"tool": "*/bonus*"}, {"tool": "*/ping_client"},
        {"tool": "everything/get-sum"}, {"tool": "everything/trigger-long-running-operation"},
        {"tool": "fs/list_allowed_directories"},
        {"tool": "fs/read_text_file", "path": {"argument": "/path", "roots": [fs_root.display().to_string()]}},
        {"tool": "fs/list_directory", "path": {"argument": "/path", "roots": [fs_root.display().to_string()]}}
    ]}}});
    let sensitivity = json!({"egress": [
        {"tool": "*/post_message", "kind": "channel", "destination": "/channel", "allowed": ["#reports"]}
    ]});
    std::fs::write(dir.join("intent.json"), intent.to_string()).unwrap();
    std::fs::write(dir.join("sensitivity.json"), sensitivity.to_string()).unwrap();
    format!(
        "{TEST_DEFAULTS}{trust}\
         [[plugin]]\nname = \"intent\"\npath = \"{intent_wasm}\"\nsettings_file = \"intent.json\"\n\
         [[plugin]]\nname = \"sensitivity\"\npath = \"{sensitivity_wasm}\"\nsettings_file = \"sensitivity.json\"\n",
        trust = test_trust_absolute(),
        intent_wasm = plugin_path("intent").display(),
        sensitivity_wasm = plugin_path("sensitivity").display(),
    )
}

/// A gateway in this process, stopped when dropped.
struct Gateway {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<Result<(), arbiter_host::adapters::mcp::GatewayError>>>,
}

impl Gateway {
    fn url(&self, upstream: &str) -> String {
        format!("http://{}/mcp/{upstream}", self.addr)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("decisions.jsonl")
    }

    /// Stops the gateway (flushing its decision log) and returns the log's records.
    fn stop(mut self) -> Vec<Value> {
        self.shutdown();
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let (Some(runtime), Some(done)) = (self.runtime.as_ref(), self.done.take()) {
            runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(30), done).await })
                .expect("gateway stops within 30 s")
                .unwrap()
                .unwrap();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }

    /// A raw POST, for what the SDKs would never send.
    fn post(&self, upstream: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
        let (status, _, answer) = self.post_full(upstream, headers, body);
        (status, answer)
    }

    /// A raw POST that also returns the answer's `Mcp-Session-Id`.
    fn post_full(
        &self,
        upstream: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Option<String>, Value) {
        let client = reqwest::Client::new();
        let mut request = client
            .post(self.url(upstream))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_owned());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.runtime.as_ref().unwrap().block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let session = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let text = response.text().await.unwrap();
            (
                status,
                session,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
    }

    fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.addr);
        self.runtime
            .as_ref()
            .unwrap()
            .block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts a gateway with `upstreams` (TOML of `[[gateway.upstream]]` tables) over the
/// test policy, with an unredacted decision log in its directory.
fn gateway(upstreams: &str, fs_root: &Path, extra_gateway: &str) -> Gateway {
    gateway_with_plugins(upstreams, fs_root, extra_gateway, "")
}

/// [`gateway`] with more plugins (or other top-level tables) after the test policy's.
fn gateway_with_plugins(
    upstreams: &str,
    fs_root: &Path,
    extra_gateway: &str,
    extra_plugins: &str,
) -> Gateway {
    gateway_at(
        free_port(),
        upstreams,
        fs_root,
        extra_gateway,
        extra_plugins,
    )
}

/// [`gateway_with_plugins`] on a port chosen beforehand (for peers that must know it).
fn gateway_at(
    port: u16,
    upstreams: &str,
    fs_root: &Path,
    extra_gateway: &str,
    extra_plugins: &str,
) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    // Most tests here are about relaying and deciding, and assert their tasks in headers
    // (`[tasks] mode = "asserted"`); the gateway's default, opened tasks, is tested by the
    // quick start and the opened-task tests, which set `[tasks]` themselves.
    let tasks = if extra_plugins.contains("[tasks]") {
        ""
    } else {
        "[tasks]\nmode = \"asserted\"\n"
    };
    let config = format!(
        "{policy}{tasks}{extra_plugins}[server.decision_log]\nsink = \"decisions.jsonl\"\nredact_arguments = false\n\
         [gateway]\n{timeout}{extra_gateway}\n{upstreams}",
        timeout = if extra_gateway.contains("upstream_timeout_ms") {
            ""
        } else {
            "upstream_timeout_ms = 20000\n"
        },
        policy = policy(dir.path(), fs_root),
    );
    let path = dir.path().join("arbiter.toml");
    std::fs::write(&path, config).unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = runtime.spawn(async move {
        arbiter_host::adapters::mcp::serve_until(&path, Some(addr), async {
            let _ = stopped.await;
        })
        .await
    });
    // Ready once /readyz answers 200 (the policy set loads before the listener binds);
    // a gateway that failed to start says why.
    let ready = runtime.block_on(async {
        for _ in 0..600 {
            if done.is_finished() {
                return false;
            }
            if let Ok(r) = reqwest::get(format!("http://{addr}/readyz")).await
                && r.status() == 200
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    if !ready && done.is_finished() {
        let result = runtime.block_on(done).unwrap();
        panic!("the gateway stopped: {result:?}");
    }
    assert!(ready, "gateway not ready within 60 s");
    Gateway {
        addr,
        dir,
        runtime: Some(runtime),
        stop: Some(stop),
        done: Some(done),
    }
}

/// The headers of an agent working on task `task` with intent `mcp-demo`.
fn agent_headers(task: &str) -> Value {
    json!({
        "x-arbiter-agent": "spiffe://example.org/agent/demo",
        "x-arbiter-task": task,
        "x-arbiter-intent": "mcp-demo",
    })
}

#[derive(Debug, Clone, Copy)]
enum Sdk {
    Python,
    TsV1,
    TsV2,
}

/// Runs a scripted SDK client and returns its report; it must have connected.
fn run_client(sdk: Sdk, input: Value) -> Value {
    let report = run_client_report(sdk, input);
    assert!(
        report.get("fatal").is_none(),
        "{sdk:?} client failed to connect: {report}"
    );
    report
}

/// Runs a scripted SDK client and returns its report, connected or not.
fn run_client_report(sdk: Sdk, input: Value) -> Value {
    run_client_with_env(sdk, input, &[])
}

/// [`run_client_report`] with extra environment variables for the client process.
fn run_client_with_env(sdk: Sdk, mut input: Value, env: &[(&str, &str)]) -> Value {
    let mut command = match sdk {
        Sdk::Python => {
            let mut c = Command::new(python());
            c.arg(mcp_dir().join("clients/py_client.py"));
            c
        }
        Sdk::TsV1 | Sdk::TsV2 => {
            node_modules();
            let mut c = Command::new("node");
            c.arg(mcp_dir().join("clients/ts_client.mjs"));
            input["sdk"] = json!(if matches!(sdk, Sdk::TsV1) { "v1" } else { "v2" });
            c
        }
    };
    input["deadline"] = json!(CLIENT_DEADLINE.as_secs() - 10);
    command.envs(env.iter().copied());
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        let _ = tx.send((out, err));
    });
    let (out, err) = match rx.recv_timeout(CLIENT_DEADLINE) {
        Ok(output) => output,
        Err(_) => {
            let _ = child.kill();
            panic!("{sdk:?} client did not finish within {CLIENT_DEADLINE:?}: {input}");
        }
    };
    let _ = child.wait();
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!("{sdk:?} client output is not JSON ({e}): {out}\nstderr: {err}")
    });
    if report.get("fatal").is_some() {
        eprintln!("{sdk:?} client stderr: {err}");
    }
    report
}

fn http_transport(url: &str, headers: Value) -> Value {
    json!({"kind": "http", "url": url, "headers": headers})
}

fn step(report: &Value, index: usize) -> &Value {
    &report["steps"][index]
}

/// The tool names a `list_tools` step saw.
fn listed(step: &Value) -> Vec<String> {
    assert_eq!(step["ok"], true, "{step}");
    step["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

/// The text of a successful `call_tool` step's first content item.
fn result_text(step: &Value) -> String {
    assert_eq!(step["ok"], true, "{step}");
    step["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Asserts that a step failed with the SDK's protocol error carrying a decision.
fn assert_denied(step: &Value, code: i64, reason: &str) -> String {
    assert_eq!(step["ok"], false, "{step}");
    let error = &step["error"];
    assert!(
        matches!(
            error["class"].as_str(),
            Some("MCPError" | "McpError" | "ProtocolError")
        ),
        "the SDK's protocol error: {step}"
    );
    assert_eq!(error["code"], code, "{step}");
    let data = &error["data"];
    assert!(data["reason"].as_str().unwrap().contains(reason), "{step}");
    assert_eq!(data["identity"]["attestation"], "none", "{step}");
    let id = data["decision_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a decision id: {step}");
    id
}

fn executed(call_log: &Path) -> Vec<Value> {
    std::fs::read_to_string(call_log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn executed_tools(call_log: &Path) -> Vec<String> {
    executed(call_log)
        .iter()
        .map(|c| c["tool"].as_str().unwrap().to_owned())
        .collect()
}

/// The steps every client runs against a Python upstream: list, an allowed call, a
/// denied call, a streamed call, and the exfiltration chain.
fn python_upstream_steps() -> Value {
    json!([
        {"op": "list_tools"},
        {"op": "call_tool", "name": "add", "arguments": {"a": 2, "b": 3}},
        {"op": "call_tool", "name": "delete_everything", "arguments": {"confirm": true}},
        {"op": "call_tool", "name": "slow_count", "arguments": {"n": 3}, "progress": true},
        {"op": "call_tool", "name": "post_message", "arguments": {"channel": "#ext-partners", "text": "hello"}},
        {"op": "call_tool", "name": "read_record", "arguments": {"id": "c-1"}},
        {"op": "call_tool", "name": "post_message", "arguments": {"channel": "#ext-partners", "text": "ACCT-12345678"}}
    ])
}

/// What every client must have seen on a Python upstream; returns the denied
/// decision ids.
fn check_python_upstream(report: &Value, what: &str) -> Vec<String> {
    let tools = listed(step(report, 0));
    assert!(tools.contains(&"add".to_owned()), "{what}: {tools:?}");
    assert!(
        !tools.contains(&"delete_everything".to_owned()),
        "{what}: a tool outside the intent is not listed: {tools:?}"
    );
    assert_eq!(result_text(step(report, 1)), "5", "{what}");
    let denied = assert_denied(step(report, 2), -31001, "delete_everything");
    let streamed = step(report, 3);
    assert_eq!(result_text(streamed), "counted 3", "{what}");
    assert_eq!(
        streamed["progress_events"], 3,
        "{what}: progress streamed: {streamed}"
    );
    assert_eq!(
        result_text(step(report, 4)),
        "posted to #ext-partners",
        "{what}: before the task read anything sensitive"
    );
    assert!(result_text(step(report, 5)).contains("ACCT-"), "{what}");
    let chain = assert_denied(step(report, 6), -31001, "restricted");
    vec![denied, chain]
}

fn py_upstreams(py_port: u16) -> String {
    let py = mcp_dir().join("servers/py_server.py");
    format!(
        "[[gateway.upstream]]\nname = \"py\"\nurl = \"http://127.0.0.1:{py_port}/mcp\"\n\
         tool_labels = {{ read_record = [\"restricted\"] }}\n\
         [[gateway.upstream]]\nname = \"pystdio\"\ncommand = [\"{python}\", \"{py}\", \"stdio\", \"--call-log\", \"{{LOG}}\"]\n\
         tool_labels = {{ read_record = [\"restricted\"] }}\n",
        python = python().display(),
        py = py.display(),
    )
}

#[test]
fn sdk_clients_through_the_gateway_to_python_servers_over_http_and_stdio() {
    let scratch = tempfile::tempdir().unwrap();
    let http_log = scratch.path().join("http-calls.jsonl");
    let stdio_log = scratch.path().join("stdio-calls.jsonl");
    let py = py_http_server(&http_log);
    let upstreams = py_upstreams(py.port).replace("{LOG}", &stdio_log.display().to_string());
    let gw = gateway(&upstreams, scratch.path(), "");
    let mut denied_ids = Vec::new();
    let mut runs = 0;
    for (sdk, mode, upstream, expected_version) in [
        (Sdk::Python, "legacy", "py", "2025-11-25"),
        (Sdk::TsV1, "legacy", "pystdio", "2025-11-25"),
        (Sdk::TsV2, "auto", "py", "2026-07-28"),
        (Sdk::Python, "auto", "pystdio", "2026-07-28"),
    ] {
        runs += 1;
        let task = format!("task-{runs}");
        let report = run_client(
            sdk,
            json!({"transport": http_transport(&gw.url(upstream), agent_headers(&task)),
                   "mode": mode, "steps": python_upstream_steps()}),
        );
        let what = format!("{sdk:?} {mode} via {upstream}");
        assert_eq!(
            report["protocol_version"], expected_version,
            "{what}: {report}"
        );
        if expected_version == "2025-11-25" {
            assert!(
                report["session_id"].as_str().is_some_and(|s| !s.is_empty()),
                "{what}: {report}"
            );
        } else {
            assert!(
                report["session_id"].is_null(),
                "{what}: no sessions in 2026-07-28"
            );
        }
        denied_ids.extend(check_python_upstream(&report, &what));
    }
    // What ran on the servers: never a denied call.
    for log in [&http_log, &stdio_log] {
        let tools = executed_tools(log);
        assert!(!tools.iter().any(|t| t == "delete_everything"), "{tools:?}");
        let leaked = executed(log)
            .iter()
            .any(|c| c["arguments"]["text"] == "ACCT-12345678");
        assert!(!leaked, "the exfiltrating post never reached the server");
        assert_eq!(tools.iter().filter(|t| *t == "add").count(), 2, "{tools:?}");
    }
    let metrics = gw.metrics();
    promtool_accepts(&metrics);
    assert!(
        metrics.contains("arbiter_gateway_tool_calls_total{outcome=\"deny\",upstream=\"py\"} 4"),
        "{metrics}"
    );
    let records = gw.stop();
    for id in &denied_ids {
        let record = records
            .iter()
            .find(|r| r["decision_id"] == *id)
            .unwrap_or_else(|| panic!("decision {id} is in the log"));
        assert_eq!(record["effect"], "deny");
        assert_eq!(record["via"]["adapter"], "mcp");
        assert!(matches!(
            record["via"]["upstream"].as_str(),
            Some("py" | "pystdio")
        ));
        assert!(!record["via"]["jsonrpc_id"].is_null(), "{record}");
        assert_eq!(record["via"]["identity"], "asserted:header:x-arbiter-agent");
        assert_eq!(
            record["identity"]["source"],
            "asserted:header:x-arbiter-agent"
        );
    }
}

#[test]
fn sdk_clients_through_the_gateway_to_server_everything_and_server_filesystem() {
    let scratch = tempfile::tempdir().unwrap();
    let fs_root = scratch.path().join("files");
    std::fs::create_dir(&fs_root).unwrap();
    std::fs::write(fs_root.join("notes.txt"), "quarterly notes").unwrap();
    let everything = everything_server();
    let filesystem = node_modules().join("@modelcontextprotocol/server-filesystem/dist/index.js");
    let upstreams = format!(
        "[[gateway.upstream]]\nname = \"everything\"\nurl = \"http://127.0.0.1:{}/mcp\"\n\
         [[gateway.upstream]]\nname = \"fs\"\ncommand = [\"node\", \"{}\", \"{}\"]\n",
        everything.port,
        filesystem.display(),
        fs_root.display()
    );
    let gw = gateway(&upstreams, &fs_root, "");
    let everything_steps = json!([
        {"op": "list_tools"},
        {"op": "call_tool", "name": "echo", "arguments": {"message": "hi"}},
        {"op": "call_tool", "name": "get-env", "arguments": {}},
        {"op": "call_tool", "name": "trigger-long-running-operation", "arguments": {"duration": 0.3, "steps": 3}, "progress": true}
    ]);
    for (sdk, mode) in [
        (Sdk::Python, "legacy"),
        (Sdk::TsV1, "legacy"),
        (Sdk::TsV2, "auto"),
    ] {
        let report = run_client(
            sdk,
            json!({"transport": http_transport(&gw.url("everything"), agent_headers("task-e")),
                   "mode": mode, "steps": everything_steps}),
        );
        let what = format!("{sdk:?} {mode} via everything");
        // server-everything speaks the handshake era only: an `auto` client falls back.
        assert_eq!(report["protocol_version"], "2025-11-25", "{what}: {report}");
        assert!(report["session_id"].as_str().is_some(), "{what}: {report}");
        let tools = listed(step(&report, 0));
        assert!(
            tools.contains(&"echo".to_owned()) && tools.contains(&"get-sum".to_owned()),
            "{what}: {tools:?}"
        );
        assert!(!tools.contains(&"get-env".to_owned()), "{what}: {tools:?}");
        assert_eq!(result_text(step(&report, 1)), "Echo: hi", "{what}");
        assert_denied(step(&report, 2), -31001, "get-env");
        let streamed = step(&report, 3);
        assert_eq!(streamed["ok"], true, "{what}: {streamed}");
        assert_eq!(streamed["progress_events"], 3, "{what}: {streamed}");
    }
    let inside = fs_root.join("notes.txt").display().to_string();
    let written = fs_root.join("planted.txt");
    let fs_steps = json!([
        {"op": "list_tools"},
        {"op": "call_tool", "name": "read_text_file", "arguments": {"path": inside}},
        {"op": "call_tool", "name": "read_text_file", "arguments": {"path": "/etc/passwd"}},
        {"op": "call_tool", "name": "write_file", "arguments": {"path": written.display().to_string(), "content": "x"}}
    ]);
    for (sdk, mode) in [
        (Sdk::TsV1, "legacy"),
        (Sdk::Python, "legacy"),
        (Sdk::TsV2, "auto"),
    ] {
        let report = run_client(
            sdk,
            json!({"transport": http_transport(&gw.url("fs"), agent_headers("task-f")),
                   "mode": mode, "steps": fs_steps}),
        );
        let what = format!("{sdk:?} via fs (stdio)");
        assert!(
            report["session_id"].as_str().is_some(),
            "{what}: the gateway's session: {report}"
        );
        let tools = listed(step(&report, 0));
        assert!(
            tools.contains(&"read_text_file".to_owned()),
            "{what}: {tools:?}"
        );
        assert!(
            !tools.contains(&"write_file".to_owned()),
            "{what}: {tools:?}"
        );
        assert_eq!(result_text(step(&report, 1)), "quarterly notes", "{what}");
        assert_denied(step(&report, 2), -31001, "/etc/passwd");
        assert_denied(step(&report, 3), -31001, "write_file");
    }
    assert!(!written.exists(), "the denied write never ran");
    let records = gw.stop();
    let fs_records: Vec<&Value> = records
        .iter()
        .filter(|r| r["via"]["upstream"] == "fs")
        .collect();
    assert_eq!(
        fs_records.len(),
        9,
        "every fs call is in the decision log: {records:#?}"
    );
}

#[test]
fn an_allowed_call_is_forwarded_with_the_redactions_its_decision_asks_for() {
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("calls.jsonl");
    let py = py_http_server(&log);
    let gw = gateway(
        &py_upstreams(py.port).replace("{LOG}", "/dev/null"),
        scratch.path(),
        "",
    );
    let key = "AKIAIOSFODNN7EXAMPLE";
    let report = run_client(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), agent_headers("task-r")), "mode": "legacy",
               "steps": [{"op": "call_tool", "name": "echo", "arguments": {"message": format!("key {key}")}}]}),
    );
    assert_eq!(result_text(step(&report, 0)), "[REDACTED]", "{report}");
    let calls = executed(&log);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0]["arguments"]["message"], "[REDACTED]",
        "the server never saw the key"
    );
    let records = gw.stop();
    assert_eq!(
        records[0]["obligations"][0]["kind"], "redact",
        "{records:#?}"
    );
}

/// A JSON-RPC `tools/call` body.
fn call_body(id: u64, tool: &str, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
    .to_string()
}

#[test]
fn bad_requests_get_the_spec_codes_and_are_never_forwarded() {
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("calls.jsonl");
    let py = py_http_server(&log);
    let gw = gateway(
        &py_upstreams(py.port).replace("{LOG}", "/dev/null"),
        scratch.path(),
        "max_body_bytes = 4096\nallowed_origins = [\"https://console.example.com\"]",
    );
    let agent = [
        ("x-arbiter-agent", "spiffe://example.org/agent/demo"),
        ("x-arbiter-task", "task-b"),
        ("x-arbiter-intent", "mcp-demo"),
    ];
    let modern: Vec<(&str, &str)> = agent
        .iter()
        .copied()
        .chain([
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
        ])
        .collect();
    let code = |v: &Value| v["error"]["code"].as_i64().unwrap_or(0);

    let (status, body) = gw.post("py", &agent, "{not json");
    assert_eq!((status, code(&body)), (400, -32700), "{body}");
    let (status, body) = gw.post("py", &agent, r#"{"id":1,"method":"tools/list"}"#);
    assert_eq!((status, code(&body)), (400, -32600), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`jsonrpc` is missing")
    );
    let batch = format!("[{}]", call_body(1, "add", json!({"a": 1, "b": 1})));
    let (status, body) = gw.post("py", &[("mcp-protocol-version", "2025-06-18")], &batch);
    assert_eq!(
        (status, code(&body)),
        (400, -32600),
        "batches were removed in 2025-06-18: {body}"
    );
    let (status, body) = gw.post("py", &[("mcp-protocol-version", "2025-03-26")], &batch);
    assert_eq!(
        (status, code(&body)),
        (400, -32600),
        "a batched tools/call is never relayed undecided: {body}"
    );
    let (status, body) = gw.post(
        "py",
        &[("mcp-protocol-version", "2099-01-01")],
        &call_body(1, "add", json!({})),
    );
    assert_eq!((status, code(&body)), (400, -32022), "{body}");
    assert!(
        body["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28"))
    );
    // 2026-07-28: the headers must say what the body says.
    let mut lying = modern.clone();
    lying.push(("mcp-name", "add"));
    let (status, body) = gw.post(
        "py",
        &lying,
        &call_body(1, "delete_everything", json!({"confirm": true})),
    );
    assert_eq!((status, code(&body)), (400, -32020), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`add` but the body's `params.name` is `delete_everything`")
    );
    let (status, body) = gw.post("py", &modern, &call_body(1, "add", json!({})));
    assert_eq!(
        (status, code(&body)),
        (400, -32020),
        "missing Mcp-Name: {body}"
    );
    // A tools/call without an id would be a notification nobody decides.
    let notification = json!({"jsonrpc": "2.0", "method": "tools/call",
        "params": {"name": "delete_everything", "arguments": {"confirm": true}}});
    let (status, body) = gw.post("py", &agent, &notification.to_string());
    assert_eq!((status, code(&body)), (400, -32600), "{body}");
    // Duplicate keys: decided and forwarded as one reading of the body.
    let twice = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":1},"name":"delete_everything"}}"#;
    let (status, body) = gw.post("py", &agent, twice);
    assert_eq!(
        (status, code(&body)),
        (200, -31001),
        "the last key counts, as for the server: {body}"
    );
    // What a decision needs.
    let (status, body) = gw.post("py", &[], &call_body(1, "add", json!({"a": 1, "b": 1})));
    assert_eq!((status, code(&body)), (200, -31004), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("header `x-arbiter-agent` is missing")
    );
    let (status, body) = gw.post("py", &agent, &json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":[1]}}).to_string());
    assert_eq!((status, code(&body)), (200, -32602), "{body}");
    // Transport bounds.
    let big = call_body(1, "echo", json!({"message": "x".repeat(5000)}));
    let (status, _) = gw.post("py", &agent, &big);
    assert_eq!(status, 413);
    let mut from_web = agent.to_vec();
    from_web.push(("origin", "https://evil.example"));
    let (status, _) = gw.post("py", &from_web, &call_body(1, "add", json!({})));
    assert_eq!(status, 403);
    let (status, body) = gw.post("nowhere", &agent, &call_body(1, "add", json!({})));
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("py, pystdio"),
        "{body}"
    );
    assert!(
        executed(&log).is_empty(),
        "nothing reached the server: {:?}",
        executed(&log)
    );
}

#[test]
fn a_dead_or_broken_upstream_gives_a_clear_error_and_nothing_runs() {
    let scratch = tempfile::tempdir().unwrap();
    let closed = free_port();
    let garbage = scratch.path().join("garbage.sh");
    std::fs::write(
        &garbage,
        "#!/bin/sh\nread line\necho 'this is not JSON-RPC'\nsleep 5\n",
    )
    .unwrap();
    // Accepts connections and never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_port = hung.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in hung.incoming().take(4) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let upstreams = format!(
        "[[gateway.upstream]]\nname = \"hung\"\nurl = \"http://127.0.0.1:{hung_port}/mcp\"\n\
         [[gateway.upstream]]\nname = \"silent\"\ncommand = [\"sh\", \"-c\", \"while read line; do :; done\"]\n\
         [[gateway.upstream]]\nname = \"down\"\nurl = \"http://127.0.0.1:{closed}/mcp\"\n\
         [[gateway.upstream]]\nname = \"missing\"\ncommand = [\"/nonexistent/mcp-server\"]\n\
         [[gateway.upstream]]\nname = \"garbage\"\ncommand = [\"sh\", \"{}\"]\n",
        garbage.display()
    );
    let gw = gateway(&upstreams, scratch.path(), "upstream_timeout_ms = 3000");
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})
    .to_string();
    for (upstream, status, code, needle) in [
        ("down", 502, -31010, "upstream `down`"),
        (
            "missing",
            502,
            -31010,
            "cannot start `/nonexistent/mcp-server`",
        ),
        // A stdio server's failure reaches the request in band, as a JSON-RPC error.
        ("garbage", 200, -31010, "not JSON"),
        ("hung", 504, -31012, "no answer within 3000 ms"),
        ("silent", 504, -31012, "no answer within 3000 ms"),
    ] {
        let (got, body) = gw.post(upstream, &[], &init);
        assert_eq!(got, status, "{upstream}: {body}");
        assert_eq!(body["error"]["code"], code, "{upstream}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{upstream}: {message}");
    }
    // The SDK sees the same: a clear error, not a hang.
    let report = run_client_report(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("down"), agent_headers("task-d")), "mode": "legacy",
               "timeout": 10, "steps": []}),
    );
    assert!(
        report["fatal"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("upstream `down`"),
        "{report}"
    );
    let metrics = gw.metrics();
    assert!(
        metrics.contains(
            "arbiter_gateway_upstream_errors_total{kind=\"unavailable\",upstream=\"down\"}"
        ),
        "{metrics}"
    );
}

#[test]
fn step_up_is_its_own_error_and_tool_error_style_reaches_the_model() {
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("calls.jsonl");
    let py = py_http_server(&log);
    let upstreams = py_upstreams(py.port).replace("{LOG}", "/dev/null");
    let approval = json!({
        "x-arbiter-agent": "spiffe://example.org/agent/demo",
        "x-arbiter-task": "task-s",
        "x-arbiter-intent": "mcp-approval",
    });
    let steps = json!([
        {"op": "list_tools"},
        {"op": "call_tool", "name": "delete_everything", "arguments": {"confirm": true}},
        {"op": "call_tool", "name": "echo", "arguments": {"message": "outside this intent"}}
    ]);
    let gw = gateway(&upstreams, scratch.path(), "");
    let report = run_client(
        Sdk::TsV1,
        json!({"transport": http_transport(&gw.url("py"), approval.clone()), "steps": steps}),
    );
    let tools = listed(step(&report, 0));
    assert_eq!(
        tools,
        vec!["delete_everything", "add"],
        "step-up tools stay listed"
    );
    let stepped = step(&report, 1);
    assert_denied(stepped, -31002, "needs step-up");
    assert_eq!(stepped["error"]["data"]["effect"], "step-up", "{stepped}");
    assert_eq!(
        stepped["error"]["data"]["approvers"],
        json!(["ops-approvers"]),
        "{stepped}"
    );
    assert_denied(step(&report, 2), -31001, "echo");
    drop(gw);

    let gw = gateway(&upstreams, scratch.path(), "denial = \"tool-error\"");
    let report = run_client(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), approval), "mode": "legacy", "steps": steps}),
    );
    for (index, effect) in [(1, "step-up"), (2, "deny")] {
        let s = step(&report, index);
        assert_eq!(s["ok"], true, "a tool error is a result: {s}");
        assert_eq!(s["result"]["isError"], true, "{s}");
        assert!(
            s["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("Arbiter: tool call"),
            "{s}"
        );
        assert_eq!(
            s["result"]["structuredContent"]["arbiter"]["effect"], effect,
            "{s}"
        );
    }
    assert!(executed(&log).is_empty(), "{:?}", executed(&log));
}

#[test]
fn a_failing_plugin_denies_every_call_and_nothing_is_forwarded() {
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("calls.jsonl");
    let py = py_http_server(&log);
    let upstreams = py_upstreams(py.port).replace("{LOG}", "/dev/null");
    for behaviour in ["trap", "loop"] {
        let plugin = format!(
            "[[plugin]]\nname = \"broken\"\npath = \"{}\"\ntimeout_ms = 50\nsettings = {{ behaviour = \"{behaviour}\" }}\n",
            plugin_path("misbehave").display()
        );
        let gw = gateway_with_plugins(&upstreams, scratch.path(), "", &plugin);
        let report = run_client(
            Sdk::Python,
            json!({"transport": http_transport(&gw.url("py"), agent_headers("task-x")), "mode": "legacy",
                   "steps": [{"op": "list_tools"}, {"op": "call_tool", "name": "add", "arguments": {"a": 1, "b": 2}}]}),
        );
        assert!(
            listed(step(&report, 0)).is_empty(),
            "{behaviour}: fail closed: {report}"
        );
        let outcome = if behaviour == "trap" {
            "trap"
        } else {
            "timeout"
        };
        assert_denied(step(&report, 1), -31001, "broken");
        let records = gw.stop();
        assert_eq!(
            records.len(),
            1,
            "{behaviour}: the call is logged, the previews are not: {records:#?}"
        );
        assert_eq!(records[0]["plugins"][2]["outcome"], outcome, "{records:#?}");
    }
    assert!(executed(&log).is_empty(), "{:?}", executed(&log));
}

#[test]
fn a_policy_update_is_hot_swapped_and_a_bad_one_keeps_the_last_good_set() {
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("calls.jsonl");
    let py = py_http_server(&log);
    let gw = gateway(
        &py_upstreams(py.port).replace("{LOG}", "/dev/null"),
        scratch.path(),
        "",
    );
    let add = |gw: &Gateway| {
        let body = call_body(9, "add", json!({"a": 1, "b": 2}));
        let (_, answer) = gw.post(
            "py",
            &[
                ("x-arbiter-agent", "spiffe://example.org/agent/demo"),
                ("x-arbiter-task", "task-h"),
                ("x-arbiter-intent", "mcp-demo"),
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "add"),
            ],
            &body,
        );
        answer
    };
    let until = |gw: &Gateway, done: &dyn Fn(&Value) -> bool| {
        for _ in 0..100 {
            let answer = add(gw);
            if done(&answer) {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the policy did not change within 10 s");
    };
    // Stateless 2026-07-28 requests to the HTTP upstream: each one is decided alone.
    let answer = add(&gw);
    assert!(
        answer.get("result").is_some() || answer["error"]["code"] != -31001,
        "{answer}"
    );
    // A bad settings file is refused; the last good set keeps deciding.
    let intent = gw.dir.path().join("intent.json");
    let good = std::fs::read_to_string(&intent).unwrap();
    std::fs::write(&intent, "{ not json").unwrap();
    std::thread::sleep(
        arbiter_host::watch::DEBOUNCE + arbiter_host::watch::SETTLE + Duration::from_millis(500),
    );
    let answer = add(&gw);
    assert_ne!(
        answer["error"]["code"], -31001,
        "still the last good set: {answer}"
    );
    // A good update takes `add` out of the intent: denied from the next decision on.
    std::fs::write(&intent, good.replace(r#"{"tool":"*/add"},"#, "")).unwrap();
    let answer = until(&gw, &|a| a["error"]["code"] == -31001);
    assert!(
        answer["error"]["data"]["generation"].as_u64().unwrap() >= 2,
        "{answer}"
    );
    let metrics = gw.metrics();
    assert!(
        metrics.contains("arbiter_reloads_total{result=\"failure\",trigger=\"watch\"}"),
        "{metrics}"
    );
}

#[test]
fn an_upstream_killed_mid_run_fails_clearly_and_denied_calls_stay_denied() {
    let scratch = tempfile::tempdir().unwrap();
    let http_log = scratch.path().join("http-calls.jsonl");
    let stdio_log = scratch.path().join("stdio-calls.jsonl");
    let py = py_http_server(&http_log);
    let upstreams = py_upstreams(py.port).replace("{LOG}", &stdio_log.display().to_string());
    let gw = gateway(&upstreams, scratch.path(), "upstream_timeout_ms = 5000");
    // An SDK session on each upstream, then the upstream dies.
    let headers = agent_headers("task-k");
    // A session on the stdio upstream, held open (raw requests: the SDKs end theirs).
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let (status, session, answer) = gw.post_full("pystdio", &[], &init.to_string());
    assert_eq!(status, 200, "{answer}");
    let session = session.expect("a session id");
    let in_session = [
        ("x-arbiter-agent", "spiffe://example.org/agent/demo"),
        ("x-arbiter-task", "task-k"),
        ("x-arbiter-intent", "mcp-demo"),
        ("mcp-protocol-version", "2025-11-25"),
        ("mcp-session-id", session.as_str()),
    ];
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        gw.post("pystdio", &in_session, &initialized.to_string()).0,
        202
    );
    let (_, answer) = gw.post(
        "pystdio",
        &in_session,
        &call_body(1, "add", json!({"a": 1, "b": 1})),
    );
    assert_eq!(answer["result"]["content"][0]["text"], "2", "{answer}");
    drop(py);
    let killed = Command::new("pkill")
        .args(["-f", "--", &format!("--call-log {}", stdio_log.display())])
        .status()
        .unwrap();
    assert!(
        killed.success(),
        "the stdio server's process was found and killed"
    );
    // The session's process is gone: a clear error, then the session is over.
    let (status, answer) = gw.post(
        "pystdio",
        &in_session,
        &call_body(2, "add", json!({"a": 2, "b": 2})),
    );
    let code = answer["error"]["code"].as_i64();
    assert!(
        (status == 200 && code == Some(-31010)) || (status == 404 && code == Some(-32600)),
        "{status} {answer}"
    );
    let (status, _) = gw.post(
        "pystdio",
        &in_session,
        &call_body(3, "add", json!({"a": 3, "b": 3})),
    );
    assert_eq!(status, 404, "the session ended with its process");
    let steps = json!([
        {"op": "call_tool", "name": "delete_everything", "arguments": {"confirm": true}},
        {"op": "call_tool", "name": "add", "arguments": {"a": 1, "b": 1}}
    ]);
    // HTTP upstream gone: the SDK cannot even start a session, and says why.
    let report = run_client_report(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), headers.clone()), "mode": "legacy", "steps": steps}),
    );
    assert!(
        report["fatal"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("upstream `py`"),
        "{report}"
    );
    // Raw calls to the dead HTTP upstream: the denied one is still denied before anything
    // is tried, the allowed one gets the upstream's failure.
    let agent = [
        ("x-arbiter-agent", "spiffe://example.org/agent/demo"),
        ("x-arbiter-task", "task-k"),
        ("x-arbiter-intent", "mcp-demo"),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let (status, answer) = gw.post(
        "py",
        &agent,
        &call_body(1, "delete_everything", json!({"confirm": true})),
    );
    assert_eq!(
        (status, answer["error"]["code"].as_i64()),
        (200, Some(-31001)),
        "{answer}"
    );
    let (status, answer) = gw.post("py", &agent, &call_body(2, "add", json!({"a": 1, "b": 1})));
    assert_eq!(
        (status, answer["error"]["code"].as_i64()),
        (502, Some(-31010)),
        "{answer}"
    );
    // The stdio server's process is gone: a new session starts a new one.
    let report = run_client(
        Sdk::TsV1,
        json!({"transport": http_transport(&gw.url("pystdio"), headers), "steps": steps}),
    );
    assert_denied(step(&report, 0), -31001, "delete_everything");
    assert_eq!(result_text(step(&report, 1)), "2", "{report}");
    for log in [&http_log, &stdio_log] {
        assert!(!executed_tools(log).iter().any(|t| t == "delete_everything"));
    }
}

#[test]
fn the_quick_start_runs_on_the_arbiter_gateway_binary_and_stops_on_sigterm() {
    const ADMIN: &str = "quick-start-admin-token";
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .args(["gateway", "--config"])
        .arg(root().join("examples/mcp-gateway.toml"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("NO_COLOR", "1")
        .env("ARBITER_ADMIN_TOKEN", ADMIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        let listening = line.contains("MCP gateway listening");
        seen.push(line);
        if listening {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("MCP gateway listening")),
        "{seen:#?}"
    );
    let mut input: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/mcp/quickstart-client.json")).unwrap(),
    )
    .unwrap();
    input["transport"]["url"] = json!(format!("http://127.0.0.1:{port}/mcp/demo"));
    input["open_task"]["url"] = json!(format!("http://127.0.0.1:{port}/v1/tasks"));
    // The gateway's default is opened tasks: a task the client names itself is denied.
    let mut unopened = input.clone();
    unopened.as_object_mut().unwrap().remove("open_task");
    unopened["transport"]["headers"]["x-arbiter-task"] = json!("t-chosen-by-the-agent");
    unopened["transport"]["headers"]["x-arbiter-intent"] = json!("demo");
    unopened["steps"] = json!([{"op": "call_tool", "name": "add", "arguments": {"a": 2, "b": 3}}]);
    let refused = run_client(Sdk::Python, unopened);
    assert_denied(step(&refused, 0), -31001, "was not opened");
    let report = run_client_with_env(Sdk::Python, input, &[("ARBITER_ADMIN_TOKEN", ADMIN)]);
    assert!(report.get("fatal").is_none(), "{report}");
    let opened = &report["opened_task"];
    assert_eq!(opened["intent"], "demo", "{report}");
    assert_eq!(opened["opened_by"], "admin", "{report}");
    assert!(!listed(step(&report, 0)).contains(&"delete_everything".to_owned()));
    assert_eq!(result_text(step(&report, 1)), "5");
    let denied = assert_denied(step(&report, 2), -31001, "not allowed for intent `demo`");
    assert!(result_text(step(&report, 3)).contains("ACCT-"));
    assert_denied(step(&report, 4), -31001, "restricted");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");
    let records: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 5, "one decision log line per call: {stdout}");
    assert!(records.iter().all(|r| r["tasks"] == "opened"), "{stdout}");
    let of_task = |id: &Value| records.iter().filter(|r| &r["task_id"] == id).count();
    assert_eq!(of_task(&json!("t-chosen-by-the-agent")), 1, "{stdout}");
    assert_eq!(of_task(&opened["id"]), 4, "{stdout}");
    let record = records
        .iter()
        .find(|r| r["decision_id"] == denied.as_str())
        .unwrap();
    assert_eq!(record["via"]["upstream"], "demo");
}

#[test]
fn every_handshake_revision_keeps_its_session_and_version_headers_through_the_gateway() {
    let scratch = tempfile::tempdir().unwrap();
    let py = mcp_dir().join("servers/py_server.py");
    let mut peers = Vec::new();
    let mut upstreams = String::new();
    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let tag = version.replace('-', "");
        let mut command = Command::new(python());
        command
            .arg(&py)
            .args(["http", "0", "--protocol-version", version, "--header-log"])
            .arg(scratch.path().join(format!("headers-{tag}.jsonl")));
        let peer = http_peer(command);
        upstreams.push_str(&format!(
            "[[gateway.upstream]]\nname = \"http{tag}\"\nurl = \"http://127.0.0.1:{}/mcp\"\n\
             [[gateway.upstream]]\nname = \"stdio{tag}\"\ncommand = [\"{}\", \"{}\", \"stdio\", \"--protocol-version\", \"{version}\"]\n",
            peer.port,
            python().display(),
            py.display()
        ));
        peers.push(peer);
    }
    let gw = gateway(&upstreams, scratch.path(), "");
    let steps = json!([
        {"op": "list_tools"},
        {"op": "call_tool", "name": "add", "arguments": {"a": 2, "b": 3}},
        {"op": "call_tool", "name": "delete_everything", "arguments": {"confirm": true}}
    ]);
    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let tag = version.replace('-', "");
        for (sdk, mode, transport) in [
            (Sdk::Python, "legacy", "http"),
            (Sdk::TsV1, "legacy", "stdio"),
            (Sdk::TsV2, "auto", "http"),
            (Sdk::Python, "auto", "stdio"),
        ] {
            let upstream = format!("{transport}{tag}");
            let report = run_client(
                sdk,
                json!({"transport": http_transport(&gw.url(&upstream), agent_headers(&format!("task-{tag}"))),
                       "mode": mode, "steps": steps}),
            );
            let what = format!("{sdk:?} {mode} via {upstream}");
            assert_eq!(report["protocol_version"], version, "{what}: {report}");
            assert!(
                report["session_id"].as_str().is_some_and(|s| s.len() >= 16),
                "{what}: {report}"
            );
            assert!(
                !listed(step(&report, 0)).contains(&"delete_everything".to_owned()),
                "{what}"
            );
            assert_eq!(result_text(step(&report, 1)), "5", "{what}: {report}");
            assert_denied(step(&report, 2), -31001, "delete_everything");
        }
        // What the HTTP upstream received: after `initialize`, the session and the
        // negotiated version on every request, relayed by the gateway.
        let log =
            std::fs::read_to_string(scratch.path().join(format!("headers-{tag}.jsonl"))).unwrap();
        let relayed: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let calls: Vec<&Value> = relayed
            .iter()
            .filter(|r| r["rpc"] == "tools/call")
            .collect();
        assert_eq!(calls.len(), 2, "only the allowed calls arrive: {log}");
        for call in calls {
            assert_eq!(call["headers"]["mcp-protocol-version"], version, "{call}");
            assert!(
                call["headers"]["mcp-session-id"].as_str().is_some(),
                "{call}"
            );
        }
    }
    drop(peers);
}

#[test]
fn a_list_changed_notification_leads_to_a_list_filtered_again() {
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("calls.jsonl");
    let py = py_http_server(&log);
    let gw = gateway(
        &py_upstreams(py.port).replace("{LOG}", "/dev/null"),
        scratch.path(),
        "",
    );
    for (i, (sdk, mode, upstream)) in [
        (Sdk::Python, "legacy", "py"),
        (Sdk::TsV1, "legacy", "pystdio"),
        (Sdk::TsV2, "auto", "py"),
        (Sdk::Python, "auto", "pystdio"),
    ]
    .into_iter()
    .enumerate()
    {
        // Tool names unique per run: an HTTP server keeps unlocked tools for its life.
        // The intent allows `*/bonus*`, not `extra*`.
        let (allowed, hidden) = (format!("bonus{i}"), format!("extra{i}"));
        let mut steps = vec![json!({"op": "list_tools"})];
        if mode == "auto" {
            // 2026-07-28 has no unsolicited notifications: changes come on a listen stream.
            steps.insert(0, json!({"op": "listen"}));
        }
        steps.extend([
            json!({"op": "call_tool", "name": "unlock", "arguments": {"name": allowed}}),
            json!({"op": "call_tool", "name": "unlock", "arguments": {"name": hidden}}),
            json!({"op": "wait_list_changed", "count": 2, "timeout": 10}),
            json!({"op": "list_tools"}),
            json!({"op": "call_tool", "name": allowed}),
            json!({"op": "call_tool", "name": hidden}),
        ]);
        let offset = usize::from(mode == "auto");
        let report = run_client(
            sdk,
            json!({"transport": http_transport(&gw.url(upstream), agent_headers(&format!("task-l{i}"))),
                   "mode": mode, "steps": steps}),
        );
        let what = format!("{sdk:?} {mode} via {upstream}");
        let before = listed(step(&report, offset));
        assert!(
            report["list_changed_events"].as_u64().unwrap() >= 2,
            "{what}: {report}"
        );
        let after = listed(step(&report, offset + 4));
        assert!(!before.contains(&allowed), "{what}: {before:?}");
        assert!(
            after.contains(&allowed),
            "{what}: filtered again: {after:?}"
        );
        assert_eq!(
            result_text(step(&report, offset + 5)),
            format!("unlocked tool {allowed} ran"),
            "{what}"
        );
        assert!(!after.contains(&hidden), "{what}: {after:?}");
        assert_denied(step(&report, offset + 6), -31001, &hidden);
    }
}

#[test]
fn an_exfiltration_chain_across_upstreams_is_denied_on_the_egress_call() {
    let scratch = tempfile::tempdir().unwrap();
    let fs_root = scratch.path().join("files");
    std::fs::create_dir(&fs_root).unwrap();
    std::fs::write(fs_root.join("payroll.txt"), "ACCT-87654321 salary 9000").unwrap();
    let log = scratch.path().join("calls.jsonl");
    let py = py_http_server(&log);
    let everything = everything_server();
    let filesystem = node_modules().join("@modelcontextprotocol/server-filesystem/dist/index.js");
    // The config says what each tool returns: the file reader and `get-sum` handle
    // restricted data; `post_message` is the egress.
    let upstreams = format!(
        "[[gateway.upstream]]\nname = \"fs\"\ncommand = [\"node\", \"{}\", \"{}\"]\n\
         tool_labels = {{ read_text_file = [\"restricted\"] }}\n\
         [[gateway.upstream]]\nname = \"everything\"\nurl = \"http://127.0.0.1:{}/mcp\"\n\
         tool_labels = {{ get-sum = [\"restricted\"] }}\n\
         [[gateway.upstream]]\nname = \"py\"\nurl = \"http://127.0.0.1:{}/mcp\"\n",
        filesystem.display(),
        fs_root.display(),
        everything.port,
        py.port
    );
    let gw = gateway(&upstreams, &fs_root, "");
    let post = |sdk: Sdk, task: &str, text: &str| {
        run_client(
            sdk,
            json!({"transport": http_transport(&gw.url("py"), agent_headers(task)), "mode": "legacy",
                   "steps": [{"op": "call_tool", "name": "post_message",
                              "arguments": {"channel": "#ext-partners", "text": text}}]}),
        )
    };
    // Read on the filesystem server, post through the Python server: one task.
    let read = run_client(
        Sdk::TsV1,
        json!({"transport": http_transport(&gw.url("fs"), agent_headers("task-x1")),
               "steps": [{"op": "call_tool", "name": "read_text_file",
                          "arguments": {"path": fs_root.join("payroll.txt").display().to_string()}}]}),
    );
    assert!(
        result_text(step(&read, 0)).contains("ACCT-87654321"),
        "{read}"
    );
    assert_denied(
        step(&post(Sdk::Python, "task-x1", "ACCT-87654321"), 0),
        -31001,
        "restricted",
    );
    // Read on server-everything, post through the Python server.
    let read = run_client(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("everything"), agent_headers("task-x2")), "mode": "legacy",
               "steps": [{"op": "call_tool", "name": "get-sum", "arguments": {"a": 40, "b": 2}}]}),
    );
    assert!(result_text(step(&read, 0)).contains("42"), "{read}");
    assert_denied(
        step(&post(Sdk::TsV1, "task-x2", "the sum is 42"), 0),
        -31001,
        "restricted",
    );
    // The same post in a task that read nothing goes through.
    assert_eq!(
        result_text(step(&post(Sdk::Python, "task-x3", "hello"), 0)),
        "posted to #ext-partners"
    );
    let posted: Vec<Value> = executed(&log);
    assert_eq!(posted.len(), 1, "only the clean post ran: {posted:?}");
}

#[test]
fn an_operator_ends_a_task_on_the_gateway_and_its_calls_are_denied() {
    const ADMIN: &str = "gateway-admin-token-0123456789";
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("calls.jsonl");
    let py = py_http_server(&log);
    let gw = gateway_with_plugins(
        &py_upstreams(py.port).replace("{LOG}", "/dev/null"),
        scratch.path(),
        "",
        &format!("[server]\nadmin_token = \"{ADMIN}\"\n"),
    );
    let steps = json!([
        {"op": "list_tools"},
        {"op": "call_tool", "name": "add", "arguments": {"a": 1, "b": 2}}
    ]);
    let run = || {
        run_client(
            Sdk::Python,
            json!({"transport": http_transport(&gw.url("py"), agent_headers("task-end")),
                   "mode": "legacy", "steps": steps}),
        )
    };
    let before = run();
    assert_eq!(result_text(step(&before, 1)), "3");
    // The decision server's admin API is on the gateway's listener, on the same service.
    let runtime = gw.runtime.as_ref().unwrap();
    let (status, ready) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let refused = client
            .post(format!("http://{}/v1/tasks/task-end/end", gw.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401, "admin endpoints need the token");
        let ended = client
            .post(format!("http://{}/v1/tasks/task-end/end", gw.addr))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let ready = client
            .get(format!("http://{}/readyz", gw.addr))
            .send()
            .await
            .unwrap();
        (
            ended.status().as_u16(),
            ready.json::<Value>().await.unwrap(),
        )
    });
    assert_eq!(status, 200);
    assert_eq!(ready["status"], "ready", "{ready}");
    let after = run();
    assert!(
        listed(step(&after, 0)).is_empty(),
        "an ended task lists nothing: {after}"
    );
    assert_denied(step(&after, 1), -31001, "ended");
    assert_eq!(
        executed_tools(&log),
        vec!["add"],
        "only the call before the end ran"
    );
}

#[test]
fn a_server_to_client_request_reaches_the_client_and_its_answer_the_server() {
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("calls.jsonl");
    let py = py_http_server(&log);
    let gw = gateway(
        &py_upstreams(py.port).replace("{LOG}", "/dev/null"),
        scratch.path(),
        "",
    );
    // `ping_client` sends the client a `ping` request on the call's stream and returns
    // only once the client's answer came back through the gateway.
    for (sdk, upstream) in [
        (Sdk::Python, "py"),
        (Sdk::TsV1, "pystdio"),
        (Sdk::TsV1, "py"),
        (Sdk::Python, "pystdio"),
    ] {
        let report = run_client(
            sdk,
            json!({"transport": http_transport(&gw.url(upstream), agent_headers("task-p")), "mode": "legacy",
                   "timeout": 20,
                   "steps": [{"op": "call_tool", "name": "ping_client", "arguments": {}}]}),
        );
        assert_eq!(
            result_text(step(&report, 0)),
            "the client answered the ping",
            "{sdk:?} via {upstream}: {report}"
        );
    }
}

#[test]
fn a_cancelled_stdio_call_is_cancelled_on_the_server() {
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("stdio-calls.jsonl");
    let upstreams = py_upstreams(free_port()).replace("{LOG}", &log.display().to_string());
    let gw = gateway(&upstreams, scratch.path(), "");
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let (_, session, _) = gw.post_full("pystdio", &[], &init.to_string());
    let session = session.expect("a session");
    let headers = [
        ("x-arbiter-agent", "spiffe://example.org/agent/demo"),
        ("x-arbiter-task", "task-c"),
        ("x-arbiter-intent", "mcp-demo"),
        ("mcp-protocol-version", "2025-11-25"),
        ("mcp-session-id", session.as_str()),
    ];
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    gw.post("pystdio", &headers, &initialized.to_string());
    let slow = |id: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "slow_count", "arguments": {"n": 40}, "_meta": {"progressToken": id}}})
        .to_string()
    };
    let runtime = gw.runtime.as_ref().unwrap();
    let url = gw.url("pystdio");
    let request = |body: String| {
        let mut r = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r
    };
    let held = runtime.block_on(async {
        // 1. The client closes the answer stream: the gateway cancels the call.
        let mut answer = request(slow(1)).send().await.unwrap();
        let first = answer.chunk().await.unwrap().unwrap();
        assert!(
            String::from_utf8_lossy(&first).contains("notifications/progress"),
            "streamed"
        );
        drop(answer);
        // 2. The client sends notifications/cancelled with its own request id.
        let mut answer = request(slow(2)).send().await.unwrap();
        let _ = answer.chunk().await.unwrap();
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 2, "reason": "the user gave up"}});
        let accepted = request(cancel.to_string()).send().await.unwrap();
        assert_eq!(accepted.status(), 202);
        // 3. A call left alone finishes.
        let done = request(slow(3).replace("40", "3")).send().await.unwrap();
        assert!(done.text().await.unwrap().contains("counted 3"));
        // The second call's stream stays open until the end: only the translated
        // notification can have cancelled it.
        answer
    });
    // 40 steps take 2 s: wait past that and see which counts finished.
    std::thread::sleep(Duration::from_millis(2500));
    let calls = executed(&log);
    let done: Vec<&Value> = calls
        .iter()
        .filter(|c| c["tool"] == "slow_count_done")
        .collect();
    assert_eq!(
        done.len(),
        1,
        "only the call left alone finished: {calls:?}"
    );
    assert_eq!(done[0]["arguments"]["n"], 3);
    drop(held);
}

#[test]
fn a_jwt_svid_is_the_agent_through_the_gateway_and_a_bad_one_is_refused_before_anything_runs() {
    use crate::common::svid::{AUDIENCE, SigningKey, claims, jwks, now};
    let scratch = tempfile::tempdir().unwrap();
    let calls = scratch.path().join("calls.jsonl");
    let headers_log = scratch.path().join("headers.jsonl");
    let mut command = Command::new(python());
    command
        .arg(mcp_dir().join("servers/py_server.py"))
        .args(["http", "0", "--call-log"])
        .arg(&calls)
        .arg("--header-log")
        .arg(&headers_log);
    let py = http_peer(command);
    let key = SigningKey::p256("gw-1");
    let bundle = scratch.path().join("example.org.jwks");
    std::fs::write(&bundle, jwks(&[&key])).unwrap();
    let identity = format!(
        "[identity]\nrequire_verified = true\naudience = \"{AUDIENCE}\"\n\
         [[identity.trust_domain]]\nname = \"example.org\"\njwt_bundle = \"{}\"\n",
        bundle.display()
    );
    let gw = gateway_with_plugins(
        &py_upstreams(py.port).replace("{LOG}", "/dev/null"),
        scratch.path(),
        "",
        &identity,
    );
    let agent = "spiffe://example.org/agent/demo";
    let token = key.token(&claims(agent));
    let task = |extra: Value| {
        let mut headers = json!({
            "authorization": format!("Bearer {token}"),
            "x-arbiter-task": "task-jwt",
            "x-arbiter-intent": "mcp-demo",
        });
        if let (Some(h), Some(e)) = (headers.as_object_mut(), extra.as_object()) {
            h.extend(e.clone());
        }
        headers
    };

    // The real Python client with a JWT-SVID: the call runs, and the decision is the SVID's.
    let report = run_client(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), task(json!({}))), "mode": "legacy",
               "steps": [{"op": "call_tool", "name": "echo", "arguments": {"message": "hi"}},
                         {"op": "call_tool", "name": "delete_everything", "arguments": {}}]}),
    );
    assert_eq!(result_text(step(&report, 0)), "hi", "{report}");
    let denied = &step(&report, 1)["error"]["data"]["identity"];
    assert_eq!(
        *denied,
        json!({"id": agent, "attestation": "jwt-svid", "source": "bearer", "trust_domain": "example.org"}),
        "{report}"
    );
    assert_eq!(executed_tools(&calls), vec!["echo"]);
    // No token passthrough: the upstream never saw the agent's credential.
    let seen = std::fs::read_to_string(&headers_log).unwrap();
    assert!(seen.contains("tools/call"), "{seen}");
    assert!(!seen.contains("authorization"), "{seen}");

    // An agent header naming another agent than the SVID: refused, nothing runs.
    let conflict = run_client_report(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), task(json!({"x-arbiter-agent": "spiffe://example.org/agent/admin"}))),
               "mode": "legacy", "steps": [{"op": "call_tool", "name": "echo", "arguments": {"message": "x"}}]}),
    );
    assert!(
        conflict.get("fatal").is_some() || step(&conflict, 0)["ok"] == false,
        "{conflict}"
    );
    let body = call_body(1, "echo", json!({"message": "raw"}));
    let expired = key.token(&json!({"sub": agent, "aud": [AUDIENCE], "exp": now() - 5}));
    for (headers, status, reason) in [
        (
            vec![
                ("authorization", format!("Bearer {token}")),
                (
                    "x-arbiter-agent",
                    "spiffe://example.org/agent/admin".to_owned(),
                ),
            ],
            403,
            "asserts agent `spiffe://example.org/agent/admin`",
        ),
        (
            vec![("authorization", format!("Bearer {expired}"))],
            401,
            "the token expired",
        ),
        (
            vec![("authorization", "Bearer not.a.jwt".to_owned())],
            401,
            "jwt-svid",
        ),
        (vec![], 401, "no verified identity"),
    ] {
        let mut pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        pairs.extend([
            ("x-arbiter-task", "task-jwt"),
            ("x-arbiter-intent", "mcp-demo"),
            ("mcp-protocol-version", "2025-06-18"),
        ]);
        let (got, answer) = gw.post("py", &pairs, &body);
        assert_eq!(got, status, "{reason}: {answer}");
        assert_eq!(answer["error"]["code"], -31005, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(reason),
            "{reason}: {answer}"
        );
    }
    // An unreadable agent header does not skip the credential check: no SVID, refused,
    // whatever the method (here `initialize`, which needs no decision).
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}});
    let request = reqwest::Client::new()
        .post(gw.url("py"))
        .header("accept", "application/json, text/event-stream")
        .header(
            "x-arbiter-agent",
            reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .json(&initialize);
    let (status, answer) = gw.runtime.as_ref().unwrap().block_on(async {
        let response = request.send().await.unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    });
    assert_eq!(
        (status, &answer["error"]["code"]),
        (401, &json!(-31005)),
        "{answer}"
    );
    assert_eq!(
        executed_tools(&calls),
        vec!["echo"],
        "nothing refused ever ran"
    );
    let metrics = gw.metrics();
    assert!(
        metrics.contains("arbiter_identity_refusals_total{reason=\"invalid\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("arbiter_identity_refusals_total{reason=\"unverified\"} 2"),
        "{metrics}"
    );
    let records = gw.stop();
    assert!(
        records.iter().all(|r| r["identity"]["source"] == "bearer"),
        "{records:#?}"
    );
}

#[test]
fn an_allowed_call_carries_a_credential_minted_for_it_which_task_end_and_quarantine_revoke() {
    use crate::common::svid::{AUDIENCE, SigningKey, claims, jwks};
    let scratch = tempfile::tempdir().unwrap();
    let calls = scratch.path().join("calls.jsonl");
    let seen = scratch.path().join("headers.jsonl");
    let gw_port = free_port();
    let jwks_url = format!("http://127.0.0.1:{gw_port}/v1/credentials/jwks");
    // The tool server verifies every call's credential itself, with PyJWT and the JWKS.
    let mut command = Command::new(python());
    command
        .arg(mcp_dir().join("servers/py_server.py"))
        .args(["http", "0", "--call-log"])
        .arg(&calls)
        .arg("--header-log")
        .arg(&seen)
        .args(["--require-credential", &jwks_url, "records-api"]);
    let py = http_peer(command);
    let agent_key = SigningKey::p256("gw-1");
    std::fs::write(scratch.path().join("agents.jwks"), jwks(&[&agent_key])).unwrap();
    let host_key = scratch.path().join("credentials.pem");
    let status = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&host_key)
        .status()
        .unwrap();
    assert!(status.success());
    const ADMIN: &str = "admin-token-for-the-credential-test";
    let tables = format!(
        "[identity]\naudience = \"{AUDIENCE}\"\n\
         [[identity.trust_domain]]\nname = \"example.org\"\njwt_bundle = \"{jwks}\"\n\
         [credentials]\nsigning_key = \"{key}\"\nissuer = \"spiffe://example.org/arbiter\"\nttl_ms = 300000\n\
         [server]\nadmin_token = \"{ADMIN}\"\n\
         [tasks.quarantine]\nafter_denies = 2\n",
        jwks = scratch.path().join("agents.jwks").display(),
        key = host_key.display(),
    );
    let upstream = format!(
        "[[gateway.upstream]]\nname = \"py\"\nurl = \"http://127.0.0.1:{}/mcp\"\n\
         credential = {{ audience = \"records-api\", scopes = [\"records:read\"] }}\n",
        py.port
    );
    let gw = gateway_at(gw_port, &upstream, scratch.path(), "", &tables);
    let agent = "spiffe://example.org/agent/demo";
    let headers = json!({
        "authorization": format!("Bearer {}", agent_key.token(&claims(agent))),
        "x-arbiter-task": "task-cred",
        "x-arbiter-intent": "mcp-demo",
    });
    let report = run_client(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), headers.clone()), "mode": "legacy",
               "steps": [{"op": "call_tool", "name": "echo", "arguments": {"message": "hello"}}]}),
    );
    assert_eq!(result_text(step(&report, 0)), "hello", "{report}");
    let lines: Vec<Value> = std::fs::read_to_string(&seen)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let verified = lines
        .iter()
        .find_map(|l| l.get("credential"))
        .unwrap_or_else(|| panic!("the tool server verified no credential: {lines:#?}"));
    assert_eq!(verified["sub"], agent);
    assert_eq!(verified["aud"], "records-api");
    assert_eq!(verified["tool"], "echo");
    assert_eq!(verified["task"], "task-cred");
    assert_eq!(verified["scope"], "records:read");
    assert_eq!(verified["iss"], "spiffe://example.org/arbiter");
    let ttl = verified["exp"].as_u64().unwrap() - verified["iat"].as_u64().unwrap();
    assert!(ttl <= 300, "expires within ttl_ms: {verified}");
    // What reached the tool server is the minted credential, never the agent's token.
    let token = lines
        .iter()
        .filter(|l| l["rpc"] == "tools/call")
        .find_map(|l| l["headers"]["authorization"].as_str())
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    assert_ne!(
        format!("Bearer {token}"),
        headers["authorization"].as_str().unwrap()
    );

    let post = |path: &str, body: Value, auth: Option<&str>| -> Value {
        let client = reqwest::Client::new();
        let mut request = client.post(format!("http://{}{path}", gw.addr)).json(&body);
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        gw.runtime.as_ref().unwrap().block_on(async {
            let response = request.send().await.unwrap();
            response.json().await.unwrap()
        })
    };
    let introspect = |extra: Value| {
        let mut body = json!({ "token": token, "audience": "records-api" });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        post("/v1/credentials/introspect", body, None)
    };
    assert_eq!(introspect(json!({}))["active"], true);
    assert_eq!(
        introspect(
            json!({"tool": "echo", "arguments": {"message": "hello"}, "audience": "records-api"})
        )["active"],
        true
    );
    // Bound to its call: another tool, other arguments or another audience is refused.
    for (other, reason) in [
        (json!({"tool": "add"}), "issued for tool `echo`"),
        (json!({"arguments": {"message": "bye"}}), "other arguments"),
        (
            json!({"audience": "billing-api"}),
            "issued for audience `records-api`",
        ),
    ] {
        let answer = introspect(other);
        assert_eq!(answer["active"], false, "{answer}");
        assert!(
            answer["reason"].as_str().unwrap().contains(reason),
            "{answer}"
        );
    }
    // And the tool server itself refuses it when replayed for another call.
    let replay = |tool: &str, arguments: Value| -> u16 {
        let client = reqwest::Client::new();
        let request = client
            .post(format!("http://127.0.0.1:{}/mcp", py.port))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .bearer_auth(&token)
            .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                          "params": {"name": tool, "arguments": arguments}}));
        gw.runtime
            .as_ref()
            .unwrap()
            .block_on(async { request.send().await.unwrap().status().as_u16() })
    };
    assert_eq!(replay("add", json!({"a": 1, "b": 2})), 401);
    assert_eq!(replay("echo", json!({"message": "bye"})), 401);
    // PyJWT outside the server: the JWKS verifies it, another audience does not.
    let script = "import json,sys,jwt\n\
        c=jwt.PyJWKClient(sys.argv[1]); t=sys.argv[2]; k=c.get_signing_key_from_jwt(t).key\n\
        print(json.dumps(jwt.decode(t,key=k,algorithms=['EdDSA'],audience='records-api')['sub']))\n\
        try:\n  jwt.decode(t,key=k,algorithms=['EdDSA'],audience='billing-api'); print('accepted')\n\
        except jwt.InvalidAudienceError: print('wrong audience refused')\n";
    let out = Command::new(python())
        .args(["-c", script, &jwks_url, &token])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text, format!("\"{agent}\"\nwrong audience refused\n"));

    // Deviation: the second deny of a task quarantines it; its next call is denied and
    // the credential minted for its allowed call is revoked, until an operator lifts it.
    let dev = json!({
        "authorization": headers["authorization"],
        "x-arbiter-task": "task-dev",
        "x-arbiter-intent": "mcp-demo",
    });
    let call = |name: &str, arguments: Value| json!({"op": "call_tool", "name": name, "arguments": arguments});
    let report = run_client(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), dev.clone()), "mode": "legacy",
               "steps": [call("echo", json!({"message": "one"})),
                         call("delete_everything", json!({"confirm": true})),
                         call("delete_everything", json!({"confirm": true})),
                         call("echo", json!({"message": "two"}))]}),
    );
    assert_eq!(result_text(step(&report, 0)), "one", "{report}");
    let reason = |i: usize| {
        step(&report, i)["error"]["data"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(!reason(1).contains("quarantined"), "{report}");
    assert!(
        reason(2).contains("the task is now quarantined: 2 denies in this task"),
        "{report}"
    );
    assert!(
        reason(3).contains("task `task-dev` is quarantined"),
        "{report}"
    );
    let dev_token = std::fs::read_to_string(&seen)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["rpc"] == "tools/call")
        .filter_map(|l| l["headers"]["authorization"].as_str().map(str::to_owned))
        .next_back()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    assert_ne!(dev_token, token);
    let answer = post(
        "/v1/credentials/introspect",
        json!({"token": dev_token, "audience": "records-api"}),
        None,
    );
    assert_eq!(answer["active"], false, "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("revoked"),
        "{answer}"
    );
    let lifted = post("/v1/tasks/task-dev/lift-quarantine", json!({}), Some(ADMIN));
    assert_eq!(lifted["lifted"], true, "{lifted}");
    let report = run_client(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), dev), "mode": "legacy",
               "steps": [call("echo", json!({"message": "three"}))]}),
    );
    assert_eq!(result_text(step(&report, 0)), "three", "{report}");
    assert_eq!(executed_tools(&calls), vec!["echo", "echo", "echo"]);

    // An opened task gives each agent a task credential; presented with the task's
    // actions it must be for that task and agent, or the call is refused.
    let opened = post(
        "/v1/tasks",
        json!({"agents": [agent], "intent": "mcp-demo"}),
        Some(ADMIN),
    );
    let opened_id = opened["id"].as_str().unwrap().to_owned();
    let task_credential = opened["credentials"][agent].as_str().unwrap().to_owned();
    let with_task_credential = |task: &str, credential: &str| {
        json!({
            "authorization": headers["authorization"],
            "x-arbiter-task": task,
            "x-arbiter-intent": "mcp-demo",
            "x-arbiter-task-credential": credential,
        })
    };
    let report = run_client(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), with_task_credential(&opened_id, &task_credential)),
               "mode": "legacy", "steps": [call("echo", json!({"message": "opened"}))]}),
    );
    assert_eq!(result_text(step(&report, 0)), "opened", "{report}");
    for (task, credential, reason) in [
        ("task-elsewhere", task_credential.as_str(), "is for task"),
        (
            opened_id.as_str(),
            token.as_str(),
            "not one this host issued",
        ),
    ] {
        let report = run_client(
            Sdk::Python,
            json!({"transport": http_transport(&gw.url("py"), with_task_credential(task, credential)),
                   "mode": "legacy", "steps": [call("echo", json!({"message": "nope"}))]}),
        );
        let refused = step(&report, 0);
        assert_eq!(refused["error"]["code"], -31004, "{report}");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains(reason),
            "{report}"
        );
    }
    assert_eq!(executed_tools(&calls), vec!["echo", "echo", "echo", "echo"]);

    // Ending the task revokes the credential, and the task's next call is denied.
    let ended = post("/v1/tasks/task-cred/end", json!({}), Some(ADMIN));
    assert_eq!(ended["credentials_revoked"], 1, "{ended}");
    let answer = introspect(json!({}));
    assert_eq!(answer["active"], false, "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("revoked"),
        "{answer}"
    );
    let report = run_client(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), headers), "mode": "legacy",
               "steps": [{"op": "call_tool", "name": "echo", "arguments": {"message": "again"}}]}),
    );
    let denied = step(&report, 0);
    assert_eq!(denied["error"]["code"], -31001, "{denied}");
    assert!(
        denied["error"]["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("ended"),
        "{denied}"
    );
    assert_eq!(
        denied["error"]["data"]["identity"]["attestation"],
        "jwt-svid"
    );
    assert_eq!(executed_tools(&calls), vec!["echo", "echo", "echo", "echo"]);
    let records = gw.stop();
    let allowed = records.iter().find(|r| r["effect"] == "allow").unwrap();
    assert!(allowed["credential_id"].is_string(), "{allowed}");
    assert!(
        !serde_json::to_string(&records).unwrap().contains(&token),
        "the log never holds the token"
    );
}

#[test]
fn with_opened_tasks_an_action_cannot_choose_its_intent_its_task_or_escape_a_taint() {
    let scratch = tempfile::tempdir().unwrap();
    let calls = scratch.path().join("calls.jsonl");
    let py = py_http_server(&calls);
    const ADMIN: &str = "admin-token-for-the-opened-task-test";
    let tables = format!("[server]\nadmin_token = \"{ADMIN}\"\n[tasks]\nmode = \"opened\"\n");
    let gw = gateway_with_plugins(
        &py_upstreams(py.port).replace("{LOG}", "/dev/null"),
        scratch.path(),
        "",
        &tables,
    );
    let agent = "spiffe://example.org/agent/demo";
    let post = |path: &str, body: Value, auth: Option<&str>| -> (u16, Value) {
        let client = reqwest::Client::new();
        let mut request = client.post(format!("http://{}{path}", gw.addr)).json(&body);
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        gw.runtime.as_ref().unwrap().block_on(async {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json().await.unwrap())
        })
    };
    let open = |inherit: bool| -> String {
        let (status, opened) = post(
            "/v1/tasks",
            json!({"agents": [agent], "intent": "mcp-demo", "inherit_labels": inherit}),
            Some(ADMIN),
        );
        assert_eq!(status, 201, "{opened}");
        assert_eq!(opened["opened_by"], "admin");
        opened["id"].as_str().unwrap().to_owned()
    };
    // Only an opener may open; a bad request names its field.
    let (status, refused) = post(
        "/v1/tasks",
        json!({"agents": [agent], "intent": "mcp-demo"}),
        None,
    );
    assert_eq!(status, 401, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs the admin token")
    );
    let (status, invalid) = post(
        "/v1/tasks",
        json!({"agents": [], "intent": "mcp-demo"}),
        Some(ADMIN),
    );
    assert_eq!(
        (status, invalid["error"]["field"].as_str()),
        (422, Some("agents")),
        "{invalid}"
    );

    let task = open(true);
    let headers = |task: &str, extra: Value| {
        let mut h = json!({"x-arbiter-agent": agent, "x-arbiter-task": task});
        if let (Some(h), Some(e)) = (h.as_object_mut(), extra.as_object()) {
            h.extend(e.clone());
        }
        h
    };
    let run = |h: Value, name: &str, arguments: Value| {
        run_client(
            Sdk::Python,
            json!({"transport": http_transport(&gw.url("py"), h), "mode": "legacy",
                   "steps": [{"op": "call_tool", "name": name, "arguments": arguments}]}),
        )
    };
    let reason = |report: &Value| {
        let s = step(report, 0);
        assert_eq!(s["ok"], false, "{report}");
        s["error"]["data"]["reason"].as_str().unwrap().to_owned()
    };
    // The action names the task only; intent comes from the opening. It reads restricted data.
    let read = run(headers(&task, json!({})), "read_record", json!({"id": "7"}));
    assert!(step(&read, 0)["ok"] == true, "{read}");
    // An intent other than the opened one, a task nobody opened, another agent: denied.
    let other_intent = run(
        headers(&task, json!({"x-arbiter-intent": "mcp-approval"})),
        "add",
        json!({"a": 1, "b": 2}),
    );
    assert!(
        reason(&other_intent).contains("`task.intent` is `mcp-approval` but task"),
        "{other_intent}"
    );
    let made_up = run(
        headers("task-made-up", json!({"x-arbiter-intent": "mcp-demo"})),
        "echo",
        json!({"message": "x"}),
    );
    assert!(
        reason(&made_up).contains("task `task-made-up` was not opened"),
        "{made_up}"
    );
    let intruder = run(
        headers(
            &task,
            json!({"x-arbiter-agent": "spiffe://example.org/agent/intruder"}),
        ),
        "echo",
        json!({"message": "x"}),
    );
    assert!(
        reason(&intruder).contains("not for agent `spiffe://example.org/agent/intruder`"),
        "{intruder}"
    );
    // A new task does not launder the taint: posting outside is denied there too ...
    let fresh = open(true);
    let post_out = |task: &str| {
        run(
            headers(task, json!({})),
            "post_message",
            json!({"channel": "#ext-partners", "text": "ACCT-1"}),
        )
    };
    assert!(reason(&post_out(&fresh)).contains("restricted"));
    // ... unless the opener starts it clean, which is recorded.
    let clean = open(false);
    let ok = post_out(&clean);
    assert!(step(&ok, 0)["ok"] == true, "{ok}");
    assert_eq!(executed_tools(&calls), vec!["read_record", "post_message"]);
    let records = gw.stop();
    assert!(
        records.iter().all(|r| r["tasks"] == "opened"),
        "{records:#?}"
    );
}

/// A Python tool server on HTTP that runs a `tools/call` only with a credential minted
/// for it by the gateway on `gw_port`, for `audience`.
fn credential_checking_server(
    scratch: &Path,
    gw_port: u16,
    audience: &str,
) -> (Peer, PathBuf, PathBuf) {
    let calls = scratch.join(format!("calls-{gw_port}.jsonl"));
    let seen = scratch.join(format!("headers-{gw_port}.jsonl"));
    let jwks_url = format!("http://127.0.0.1:{gw_port}/v1/credentials/jwks");
    let mut command = Command::new(python());
    command
        .arg(mcp_dir().join("servers/py_server.py"))
        .args(["http", "0", "--call-log"])
        .arg(&calls)
        .arg("--header-log")
        .arg(&seen)
        .args(["--require-credential", &jwks_url, audience]);
    (http_peer(command), calls, seen)
}

#[test]
fn a_plugin_obligation_or_a_per_tool_rule_asks_for_the_credential_and_what_cannot_carry_one_is_denied()
 {
    use crate::common::svid::{AUDIENCE, SigningKey, claims, jwks};
    let scratch = tempfile::tempdir().unwrap();
    let agent_key = SigningKey::p256("gw-1");
    std::fs::write(scratch.path().join("agents.jwks"), jwks(&[&agent_key])).unwrap();
    let host_key = scratch.path().join("credentials.pem");
    let status = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&host_key)
        .status()
        .unwrap();
    assert!(status.success());
    let tables = format!(
        "[identity]\naudience = \"{AUDIENCE}\"\n\
         [[identity.trust_domain]]\nname = \"example.org\"\njwt_bundle = \"{jwks}\"\n\
         [credentials]\nsigning_key = \"{key}\"\nissuer = \"spiffe://example.org/arbiter\"\n",
        jwks = scratch.path().join("agents.jwks").display(),
        key = host_key.display(),
    );
    let agent = "spiffe://example.org/agent/demo";
    let headers = json!({
        "authorization": format!("Bearer {}", agent_key.token(&claims(agent))),
        "x-arbiter-task": "task-asked",
        "x-arbiter-intent": "mcp-demo",
    });
    let call = |url: &str, name: &str, arguments: Value| {
        run_client(
            Sdk::Python,
            json!({"transport": http_transport(url, headers.clone()), "mode": "legacy",
                   "steps": [{"op": "call_tool", "name": name, "arguments": arguments}]}),
        )
    };
    let minted_scopes = |seen: &Path| -> Vec<String> {
        std::fs::read_to_string(seen)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|l| l["credential"]["scope"].as_str().map(str::to_owned))
            .collect()
    };

    // A plugin asks: its allow carries `credential` with the scopes the call needs.
    let port = free_port();
    let (py, calls, seen) = credential_checking_server(scratch.path(), port, "py");
    let asking = format!(
        "[[plugin]]\nname = \"asks\"\npath = \"{}\"\nsettings = {{ behaviour = \"echo\", effect = \"allow\", obligation = [\"credential\", \"records:write\"] }}\n{tables}",
        root().join("build/fixtures/misbehave.wasm").display()
    );
    let upstreams = py_upstreams(py.port).replace("{LOG}", "/dev/null");
    let gw = gateway_at(port, &upstreams, scratch.path(), "", &asking);
    let report = call(&gw.url("py"), "echo", json!({"message": "asked"}));
    assert_eq!(result_text(step(&report, 0)), "asked", "{report}");
    assert_eq!(minted_scopes(&seen), vec!["records:write"]);
    // A stdio upstream cannot carry a credential: the obligation cannot be honoured, so
    // the call is denied rather than sent without it.
    let report = call(&gw.url("pystdio"), "echo", json!({"message": "no way"}));
    let denied = step(&report, 0);
    assert_eq!(denied["error"]["code"], -31001, "{report}");
    assert!(
        denied["error"]["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("obligation `credential`"),
        "{report}"
    );
    assert_eq!(executed_tools(&calls), vec!["echo"]);
    drop(gw);
    drop(py);

    // The config asks, for some tools only.
    let port = free_port();
    let (py, calls, seen) = credential_checking_server(scratch.path(), port, "py");
    let upstream = format!(
        "[[gateway.upstream]]\nname = \"py\"\nurl = \"http://127.0.0.1:{}/mcp\"\n\
         credential = {{ tools = [\"add\"], scopes = [\"math\"] }}\n",
        py.port
    );
    let gw = gateway_at(port, &upstream, scratch.path(), "", &tables);
    let report = call(&gw.url("py"), "add", json!({"a": 2, "b": 3}));
    assert_eq!(result_text(step(&report, 0)), "5", "{report}");
    // `echo` is not covered: it goes without a credential, and this tool server refuses it.
    let report = call(&gw.url("py"), "echo", json!({"message": "uncovered"}));
    assert_eq!(step(&report, 0)["ok"], false, "{report}");
    assert_eq!(executed_tools(&calls), vec!["add"]);
    assert_eq!(minted_scopes(&seen), vec!["math"]);
}

#[test]
fn over_mtls_the_gateway_decides_as_the_client_certificates_spiffe_id() {
    use crate::common::svid::Ca;
    let scratch = tempfile::tempdir().unwrap();
    let calls = scratch.path().join("calls.jsonl");
    let py = py_http_server(&calls);
    let agents = Ca::new("example.org CA");
    let server_ca = Ca::new("gateway server CA");
    let server_cert = server_ca.leaf(&[], |p| {
        p.subject_alt_names = vec![rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap())];
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    });
    let dir = scratch.path();
    std::fs::write(dir.join("server.pem"), &server_cert).unwrap();
    std::fs::write(dir.join("agents.pem"), agents.pem()).unwrap();
    let tables = format!(
        "[identity]\nrequire_verified = true\n[identity.tls]\ncertificate = \"{d}/server.pem\"\nprivate_key = \"{d}/server.pem\"\n\
         [[identity.trust_domain]]\nname = \"example.org\"\nx509_bundle = \"{d}/agents.pem\"\n",
        d = dir.display()
    );
    let port = free_port();
    let config = format!(
        "{policy}{tables}[server.decision_log]\nsink = \"decisions.jsonl\"\nredact_arguments = false\n\
         [gateway]\n{upstreams}",
        policy = policy(dir, dir),
        upstreams = py_upstreams(py.port).replace("{LOG}", "/dev/null"),
    );
    let path = dir.join("arbiter.toml");
    std::fs::write(&path, config).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let done = runtime.spawn(async move {
        arbiter_host::adapters::mcp::serve_until(&path, Some(addr), async {
            let _ = stopped.await;
        })
        .await
    });
    let agent = "spiffe://example.org/agent/demo";
    let client = |certificate: Option<&str>| {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(
                reqwest::Certificate::from_pem(server_ca.pem().as_bytes()).unwrap(),
            );
        if let Some(pem) = certificate {
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    };
    let base = format!("https://127.0.0.1:{port}");
    runtime.block_on(async {
        for _ in 0..600 {
            assert!(!done.is_finished(), "the gateway stopped");
            if let Ok(r) = client(None).get(format!("{base}/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("gateway not ready over TLS within 60 s");
    });
    let good = agents.leaf(&[agent], |_| {});
    let rogue = Ca::new("rogue").leaf(&[agent], |_| {});
    let post = |certificate: Option<&str>, extra: &[(&str, &str)], body: Value| -> (u16, Value) {
        let mut request = client(certificate)
            .post(format!("{base}/mcp/py"))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .header("x-arbiter-task", "task-tls")
            .header("x-arbiter-intent", "mcp-demo")
            .json(&body);
        for (k, v) in extra {
            request = request.header(*k, *v);
        }
        runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            // An SSE answer holds the JSON in its `data:` line.
            let json = text
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or(&text)
                .to_owned();
            (
                status,
                serde_json::from_str(&json).unwrap_or(Value::String(text)),
            )
        })
    };
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw-tls", "version": "0"}}});
    let (status, answer) = post(Some(&good), &[], initialize.clone());
    assert_eq!(status, 200, "{answer}");
    // Without a certificate, with one from an untrusted CA, or with a header naming
    // another agent: refused before anything is relayed.
    let (status, answer) = post(None, &[], initialize.clone());
    assert_eq!(
        (status, &answer["error"]["code"]),
        (401, &json!(-31005)),
        "{answer}"
    );
    let (status, answer) = post(Some(&rogue), &[], initialize.clone());
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not verify"),
        "{answer}"
    );
    let (status, answer) = post(
        Some(&good),
        &[("x-arbiter-agent", "spiffe://example.org/agent/admin")],
        initialize,
    );
    assert_eq!(status, 403, "{answer}");
    // A call decided for the certificate's SPIFFE ID (denied, so never relayed: no session needed).
    let denied = post(
        Some(&good),
        &[],
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "delete_everything", "arguments": {"confirm": true}}}),
    );
    let identity = &denied.1["error"]["data"]["identity"];
    assert_eq!(
        *identity,
        json!({"id": agent, "attestation": "x509-svid", "source": "mtls", "trust_domain": "example.org"}),
        "{denied:?}"
    );
    assert!(executed_tools(&calls).is_empty());
    let _ = stop.send(());
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), done).await })
        .expect("gateway stops")
        .unwrap()
        .unwrap();
}

/// A JSON request to the gateway's own API, with an optional bearer token.
fn api(
    gw: &Gateway,
    method: &str,
    path: &str,
    body: Option<Value>,
    bearer: Option<&str>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("http://{}{path}", gw.addr);
    let mut request = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    gw.runtime.as_ref().unwrap().block_on(async {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

/// The Python HTTP server (its calls logged to `calls`) behind a gateway with `tables`.
fn py_behind_gateway(scratch: &Path, calls: &Path, tables: &str) -> (Peer, Gateway) {
    let py = py_http_server(calls);
    let gw = gateway_with_plugins(
        &py_upstreams(py.port).replace("{LOG}", "/dev/null"),
        scratch,
        "",
        tables,
    );
    (py, gw)
}

/// A console URL and one approver group, `ops-approvers`, whose token is `ops`.
fn approver_tables(ops: &str) -> String {
    format!(
        "[approvals]\nconsole_url = \"http://127.0.0.1:8480/console\"\n\
         [[approvals.group]]\nname = \"ops-approvers\"\ntoken = \"{ops}\"\n"
    )
}

#[test]
fn a_step_up_completes_once_an_approver_approves_the_exact_call_and_allows_it_once() {
    let scratch = tempfile::tempdir().unwrap();
    let calls = scratch.path().join("calls.jsonl");
    const ADMIN: &str = "admin-token-for-the-approval-test";
    const OPS: &str = "ops-approvers-token-for-the-approval-test";
    const FINANCE: &str = "finance-token-for-the-approval-test";
    let tables = format!(
        "[server]\nadmin_token = \"{ADMIN}\"\n[tasks]\nmode = \"opened\"\n\
         [approvals]\nconsole_url = \"http://127.0.0.1:8480/console\"\n\
         [[approvals.group]]\nname = \"ops-approvers\"\ntoken = \"{OPS}\"\n\
         [[approvals.group]]\nname = \"finance\"\ntoken = \"{FINANCE}\"\n"
    );
    let (_py, gw) = py_behind_gateway(scratch.path(), &calls, &tables);
    let agent = "spiffe://example.org/agent/demo";
    let open = || -> String {
        let (status, opened) = api(
            &gw,
            "POST",
            "/v1/tasks",
            Some(json!({"agents": [agent], "intent": "mcp-approval"})),
            Some(ADMIN),
        );
        assert_eq!(status, 201, "{opened}");
        opened["id"].as_str().unwrap().to_owned()
    };
    let calls_in = |task: &str, steps: Value| -> Value {
        run_client(
            Sdk::Python,
            json!({"transport": http_transport(&gw.url("py"), json!({"x-arbiter-agent": agent, "x-arbiter-task": task})),
                   "mode": "legacy", "steps": steps}),
        )
    };
    let delete = |confirm: bool| json!({"op": "call_tool", "name": "delete_everything", "arguments": {"confirm": confirm}});
    let approval_of = |s: &Value| -> String {
        let approval = &s["error"]["data"]["approval"];
        assert_eq!(approval["status"], "pending", "{s}");
        approval["id"].as_str().unwrap().to_owned()
    };
    let answer = |id: &str, verb: &str, body: Value, token: Option<&str>| {
        api(
            &gw,
            "POST",
            &format!("/v1/approvals/{id}/{verb}"),
            Some(body),
            token,
        )
    };

    // The step-up asks for an approval of exactly this call, and says where to give it.
    let task = open();
    let report = calls_in(&task, json!([delete(true)]));
    let first = step(&report, 0);
    assert_denied(first, -31002, "was asked for");
    let a1 = approval_of(first);
    assert_eq!(
        first["error"]["data"]["approval"]["groups"],
        json!(["ops-approvers"])
    );
    assert_eq!(
        first["error"]["data"]["approval"]["page"],
        format!("http://127.0.0.1:8480/console/approvals/{a1}")
    );
    // Asking again before anyone answered is the same approval, not a new one.
    let again = calls_in(&task, json!([delete(true)]));
    assert_eq!(approval_of(step(&again, 0)), a1);

    // Only an approver of the group it names may answer; the admin token may only read.
    let (status, listed) = api(
        &gw,
        "GET",
        "/v1/approvals?status=pending",
        None,
        Some(ADMIN),
    );
    assert_eq!(status, 200, "{listed}");
    let pending = &listed["approvals"][0];
    assert_eq!(pending["id"], a1.as_str());
    assert_eq!(pending["binding"]["agent"], agent);
    assert_eq!(pending["binding"]["task"], task.as_str());
    assert_eq!(pending["arguments"], json!({"confirm": true}));
    assert_eq!(pending["intent"], "mcp-approval");
    assert_eq!(pending["causes"][0]["plugin"], "intent");
    let (status, refused) = answer(&a1, "approve", json!({"approver": "root"}), Some(ADMIN));
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("not_an_approver")),
        "{refused}"
    );
    let (status, refused) = answer(&a1, "approve", json!({"approver": "fin"}), Some(FINANCE));
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs `ops-approvers`"),
        "{refused}"
    );
    let (status, refused) = answer(&a1, "approve", json!({}), None);
    assert_eq!(status, 401, "{refused}");
    let (status, refused) = answer(&a1, "approve", json!({}), Some(OPS));
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (422, Some("approver")),
        "{refused}"
    );
    // The CLI, as an approver would use it: list what waits, then approve it.
    let cli = |token: &str, args: &[&str]| -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_arbiter"))
            .arg("approvals")
            .args(args)
            .args(["--server", &format!("http://{}", gw.addr)])
            .env("ARBITER_APPROVER_TOKEN", token)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, listed, _) = cli(OPS, &["list", "--status", "pending"]);
    assert!(
        ok && listed.contains(&a1) && listed.contains("py/delete_everything"),
        "{listed}"
    );
    let (ok, _, error) = cli(ADMIN, &["approve", &a1, "--approver", "root"]);
    assert!(!ok && error.contains("does not answer"), "{error}");
    let (ok, out, error) = cli(
        OPS,
        &["approve", &a1, "--approver", "alice", "--note", "planned"],
    );
    assert!(ok, "{error}");
    assert!(out.contains(&a1) && out.contains("approved"), "{out}");
    let (_, approved) = api(&gw, "GET", &format!("/v1/approvals/{a1}"), None, Some(OPS));
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["approved_by"][0]["approver"], "alice");
    assert_eq!(approved["approved_by"][0]["note"], "planned");
    assert_eq!(
        approved["approved_by"][0]["authenticated_by"],
        "token:ops-approvers"
    );
    assert!(
        executed_tools(&calls).is_empty(),
        "nothing ran before the retry"
    );

    // Changed arguments ask again; the identical retry runs once; a replay asks again.
    let report = calls_in(&task, json!([delete(false), delete(true), delete(true)]));
    let changed = step(&report, 0);
    assert_denied(
        changed,
        -31002,
        &format!("approval `{a1}` is for other arguments"),
    );
    let a2 = approval_of(changed);
    assert!(report["steps"][1]["ok"].as_bool().unwrap(), "{report}");
    let replay = step(&report, 2);
    assert_denied(
        replay,
        -31002,
        &format!("approval `{a1}` for this call was already used"),
    );
    let a3 = approval_of(replay);
    assert_eq!(
        executed(&calls),
        vec![json!({"tool": "delete_everything", "arguments": {"confirm": true}})],
        "exactly the approved call ran, once"
    );

    // A rejection denies the call it was for.
    let (status, rejected) = answer(
        &a2,
        "reject",
        json!({"approver": "bob", "note": "not today"}),
        Some(OPS),
    );
    assert_eq!(
        (status, rejected["status"].as_str()),
        (200, Some("rejected")),
        "{rejected}"
    );
    let report = calls_in(&task, json!([delete(false)]));
    assert_denied(step(&report, 0), -31001, "was rejected by `bob`: not today");
    let (status, closed) = answer(&a2, "approve", json!({"approver": "alice"}), Some(OPS));
    assert_eq!(
        (status, closed["error"]["code"].as_str()),
        (409, Some("approval_closed")),
        "{closed}"
    );

    // An approval is for its task: the same call in another task asks for its own.
    let (status, _) = answer(&a3, "approve", json!({"approver": "alice"}), Some(OPS));
    assert_eq!(status, 200);
    let other = open();
    let report = calls_in(&other, json!([delete(true)]));
    assert_denied(
        step(&report, 0),
        -31002,
        &format!("approval `{a3}` is for task `{task}`"),
    );
    let a4 = approval_of(step(&report, 0));

    // Once its task has ended, nothing of it is approved or runs.
    let (status, _) = api(
        &gw,
        "POST",
        &format!("/v1/tasks/{other}/end"),
        None,
        Some(ADMIN),
    );
    assert_eq!(status, 200);
    let (status, closed) = answer(&a4, "approve", json!({"approver": "alice"}), Some(OPS));
    assert_eq!(
        (status, closed["error"]["code"].as_str()),
        (409, Some("task_closed")),
        "{closed}"
    );
    let report = calls_in(&other, json!([delete(true)]));
    assert_denied(step(&report, 0), -31001, "ended");
    assert_eq!(executed(&calls).len(), 1);

    // The allowed decision names the approval that allowed it.
    let records = gw.stop();
    let allowed: Vec<&Value> = records.iter().filter(|r| r["effect"] == "allow").collect();
    assert_eq!(allowed.len(), 1, "{records:#?}");
    assert_eq!(allowed[0]["approval"]["id"], a1.as_str());
    assert_eq!(allowed[0]["approval"]["status"], "consumed");
    assert_eq!(allowed[0]["approval"]["approved_by"], json!(["alice"]));
    assert!(
        allowed[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("allowed by approval `{a1}`"))
    );
}

#[test]
fn at_2026_07_28_a_step_up_sends_the_client_to_the_approval_page_and_its_retry_runs_the_call() {
    let scratch = tempfile::tempdir().unwrap();
    let calls = scratch.path().join("calls.jsonl");
    const OPS: &str = "ops-approvers-token-for-the-elicitation-test";
    let tables = approver_tables(OPS);
    let (_py, gw) = py_behind_gateway(scratch.path(), &calls, &tables);
    let headers = json!({
        "x-arbiter-agent": "spiffe://example.org/agent/demo",
        "x-arbiter-task": "task-elicit",
        "x-arbiter-intent": "mcp-approval",
    });
    let api_base = format!("http://{}", gw.addr);
    // The user follows the link, an approver approves there, the user accepts: the SDK
    // retries the call on its own and it runs.
    let report = run_client(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), headers.clone()), "mode": "2026-07-28",
               "elicitation": {"approve": {"api": api_base, "token": OPS, "approver": "alice"}},
               "steps": [{"op": "call_tool", "name": "delete_everything", "arguments": {"confirm": true}}]}),
    );
    assert_eq!(report["protocol_version"], "2026-07-28", "{report}");
    let elicitations = report["elicitations"].as_array().unwrap();
    assert_eq!(elicitations.len(), 1, "{report}");
    assert_eq!(elicitations[0]["mode"], "url");
    let url = elicitations[0]["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:8480/console/approvals/apr-"),
        "{url}"
    );
    assert!(
        elicitations[0]["message"]
            .as_str()
            .unwrap()
            .contains("needs approval"),
        "{report}"
    );
    assert_eq!(elicitations[0]["approved"], 200, "{report}");
    assert_eq!(step(&report, 0)["ok"], true, "{report}");
    assert_eq!(
        executed(&calls),
        vec![json!({"tool": "delete_everything", "arguments": {"confirm": true}})],
        "the upstream got the call without the gateway's requestState or inputResponses"
    );

    // The TypeScript SDK 2.x, pinned to 2026-07-28, does the same with its own driver.
    let report = run_client(
        Sdk::TsV2,
        json!({"transport": http_transport(&gw.url("py"), headers.clone()), "mode": "2026-07-28",
               "elicitation": {"approve": {"api": api_base, "token": OPS, "approver": "alice"}},
               "steps": [{"op": "call_tool", "name": "delete_everything", "arguments": {"confirm": true}}]}),
    );
    assert_eq!(report["elicitations"][0]["mode"], "url", "{report}");
    assert_eq!(report["elicitations"][0]["approved"], 200, "{report}");
    assert_eq!(step(&report, 0)["ok"], true, "{report}");
    assert_eq!(
        executed(&calls).len(),
        2,
        "one more call, after its own approval"
    );

    // A user who declines is not asked again: the call gets the step-up error.
    let report = run_client(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), headers), "mode": "2026-07-28",
               "elicitation": {"action": "decline"},
               "steps": [{"op": "call_tool", "name": "delete_everything", "arguments": {"confirm": false}}]}),
    );
    assert_eq!(
        report["elicitations"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    let declined = step(&report, 0);
    assert_denied(declined, -31002, "is still pending");
    assert_eq!(declined["error"]["data"]["approval"]["status"], "pending");
    assert_eq!(executed(&calls).len(), 2);
}

#[test]
fn at_2025_11_25_a_session_that_declared_url_elicitation_gets_the_url_elicitation_error_and_its_retry_runs()
 {
    let scratch = tempfile::tempdir().unwrap();
    let calls = scratch.path().join("calls.jsonl");
    const OPS: &str = "ops-approvers-token-for-the-url-error-test";
    let tables = approver_tables(OPS);
    let (_py, gw) = py_behind_gateway(scratch.path(), &calls, &tables);
    let headers = json!({
        "x-arbiter-agent": "spiffe://example.org/agent/demo",
        "x-arbiter-task": "task-url-error",
        "x-arbiter-intent": "mcp-approval",
    });
    let approve = json!({"api": format!("http://{}", gw.addr), "token": OPS, "approver": "alice"});
    let delete = json!({"op": "call_tool", "name": "delete_everything", "arguments": {"confirm": true},
                        "retry_after_url": true});
    // The session declared URL elicitation (the SDK does once a callback is set).
    let report = run_client(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), headers.clone()), "mode": "legacy",
               "elicitation": {"approve": approve}, "steps": [delete]}),
    );
    assert_eq!(report["protocol_version"], "2025-11-25", "{report}");
    let called = step(&report, 0);
    let required = &called["url_elicitation_required"];
    let elicitation = &required["elicitations"][0];
    assert_eq!(elicitation["mode"], "url", "{report}");
    let id = elicitation["elicitationId"].as_str().unwrap();
    assert!(id.starts_with("apr-"), "{report}");
    assert_eq!(
        elicitation["url"],
        format!("http://127.0.0.1:8480/console/approvals/{id}")
    );
    assert_eq!(required["approved"], 200, "{report}");
    assert_eq!(called["ok"], true, "the retry after approval ran: {report}");
    assert_eq!(executed(&calls).len(), 1);

    // The TypeScript SDK 1.x raises its UrlElicitationRequiredError for the same answer.
    let report = run_client(
        Sdk::TsV1,
        json!({"transport": http_transport(&gw.url("py"), headers.clone()),
               "elicitation": {"approve": approve}, "steps": [delete]}),
    );
    let called = step(&report, 0);
    assert_eq!(
        called["url_elicitation_required"]["class"], "UrlElicitationRequiredError",
        "{report}"
    );
    assert_eq!(
        called["url_elicitation_required"]["approved"], 200,
        "{report}"
    );
    assert_eq!(called["ok"], true, "{report}");
    assert_eq!(executed(&calls).len(), 2);

    // A session that did not declare it gets the plain step-up error.
    let report = run_client(
        Sdk::Python,
        json!({"transport": http_transport(&gw.url("py"), headers), "mode": "legacy",
               "steps": [{"op": "call_tool", "name": "delete_everything", "arguments": {"confirm": false}}]}),
    );
    let plain = step(&report, 0);
    assert_denied(plain, -31002, "was asked for");
    assert!(
        plain["error"]["data"]["approval"]["page"].is_string(),
        "{plain}"
    );
    assert_eq!(executed(&calls).len(), 2);
}

/// A console request: `(status, headers, body)`, redirects not followed.
fn console(
    gw: &Gateway,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("http://{}{path}", gw.addr);
    let mut request = if method == "GET" {
        client.get(url)
    } else {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| {
                let enc = |s: &str| -> String {
                    s.bytes()
                        .map(|b| {
                            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                                char::from(b).to_string()
                            } else {
                                format!("%{b:02X}")
                            }
                        })
                        .collect()
                };
                format!("{}={}", enc(k), enc(v))
            })
            .collect();
        client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
    };
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    gw.runtime.as_ref().unwrap().block_on(async {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    })
}

#[test]
fn the_console_shows_nothing_without_a_login_and_an_approver_approves_a_step_up_there() {
    let scratch = tempfile::tempdir().unwrap();
    let calls = scratch.path().join("calls.jsonl");
    const ADMIN: &str = "admin-token-for-the-console-test";
    const OPS: &str = "ops-approvers-token-for-the-console-test";
    let tables = format!(
        "[server]\nadmin_token = \"{ADMIN}\"\n\
         [[approvals.group]]\nname = \"ops-approvers\"\ntoken = \"{OPS}\"\n"
    );
    let (_py, gw) = py_behind_gateway(scratch.path(), &calls, &tables);
    // Nothing without a login: pages redirect to the form, data answers 401.
    for path in [
        "/console",
        "/console/decisions",
        "/console/policy",
        "/console/tasks",
        "/console/approvals/apr-x",
    ] {
        let (status, headers, _) = console(&gw, "GET", path, None, &[]);
        assert_eq!(status, 303, "{path}");
        assert_eq!(headers["location"], "/console/login", "{path}");
    }
    let (status, _, _) = console(&gw, "GET", "/console/approvals.json", None, &[]);
    assert_eq!(status, 401);
    let (status, headers, page) = console(&gw, "GET", "/console/login", None, &[]);
    assert_eq!(status, 200);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(page.contains("Log in") && !page.contains("apr-"), "{page}");
    let (status, _, page) = console(
        &gw,
        "POST",
        "/console/login",
        None,
        &[("token", "wrong"), ("approver", "x")],
    );
    assert_eq!(status, 401, "{page}");
    let (status, _, page) = console(
        &gw,
        "POST",
        "/console/login",
        None,
        &[("token", OPS), ("approver", "")],
    );
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("say who you are"), "{page}");
    let login = |token: &str, name: &str| -> String {
        let (status, headers, _) = console(
            &gw,
            "POST",
            "/console/login",
            None,
            &[("token", token), ("approver", name)],
        );
        assert_eq!(status, 303);
        let set = headers["set-cookie"].to_str().unwrap().to_owned();
        assert!(
            set.contains("HttpOnly")
                && set.contains("SameSite=Strict")
                && set.contains("Path=/console"),
            "{set}"
        );
        set.split(';').next().unwrap().to_owned()
    };
    let alice = login(OPS, "alice");

    // A step-up through the gateway is on the approvals page.
    let headers = json!({"x-arbiter-agent": "spiffe://example.org/agent/demo",
                         "x-arbiter-task": "task-console", "x-arbiter-intent": "mcp-approval"});
    let call = json!({"transport": http_transport(&gw.url("py"), headers), "mode": "legacy",
                      "steps": [{"op": "call_tool", "name": "delete_everything", "arguments": {"confirm": true}}]});
    let report = run_client(Sdk::Python, call.clone());
    let id = step(&report, 0)["error"]["data"]["approval"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, page) = console(&gw, "GET", "/console", Some(&alice), &[]);
    assert_eq!(status, 200);
    assert!(
        page.contains(&id) && page.contains("py/delete_everything"),
        "{page}"
    );
    let (status, _, page) = console(
        &gw,
        "GET",
        &format!("/console/approvals/{id}"),
        Some(&alice),
        &[],
    );
    assert_eq!(status, 200);
    assert!(
        page.contains("mcp-approval") && page.contains("confirm"),
        "{page}"
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();

    // A form without the session's CSRF token is refused; the admin reads but cannot answer.
    let approve_path = format!("/console/approvals/{id}/approve");
    let (status, _, _) = console(
        &gw,
        "POST",
        &approve_path,
        Some(&alice),
        &[("csrf", "forged")],
    );
    assert_eq!(status, 403);
    let admin = login(ADMIN, "");
    let (status, _, page) = console(
        &gw,
        "GET",
        &format!("/console/approvals/{id}"),
        Some(&admin),
        &[],
    );
    assert_eq!(status, 200);
    assert!(
        !page.contains("id=\"approve\"") && page.contains("does not answer"),
        "{page}"
    );
    let admin_csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let (status, _, _) = console(
        &gw,
        "POST",
        &approve_path,
        Some(&admin),
        &[("csrf", &admin_csrf)],
    );
    assert_eq!(status, 403);
    assert!(executed(&calls).is_empty());

    let (status, headers, _) = console(
        &gw,
        "POST",
        &approve_path,
        Some(&alice),
        &[("csrf", &csrf), ("note", "looks right")],
    );
    // Post/redirect/get: a reload of the page never answers again.
    assert_eq!(status, 303);
    let location = headers["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("/console/approvals/{id}?notice=Approved")),
        "{location}"
    );
    let (_, _, page) = console(&gw, "GET", &location, Some(&alice), &[]);
    assert!(
        page.contains("Approved.") && page.contains("looks right"),
        "{page}"
    );
    let report = run_client(Sdk::Python, call);
    assert_eq!(step(&report, 0)["ok"], true, "{report}");
    assert_eq!(executed(&calls).len(), 1);

    // Decisions, policy set and tasks, as an operator sees them.
    let (_, _, page) = console(
        &gw,
        "GET",
        "/console/decisions?effect=allow",
        Some(&admin),
        &[],
    );
    assert!(
        page.contains("allowed by approval") && page.contains("sha256:"),
        "{page}"
    );
    assert!(
        !page.contains("status status-step-up"),
        "filtered to allows: {page}"
    );
    let (_, _, page) = console(&gw, "GET", "/console/policy", Some(&admin), &[]);
    assert!(
        page.contains("generation 1") && page.contains("intent") && page.contains("0.1.0"),
        "{page}"
    );
    let (_, _, page) = console(&gw, "GET", "/console/tasks", Some(&admin), &[]);
    assert!(
        page.contains("task-console") && page.contains("py/delete_everything"),
        "{page}"
    );
}

#[test]
fn in_a_real_chromium_an_approver_logs_in_approves_a_gateway_step_up_and_the_pages_update() {
    let scratch = tempfile::tempdir().unwrap();
    let calls = scratch.path().join("calls.jsonl");
    let py = py_http_server(&calls);
    const OPS: &str = "ops-approvers-token-for-the-browser-test";
    let port = free_port();
    let tables = format!(
        "[approvals]\nconsole_url = \"http://127.0.0.1:{port}/console\"\n\
         [[approvals.group]]\nname = \"ops-approvers\"\ntoken = \"{OPS}\"\n"
    );
    let gw = gateway_at(
        port,
        &py_upstreams(py.port).replace("{LOG}", "/dev/null"),
        scratch.path(),
        "",
        &tables,
    );
    let headers = json!({"x-arbiter-agent": "spiffe://example.org/agent/demo",
                         "x-arbiter-task": "task-browser", "x-arbiter-intent": "mcp-approval"});
    let call = json!({"transport": http_transport(&gw.url("py"), headers), "mode": "legacy",
                      "steps": [{"op": "call_tool", "name": "delete_everything", "arguments": {"confirm": true}}]});
    let report = run_client(Sdk::Python, call.clone());
    let approval = &step(&report, 0)["error"]["data"]["approval"];
    let id = approval["id"].as_str().unwrap().to_owned();
    assert_eq!(
        approval["page"],
        format!("http://127.0.0.1:{port}/console/approvals/{id}")
    );

    node_modules();
    let screenshots = root().join("target/console-screenshots");
    let mut browser = Command::new("node")
        .arg(root().join("tests/console/approve_in_browser.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs tests/console/approve_in_browser.mjs");
    browser
        .stdin
        .take()
        .unwrap()
        .write_all(
            json!({"base": format!("http://127.0.0.1:{port}"), "token": OPS, "approver": "alice",
                   "approval": id, "screenshots": screenshots, "chromium": "/usr/bin/chromium"})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    let (tx, rx) = mpsc::channel::<Value>();
    let stdout = browser.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(value) = serde_json::from_str(&line) {
                let _ = tx.send(value);
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(120))
            .expect("the browser script answers within 120 s")
    };
    let approved = next();
    assert_eq!(approved["approved"], true, "{approved}");
    assert!(executed(&calls).is_empty(), "nothing ran before the retry");
    // The agent retries the identical call: allowed, once.
    let report = run_client(Sdk::Python, call);
    assert_eq!(step(&report, 0)["ok"], true, "{report}");
    assert_eq!(executed(&calls).len(), 1);
    let done = next();
    let _ = browser.wait();
    assert_eq!(done["done"], true, "{done}");
    assert_eq!(done["login_redirected"], true, "{done}");
    assert_eq!(done["pending_seen"], true, "{done}");
    assert!(
        done["arguments_shown"]
            .as_str()
            .unwrap()
            .contains("confirm"),
        "{done}"
    );
    assert!(
        done["status_after_approve"]
            .as_str()
            .unwrap()
            .contains("approved"),
        "{done}"
    );
    assert_eq!(done["list_updated"], true, "{done}");
    assert_eq!(
        done["consumed_shown"], true,
        "the approval page showed the use: {done}"
    );
    let messages = done["console_messages"].as_array().unwrap();
    assert!(
        !messages.iter().any(|m| {
            let m = m.as_str().unwrap_or("");
            m.contains("Content Security Policy") || m.starts_with("pageerror")
        }),
        "no script error or CSP violation: {messages:?}"
    );
    for shot in done["screenshots"].as_array().unwrap() {
        let path = PathBuf::from(shot.as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 5_000,
            "{}",
            path.display()
        );
    }
}
