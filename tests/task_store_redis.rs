//! The task store on Redis, with a real `redis-server` started on 127.0.0.1 for each
//! test: two replicas sharing it see one truth (chains, ends, quarantines, approvals,
//! revocations), and a Redis that dies, stalls or answers garbage gives denies, never
//! an allow, and service resumes without a restart when it is back.
//!
//! The replicas are real `arbiter serve` processes over HTTP where the behaviour is the
//! server's (chains, ends, approvals, the outage under load), and two in-process hosts
//! where a fault is injected or a credential checked.

use crate::common;
use arbiter_host::service::credentials::{
    Binding, CredentialIssuer, CredentialRequest, CredentialsConfig,
};
use arbiter_host::{Action, Arbiter, DecisionEffect};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "admin-token-for-the-redis-tests";
const OPS: &str = "ops-token-for-the-redis-tests";

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A new Ed25519 signing key (PEM) in `dir`, made by the real openssl.
fn ed25519_key(dir: &Path) -> PathBuf {
    let key = dir.join("credentials.pem");
    let status = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    key
}

/// A `redis-server` on a free loopback port, without persistence; killed on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> Self {
        let port = free_port();
        let mut server = Self {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/install-test-deps.sh installs it)");
        self.child = Some(child);
        // Bounded: it answers PING within 10 s or the test fails.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut con) = self.connection() {
                let pong: Result<String, _> = redis::cmd("PING").query(&mut con);
                if pong.is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(1))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `[task_store]` table for `redis`, under a prefix of its own.
fn store_table(redis: &RedisServer, extra: &str) -> String {
    format!(
        "[task_store]\nkind = \"redis\"\nurl = \"{}\"\nkey_prefix = \"t{}\"\n{extra}",
        redis.url(),
        uuid::Uuid::new_v4().simple()
    )
}

/// One `arbiter serve` replica; stopped on drop.
struct Replica {
    child: Child,
    addr: String,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Replica {
    /// Starts `arbiter serve` on `config` and waits until it logs its address.
    fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_arbiter"))
            .args(["serve", "--config"])
            .arg(config)
            .env("ARBITER_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let mut addr = None;
        // Bounded: the address is logged within 60 s or the test fails.
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
            if let Some(rest) = line.split("addr=").nth(1) {
                addr = rest.split_whitespace().next().map(str::to_owned);
            }
            seen.push(line);
            if addr.is_some() {
                break;
            }
        }
        let addr = addr.unwrap_or_else(|| panic!("no address logged: {seen:#?}"));
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in rx {});
        let replica = Self {
            child,
            addr,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        // Bounded: ready (policy set loaded, Redis answering) within 60 s.
        let deadline = Instant::now() + Duration::from_secs(60);
        while replica.get("/readyz").0 != 200 {
            assert!(Instant::now() < deadline, "{:?}", replica.get("/readyz"));
            std::thread::sleep(Duration::from_millis(50));
        }
        replica
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        self.send_with(method, path, body, token, &[])
    }

    fn send_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = format!("http://{}{path}", self.addr);
        let mut request = match method {
            "GET" => self.client.get(url),
            _ => self.client.post(url),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.runtime.block_on(async {
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    (status, response.json().await.unwrap_or(Value::Null))
                }
                Err(e) => (0, json!({"transport_error": e.to_string()})),
            }
        })
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None, None)
    }

    fn decide(&self, action: &Value) -> Value {
        let (status, decision) = self.send("POST", "/v1/decide", Some(action.clone()), None);
        assert_eq!(status, 200, "{decision}");
        decision
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a replica's config: `plugins`, a server on a free port with the admin token,
/// and `tables`.
fn replica_config(dir: &Path, name: &str, plugins: &str, tables: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let root = common::root();
    let plugins = plugins
        .replace("build/", &format!("{}/build/", root.display()))
        .replace(
            "plugins/sensitivity/",
            &format!("{}/plugins/sensitivity/", root.display()),
        );
    std::fs::write(
        &path,
        format!(
            "{}when_all_abstain = \"allow\"\n{}{plugins}[server]\nlisten = \"127.0.0.1:0\"\nadmin_token = \"{ADMIN}\"\n{tables}",
            common::TEST_DEFAULTS,
            common::test_trust_absolute()
        ),
    )
    .unwrap();
    path
}

/// Two replicas of one config.
fn two_replicas(dir: &Path, plugins: &str, tables: &str) -> (Replica, Replica) {
    let config = replica_config(dir, "replica", plugins, tables);
    (Replica::start(&config), Replica::start(&config))
}

const SENSITIVITY: &str = "[[plugin]]\nname = \"sensitivity\"\npath = \"build/plugins/sensitivity.wasm\"\n\
     settings_file = \"plugins/sensitivity/example-settings.json\"\n";

fn read_issue(task: &str, request: &str, labels: &str) -> Value {
    serde_json::from_str(&format!(
        r#"{{"request_id":"{request}","agent":{{"id":"spiffe://example.org/agent/triager"}},
            "task":{{"id":"{task}","intent":"triage-issue","started_at":1767268500000}},
            "tool":{{"server":"github","name":"get_issue"}},"arguments":{{"number":1337}},
            "resource":{{"id":"github://org/repo/issues/1337","labels":[{labels}]}},
            "time":1767268800000}}"#
    ))
    .unwrap()
}

