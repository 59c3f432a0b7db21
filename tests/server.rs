//! The decision server: every endpoint and error case through the router without
//! sockets (`tower::ServiceExt::oneshot`), the decision log, one real socket on
//! 127.0.0.1, the real `arbiter serve` binary under SIGTERM, `promtool check metrics`,
//! and a bounded loopback load test.

use crate::common;

use crate::common::*;
use arbiter_host::adapters::http::{AppState, ServerSettings, router};
use arbiter_host::service::Metrics;
use arbiter_host::service::{DecisionLog, REDACTED};
use arbiter_host::service::{LogSink, Redaction, Secret, ServerConfig, TokenSource};
use arbiter_host::{Arbiter, Config};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

const ADMIN: &str = "admin-token-0123456789abcdef";
const CLIENT: &str = "client-token-0123456789abcdef";

/// A log sink tests can read.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad log line {l}: {e}")))
            .collect()
    }
}

struct Harness {
    state: AppState,
    app: Router,
    log: SharedBuf,
}

impl Harness {
    async fn call(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, body)
    }

    async fn log_lines(&self) -> Vec<Value> {
        self.state.decision_log().flush().await;
        self.log.lines()
    }

    async fn metrics(&self) -> String {
        let (status, _, body) = self.call(get("/metrics")).await;
        assert_eq!(status, StatusCode::OK);
        body.as_str().unwrap().to_owned()
    }
}

/// A server state over `arbiter` (if any), with the settings `tweak` makes.
fn harness_with(
    arbiter: Option<Arbiter>,
    writer: Option<Box<dyn Write + Send>>,
    tweak: impl FnOnce(&mut ServerConfig),
) -> Harness {
    let mut config = ServerConfig::default();
    tweak(&mut config);
    let settings = ServerSettings::resolve(&config, |_| None).unwrap();
    let metrics = Metrics::new().unwrap();
    let log = SharedBuf::default();
    let writer = writer.unwrap_or_else(|| Box::new(log.clone()));
    let decision_log =
        DecisionLog::with_writer(writer, &config.decision_log, metrics.clone()).unwrap();
    let state = AppState::new(settings, metrics, decision_log);
    if let Some(arbiter) = arbiter {
        assert!(state.activate(Arc::new(arbiter)));
    }
    Harness {
        app: router(state.clone()),
        state,
        log,
    }
}

fn harness(plugins: &str, tweak: impl FnOnce(&mut ServerConfig)) -> Harness {
    harness_with(Some(arbiter(plugins)), None, tweak)
}

fn allow_all() -> String {
    echo("gate", "allow", "")
}

fn with_admin(c: &mut ServerConfig) {
    c.admin_token = TokenSource::Inline(Secret::new(ADMIN));
}

fn action_json(request_id: &str, task: Option<&str>) -> String {
    serde_json::to_string(&action(request_id, task)).unwrap()
}