fn post_outside(task: &str, request: &str) -> Value {
    serde_json::from_str(&format!(
        r##"{{"request_id":"{request}","agent":{{"id":"spiffe://example.org/agent/triager"}},
            "task":{{"id":"{task}","intent":"triage-issue","started_at":1767268500000}},
            "tool":{{"server":"slack","name":"post_message"}},
            "arguments":{{"channel":"#ext-partners","text":"status update"}},
            "time":1767268900000}}"##
    ))
    .unwrap()
}

#[test]
fn a_chain_split_across_replicas_is_caught_and_an_end_on_one_is_seen_on_the_other() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_replicas(dir.path(), SENSITIVITY, &store_table(&redis, ""));

    // The read lands on A, the post on B: B sees A's record, so the chain is caught.
    let read = a.decide(&read_issue("t1", "r1", r#""restricted""#));
    assert_eq!(read["effect"], "allow", "{read}");
    let post = b.decide(&post_outside("t1", "r2"));
    assert_eq!(post["effect"], "deny", "{post}");
    assert!(
        post["reason"].as_str().unwrap().contains("restricted"),
        "{post}"
    );
    // The same post in an untainted task is allowed: the deny is the chain's.
    let clean = b.decide(&post_outside("t2", "r3"));
    assert_eq!(clean["effect"], "allow", "{clean}");
    // A replica's own last view of a task is never taken for the task: A saw t3 clean,
    // B taints it, and A's next call of t3 sees the taint.
    assert_eq!(a.decide(&read_issue("t3", "r5", ""))["effect"], "allow");
    assert_eq!(a.decide(&read_issue("t3", "r6", ""))["effect"], "allow");
    assert_eq!(
        b.decide(&read_issue("t3", "r7", r#""restricted""#))["effect"],
        "allow"
    );
    let late = a.decide(&post_outside("t3", "r8"));
    assert_eq!(late["effect"], "deny", "{late}");
    assert!(
        late["reason"].as_str().unwrap().contains("restricted"),
        "{late}"
    );

    // Ended on A: the very next call of the task on B is denied.
    let (status, ended) = a.send("POST", "/v1/tasks/t2/end", None, Some(ADMIN));
    assert_eq!(status, 200, "{ended}");
    let after = b.decide(&post_outside("t2", "r4"));
    assert_eq!(after["effect"], "deny", "{after}");
    assert!(
        after["reason"].as_str().unwrap().contains("has ended"),
        "{after}"
    );

    // Readiness names the store.
    let (status, ready) = a.get("/readyz");
    assert_eq!(status, 200);
    assert!(
        ready["task_store"]
            .as_str()
            .unwrap()
            .starts_with("redis (redis://127.0.0.1:"),
        "{ready}"
    );
}

#[test]
fn a_quarantine_on_one_replica_holds_on_the_other_until_lifted_there() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        "[tasks.quarantine]\ncritical_plugins = [\"sensitivity\"]\n{}",
        store_table(&redis, "")
    );
    let (a, b) = two_replicas(dir.path(), SENSITIVITY, &tables);
    assert_eq!(
        a.decide(&read_issue("t", "r1", r#""restricted""#))["effect"],
        "allow"
    );
    let exfiltration = a.decide(&post_outside("t", "r2"));
    assert_eq!(exfiltration["effect"], "deny");
    assert!(exfiltration["quarantine"].is_string(), "{exfiltration}");
    // On B, even a harmless read of the task is refused.
    let read = b.decide(&read_issue("t", "r3", ""));
    assert_eq!(read["effect"], "deny", "{read}");
    assert!(
        read["reason"].as_str().unwrap().contains("quarantined"),
        "{read}"
    );
    let (status, lifted) = b.send("POST", "/v1/tasks/t/lift-quarantine", None, Some(ADMIN));
    assert_eq!((status, &lifted["lifted"]), (200, &json!(true)), "{lifted}");
    assert_eq!(a.decide(&read_issue("t", "r4", ""))["effect"], "allow");
}

#[test]
fn an_approval_given_on_one_replica_is_consumed_once_when_both_race_for_it() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        "[[approvals.group]]\nname = \"oncall\"\ntoken = \"{OPS}\"\n{}",
        store_table(&redis, "")
    );
    let (a, b) = two_replicas(dir.path(), &common::echo("gate", "step-up", ""), &tables);
    let a = Arc::new(a);
    let b = Arc::new(b);
    for round in 0..5 {
        let task = format!("t{round}");
        let call = |request: &str| {
            let mut action = read_issue(&task, request, "");
            action["arguments"] = json!({"number": round});
            action
        };
        let asked = a.decide(&call("ask"));
        assert_eq!(asked["effect"], "step-up", "{asked}");
        let id = asked["approval"]["id"].as_str().unwrap().to_owned();
        // B knows the approval A asked for, and its approver answers it there.
        let (status, approved) = b.send(
            "POST",
            &format!("/v1/approvals/{id}/approve"),
            Some(json!({"approver": "alice@ops", "note": "ok"})),
            Some(OPS),
        );
        assert_eq!(status, 200, "{approved}");
        // Two retries of the call, one on each replica, at once.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let racers: Vec<_> = [(Arc::clone(&a), "retry-a"), (Arc::clone(&b), "retry-b")]
            .into_iter()
            .map(|(replica, request)| {
                let action = call(request);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    replica.decide(&action)
                })
            })
            .collect();
        let answers: Vec<Value> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let allowed: Vec<&Value> = answers.iter().filter(|d| d["effect"] == "allow").collect();
        assert_eq!(
            allowed.len(),
            1,
            "exactly one retry is allowed: {answers:#?}"
        );
        let other = answers.iter().find(|d| d["effect"] != "allow").unwrap();
        assert!(
            other["reason"].as_str().unwrap().contains("already used"),
            "{other}"
        );
        let (_, shown) = a.send("GET", &format!("/v1/approvals/{id}"), None, Some(ADMIN));
        assert_eq!(shown["status"], "consumed", "{shown}");
        assert_eq!(shown["consumed_by"], allowed[0]["decision_id"], "{shown}");
    }
}

#[test]
fn with_redis_killed_mid_load_nothing_is_allowed_and_service_resumes_without_a_restart() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        "[tasks]\nstore_timeout_ms = 300\n{}",
        store_table(&redis, "")
    );
    let (a, b) = two_replicas(dir.path(), &common::echo("allow", "allow", ""), &tables);
    let replicas = Arc::new([a, b]);
    // Phases: 0 before the kill, 1 while Redis is down, 2 once it is back.
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new([[0usize; 2]; 3]));
    let reasons = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (replicas, phase, stop, tally, reasons) = (
                Arc::clone(&replicas),
                Arc::clone(&phase),
                Arc::clone(&stop),
                Arc::clone(&tally),
                Arc::clone(&reasons),
            );
            std::thread::spawn(move || {
                // Bounded: at most 3000 requests per worker, or until told to stop.
                for n in 0..3000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let before = phase.load(Ordering::SeqCst);
                    let action =
                        read_issue(&format!("load-{w}-{}", n % 8), &format!("r{w}-{n}"), "");
                    let decision = replicas[n % 2].decide(&action);
                    let after = phase.load(Ordering::SeqCst);
                    if before != after {
                        continue; // straddled a change: counted in neither phase
                    }
                    let allowed = decision["effect"] == "allow";
                    tally.lock().unwrap()[before][usize::from(allowed)] += 1;
                    if before == 1 && !allowed {
                        reasons
                            .lock()
                            .unwrap()
                            .push(decision["reason"].as_str().unwrap_or("").to_owned());
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    redis.kill();
    phase.store(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1500));
    // Readiness says why, on both replicas, and the servers are up.
    for replica in replicas.iter() {
        let (status, ready) = replica.get("/readyz");
        assert_eq!(status, 503, "{ready}");
        assert!(
            ready["reason"].as_str().unwrap().contains("task store"),
            "{ready}"
        );
        assert_eq!(replica.get("/healthz").0, 200);
    }
    phase.store(2, Ordering::SeqCst);
    redis.spawn();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().unwrap();
    }
    let [before, outage, after] = *tally.lock().unwrap();
    eprintln!("decisions [denied, allowed]: before {before:?}, outage {outage:?}, after {after:?}");
    assert!(before[1] > 0, "allowed before the outage: {before:?}");
    assert_eq!(outage[1], 0, "allows while Redis was down: {outage:?}");
    assert!(
        outage[0] > 0,
        "decisions were denied during the outage: {outage:?}"
    );
    assert!(
        after[1] > 0,
        "service resumed once Redis was back: {after:?}"
    );
    let reasons = reasons.lock().unwrap();
    assert!(
        reasons.iter().all(|r| r.contains("task store")),
        "every outage deny names the store: {:?}",
        reasons.iter().find(|r| !r.contains("task store"))
    );
    for replica in replicas.iter() {
        assert_eq!(
            replica.get("/readyz").0,
            200,
            "ready again without a restart"
        );
    }
}