fn post_json(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn with_bearer(mut request: Request<Body>, token: &str) -> Request<Body> {
    request.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    request
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------
// POST /v1/decide

#[tokio::test]
async fn decide_answers_with_the_decision() {
    let h = harness(&allow_all(), |_| {});
    let (status, headers, body) = h
        .call(post_json("/v1/decide", action_json("r1", Some("t1"))))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(body["effect"], "allow");
    assert_eq!(body["request_id"], "r1");
    assert_eq!(body["task_id"], "t1");
    assert_eq!(body["generation"], 1);
    assert_eq!(body["plugins"][0]["name"], "gate");
    assert!(
        body["plugins"][0]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    let h = harness(&echo("gate", "deny", ""), |_| {});
    let (status, _, body) = h
        .call(post_json("/v1/decide", action_json("r2", None)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["effect"], "deny");
}

#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_problem_never_a_decision() {
    let h = harness(&allow_all(), |c| c.max_body_bytes = 4096);
    let ok = action_json("r1", None);
    let wrong_type = r#"{"request_id":"r1","agent":{"id":"a"},"tool":{"server":"fs","name":"x"},"task":{"id":"t","intent":"i","started_at":"yesterday"}}"#;
    let deep = format!(
        r#"{{"request_id":"r1","agent":{{"id":"a"}},"tool":{{"server":"fs","name":"x"}},"arguments":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let cases: Vec<(String, StatusCode, &str, Option<&str>, &str)> = vec![
        ("{not json".into(), StatusCode::BAD_REQUEST, "invalid_json", None, "not valid JSON"),
        ("".into(), StatusCode::BAD_REQUEST, "invalid_json", Some("."), "EOF"),
        (format!("{ok} trailing"), StatusCode::BAD_REQUEST, "invalid_json", Some("."), "trailing"),
        ("[1,2]".into(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_action", Some("."), "expected a JSON object"),
        (wrong_type.into(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_action", Some("task.started_at"), "expected u64"),
        (r#"{"request_id":"r1","agent":{"id":"a"}}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_action", Some("."), "missing field `tool`"),
        (r#"{"request_id":"r1","agent":{"id":"a","role":"x"},"tool":{"server":"fs","name":"x"}}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_action", Some("agent.role"), "unknown field `role`"),
        (r#"{"request_id":"r1","agent":{"id":" "},"tool":{"server":"fs","name":"x"}}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_action", Some("agent.id"), "non-empty"),
        (r#"{"request_id":"r1","agent":{"id":"a"},"tool":{"server":"fs","name":"x"},"history":[]}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_action", Some("history"), "unknown field `history`"),
        (deep, StatusCode::BAD_REQUEST, "too_deep", None, "deeper than 128"),
        (format!(r#"{{"request_id":"{}"}}"#, "x".repeat(5000)), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", None, "4096 bytes"),
    ];
    for (body, status, code, field, message) in cases {
        let (got, _, answer) = h.call(post_json("/v1/decide", body.clone())).await;
        assert_error(got, &answer, status, code);
        if let Some(field) = field {
            assert_eq!(answer["error"]["field"], field, "{answer}");
        }
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(message),
            "{body:.80}: {answer}"
        );
        assert!(answer.get("effect").is_none());
    }
    // Wrong or missing content type.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = Request::post("/v1/decide");
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        let (status, _, body) = h.call(request.body(Body::from(ok.clone())).unwrap()).await;
        assert_error(
            status,
            &body,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    let (status, _, _) = h
        .call(
            Request::post("/v1/decide")
                .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
                .body(Body::from(ok))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Nothing of the bad input was decided or logged; the errors were counted.
    assert_eq!(h.log_lines().await.len(), 1);
    let metrics = h.metrics().await;
    assert!(
        metrics.contains(r#"arbiter_http_errors_total{code="invalid_action"} 6"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"arbiter_http_errors_total{code="body_too_large"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let h = harness(&allow_all(), |_| {});
    let (status, _, body) = h.call(get("/v1/nope")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, _, body) = h.call(get("/v1/decide")).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

// ---------------------------------------------------------------------------------------
// Access control

#[tokio::test]
async fn decide_token_is_required_when_configured() {
    let h = harness(&allow_all(), |c| {
        c.decide_token = TokenSource::Inline(Secret::new(CLIENT));
    });
    let body = action_json("r1", None);
    let (status, headers, answer) = h.call(post_json("/v1/decide", body.clone())).await;
    assert_error(status, &answer, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing")
    );
    for wrong in [format!("{CLIENT}x"), ADMIN.to_owned(), String::new()] {
        let (status, _, answer) = h
            .call(with_bearer(post_json("/v1/decide", body.clone()), &wrong))
            .await;
        assert_error(status, &answer, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let mut basic = post_json("/v1/decide", body.clone());
    basic.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Basic {CLIENT}").parse().unwrap(),
    );
    let (status, _, _) = h.call(basic).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = h
        .call(with_bearer(get("/v1/plugins"), "nope-nope-nope-nope"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _, answer) = h
        .call(with_bearer(post_json("/v1/decide", body), CLIENT))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["effect"], "allow");
    let (status, _, _) = h.call(with_bearer(get("/v1/plugins"), CLIENT)).await;
    assert_eq!(status, StatusCode::OK);
    // Probes and metrics stay open.
    assert_eq!(h.call(get("/healthz")).await.0, StatusCode::OK);
    assert_eq!(h.call(get("/readyz")).await.0, StatusCode::OK);
    let metrics = h.metrics().await;
    assert!(
        metrics.contains(r#"arbiter_http_errors_total{code="unauthorized"} 6"#),
        "{metrics}"
    );
    assert_eq!(
        h.log_lines().await.len(),
        1,
        "rejected requests are not decided"
    );
}

#[tokio::test]
async fn admin_endpoints_need_the_admin_token() {
    // Without an admin token configured they are disabled.
    let h = harness(&allow_all(), |_| {});
    for uri in ["/v1/reload", "/v1/tasks/t1/end"] {
        let (status, _, body) = h.call(with_bearer(post_json(uri, ""), ADMIN)).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "admin_disabled");
    }
    let h = harness(&allow_all(), |c| {
        with_admin(c);
        c.decide_token = TokenSource::Inline(Secret::new(CLIENT));
    });
    for uri in ["/v1/reload", "/v1/tasks/t1/end"] {
        let (status, _, body) = h.call(post_json(uri, "")).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        // The decide token is not an admin token.
        let (status, _, body) = h.call(with_bearer(post_json(uri, ""), CLIENT)).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let (status, _, body) = h
        .call(with_bearer(post_json("/v1/tasks/t1/end", ""), ADMIN))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"task_id": "t1", "ended": true}));
}

#[test]
fn tokens_are_validated_and_never_printed() {
    let mut config = ServerConfig {
        admin_token: TokenSource::Inline(Secret::new("short")),
        ..ServerConfig::default()
    };
    let err = ServerSettings::resolve(&config, |_| None).unwrap_err();
    assert!(err.to_string().contains("server.admin_token"), "{err}");
    assert!(err.to_string().contains("at least 16"), "{err}");
    assert!(!err.to_string().contains("short"), "{err}");
    config.admin_token = TokenSource::Env {
        var: "MY_TOKEN".into(),
        required: true,
    };
    let err = ServerSettings::resolve(&config, |_| None).unwrap_err();
    assert!(err.to_string().contains("`MY_TOKEN` is not set"), "{err}");
    let settings =
        ServerSettings::resolve(&config, |v| (v == "MY_TOKEN").then(|| ADMIN.to_owned())).unwrap();
    assert!(settings.admin_token.is_some());
    assert!(!format!("{settings:?}").contains(ADMIN));
    config.admin_token = TokenSource::Inline(Secret::new(ADMIN));
    assert!(!format!("{config:?}").contains(ADMIN));
    // The default admin variable is optional: unset, admin endpoints are disabled.
    let settings = ServerSettings::resolve(&ServerConfig::default(), |_| None).unwrap();
    assert!(settings.admin_token.is_none());
    let settings = ServerSettings::resolve(&ServerConfig::default(), |v| {
        (v == "ARBITER_ADMIN_TOKEN").then(|| ADMIN.to_owned())
    })
    .unwrap();
    assert!(settings.admin_token.is_some());
}

/// Regression (issue 12): a token read from a variable with a trailing newline (a
/// `.env` file, `echo token > file`) could never match what a client sends, and every
/// admin call got 401 without a word. It is trimmed, with a warning naming the
/// variable and never the token.
#[test]
fn token_with_surrounding_whitespace_is_trimmed_with_a_warning() {
    let logs = SharedBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let config = ServerConfig {
        admin_token: TokenSource::Env {
            var: "MY_TOKEN".into(),
            required: true,
        },
        decide_token: TokenSource::Inline(Secret::new(format!(" {CLIENT}\t"))),
        ..ServerConfig::default()
    };
    let settings = tracing::subscriber::with_default(subscriber, || {
        ServerSettings::resolve(&config, |v| (v == "MY_TOKEN").then(|| format!("{ADMIN}\n")))
            .unwrap()
    });
    assert!(settings.admin_token.as_ref().unwrap().matches(ADMIN));
    assert!(settings.decide_token.as_ref().unwrap().matches(CLIENT));
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("WARN"), "{logged}");
    assert!(
        logged.contains("environment variable `MY_TOKEN`") && logged.contains("trimmed"),
        "{logged}"
    );
    assert!(logged.contains("server.decide_token"), "{logged}");
    assert!(
        !logged.contains(ADMIN) && !logged.contains(CLIENT),
        "{logged}"
    );
    // A character no `Authorization` header can carry is refused at start.
    let err = ServerSettings::resolve(&config, |v| {
        (v == "MY_TOKEN").then(|| format!("{ADMIN}\u{1}x"))
    })
    .unwrap_err();
    assert!(err.to_string().contains("server.admin_token"), "{err}");
    assert!(err.to_string().contains("`MY_TOKEN`"), "{err}");
    assert!(err.to_string().contains("control or non-ASCII"), "{err}");
    assert!(!err.to_string().contains(ADMIN), "{err}");
}

#[test]
fn server_table_is_validated() {
    let base = std::path::Path::new("/etc/arbiter");
    let server = |c: &Config| ServerConfig::from_config(c);
    let c = Config::from_toml(
        "[server]\nlisten='127.0.0.1:9000'\nmax_body_bytes=1000\nheader_read_timeout_ms=250\nbody_read_timeout_ms=300\nmax_connections=7\ndecide_token_env='DECIDE'\n[server.decision_log]\nsink='log/decisions.jsonl'\nredact_arguments=['/password']\nstrict=true\nbuffer=5\n",
        base,
    )
    .unwrap();
    let c = server(&c).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(c.max_body_bytes, 1000);
    assert_eq!(c.header_read_timeout.as_millis(), 250);
    assert_eq!(c.body_read_timeout.as_millis(), 300);
    assert_eq!(c.max_connections, 7);
    assert_eq!(
        c.decide_token,
        TokenSource::Env {
            var: "DECIDE".into(),
            required: true
        }
    );
    assert_eq!(
        c.decision_log.sink,
        LogSink::File(base.join("log/decisions.jsonl"))
    );
    assert_eq!(
        c.decision_log.redaction,
        Redaction::Pointers(vec!["/password".into()])
    );
    assert!(c.decision_log.strict);
    let d = server(&Config::from_toml("", base).unwrap()).unwrap();
    assert_eq!(d, ServerConfig::default());
    assert_eq!(d.listen.to_string(), "127.0.0.1:8480");
    assert_eq!(d.decision_log.redaction, Redaction::All);
    assert_eq!(d.header_read_timeout.as_millis(), 5000);
    assert_eq!(d.body_read_timeout.as_millis(), 10_000);
    assert_eq!(d.max_connections, 1024);
    for (toml, expected) in [
        ("[server]\nlisen='x'\n", "unknown field `lisen`"),
        (
            "[server.decision_log]\nstrikt=true\n",
            "unknown field `strikt`",
        ),
        ("[server]\nlisten='localhost'\n", "server.listen"),
        ("[server]\nmax_body_bytes=0\n", "server.max_body_bytes"),
        (
            "[server]\nheader_read_timeout_ms=0\n",
            "server.header_read_timeout_ms",
        ),
        (
            "[server]\nbody_read_timeout_ms=600001\n",
            "server.body_read_timeout_ms",
        ),
        ("[server]\nmax_connections=0\n", "server.max_connections"),
        (
            "[server]\nadmin_token='0123456789abcdef'\nadmin_token_env='X'\n",
            "not both",
        ),
        (
            "[server.decision_log]\nredact_arguments=['password']\n",
            "redact_arguments[0]",
        ),
        (
            "[server.decision_log]\nbuffer=0\n",
            "server.decision_log.buffer",
        ),
    ] {
        // The core config keeps `[server]` as written: an embedder's config loads
        // whatever it holds, and the server refuses it when it starts.
        let config = Config::from_toml(toml, base).unwrap();
        let err = server(&config).unwrap_err();
        assert!(err.to_string().contains(expected), "{toml}: {err}");
    }
}

// ---------------------------------------------------------------------------------------
// Tasks, plugins, probes, metrics, reload

#[tokio::test]
async fn ended_task_denies_every_later_action() {
    let h = harness(&allow_all(), with_admin);
    let (_, _, body) = h
        .call(post_json("/v1/decide", action_json("r1", Some("t1"))))
        .await;
    assert_eq!(body["effect"], "allow");
    let (status, _, _) = h
        .call(with_bearer(post_json("/v1/tasks/t1/end", ""), ADMIN))
        .await;
    assert_eq!(status, StatusCode::OK);
    for request in ["r2", "r3"] {
        let (status, _, body) = h
            .call(post_json("/v1/decide", action_json(request, Some("t1"))))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["effect"], "deny", "{body}");
        assert_eq!(body["reason"], "task `t1` has ended");
        assert_eq!(
            body["plugins"],
            json!([]),
            "no plugin runs for an ended task"
        );
    }
    let (_, _, body) = h
        .call(post_json("/v1/decide", action_json("r4", Some("t2"))))
        .await;
    assert_eq!(body["effect"], "allow", "other tasks are unaffected");
    // Ending is idempotent; a percent-encoded id is decoded.
    let (status, _, body) = h
        .call(with_bearer(post_json("/v1/tasks/t%3A2/end", ""), ADMIN))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["task_id"], "t:2");
    let (status, _, body) = h
        .call(with_bearer(post_json("/v1/tasks/%20/end", ""), ADMIN))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_task_id");
}

/// Regression (issue 12, item 8): `/v1/decide` accepted 64 KiB task ids of any
/// character, which no `POST /v1/tasks/{id}/end` request line could carry (hyper
/// answers 414 past 64 KiB of URI). Ids are now bounded and the same rule holds at both
/// ends, so every task an action names can be ended, by path or by body.
#[tokio::test]
async fn every_task_id_decide_accepts_can_be_ended() {
    let h = harness(&allow_all(), with_admin);
    let punctuation = "a-b_c.d:e@f/g+h=i~";
    let longest: String = punctuation
        .chars()
        .cycle()
        .take(arbiter_host::MAX_ID_BYTES)
        .collect();
    for (n, id) in [punctuation.to_owned(), longest].iter().enumerate() {
        let (status, _, body) = h
            .call(post_json(
                "/v1/decide",
                action_json(&format!("r{n}"), Some(id)),
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["effect"], "allow", "{body}");
        let path = format!("/v1/tasks/{}/end", id.replace('/', "%2F"));
        let (status, _, body) = h.call(with_bearer(post_json(&path, ""), ADMIN)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({"task_id": id, "ended": true}));
        let (status, _, body) = h
            .call(with_bearer(
                post_json("/v1/tasks/end", json!({"task_id": id}).to_string()),
                ADMIN,
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({"task_id": id, "ended": true}));
        let (_, _, body) = h
            .call(post_json(
                "/v1/decide",
                action_json(&format!("s{n}"), Some(id)),
            ))
            .await;
        assert_eq!(body["effect"], "deny", "{body}");
        assert_eq!(body["reason"], format!("task `{id}` has ended"));
    }
    // What `/v1/decide` refuses, the end endpoints refuse too, with the same rule.
    let too_long = "t".repeat(arbiter_host::MAX_ID_BYTES + 1);
    for (id, problem) in [
        (too_long.as_str(), "257 bytes, expected at most 256"),
        ("t 2", "character ' ' at byte 1"),
        ("tâche", "character 'â' at byte 1"),
    ] {
        let mut action: Value = serde_json::from_str(&action_json("r", Some("t"))).unwrap();
        action["task"]["id"] = json!(id);
        let (status, _, body) = h.call(post_json("/v1/decide", action.to_string())).await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_action",
        );
        assert_eq!(body["error"]["field"], "task.id", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(problem),
            "{body}"
        );
        let encoded: String = id
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let (status, _, body) = h
            .call(with_bearer(
                post_json(&format!("/v1/tasks/{encoded}/end"), ""),
                ADMIN,
            ))
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_task_id");
        assert_eq!(body["error"]["field"], "id", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(problem),
            "{body}"
        );
        let (status, _, body) = h
            .call(with_bearer(
                post_json("/v1/tasks/end", json!({"task_id": id}).to_string()),
                ADMIN,
            ))
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_task_id");
        assert_eq!(body["error"]["field"], "task_id", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(problem),
            "{body}"
        );
    }
}

/// Regression (issue 12, item 8): a path that is not UTF-8 once percent-decoded got
/// axum's `text/plain` 400; every error is the documented JSON shape.
#[tokio::test]
async fn undecodable_task_path_gets_the_json_error_shape() {
    let h = harness(&allow_all(), with_admin);
    for path in ["/v1/tasks/%FF/end", "/v1/tasks/t%C3/end"] {
        let (status, headers, body) = h.call(with_bearer(post_json(path, ""), ADMIN)).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_task_id");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{path}");
        assert_eq!(body["error"]["field"], "id", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("UTF-8"),
            "{body}"
        );
    }
}

/// `POST /v1/tasks/end` takes `{"task_id": "…"}`: admin only, JSON only, the body's
/// problems named like `/v1/decide`'s.
#[tokio::test]
async fn tasks_end_by_body_is_checked_like_the_path_form() {
    let h = harness(&allow_all(), with_admin);
    let (status, _, body) = h
        .call(post_json("/v1/tasks/end", r#"{"task_id":"t1"}"#))
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let cases: Vec<(Request<Body>, StatusCode, &str, Option<&str>)> = vec![
        (
            post_json("/v1/tasks/end", "{"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            None,
        ),
        (
            post_json("/v1/tasks/end", r#"{"task_id":"t1"} x"#),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            Some("."),
        ),
        (
            post_json("/v1/tasks/end", "{}"),
            StatusCode::BAD_REQUEST,
            "invalid_task_id",
            Some("."),
        ),
        (
            post_json("/v1/tasks/end", r#"{"task_id":7}"#),
            StatusCode::BAD_REQUEST,
            "invalid_task_id",
            Some("task_id"),
        ),
        (
            post_json("/v1/tasks/end", r#"{"task_id":"t1","why":"x"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_task_id",
            Some("why"),
        ),
        (
            post_json("/v1/tasks/end", r#"{"task_id":""}"#),
            StatusCode::BAD_REQUEST,
            "invalid_task_id",
            Some("task_id"),
        ),
        (
            Request::post("/v1/tasks/end")
                .body(Body::from(r#"{"task_id":"t1"}"#))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
        ),
    ];
    for (request, status, code, field) in cases {
        let (got, _, body) = h.call(with_bearer(request, ADMIN)).await;
        assert_error(got, &body, status, code);
        if let Some(field) = field {
            assert_eq!(body["error"]["field"], field, "{body}");
        }
    }
    let (status, _, body) = h
        .call(with_bearer(
            post_json("/v1/tasks/end", r#"{"task_id":"t1"}"#),
            ADMIN,
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"task_id": "t1", "ended": true}));
    let (_, _, body) = h
        .call(post_json("/v1/decide", action_json("r1", Some("t1"))))
        .await;
    assert_eq!(body["reason"], "task `t1` has ended", "{body}");
}

#[tokio::test]
async fn plugins_lists_the_active_set() {
    let h = harness(
        &format!(
            "{}{}",
            allow_all(),
            echo("shadow", "deny", "mode = \"monitor\"")
        ),
        |_| {},
    );
    let (status, _, body) = h.call(get("/v1/plugins")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["generation"], 1);
    assert!(
        body["policy_set_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let plugins = body["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), 2);
    for (p, (name, mode)) in plugins
        .iter()
        .zip([("gate", "enforce"), ("shadow", "monitor")])
    {
        assert_eq!(p["name"], name);
        assert_eq!(p["mode"], mode);
        assert_eq!(p["generation"], 1);
        for key in ["plugin", "version", "kind"] {
            assert!(p[key].as_str().is_some_and(|s| !s.is_empty()), "{key}: {p}");
        }
        assert!(p["digest"].as_str().unwrap().starts_with("sha256:"));
    }
}

#[tokio::test]
async fn readiness_follows_the_policy_set_and_shutdown() {
    let h = harness_with(None, None, with_admin);
    assert_eq!(h.call(get("/healthz")).await.0, StatusCode::OK);
    let (status, _, body) = h.call(get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "not-ready");
    for request in [
        post_json("/v1/decide", action_json("r1", None)),
        get("/v1/plugins"),
        with_bearer(post_json("/v1/reload", ""), ADMIN),
        with_bearer(post_json("/v1/tasks/t/end", ""), ADMIN),
    ] {
        let (status, _, body) = h.call(request).await;
        assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    }
    assert!(h.metrics().await.contains("arbiter_policy_generation 0"));

    assert!(h.state.activate(Arc::new(arbiter(&allow_all()))));
    let (status, _, body) = h.call(get("/readyz")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["generation"], 1);
    assert_eq!(body["decision_log"], "ok");
    assert_eq!(
        h.call(post_json("/v1/decide", action_json("r1", None)))
            .await
            .0,
        StatusCode::OK
    );

    h.state.begin_shutdown();
    let (status, _, body) = h.call(get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["reason"], "shutting down");
    assert_eq!(h.call(get("/healthz")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_expose_decisions_plugins_and_policy() {
    let h = harness(
        &format!("{}{}", allow_all(), misbehave("crashy", "trap", "")),
        |_| {},
    );
    for i in 0..3 {
        let (_, _, body) = h
            .call(post_json("/v1/decide", action_json(&format!("r{i}"), None)))
            .await;
        assert_eq!(body["effect"], "deny", "the trapping plugin fails closed");
    }
    let (status, headers, _) = h.call(get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = h.metrics().await;
    for expected in [
        r#"arbiter_decisions_total{effect="deny"} 3"#,
        r#"arbiter_decisions_total{effect="allow"} 0"#,
        "arbiter_decision_duration_seconds_count 3",
        r#"arbiter_decision_duration_seconds_bucket{le="0.00001"}"#,
        r#"arbiter_decision_duration_seconds_bucket{le="0.1"}"#,
        r#"arbiter_plugin_evaluation_duration_seconds_count{plugin="gate"} 3"#,
        r#"arbiter_plugin_evaluations_total{outcome="ok",plugin="gate"} 3"#,
        r#"arbiter_plugin_evaluations_total{outcome="trap",plugin="crashy"} 3"#,
        r#"arbiter_reloads_total{result="success",trigger="manual"} 0"#,
        r#"arbiter_reloads_total{result="failure",trigger="watch"} 0"#,
        "arbiter_policy_generation 1",
        "arbiter_decision_log_dropped_total 0",
        "arbiter_decision_log_errors_total 0",
        "# TYPE arbiter_decision_duration_seconds histogram",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in\n{text}");
    }
    let info: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("arbiter_plugin_info{"))
        .collect();
    assert_eq!(info.len(), 2, "{text}");
    assert!(
        info.iter()
            .all(|l| l.contains("digest=\"sha256:") && l.ends_with(" 1")),
        "{info:?}"
    );
}

/// A config file in a temporary directory whose plugins point at the built ones.
fn config_file(dir: &std::path::Path, plugins: &str) -> std::path::PathBuf {
    let path = dir.join("arbiter.toml");
    let plugins = plugins
        .replace(
            "build/plugins/",
            &format!("{}/build/plugins/", root().display()),
        )
        .replace(
            "build/fixtures/",
            &format!("{}/build/fixtures/", root().display()),
        );
    let trust = common::test_trust_absolute();
    std::fs::write(&path, format!("{TEST_DEFAULTS}{trust}{plugins}")).unwrap();
    path
}

#[tokio::test]
async fn reload_swaps_the_set_or_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(dir.path(), &allow_all());
    let h = harness_with(
        Some(Arbiter::from_config_file(&path).unwrap()),
        None,
        with_admin,
    );
    let reload = || with_bearer(post_json("/v1/reload", ""), ADMIN);

    // A broken config: refused, generation 1 keeps serving.
    config_file(
        dir.path(),
        "[[plugin]]\nname = \"gate\"\npath = \"missing.wasm\"\n",
    );
    let (status, _, body) = h.call(reload()).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reload_failed",
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("generation 1 keeps serving") && message.contains("missing.wasm"),
        "{message}"
    );
    let (_, _, decision) = h
        .call(post_json("/v1/decide", action_json("r1", None)))
        .await;
    assert_eq!(
        (decision["effect"].as_str(), decision["generation"].as_u64()),
        (Some("allow"), Some(1))
    );

    // A good config: generation 2 decides.
    config_file(dir.path(), &echo("gate", "deny", ""));
    let (status, _, body) = h.call(reload()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["previous_generation"], 1);
    assert_eq!(body["generation"], 2);
    assert_eq!(body["plugins"][0]["generation"], 2);
    let (_, _, decision) = h
        .call(post_json("/v1/decide", action_json("r2", None)))
        .await;
    assert_eq!(
        (decision["effect"].as_str(), decision["generation"].as_u64()),
        (Some("deny"), Some(2))
    );
    let text = h.metrics().await;
    for expected in [
        r#"arbiter_reloads_total{result="success",trigger="manual"} 1"#,
        r#"arbiter_reloads_total{result="failure",trigger="manual"} 1"#,
        "arbiter_policy_generation 2",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in\n{text}");
    }
    // A host not built from a file cannot reload, and says so.
    let h = harness(&allow_all(), with_admin);
    let (status, _, body) = h.call(reload()).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reload_failed",
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not built from a config file")
    );
}

/// Before, `arbiter_reloads_total` counted only `POST /v1/reload`: 38 watcher reloads, 7
/// of them refused, left it at 0. Now every attempt counts, by trigger and result, and
/// `GET /v1/reload` keeps the recent ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_reloads_are_counted_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(dir.path(), &echo("gate", "allow", ""));
    let h = harness_with(
        Some(Arbiter::from_config_file(&path).unwrap()),
        None,
        with_admin,
    );
    h.state.watch_policy_files().unwrap();
    let status = || async {
        let (code, _, body) = h.call(with_bearer(get("/v1/reload"), ADMIN)).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        body
    };
    let wait_for = |attempts: usize| {
        let status = &status;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let body = status().await;
                if body["recent"].as_array().unwrap().len() >= attempts {
                    return body;
                }
                assert!(std::time::Instant::now() < deadline, "{body}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    // A good change, then a refused one, both by the watcher.
    config_file(dir.path(), &echo("gate", "deny", ""));
    let body = wait_for(1).await;
    assert_eq!(body["generation"], 2, "{body}");
    config_file(
        dir.path(),
        "[[plugin]]\nname = \"gate\"\npath = \"missing.wasm\"\n",
    );
    let body = wait_for(2).await;
    assert_eq!(body["recent"][0]["result"], "failure", "{body}");
    assert_eq!(body["recent"][0]["trigger"], "watch", "{body}");
    assert!(
        body["recent"][0]["error"]
            .as_str()
            .unwrap()
            .contains("missing.wasm"),
        "{body}"
    );
    assert_eq!(body["recent"][1]["result"], "success", "{body}");
    // Restore the good config; a manual reload of it then finds nothing new.
    config_file(dir.path(), &echo("gate", "deny", ""));
    let body = wait_for(3).await;
    assert_eq!(body["recent"][0]["result"], "unchanged", "{body}");
    let (code, _, body) = h
        .call(with_bearer(post_json("/v1/reload", ""), ADMIN))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        (body["changed"].as_bool(), body["generation"].as_u64()),
        (Some(false), Some(2))
    );
    let text = h.metrics().await;
    for expected in [
        r#"arbiter_reloads_total{result="success",trigger="watch"} 1"#,
        r#"arbiter_reloads_total{result="failure",trigger="watch"} 1"#,
        r#"arbiter_reloads_total{result="unchanged",trigger="watch"} 1"#,
        r#"arbiter_reloads_total{result="unchanged",trigger="manual"} 1"#,
        "arbiter_policy_generation 2",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in\n{text}");
    }
}

// ---------------------------------------------------------------------------------------
// Decision log

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn decision_log_lines_carry_the_audit_fields() {
    let h = harness(&allow_all(), |_| {});
    let mut request = post_json("/v1/decide", action_json("r1", Some("t1")));
    request
        .headers_mut()
        .insert("traceparent", TRACEPARENT.parse().unwrap());
    let (_, _, decision) = h.call(request).await;
    let mut request = post_json("/v1/decide", action_json("r2", None));
    request
        .headers_mut()
        .insert("traceparent", "garbage".parse().unwrap());
    h.call(request).await;
    let lines = h.log_lines().await;
    assert_eq!(lines.len(), 2);
    let line = &lines[0];
    assert_eq!(line["decision_id"], decision["decision_id"]);
    assert_eq!(line["time"], decision["time"]);
    assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(line["request_id"], "r1");
    assert_eq!(line["task_id"], "t1");
    assert_eq!(line["generation"], 1);
    assert_eq!(line["effect"], "allow");
    assert_eq!(
        line["plugins"][0]["digest"],
        decision["plugins"][0]["digest"]
    );
    assert_eq!(
        line["action"]["tool"],
        json!({"server": "fs", "name": "read_file"})
    );
    assert_eq!(line["action"]["agent"]["id"], "spiffe://test/agent");
    // Redacted by default: values go, and so do keys the configuration does not name
    // (the echo plugin's settings do not name `path`).
    assert_eq!(
        line["action"]["arguments"],
        json!({"[redacted-1]": REDACTED})
    );
    assert!(
        lines[1].get("trace_id").is_none(),
        "an invalid traceparent is ignored"
    );
}

#[tokio::test]
async fn argument_redaction_is_configurable() {
    // Keys in sorted order: labels are numbered in the order keys are met.
    let body = r#"{"request_id":"r1","agent":{"id":"a"},"tool":{"server":"http","name":"post"},"arguments":{"headers":{"authorization":"Bearer s3cret"},"n":[1,2],"url":"https://x"}}"#;
    for (redaction, expected) in [
        (
            Redaction::None,
            json!({"url":"https://x","headers":{"authorization":"Bearer s3cret"},"n":[1,2]}),
        ),
        (
            Redaction::All,
            json!({"[redacted-1]":{"[redacted-4]":REDACTED},"[redacted-2]":[REDACTED,REDACTED],"[redacted-3]":REDACTED}),
        ),
        (
            Redaction::Pointers(vec!["/headers/authorization".into(), "/n/1".into()]),
            json!({"url":"https://x","headers":{"authorization":REDACTED},"n":[1,REDACTED]}),
        ),
    ] {
        let h = harness(&allow_all(), |c| {
            c.decision_log.redaction = redaction.clone()
        });
        let (_, _, decision) = h.call(post_json("/v1/decide", body)).await;
        assert_eq!(decision["effect"], "allow");
        let lines = h.log_lines().await;
        assert_eq!(lines[0]["action"]["arguments"], expected, "{redaction:?}");
    }
}

/// The three reference plugins with their example settings, as in the golden cases.
fn reference_plugins() -> String {
    ["intent", "scope", "sensitivity"]
        .map(|n| {
            format!(
                "[[plugin]]\nname = \"{n}\"\npath = \"build/plugins/{n}.wasm\"\nsettings_file = \"plugins/{n}/example-settings.json\"\n"
            )
        })
        .concat()
}

/// An action for the reference plugins: a live task with `intent`, a credential for
/// `scope` bound to the tool's server.
fn reference_action(
    request_id: &str,
    intent: &str,
    tool: &str,
    scope: &str,
    arguments: Value,
) -> String {
    let (server, name) = tool.split_once('/').unwrap();
    json!({
        "request_id": request_id,
        "agent": {"id": "spiffe://example.org/agent", "attestation": "x509-svid"},
        "delegation": [{"id": "alice@example.com", "kind": "user", "scopes": [scope]}],
        "task": {"id": format!("task-{request_id}"), "intent": intent, "started_at": 1767268500000_u64, "expires_at": 1767272400000_u64},
        "tool": {"server": server, "name": name},
        "arguments": arguments,
        "credential": {"scopes": [scope], "audience": server, "expires_at": 1767269400000_u64},
        "time": 1767268800000_u64
    })
    .to_string()
}

struct SecretCase {
    body: String,
    tool: &'static str,
    intent: &'static str,
    /// Must not appear in the redacted log line (compared case-insensitively, since
    /// plugins lowercase hosts).
    secrets: &'static [&'static str],
    /// Must appear in the answer: proof that a plugin repeated them (normalised) in a
    /// reason or an obligation, so the test covers that position.
    repeated: &'static [&'static str],
    /// Where the secret values are, for `redact_arguments = [pointers]`.
    pointers: &'static [&'static str],
    /// Secrets in keys on the way to those pointers: pointer mode shows them.
    in_keys: &'static [&'static str],
}

fn secret_cases() -> Vec<SecretCase> {
    vec![
        // A path that escapes its root only after percent-decoding: intent quotes the raw
        // path and the decoded, resolved one (`/pathsecret7`, in no argument). An object
        // key holds a secret; under it a GitHub token, which sensitivity reports by its
        // pointer, in its reason and in a redact obligation.
        SecretCase {
            body: reference_action(
                "r-path",
                "summarize-repo",
                "fs/read_file",
                "fs:read",
                json!({
                    "path": "/repo/%2e%2e/%70%61%74%68%73%65%63%72%65%74%37",
                    "cfg-keysecret8": {"token": "ghp_valuesecret9AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
                }),
            ),
            tool: "fs/read_file",
            intent: "summarize-repo",
            secrets: &["pathsecret7", "%70%61%74%68", "keysecret8", "valuesecret9"],
            repeated: &["pathsecret7", "keysecret8"],
            pointers: &["/path", "/cfg-keysecret8/token"],
            in_keys: &["keysecret8"],
        },
        // A URL whose host plugins lowercase before quoting it, with a secret query.
        SecretCase {
            body: reference_action(
                "r-url",
                "summarize-repo",
                "web/fetch",
                "fs:read",
                json!({"url": "https://HOSTSECRET4.example/docs?q=querysecret5"}),
            ),
            tool: "web/fetch",
            intent: "summarize-repo",
            secrets: &["hostsecret4", "querysecret5"],
            repeated: &["hostsecret4", "querysecret5"],
            pointers: &["/url"],
            in_keys: &[],
        },
        // SQL with a card number, longer than the 120 bytes intent echoes: the quoted
        // statement is clipped, so it is no substring of the argument.
        SecretCase {
            body: reference_action(
                "r-sql",
                "answer-billing-question",
                "db/query",
                "db:read",
                json!({"sql": format!(
                    "DELETE FROM payments WHERE card = '4539 1488 0343 6467' AND note = 'notesecret6' AND pad = '{}'",
                    "x".repeat(100)
                )}),
            ),
            tool: "db/query",
            intent: "answer-billing-question",
            secrets: &["4539 1488 0343 6467", "4539148803436467", "notesecret6"],
            repeated: &["4539 1488 0343 6467", "notesecret6"],
            pointers: &["/sql"],
            in_keys: &[],
        },
    ]
}

fn lowercase_contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// The raw text of the only line in the log.
async fn only_line(h: &Harness) -> String {
    h.state.decision_log().flush().await;
    let bytes = h.log.0.lock().unwrap().clone();
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    lines[0].to_owned()
}

#[tokio::test]
async fn redaction_covers_reasons_keys_and_obligations() {
    let plugins = reference_plugins();
    for case in secret_cases() {
        let pointers = Redaction::Pointers(case.pointers.iter().map(|p| p.to_string()).collect());
        for redaction in [Redaction::All, pointers] {
            let h = harness(&plugins, |c| c.decision_log.redaction = redaction.clone());
            let (status, _, answer) = h.call(post_json("/v1/decide", case.body.clone())).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            // The answer goes to the gateway, which sent the arguments: not redacted.
            let answer_text = answer.to_string();
            for repeated in case.repeated {
                assert!(
                    lowercase_contains(&answer_text, repeated),
                    "no plugin repeated `{repeated}`, so this case does not test it: {answer_text}"
                );
            }
            let raw = only_line(&h).await;
            for secret in case.secrets {
                if redaction != Redaction::All && case.in_keys.contains(secret) {
                    continue;
                }
                assert!(
                    !lowercase_contains(&raw, secret),
                    "{redaction:?}: `{secret}` leaked into the decision log: {raw}"
                );
            }
            // What an auditor needs stays readable.
            let line: Value = serde_json::from_str(&raw).unwrap();
            assert_eq!(line["effect"], answer["effect"], "{raw}");
            let names: Vec<&str> = line["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["intent", "scope", "sensitivity"]);
            for (logged, answered) in line["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .zip(answer["plugins"].as_array().unwrap())
            {
                assert_eq!(logged["verdict"], answered["verdict"]);
                assert_eq!(logged["digest"], answered["digest"]);
            }
            let (server, name) = case.tool.split_once('/').unwrap();
            assert_eq!(
                line["action"]["tool"],
                json!({"server": server, "name": name})
            );
            assert_eq!(line["action"]["task"]["intent"], case.intent);
            let reason = line["reason"].as_str().unwrap();
            assert!(reason.contains(&format!("`{}`", case.tool)), "{reason}");
        }
    }
}

/// The redacted reasons of the reference plugins still say why, in their words: what
/// came from the configuration (rule ids, roots, hosts, argument pointers) and what the
/// line shows anyway (tool, intent, scopes, principals) stays; the rest is redacted.
#[tokio::test]
async fn redacted_reasons_stay_readable() {
    let h = harness(&reference_plugins(), |_| {});
    for case in secret_cases() {
        h.call(post_json("/v1/decide", case.body)).await;
    }
    let lines = h.log_lines().await;
    let reasons: Vec<Vec<&str>> = lines
        .iter()
        .map(|line| {
            std::iter::once(line["reason"].as_str().unwrap())
                .chain(
                    line["plugins"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p["reason"].as_str().unwrap()),
                )
                .collect()
        })
        .collect();
    assert_eq!(
        reasons,
        [
            vec![
                "denied by `intent`: tool `fs/read_file` is denied for intent `summarize-repo` by rule `fs/read_file`: argument `/path` path `[redacted]` resolves to `[redacted]` after 1 round(s) of percent-decoding, outside the allowed roots `/repo`",
                "tool `fs/read_file` is denied for intent `summarize-repo` by rule `fs/read_file`: argument `/path` path `[redacted]` resolves to `[redacted]` after 1 round(s) of percent-decoding, outside the allowed roots `/repo`",
                "scopes `fs:read` required by `fs/read_file` are granted by the credential and delegated by user `alice@example.com`",
                // The pointer follows the labels of the keys in the logged arguments.
                "argument `/[redacted-1]/[redacted-2]` carries a secret (`[redacted]`); redact it before `fs/read_file` runs",
            ],
            vec![
                "denied by `intent`: tool `web/fetch` is denied for intent `summarize-repo` by rule `docs-fetch`: argument `/url` url `[redacted]` has host `[redacted]`, which is not among the allowed hosts `docs.rs`, `doc.rust-lang.org`, `developer.mozilla.org`, `*.readthedocs.io`",
                "tool `web/fetch` is denied for intent `summarize-repo` by rule `docs-fetch`: argument `/url` url `[redacted]` has host `[redacted]`, which is not among the allowed hosts `docs.rs`, `doc.rust-lang.org`, `developer.mozilla.org`, `*.readthedocs.io`",
                "tool `web/fetch` requires no scopes",
                "egress through `web/fetch` to `[redacted]` carries no detected secrets or personal data",
            ],
            vec![
                "denied by `intent`: tool `db/query` is denied for intent `answer-billing-question` by rule `billing-read-only`: argument `/sql` sql `[redacted]` is a `[redacted]` statement, which is not read-only",
                "tool `db/query` is denied for intent `answer-billing-question` by rule `billing-read-only`: argument `/sql` sql `[redacted]` is a `[redacted]` statement, which is not read-only",
                "scopes `db:read` required by `db/query` are granted by the credential and delegated by user `alice@example.com`",
                "argument `/sql` carries personal data (`[redacted]`); labelled for the task history",
            ],
        ]
    );
    // Argument keys the intent and sensitivity settings name keep their names.
    assert_eq!(
        lines[0]["action"]["arguments"],
        json!({"path": REDACTED, "[redacted-1]": {"[redacted-2]": REDACTED}})
    );
    assert_eq!(
        lines[0]["plugins"][2]["obligations"],
        json!([{"kind": "redact", "detail": "/[redacted-1]/[redacted-2]", "plugin": "sensitivity"}])
    );
    assert_eq!(lines[2]["action"]["arguments"], json!({"sql": REDACTED}));
}

/// Without redaction the same lines carry every secret: nothing is hidden.
#[tokio::test]
async fn without_redaction_the_log_has_every_value() {
    let plugins = reference_plugins();
    for case in secret_cases() {
        let h = harness(&plugins, |c| c.decision_log.redaction = Redaction::None);
        h.call(post_json("/v1/decide", case.body.clone())).await;
        let raw = only_line(&h).await;
        for secret in case.secrets {
            if lowercase_contains(&case.body, secret) || case.repeated.contains(secret) {
                assert!(
                    lowercase_contains(&raw, secret),
                    "`{secret}` missing: {raw}"
                );
            }
        }
    }
}

/// A sink that always fails, like a full disk.
fn dev_full() -> Box<dyn Write + Send> {
    Box::new(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    )
}

#[tokio::test]
async fn failing_sink_is_counted_and_decisions_continue() {
    let h = harness_with(Some(arbiter(&allow_all())), Some(dev_full()), |_| {});
    for i in 0..3 {
        let (_, _, body) = h
            .call(post_json("/v1/decide", action_json(&format!("r{i}"), None)))
            .await;
        assert_eq!(body["effect"], "allow");
    }
    h.state.decision_log().flush().await;
    let text = h.metrics().await;
    assert!(
        text.contains("arbiter_decision_log_errors_total 3"),
        "{text}"
    );
    let (status, _, body) = h.call(get("/readyz")).await;
    assert_eq!(status, StatusCode::OK, "non-strict: still ready");
    assert_eq!(body["decision_log"], "failing");
}

#[tokio::test]
async fn strict_mode_denies_what_cannot_be_logged() {
    let h = harness_with(Some(arbiter(&allow_all())), Some(dev_full()), |c| {
        c.decision_log.strict = true;
    });
    let (status, _, body) = h
        .call(post_json("/v1/decide", action_json("r1", None)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["effect"], "deny", "{body}");
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("could not be logged") && reason.contains("No space left"),
        "{reason}"
    );
    assert_eq!(
        body["plugins"][0]["verdict"], "allow",
        "the plugins' view is kept"
    );
    // The task history records the answer the gateway got, not the plugins' allow:
    // before, later plugins read `allow` in `host.history` for this denied action.
    let (_, _, body) = h
        .call(post_json("/v1/decide", action_json("r2", Some("t-strict"))))
        .await;
    assert_eq!(body["effect"], "deny", "{body}");
    let history = h.state.arbiter().unwrap().task_history("t-strict");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].effect, arbiter_host::Effect::Deny, "{history:?}");
    let (status, _, body) = h.call(get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let text = h.metrics().await;
    assert!(
        text.contains(r#"arbiter_decisions_total{effect="deny"} 2"#),
        "{text}"
    );

    // With a working sink, strict mode answers once the line is written.
    let h = harness(&allow_all(), |c| c.decision_log.strict = true);
    let (_, _, body) = h
        .call(post_json("/v1/decide", action_json("r1", None)))
        .await;
    assert_eq!(body["effect"], "allow");
    assert_eq!(
        h.log.lines().len(),
        1,
        "written before the answer, without a flush"
    );
}

#[tokio::test]
async fn in_strict_mode_the_line_of_the_deny_that_quarantines_its_task_says_so() {
    let policy = format!(
        "{}[tasks.quarantine]\nafter_denies = 1\n",
        echo("gate", "deny", "")
    );
    let h = harness(&policy, |c| c.decision_log.strict = true);
    let (_, _, body) = h
        .call(post_json("/v1/decide", action_json("r1", Some("t-q"))))
        .await;
    assert_eq!(body["effect"], "deny", "{body}");
    let why = body["quarantine"].as_str().unwrap_or_default().to_owned();
    assert!(why.contains("after_denies"), "{body}");
    // Written before the answer, and it is the answer: reason and quarantine included.
    let lines = h.log.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["quarantine"], why.as_str(), "{}", lines[0]);
    assert_eq!(lines[0]["reason"], body["reason"]);
    let (_, _, next) = h
        .call(post_json("/v1/decide", action_json("r2", Some("t-q"))))
        .await;
    assert!(
        next["reason"].as_str().unwrap().contains("quarantined"),
        "{next}"
    );
}

/// A sink that blocks until released, to fill the queue deterministically.
/// A sink whose writes wait until the gate opens; `entered` tells that the writer thread
/// is inside a write, holding its batch.
struct Gate(Arc<GateState>, SharedBuf);

#[derive(Default)]
struct GateState {
    open: Mutex<bool>,
    cv: std::sync::Condvar,
    entered: std::sync::atomic::AtomicBool,
}

impl Write for Gate {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .entered
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut open = self.0.open.lock().unwrap();
        while !*open {
            open = self.0.cv.wait(open).unwrap();
        }
        self.1.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn open_gate(gate: &GateState) {
    *gate.open.lock().unwrap() = true;
    gate.cv.notify_all();
}

/// Waits until the writer thread is blocked in a write with the records it took.
async fn writer_blocked(gate: &GateState) {
    while !gate.entered.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn full_queue_drops_or_denies() {
    // Non-strict: decisions go on, drops are counted. The first record is held in the
    // writer before the others are sent (the writer batches whatever is queued when it
    // starts a write, so the count is exact only then): one in the writer, one queued,
    // three dropped.
    let gate = Arc::new(GateState::default());
    let sink = SharedBuf::default();
    let h = harness_with(
        Some(arbiter(&allow_all())),
        Some(Box::new(Gate(Arc::clone(&gate), sink.clone()))),
        |c| c.decision_log.buffer = 1,
    );
    for i in 0..5 {
        let (_, _, body) = h
            .call(post_json("/v1/decide", action_json(&format!("r{i}"), None)))
            .await;
        assert_eq!(body["effect"], "allow");
        if i == 0 {
            writer_blocked(&gate).await;
        }
    }
    open_gate(&gate);
    h.state.decision_log().flush().await;
    let written = sink.lines().len();
    let text = h.metrics().await;
    assert_eq!(written, 2, "capacity 1 plus one in the writer");
    assert!(
        text.contains("arbiter_decision_log_dropped_total 3"),
        "{text}"
    );

    // Strict: what cannot be queued is denied at once; queued ones wait for the write.
    let gate = Arc::new(GateState::default());
    let sink = SharedBuf::default();
    let h = Arc::new(harness_with(
        Some(arbiter(&allow_all())),
        Some(Box::new(Gate(Arc::clone(&gate), sink.clone()))),
        |c| {
            c.decision_log.buffer = 1;
            c.decision_log.strict = true;
        },
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..4 {
        let h = Arc::clone(&h);
        tasks.spawn(async move {
            h.call(post_json("/v1/decide", action_json(&format!("r{i}"), None)))
                .await
                .2
        });
        if i == 0 {
            writer_blocked(&gate).await;
        }
    }
    let mut early = Vec::new();
    for _ in 0..2 {
        early.push(tasks.join_next().await.unwrap().unwrap());
    }
    for body in &early {
        assert_eq!(body["effect"], "deny", "{body}");
        assert!(
            body["reason"].as_str().unwrap().contains("queue is full"),
            "{body}"
        );
    }
    open_gate(&gate);
    let mut late = Vec::new();
    while let Some(body) = tasks.join_next().await {
        late.push(body.unwrap());
    }
    let allowed = late.iter().filter(|b| b["effect"] == "allow").count();
    assert_eq!(
        allowed, 2,
        "the one in the writer and the queued one: {late:?}"
    );
    assert_eq!(
        allowed,
        sink.lines().len(),
        "every allowed decision was logged: {late:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Real sockets and processes

/// Starts the server on an ephemeral loopback port; returns its address, a shutdown
/// trigger and the server task.
async fn start(
    h: &Harness,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(arbiter_host::adapters::http::run(
        listener,
        h.state.clone(),
        None,
        async {
            let _ = stopped.await;
        },
    ));
    (addr, stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_socket_round_trip_and_graceful_shutdown() {
    let h = harness(&allow_all(), |_| {});
    let (addr, stop, server) = start(&h).await;
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let response = client
        .post(format!("{base}/v1/decide"))
        .header("content-type", "application/json")
        .header("traceparent", TRACEPARENT)
        .body(action_json("r1", Some("t1")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let decision: Value = response.json().await.unwrap();
    assert_eq!(decision["effect"], "allow");
    let bad = client
        .post(format!("{base}/v1/decide"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    // Shutdown flushed the log.
    let lines = h.log.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["decision_id"], decision["decision_id"]);
    assert_eq!(lines[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

/// Reads from `stream` until the server closes it (or it errors), within `bound`;
/// returns what arrived, or `None` if the connection was still open at the bound.
async fn read_until_closed(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    bound: std::time::Duration,
) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let read = tokio::time::timeout(bound, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&received).into_owned())
}

/// A generous bound for "the server closed it": the configured timeouts are 100s of
/// ms, so only a server that never closes reaches it.
const CLOSED_WITHIN: std::time::Duration = std::time::Duration::from_secs(20);

/// Regression (issue 12): 300 connections with unfinished headers stayed open for 60 s.
/// A connection whose headers do not all arrive within `header_read_timeout_ms` is
/// closed, and so is one that sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_headers_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let h = harness(&allow_all(), |c| {
        c.header_read_timeout = std::time::Duration::from_millis(300);
    });
    let (addr, stop, server) = start(&h).await;
    let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
    half.write_all(b"POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        .await
        .unwrap();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    for stream in [&mut half, &mut silent] {
        let answer = read_until_closed(stream, CLOSED_WITHIN).await;
        assert!(answer.is_some(), "still open after {CLOSED_WITHIN:?}");
    }
    // The server still serves complete requests.
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// Regression (issue 12): a client that sends its headers and then trickles the body
/// held the connection and the handler for as long as it liked. Past
/// `body_read_timeout_ms` it gets the JSON `408` and the connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_body_is_cut_off_with_a_json_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = harness(&allow_all(), |c| {
        with_admin(c);
        c.body_read_timeout = std::time::Duration::from_millis(300);
    });
    let (addr, stop, server) = start(&h).await;
    for (path, auth) in [
        ("/v1/decide", String::new()),
        (
            "/v1/tasks/end",
            format!("Authorization: Bearer {ADMIN}\r\n"),
        ),
    ] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                format!(
                    "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}Content-Length: 1000\r\n\r\n{{\"request_id\""
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        // Keep trickling, a byte every 50 ms, until the server gives up on us.
        let (mut reader, mut writer) = stream.into_split();
        let trickle = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                if writer.write_all(b" ").await.is_err() {
                    break;
                }
            }
        });
        // Stop trickling at the first byte of the answer, so no byte of ours is left
        // unread when the server closes (which could turn its close into a reset).
        let mut first = [0u8; 1];
        let started = tokio::time::timeout(CLOSED_WITHIN, reader.read_exact(&mut first)).await;
        trickle.abort();
        let _ = trickle.await;
        assert!(
            matches!(started, Ok(Ok(_))),
            "{path}: no answer within {CLOSED_WITHIN:?}: {started:?}"
        );
        let rest = read_until_closed(&mut reader, CLOSED_WITHIN)
            .await
            .unwrap_or_else(|| panic!("{path}: still open after {CLOSED_WITHIN:?}"));
        let answer = format!("{}{rest}", first[0] as char);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("connection: close"), "{path}: {answer}");
        assert!(
            answer.contains(r#""code":"body_timeout""#),
            "{path}: {answer}"
        );
    }
    assert!(
        h.metrics()
            .await
            .contains(r#"arbiter_http_errors_total{code="body_timeout"} 2"#)
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// Reads from `stream` until what arrived contains `needle`, within `bound`.
async fn read_until_contains(
    stream: &mut tokio::net::TcpStream,
    needle: &str,
    bound: std::time::Duration,
) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    tokio::time::timeout(bound, async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&received).contains(needle) {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
        Some(String::from_utf8_lossy(&received).into_owned())
    })
    .await
    .ok()
    .flatten()
}

/// Regression (issue 12): connections were unbounded. With `max_connections = 2`, a
/// third client is not served while two connections are open (it waits in the listen
/// queue), and is served as soon as one of them closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_wait_until_one_closes() {
    use tokio::io::AsyncWriteExt;
    const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const OK: &str = r#"{"status":"ok"}"#;
    let h = harness(&allow_all(), |c| {
        c.max_connections = 2;
        // Idle keep-alive connections keep their slots for the whole test.
        c.header_read_timeout = std::time::Duration::from_secs(120);
    });
    let (addr, stop, server) = start(&h).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(HEALTH).await.unwrap();
        let answer = read_until_contains(&mut stream, OK, CLOSED_WITHIN).await;
        assert!(answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")));
        held.push(stream);
    }
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    third.write_all(HEALTH).await.unwrap();
    // A server that served it would answer in well under this; one that holds the
    // limit never does, so this cannot fail for a slow machine.
    let early = read_until_contains(&mut third, OK, std::time::Duration::from_millis(500)).await;
    assert_eq!(early, None, "served past the connection limit");
    drop(held.pop());
    let answer = read_until_contains(&mut third, OK, CLOSED_WITHIN).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "served once a slot is free: {answer:?}"
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[test]
fn arbiter_serve_binary_serves_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let path = config_file(
        dir.path(),
        &format!(
            "{}[server]\nlisten = \"127.0.0.1:0\"\n[server.decision_log]\nsink = \"{}\"\nredact_arguments = false\n",
            allow_all(),
            log.display()
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("ARBITER_LOG", "info")
        .env("ARBITER_ADMIN_TOKEN", ADMIN)
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
    let mut ready = false;
    // Bounded: the binary must log its address and readiness within 60 s.
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(60)) {
        if let Some(rest) = line.split("addr=").nth(1) {
            addr = rest.split_whitespace().next().map(str::to_owned);
        }
        ready |= line.contains("ready");
        seen.push(line);
        if addr.is_some() && ready {
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no address logged: {seen:#?}"));
    assert!(ready, "{seen:#?}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let decision: Value = runtime.block_on(async {
        let client = reqwest::Client::new();
        let ready = client
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
        let ended = client
            .post(format!("http://{addr}/v1/tasks/t9/end"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(ended.status(), 200, "admin token from the environment");
        let refused = client
            .post(format!("http://{addr}/v1/reload"))
            .bearer_auth("not-the-admin-token")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        client
            .post(format!("http://{addr}/v1/decide"))
            .header("content-type", "application/json")
            .body(action_json("r1", None))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(decision["effect"], "allow");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["decision_id"], decision["decision_id"]);
    assert_eq!(lines[0]["action"]["arguments"]["path"], "/repo/a");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("rejected request without valid credentials")
                && l.contains("/v1/reload")
                && l.contains("wrong bearer token")
                && l.contains("peer=127.0.0.1:")),
        "the refused attempt is logged: {rest:#?}"
    );
    assert!(rest.iter().any(|l| l.contains("SIGTERM")), "{rest:#?}");
    assert!(
        rest.iter().any(|l| l.contains("decision log flushed")),
        "{rest:#?}"
    );
}

#[tokio::test]
async fn promtool_accepts_the_metrics() {
    let h = harness(
        &format!(
            "{}{}",
            allow_all(),
            misbehave("crashy", "trap", "mode = \"monitor\"")
        ),
        |_| {},
    );
    for i in 0..3 {
        h.call(post_json(
            "/v1/decide",
            action_json(&format!("r{i}"), Some("t")),
        ))
        .await;
    }
    h.call(post_json("/v1/decide", "{")).await;
    let text = h.metrics().await;
    promtool_accepts(&text);
}

/// 16 concurrent clients × 500 requests over real loopback HTTP: every response is
/// well-formed and right for its request (allowed, denied by task end, or rejected).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_load_every_response_is_correct() {
    const CLIENTS: usize = 16;
    const REQUESTS: usize = 500;
    let h = harness(&allow_all(), with_admin);
    // One ended task: its actions must be denied under load too.
    h.call(with_bearer(post_json("/v1/tasks/ended/end", ""), ADMIN))
        .await;
    let (addr, stop, server) = start(&h).await;
    let client = reqwest::Client::new();
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let client = client.clone();
        clients.spawn(async move {
            let mut ids = Vec::with_capacity(REQUESTS);
            for i in 0..REQUESTS {
                let request_id = format!("c{c}-r{i}");
                let (body, expect) = match i % 10 {
                    0 => ("{\"request_id\":".to_owned(), "invalid_json"),
                    1 => (action_json(&request_id, Some("ended")), "deny"),
                    _ => (
                        action_json(&request_id, Some(&format!("task-{c}"))),
                        "allow",
                    ),
                };
                let response = client
                    .post(format!("http://{addr}/v1/decide"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let answer: Value = response.json().await.unwrap();
                if expect == "invalid_json" {
                    assert_eq!(status, 400, "{answer}");
                    assert_eq!(answer["error"]["code"], "invalid_json");
                } else {
                    assert_eq!(status, 200, "{answer}");
                    assert_eq!(answer["request_id"], request_id.as_str());
                    assert_eq!(answer["effect"], expect, "{answer}");
                    assert_eq!(answer["generation"], 1);
                    ids.push(answer["decision_id"].as_str().unwrap().to_owned());
                }
            }
            ids
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(result) = clients.join_next().await {
        for id in result.unwrap() {
            assert!(ids.insert(id), "decision ids are unique");
        }
    }
    assert_eq!(ids.len(), CLIENTS * REQUESTS * 9 / 10);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let logged: std::collections::HashSet<String> = h
        .log
        .lines()
        .iter()
        .map(|l| l["decision_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logged, ids, "every decision logged exactly once");
}

// ---------------------------------------------------------------------------------------
// The shipped JSON Schema agrees with the parser

/// Generated invalid inputs: every object written as a positional array (which serde's
/// derive used to accept: 1,489 schema-invalid requests got decisions), and every value
/// replaced by one of the wrong type. The shipped schema (checked by a real JSON Schema
/// validator) and the parser must agree on each, and both must refuse it.
#[test]
fn schema_and_parser_refuse_the_same_generated_invalid_inputs() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/action.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let full = json!({
        "request_id": "r1",
        "agent": {"id": "a", "attestation": "mtls", "claims": {"k": "v"}},
        "delegation": [{"id": "u", "kind": "user", "scopes": ["s"]}],
        "task": {"id": "t", "intent": "i", "started_at": 1, "expires_at": 2},
        "tool": {"server": "fs", "name": "x"},
        "arguments": {"a": 1},
        "credential": {"scopes": ["s"], "expires_at": 3, "audience": "fs"},
        "resource": {"id": "r", "labels": ["l"]},
        "environment": {"env": "prod"},
        "time": 4
    });
    assert!(validator.is_valid(&full));
    arbiter_host::Action::from_value(full.clone()).unwrap();
    // Every JSON pointer in the example except inside `arguments` (any value goes there).
    fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
        if at == "/arguments" {
            return;
        }
        out.push(at.clone());
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    pointers(v, format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    pointers(v, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut all = Vec::new();
    pointers(&full, String::new(), &mut all);
    let mut cases = 0;
    for pointer in &all {
        let original = full.pointer(pointer).unwrap().clone();
        let mut replacements = vec![];
        match &original {
            Value::Object(map) => {
                // The positional form of the object, and the bare values.
                replacements.push(Value::Array(map.values().cloned().collect()));
                replacements.push(json!(1));
                replacements.push(json!("text"));
            }
            Value::Array(_) => {
                replacements.push(json!({"0": "x"}));
                replacements.push(json!("text"));
            }
            Value::String(_) => {
                replacements.push(json!(5));
                replacements.push(json!(["text"]));
                replacements.push(json!({"text": "text"}));
            }
            Value::Number(_) => {
                replacements.push(json!("5"));
                replacements.push(json!(-1));
                replacements.push(json!(1.5));
                replacements.push(json!([5]));
            }
            _ => {}
        }
        for replacement in replacements {
            let mut case = full.clone();
            if pointer.is_empty() {
                case = replacement.clone();
            } else {
                *case.pointer_mut(pointer).unwrap() = replacement.clone();
            }
            let schema_ok = validator.is_valid(&case);
            let parsed = arbiter_host::Action::from_value(case.clone());
            assert_eq!(
                schema_ok,
                parsed.is_ok(),
                "`{pointer}` = {replacement}: schema says valid={schema_ok}, parser says {parsed:?}"
            );
            assert!(!schema_ok, "`{pointer}` = {replacement} should be invalid");
            // The HTTP API parses bytes, not values: the same verdict there.
            let body = serde_json::to_vec(&case).unwrap();
            assert!(
                arbiter_host::Action::from_json(std::str::from_utf8(&body).unwrap()).is_err(),
                "`{pointer}` = {replacement}"
            );
            cases += 1;
        }
    }
    assert!(cases > 60, "{cases} generated cases");
}

/// Every property the schema lists is one the parser accepts and vice versa, and the
/// schema's `required` lists are exactly the fields whose absence the parser refuses.
#[test]
fn action_schema_matches_the_parser() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/action.schema.json")).unwrap(),
    )
    .unwrap();
    let full = json!({
        "request_id": "r1",
        "agent": {"id": "a", "attestation": "mtls", "claims": {"k": "v"}},
        "delegation": [{"id": "u", "kind": "user", "scopes": ["s"]}],
        "task": {"id": "t", "intent": "i", "started_at": 1, "expires_at": 2},
        "tool": {"server": "fs", "name": "x"},
        "arguments": {"a": 1},
        "credential": {"scopes": ["s"], "expires_at": 3, "audience": "fs"},
        "resource": {"id": "r", "labels": ["l"]},
        "environment": {"env": "prod"},
        "time": 4
    });
    arbiter_host::Action::from_value(full.clone()).expect("the full example parses");
    // The id rules are the parser's constants.
    let defs = &schema["$defs"];
    assert_eq!(defs["id"]["maxLength"], arbiter_host::MAX_ID_BYTES);
    assert_eq!(
        defs["agentId"]["maxLength"],
        arbiter_host::MAX_AGENT_ID_BYTES
    );
    assert_eq!(schema["properties"]["request_id"]["$ref"], "#/$defs/id");
    assert_eq!(defs["task"]["properties"]["id"]["$ref"], "#/$defs/id");
    assert_eq!(defs["agent"]["properties"]["id"]["$ref"], "#/$defs/agentId");
    let pattern = defs["id"]["pattern"].as_str().unwrap();
    let class = pattern
        .strip_prefix("^[A-Za-z0-9")
        .and_then(|p| p.strip_suffix("]+$"))
        .unwrap_or_else(|| panic!("`{pattern}`"));
    let mut listed: Vec<char> = class.chars().collect();
    let mut parser: Vec<char> = arbiter_host::ID_PUNCTUATION.chars().collect();
    listed.sort_unstable();
    parser.sort_unstable();
    assert_eq!(
        listed, parser,
        "the schema's id punctuation is the parser's"
    );
    // (pointer into the example, schema definition of that object)
    let objects = [
        ("", schema.clone()),
        ("/agent", schema["$defs"]["agent"].clone()),
        ("/delegation/0", schema["$defs"]["principal"].clone()),
        ("/task", schema["$defs"]["task"].clone()),
        ("/tool", schema["$defs"]["tool"].clone()),
        ("/credential", schema["$defs"]["credential"].clone()),
        ("/resource", schema["$defs"]["resource"].clone()),
    ];
    for (pointer, def) in objects {
        assert_eq!(def["additionalProperties"], false, "{pointer}");
        let example = full.pointer(pointer).unwrap().as_object().unwrap();
        let properties: std::collections::BTreeSet<&String> =
            def["properties"].as_object().unwrap().keys().collect();
        let keys: std::collections::BTreeSet<&String> = example.keys().collect();
        assert_eq!(properties, keys, "schema properties of `{pointer}`");
        let required: Vec<&str> = def["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        for key in keys {
            let mut without = full.clone();
            let parent = if pointer.is_empty() {
                &mut without
            } else {
                without.pointer_mut(pointer).unwrap()
            };
            parent.as_object_mut().unwrap().remove(key.as_str());
            let parsed = arbiter_host::Action::from_value(without);
            assert_eq!(
                parsed.is_err(),
                required.contains(&key.as_str()),
                "`{pointer}/{key}`: schema and parser disagree on whether it is required: {parsed:?}"
            );
        }
        // An unknown key is refused by both.
        let mut extra = full.clone();
        let parent = if pointer.is_empty() {
            &mut extra
        } else {
            extra.pointer_mut(pointer).unwrap()
        };
        parent
            .as_object_mut()
            .unwrap()
            .insert("bogus".into(), json!(1));
        assert!(
            arbiter_host::Action::from_value(extra).is_err(),
            "{pointer}"
        );
    }
}