/// An in-process host on `redis`, with the sensitivity plugin.
fn host(redis: &RedisServer, prefix: &str, extra: &str) -> Arbiter {
    common::arbiter(&format!(
        "{}when_all_abstain = \"allow\"\n{SENSITIVITY}{extra}[task_store]\nkind = \"redis\"\nurl = \"{}\"\nkey_prefix = \"{prefix}\"\n",
        common::TEST_DEFAULTS,
        redis.url()
    ))
}

fn action(value: Value) -> Action {
    Action::from_json(&value.to_string()).unwrap()
}

#[test]
fn garbage_or_a_stalled_redis_is_a_deny_naming_the_store() {
    let redis = RedisServer::start();
    let arbiter = host(&redis, "garbage", "[tasks]\nstore_timeout_ms = 300\n");
    let mut con = redis.connection().unwrap();
    // A history entry that is not one.
    let _: () = redis::cmd("RPUSH")
        .arg("garbage:task:{g1}:entries")
        .arg("{not json")
        .query(&mut con)
        .unwrap();
    let decision = arbiter.decide(&action(read_issue("g1", "r1", "")));
    assert_eq!(decision.effect, DecisionEffect::Deny, "{decision:#?}");
    assert!(
        decision.reason.contains("answered something unusable"),
        "{}",
        decision.reason
    );
    assert!(
        decision.reason.contains("task store"),
        "{}",
        decision.reason
    );
    // A key of the wrong type.
    let _: () = redis::cmd("SET")
        .arg("garbage:task:{g2}")
        .arg("x")
        .query(&mut con)
        .unwrap();
    let decision = arbiter.decide(&action(read_issue("g2", "r2", "")));
    assert_eq!(decision.effect, DecisionEffect::Deny, "{decision:#?}");
    assert!(
        decision.reason.contains("Redis at redis://127.0.0.1:"),
        "{}",
        decision.reason
    );
    // Paused past the deadline.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .query(&mut con)
        .unwrap();
    let started = Instant::now();
    let decision = arbiter.decide(&action(read_issue("g3", "r3", "")));
    assert_eq!(decision.effect, DecisionEffect::Deny, "{decision:#?}");
    assert!(decision.reason.contains("deadline"), "{}", decision.reason);
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "bounded by the deadline"
    );
    std::thread::sleep(Duration::from_millis(1600));
    // Unpaused: the same host decides again.
    let decision = arbiter.decide(&action(read_issue("g3", "r4", "")));
    assert_eq!(decision.effect, DecisionEffect::Allow, "{decision:#?}");
}

#[test]
fn credentials_revoked_on_one_replica_are_refused_on_the_other() {
    let redis = RedisServer::start();
    let a = host(&redis, "creds", "");
    let b = host(&redis, "creds", "");
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_key(dir.path());
    let config = CredentialsConfig {
        signing_key: key,
        issuer: "spiffe://example.org/arbiter".to_owned(),
        ttl: Duration::from_secs(300),
    };
    let (issuer_a, issuer_b) = (
        CredentialIssuer::new(config.clone()).unwrap(),
        CredentialIssuer::new(config).unwrap(),
    );
    let mut call = read_issue("c1", "r1", "");
    call["agent"]["attestation"] = json!("jwt-svid");
    let call = action(call);
    let request = CredentialRequest {
        audience: "github".to_owned(),
        scopes: Vec::new(),
    };
    let minted = issuer_a
        .mint(&call, &call.arguments, &request, &a.revoker())
        .unwrap();
    let binding = Binding {
        audience: Some("github".to_owned()),
        tool: None,
        arguments: None,
    };
    assert!(
        issuer_b
            .introspect(&minted.token, &binding, &b.revoker())
            .active
    );
    // The task ends on B: the credential A minted is refused by A too, from the end
    // itself (one atomic step in Redis), before any separate revocation ran.
    b.end_task("c1").unwrap();
    let seen = issuer_a.introspect(&minted.token, &binding, &a.revoker());
    assert!(!seen.active, "{seen:?}");
    assert_eq!(issuer_b.revoke_task("c1", &b.revoker()).unwrap(), 1);
    let seen = issuer_a.introspect(&minted.token, &binding, &a.revoker());
    assert!(!seen.active, "{seen:?}");
    assert!(seen.reason.unwrap().contains("revoked"));
    // And one minted late for it (a decision in flight) is born revoked.
    let late = issuer_a
        .mint(&call, &call.arguments, &request, &a.revoker())
        .unwrap();
    assert!(
        !issuer_b
            .introspect(&late.token, &binding, &b.revoker())
            .active
    );
}

#[test]
fn a_preview_reads_the_shared_task_and_leaves_no_trace_in_it() {
    let redis = RedisServer::start();
    let a = host(&redis, "preview", "");
    let b = host(&redis, "preview", "");
    assert_eq!(
        a.decide(&action(read_issue("p1", "r1", r#""restricted""#)))
            .effect,
        DecisionEffect::Allow
    );
    // B previews the exfiltration A's read made a chain of: denied, and not recorded.
    let post = action(post_outside("p1", "r2"));
    let previewed = b.preview(&post);
    assert_eq!(previewed.effect, DecisionEffect::Deny, "{previewed:#?}");
    assert!(
        previewed.reason.contains("restricted"),
        "{}",
        previewed.reason
    );
    assert_eq!(a.task_history("p1").len(), 1, "a preview records nothing");
    // An ended task previews as refused.
    a.end_task("p1").unwrap();
    let ended = b.preview(&post);
    assert!(ended.reason.contains("has ended"), "{}", ended.reason);
}

/// `redis-server` speaking TLS only, with a password; killed on drop.
struct TlsRedis {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_redis(password: &str) -> TlsRedis {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::svid::Ca::new("redis-test-ca");
    let chain = ca.leaf(&[], |params| {
        params.subject_alt_names = vec![rcgen::SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        ))];
    });
    let split = chain.find("-----BEGIN PRIVATE KEY-----").unwrap();
    let (cert, key) = chain.split_at(split);
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("server.pem"), cert).unwrap();
    std::fs::write(dir.path().join("server-key.pem"), key).unwrap();
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", "0", "--tls-port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--requirepass", password, "--tls-auth-clients", "no"])
        .arg("--tls-cert-file")
        .arg(dir.path().join("server.pem"))
        .arg("--tls-key-file")
        .arg(dir.path().join("server-key.pem"))
        .arg("--tls-ca-cert-file")
        .arg(dir.path().join("ca.pem"))
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Bounded: listening within 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server (TLS) did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    TlsRedis { child, port, dir }
}

#[test]
fn over_tls_with_a_password_it_decides_and_a_wrong_ca_or_password_denies_naming_the_store() {
    let redis = tls_redis("s3cret-redis-password");
    let ca = redis.dir.path().join("ca.pem");
    let host_with = |password: &str, ca: &Path| {
        common::arbiter(&format!(
            "{}when_all_abstain = \"allow\"\n{SENSITIVITY}[tasks]\nstore_timeout_ms = 2000\n\
             [task_store]\nkind = \"redis\"\nurl = \"rediss://:{password}@127.0.0.1:{}/0\"\n\
             ca_file = \"{}\"\nkey_prefix = \"tls\"\n",
            common::TEST_DEFAULTS,
            redis.port,
            ca.display()
        ))
    };
    let good = host_with("s3cret-redis-password", &ca);
    // Bounded: the server accepts TLS connections within a few attempts.
    let mut read = good.decide(&action(read_issue("tls1", "r1", r#""restricted""#)));
    for _ in 0..50 {
        if read.effect == DecisionEffect::Allow {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        read = good.decide(&action(read_issue("tls1", "r1", r#""restricted""#)));
    }
    assert_eq!(read.effect, DecisionEffect::Allow, "{}", read.reason);
    let post = good.decide(&action(post_outside("tls1", "r2")));
    assert_eq!(post.effect, DecisionEffect::Deny);
    assert!(
        post.reason.contains("restricted"),
        "the history is in Redis: {}",
        post.reason
    );
    let (store, health) = good.task_store_health();
    assert_eq!(store, format!("redis (rediss://127.0.0.1:{})", redis.port));
    assert!(health.is_ok(), "{health:?}");

    let wrong_password = host_with("not-the-password", &ca);
    let denied = wrong_password.decide(&action(read_issue("tls2", "r3", "")));
    assert_eq!(denied.effect, DecisionEffect::Deny);
    assert!(denied.reason.contains("task store"), "{}", denied.reason);
    assert!(
        !denied.reason.contains("not-the-password"),
        "{}",
        denied.reason
    );

    let other_ca = redis.dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, common::svid::Ca::new("another-ca").pem()).unwrap();
    let untrusted = host_with("s3cret-redis-password", &other_ca);
    let denied = untrusted.decide(&action(read_issue("tls3", "r4", "")));
    assert_eq!(denied.effect, DecisionEffect::Deny);
    assert!(denied.reason.contains("task store"), "{}", denied.reason);
}

#[test]
fn an_opened_task_that_redis_no_longer_holds_is_refused_not_started_clean() {
    let redis = RedisServer::start();
    let replica = host(&redis, "lost", "[tasks]\nmode = \"opened\"\n");
    let opening: arbiter_host::OpenTask = serde_json::from_value(json!({
        "agents": ["spiffe://example.org/agent/triager"],
        "intent": "triage-issue",
    }))
    .unwrap();
    let opened = replica.open_task(opening, "admin").unwrap();
    let call = |request: &str, labels: &str| {
        let mut call = read_issue(&opened.id, request, labels);
        call["task"]["intent"] = json!("");
        action(call)
    };
    assert_eq!(
        replica.decide(&call("r1", r#""restricted""#)).effect,
        DecisionEffect::Allow
    );
    // Redis loses everything (a restart without persistence, a failover that lost
    // data): the replica remembers the opening, but not the taint, so it must not go on.
    let _: () = redis::cmd("FLUSHALL")
        .query(&mut redis.connection().unwrap())
        .unwrap();
    let after = replica.decide(&call("r2", ""));
    assert_eq!(after.effect, DecisionEffect::Deny, "{after:#?}");
    assert!(
        after.reason.contains("Redis no longer holds it"),
        "{}",
        after.reason
    );
    // And from then on it is unknown, as on every other replica.
    let again = replica.decide(&call("r3", ""));
    assert_eq!(again.effect, DecisionEffect::Deny);
    assert!(again.reason.contains("was not opened"), "{}", again.reason);
}

#[test]
fn a_task_credential_revoked_by_an_end_on_one_replica_is_refused_by_the_other() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_key(dir.path());
    let tables = format!(
        "[tasks]\nmode = \"opened\"\n[credentials]\nsigning_key = \"{}\"\n\
         issuer = \"spiffe://example.org/arbiter\"\n{}",
        key.display(),
        store_table(&redis, "")
    );
    let (a, b) = two_replicas(dir.path(), &common::echo("allow", "allow", ""), &tables);
    let agent = "spiffe://example.org/agent/triager";
    let (status, opened) = a.send(
        "POST",
        "/v1/tasks",
        Some(json!({"agents": [agent], "intent": "triage-issue"})),
        Some(ADMIN),
    );
    assert_eq!(status, 201, "{opened}");
    let task = opened["id"].as_str().unwrap();
    let credential = opened["credentials"][agent].as_str().unwrap();
    let mut call = read_issue(task, "r1", "");
    call["task"]["intent"] = json!("");
    let decide_on_b = |request: &str| {
        let mut call = call.clone();
        call["request_id"] = json!(request);
        b.send_with(
            "POST",
            "/v1/decide",
            Some(call),
            None,
            &[("x-arbiter-task-credential", credential)],
        )
    };
    // Opened on A, its credential holds on B.
    let (status, allowed) = decide_on_b("r1");
    assert_eq!(
        (status, &allowed["effect"]),
        (200, &json!("allow")),
        "{allowed}"
    );
    let (status, ended) = a.send("POST", &format!("/v1/tasks/{task}/end"), None, Some(ADMIN));
    assert_eq!(status, 200, "{ended}");
    // Ended on A: B refuses the credential itself, before deciding anything.
    let (status, refused) = decide_on_b("r2");
    assert_eq!(status, 403, "{refused}");
    assert_eq!(
        refused["error"]["code"], "task_credential_refused",
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{refused}"
    );
}

#[test]
fn a_redis_rolled_back_to_older_data_never_passes_a_replicas_copy_off_as_current() {
    let redis = RedisServer::start();
    let a = host(&redis, "rollback", "");
    let b = host(&redis, "rollback", "");
    let mut con = redis.connection().unwrap();
    let keys = [
        "rollback:task:{r}",
        "rollback:task:{r}:entries",
        "rollback:task:{r}:labels",
    ];
    assert_eq!(
        a.decide(&action(read_issue("r", "r1", ""))).effect,
        DecisionEffect::Allow
    );
    // What a restore from an older dump (or a lagging replica promoted) would bring back.
    let saved: Vec<Option<Vec<u8>>> = keys
        .iter()
        .map(|k| redis::cmd("DUMP").arg(*k).query(&mut con).unwrap())
        .collect();
    // A records once more and keeps its copy of the task at that version.
    assert_eq!(
        a.decide(&action(read_issue("r", "r2", ""))).effect,
        DecisionEffect::Allow
    );
    for (key, dump) in keys.iter().zip(&saved) {
        let _: () = redis::cmd("DEL").arg(*key).query(&mut con).unwrap();
        if let Some(dump) = dump {
            let _: () = redis::cmd("RESTORE")
                .arg(*key)
                .arg(0)
                .arg(dump.as_slice())
                .query(&mut con)
                .unwrap();
        }
    }
    // B records the taint on the rolled-back task: as many records as A had made.
    assert_eq!(
        b.decide(&action(read_issue("r", "r3", r#""restricted""#)))
            .effect,
        DecisionEffect::Allow
    );
    // A's copy is of a version Redis no longer has: it reads the task again.
    let post = a.decide(&action(post_outside("r", "r4")));
    assert_eq!(post.effect, DecisionEffect::Deny, "{post:#?}");
    assert!(post.reason.contains("restricted"), "{}", post.reason);
}

/// How many times clients made Redis run `command` (inside scripts included).
fn command_calls(con: &mut redis::Connection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_task_that_stays_on_one_replica_is_not_read_back_on_every_call() {
    let redis = RedisServer::start();
    let a = host(&redis, "stays", "");
    let b = host(&redis, "stays", "");
    let mut con = redis.connection().unwrap();
    for n in 0..3 {
        a.decide(&action(read_issue("s", &format!("warm{n}"), "")));
    }
    let before = command_calls(&mut con, "lrange");
    for n in 0..10 {
        a.decide(&action(read_issue("s", &format!("r{n}"), "")));
    }
    assert_eq!(
        command_calls(&mut con, "lrange") - before,
        0,
        "A's own records are current"
    );
    // Once B records, A reads the task again, once.
    b.decide(&action(read_issue("s", "b1", "")));
    let before = command_calls(&mut con, "lrange");
    a.decide(&action(read_issue("s", "a1", "")));
    a.decide(&action(read_issue("s", "a2", "")));
    assert_eq!(command_calls(&mut con, "lrange") - before, 1);
}
