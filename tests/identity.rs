//! Verified workload identity on the decision server, over real TLS on 127.0.0.1: the
//! tests mint their own SVIDs (no SPIRE server can be had here): certificate
//! authorities and leaves with rcgen, JWT-SVIDs with jsonwebtoken (ES256, EdDSA) and an
//! RSA key from the real `openssl` binary (RS256), and serve the bundles as files.
//!
//! What each test shows: a good SVID decides as its SPIFFE ID and the decision (and its
//! log line) names it; each bad one of the matrix (expired, wrong audience, unknown
//! `kid`, wrong trust domain, two URI SANs, a CA certificate as the leaf, `alg: none`,
//! an HMAC token keyed with the public key) is refused with its reason and no decision;
//! a bundle rotated while serving takes effect without a restart.

use crate::common;
use crate::common::svid::{AGENT, AUDIENCE, Ca, SigningKey, b64, claims, jwks, now};
use arbiter_host::adapters::http::{AppState, ServerSettings, run};
use arbiter_host::adapters::identity;
use arbiter_host::service::{DecisionLog, Metrics, ServerConfig};
use arbiter_host::{Arbiter, Config};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{BasicConstraints, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A running decision server with `[identity]`.
struct Server {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    server_ca: String,
    log: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    state: AppState,
    _identity: identity::ListenerIdentity,
}

struct Pki {
    example: Ca,
    other: Ca,
    es: SigningKey,
    ed: SigningKey,
    rs: SigningKey,
}

impl Server {
    async fn start(pki: &Pki, dir: tempfile::TempDir, require_verified: bool) -> Self {
        Self::start_with(pki, dir, require_verified, "").await
    }

    async fn start_with(
        pki: &Pki,
        dir: tempfile::TempDir,
        require_verified: bool,
        extra: &str,
    ) -> Self {
        let root = dir.path();
        let server_ca = Ca::new("arbiter test server CA");
        let server_cert = server_ca.leaf(&[], |p| {
            p.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        });
        std::fs::write(root.join("server.pem"), &server_cert).unwrap();
        std::fs::write(root.join("server.key"), &server_cert).unwrap();
        std::fs::write(root.join("example.org.pem"), pki.example.pem()).unwrap();
        std::fs::write(root.join("other.org.pem"), pki.other.pem()).unwrap();
        std::fs::write(
            root.join("example.org.jwks"),
            jwks(&[&pki.es, &pki.ed, &pki.rs]),
        )
        .unwrap();
        let log = root.join("decisions.jsonl");
        let config = format!(
            "{trust}{defaults}{plugin}
[server.decision_log]
sink = \"{log}\"

[identity]
require_verified = {require_verified}
audience = \"{AUDIENCE}\"

[identity.tls]
certificate = \"server.pem\"
private_key = \"server.key\"

[[identity.trust_domain]]
name = \"example.org\"
x509_bundle = \"example.org.pem\"
jwt_bundle = \"example.org.jwks\"

[[identity.trust_domain]]
name = \"other.org\"
x509_bundle = \"other.org.pem\"
{extra}
",
            trust = common::test_trust_absolute(),
            defaults = common::TEST_DEFAULTS,
            plugin = common::echo("allow-all", "allow", "").replace(
                "build/fixtures",
                &common::root().join("build/fixtures").display().to_string()
            ),
            log = log.display(),
        );
        let path = root.join("arbiter.toml");
        std::fs::write(&path, config).unwrap();
        let config = Config::from_file(&path).unwrap();
        let server = ServerConfig::from_config(&config).unwrap();
        let metrics = Metrics::new().unwrap();
        let decision_log = DecisionLog::start(&server.decision_log, metrics.clone()).unwrap();
        let settings = ServerSettings::resolve(&server, |_| None).unwrap();
        let state = AppState::new(settings, metrics, decision_log);
        let listener_identity = identity::start(&config, state.service(), false).unwrap();
        state.activate(Arc::new(Arbiter::new(&config).unwrap()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(run(
            listener,
            state.clone(),
            listener_identity.tls.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            dir,
            server_ca: server_ca.pem(),
            log,
            stop: Some(stop),
            state,
            _identity: listener_identity,
        }
    }

    fn client(&self, certificate: Option<&str>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.server_ca.as_bytes()).unwrap(),
            )
            .timeout(Duration::from_secs(10));
        if let Some(pem) = certificate {
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }

    /// POSTs an action for `agent` and returns the status and body.
    async fn decide(
        &self,
        certificate: Option<&str>,
        bearer: Option<&str>,
        agent: &str,
    ) -> (u16, Value) {
        let action = json!({
            "request_id": "r-1",
            "agent": { "id": agent, "attestation": "x509-svid" },
            "tool": { "server": "billing", "name": "refund" },
            "arguments": { "amount": 10 }
        });
        self.post(certificate, bearer, "/v1/decide", action).await
    }

    /// POSTs an action for `agent` with `client`, whose connections are kept alive.
    async fn decide_on(&self, client: &reqwest::Client, agent: &str) -> (u16, Value) {
        let action = json!({
            "request_id": "r-1",
            "agent": { "id": agent },
            "tool": { "server": "billing", "name": "refund" },
            "arguments": { "amount": 10 }
        });
        let response = client
            .post(format!("https://127.0.0.1:{}/v1/decide", self.addr.port()))
            .json(&action)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs `body` to `path` and returns the status and body.
    async fn post(
        &self,
        certificate: Option<&str>,
        bearer: Option<&str>,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let mut request = self
            .client(certificate)
            .post(format!("https://127.0.0.1:{}{path}", self.addr.port()))
            .json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({ "transport_error": format!("{e:?}") })),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn pki(dir: &Path) -> Pki {
    Pki {
        example: Ca::new("example.org CA"),
        other: Ca::new("other.org CA"),
        es: SigningKey::p256("es-1"),
        ed: SigningKey::ed25519("ed-1"),
        rs: SigningKey::rsa("rs-1", dir),
    }
}

fn refused(outcome: &(u16, Value), status: u16, needle: &str, step: &str) {
    assert_eq!(outcome.0, status, "{step}: {}", outcome.1);
    assert_eq!(
        outcome.1["error"]["code"], "identity_refused",
        "{step}: {}",
        outcome.1
    );
    let message = outcome.1["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{step}: `{needle}` not in `{message}`"
    );
    assert!(
        outcome.1.get("decision_id").is_none(),
        "{step}: a decision was taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x509_svids_over_mtls_decide_as_their_spiffe_id_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let server = Server::start(&pki, dir, true).await;

    let good = pki.example.leaf(&[AGENT], |_| {});
    let (status, decision) = server.decide(Some(&good), None, AGENT).await;
    assert_eq!(status, 200, "{decision}");
    assert_eq!(decision["effect"], "allow");
    assert_eq!(
        decision["identity"],
        json!({ "id": AGENT, "attestation": "x509-svid", "source": "mtls", "trust_domain": "example.org" })
    );

    // The body names another agent than the certificate.
    let other = server
        .decide(Some(&good), None, "spiffe://example.org/agent/admin")
        .await;
    refused(
        &other,
        403,
        "asserts agent `spiffe://example.org/agent/admin`",
        "conflict",
    );
    refused(
        &other,
        403,
        &format!("verified identity is `{AGENT}`"),
        "conflict",
    );

    // Nothing presented, verification required.
    refused(
        &server.decide(None, None, AGENT).await,
        401,
        "no verified identity",
        "none",
    );

    let expired = pki.example.leaf(&[AGENT], |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    refused(
        &server.decide(Some(&expired), None, AGENT).await,
        401,
        "expired",
        "expired",
    );

    // Issued by example.org's CA for other.org: checked against other.org's roots only.
    let cross = pki
        .example
        .leaf(&["spiffe://other.org/agent/billing"], |_| {});
    let outcome = server
        .decide(Some(&cross), None, "spiffe://other.org/agent/billing")
        .await;
    refused(
        &outcome,
        401,
        "does not verify against the bundle of `other.org`",
        "wrong trust domain",
    );

    let unknown = pki
        .example
        .leaf(&["spiffe://unknown.org/agent/billing"], |_| {});
    let outcome = server
        .decide(Some(&unknown), None, "spiffe://unknown.org/agent/billing")
        .await;
    refused(
        &outcome,
        401,
        "trust domain `unknown.org` is not trusted",
        "unknown trust domain",
    );

    let two = pki
        .example
        .leaf(&[AGENT, "spiffe://example.org/agent/admin"], |_| {});
    refused(
        &server.decide(Some(&two), None, AGENT).await,
        401,
        "multiple URI SAN",
        "two URI SANs",
    );

    let ca_leaf = pki.example.leaf(&[AGENT], |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
    });
    refused(
        &server.decide(Some(&ca_leaf), None, AGENT).await,
        401,
        "is a CA certificate",
        "CA as leaf",
    );

    let signer = pki.example.leaf(&[AGENT], |p| {
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
    });
    refused(
        &server.decide(Some(&signer), None, AGENT).await,
        401,
        "`keyCertSign`",
        "keyCertSign",
    );

    // A self-made CA nobody trusts.
    let rogue = Ca::new("rogue").leaf(&[AGENT], |_| {});
    refused(
        &server.decide(Some(&rogue), None, AGENT).await,
        401,
        "does not verify",
        "untrusted CA",
    );

    // The decision log names the identity, its source and trust domain.
    server.state.decision_log().flush().await;
    let log = std::fs::read_to_string(&server.log).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "only the good request was decided: {log}");
    assert_eq!(lines[0]["identity"]["source"], "mtls");
    assert_eq!(lines[0]["identity"]["trust_domain"], "example.org");
    assert_eq!(lines[0]["action"]["agent"]["attestation"], "x509-svid");
    let metrics = server.state.metrics().encode().unwrap();
    assert!(
        metrics.contains("arbiter_identity_refusals_total{reason=\"invalid\"} 7"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_svids_verify_with_es256_eddsa_and_rs256_and_the_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let server = Server::start(&pki, dir, true).await;

    for key in [&pki.es, &pki.ed, &pki.rs] {
        let token = key.token(&claims(AGENT));
        let (status, decision) = server.decide(None, Some(&token), AGENT).await;
        assert_eq!(status, 200, "{:?}: {decision}", key.alg);
        assert_eq!(decision["identity"]["source"], "bearer");
        assert_eq!(decision["identity"]["attestation"], "jwt-svid");
        assert_eq!(decision["identity"]["trust_domain"], "example.org");
    }
    // An audience given as a single string counts as well.
    let single = pki
        .es
        .token(&json!({ "sub": AGENT, "aud": AUDIENCE, "exp": now() + 300 }));
    assert_eq!(server.decide(None, Some(&single), AGENT).await.0, 200);

    let expired = pki
        .es
        .token(&json!({ "sub": AGENT, "aud": [AUDIENCE], "exp": now() - 10 }));
    refused(
        &server.decide(None, Some(&expired), AGENT).await,
        401,
        "the token expired",
        "expired",
    );

    let no_exp = pki.es.token(&json!({ "sub": AGENT, "aud": [AUDIENCE] }));
    refused(
        &server.decide(None, Some(&no_exp), AGENT).await,
        401,
        "no `exp`",
        "no exp",
    );

    let wrong_aud = pki.es.token(
        &json!({ "sub": AGENT, "aud": ["spiffe://example.org/billing-api"], "exp": now() + 300 }),
    );
    refused(
        &server.decide(None, Some(&wrong_aud), AGENT).await,
        401,
        &format!("does not contain `{AUDIENCE}`"),
        "wrong audience",
    );

    let stranger = SigningKey::p256("nope");
    refused(
        &server
            .decide(None, Some(&stranger.token(&claims(AGENT))), AGENT)
            .await,
        401,
        "key id `nope` is not in the bundle of `example.org`",
        "unknown kid",
    );

    // A key of the bundle, but the token claims its kid with another key's signature.
    let forged = SigningKey {
        kid: "es-1".to_owned(),
        ..SigningKey::p256("x")
    };
    refused(
        &server
            .decide(None, Some(&forged.token(&claims(AGENT))), AGENT)
            .await,
        401,
        "signature does not verify",
        "forged signature",
    );

    let other_domain = pki.es.token(&claims("spiffe://other.org/agent/billing"));
    refused(
        &server
            .decide(
                None,
                Some(&other_domain),
                "spiffe://other.org/agent/billing",
            )
            .await,
        401,
        "trust domain `other.org` is not trusted (no jwt bundle",
        "wrong trust domain",
    );

    let header = b64(br#"{"alg":"none","kid":"es-1"}"#);
    let body = b64(claims(AGENT).to_string().as_bytes());
    let none = format!("{header}.{body}.");
    refused(
        &server.decide(None, Some(&none), AGENT).await,
        401,
        "algorithm `none` is not accepted",
        "alg none",
    );

    // HMAC keyed with the public key's bytes: the classic confusion attack.
    let public = serde_json::to_vec(&pki.es.jwk()).unwrap();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("es-1".to_owned());
    let hmac = jsonwebtoken::encode(
        &hs_header,
        &claims(AGENT),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    refused(
        &server.decide(None, Some(&hmac), AGENT).await,
        401,
        "algorithm `HS256` is not accepted",
        "HMAC",
    );

    let mut no_kid = Header::new(Algorithm::ES256);
    no_kid.kid = None;
    let no_kid = jsonwebtoken::encode(&no_kid, &claims(AGENT), &pki.es.key).unwrap();
    refused(
        &server.decide(None, Some(&no_kid), AGENT).await,
        401,
        "no `kid`",
        "no kid",
    );

    refused(
        &server.decide(None, Some("not-a-jwt"), AGENT).await,
        401,
        "compact JWS",
        "garbage",
    );

    // The certificate and the token name different agents.
    let cert = pki
        .example
        .leaf(&["spiffe://example.org/agent/other"], |_| {});
    let token = pki.es.token(&claims(AGENT));
    refused(
        &server.decide(Some(&cert), Some(&token), AGENT).await,
        403,
        "the client certificate is `spiffe://example.org/agent/other` but the bearer token is",
        "two credentials",
    );
}

/// Rewrites a bundle file by rename (as a rotation would) and waits until `accepted`
/// says the new one is in use.
async fn rotate<F, Fut>(path: &Path, content: &str, mut accepted: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let temp = path.with_extension("new");
    std::fs::write(&temp, content).unwrap();
    std::fs::rename(&temp, path).unwrap();
    for _ in 0..100 {
        if accepted().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the rotated bundle {} was not picked up in 10 s",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_rotated_while_serving_take_effect_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let server = Server::start(&pki, dir, true).await;
    let root = server.dir.path().to_owned();

    let old_token = pki.es.token(&claims(AGENT));
    assert_eq!(server.decide(None, Some(&old_token), AGENT).await.0, 200);
    let next = SigningKey::p256("es-2");
    let new_token = next.token(&claims(AGENT));
    rotate(&root.join("example.org.jwks"), &jwks(&[&next]), || async {
        server.decide(None, Some(&new_token), AGENT).await.0 == 200
    })
    .await;
    refused(
        &server.decide(None, Some(&old_token), AGENT).await,
        401,
        "key id `es-1` is not in the bundle",
        "rotated-out key",
    );

    let old_cert = pki.example.leaf(&[AGENT], |_| {});
    assert_eq!(server.decide(Some(&old_cert), None, AGENT).await.0, 200);
    // A connection opened before the rotation and kept alive across it.
    let kept = server.client(Some(&old_cert));
    assert_eq!(server.decide_on(&kept, AGENT).await.0, 200);
    let next_ca = Ca::new("example.org CA 2");
    let new_cert = next_ca.leaf(&[AGENT], |_| {});
    rotate(&root.join("example.org.pem"), &next_ca.pem(), || async {
        server.decide(Some(&new_cert), None, AGENT).await.0 == 200
    })
    .await;
    refused(
        &server.decide(Some(&old_cert), None, AGENT).await,
        401,
        "does not verify",
        "rotated-out CA",
    );
    refused(
        &server.decide_on(&kept, AGENT).await,
        401,
        "does not verify",
        "rotated-out CA on a connection opened before the rotation",
    );

    // A broken bundle is refused; the last good one keeps verifying.
    std::fs::write(root.join("example.org.pem"), "not a bundle").unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(server.decide(Some(&new_cert), None, AGENT).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_required_verification_an_unverified_request_passes_as_asserted_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let server = Server::start(&pki, dir, false).await;
    let (status, decision) = server.decide(None, None, AGENT).await;
    assert_eq!(status, 200, "{decision}");
    // The body claimed `x509-svid`; a claim is not evidence.
    assert_eq!(
        decision["identity"],
        json!({ "id": AGENT, "attestation": "none", "source": "asserted:body" })
    );
    // A presented credential that fails is still refused.
    let expired = pki
        .es
        .token(&json!({ "sub": AGENT, "aud": [AUDIENCE], "exp": now() - 1 }));
    refused(
        &server.decide(None, Some(&expired), AGENT).await,
        401,
        "expired",
        "bad token",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_opener_opens_tasks_and_their_actions_cannot_disagree_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let opener = "spiffe://example.org/gateway";
    let extra = format!("[tasks]\nmode = \"opened\"\nopeners = [\"{opener}\"]\n");
    let server = Server::start_with(&pki, dir, true, &extra).await;
    let ask =
        json!({"agents": [AGENT], "intent": "billing-refunds", "expires_at": (now() + 600) * 1000});
    // A verified identity that is not an opener may not open tasks.
    let agent_token = pki.es.token(&claims(AGENT));
    let (status, refused) = server
        .post(None, Some(&agent_token), "/v1/tasks", ask.clone())
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("not_an_opener")),
        "{refused}"
    );
    let opener_token = pki.es.token(&claims(opener));
    let (status, opened) = server
        .post(None, Some(&opener_token), "/v1/tasks", ask)
        .await;
    assert_eq!(status, 201, "{opened}");
    assert_eq!(opened["opened_by"], opener);
    let task = opened["id"].as_str().unwrap();
    let cert = pki.example.leaf(&[AGENT], |_| {});
    let action = |intent: &str| {
        json!({
            "request_id": "r-2",
            "agent": { "id": AGENT },
            "task": { "id": task, "intent": intent, "started_at": 0 },
            "tool": { "server": "billing", "name": "refund" },
            "arguments": { "amount": 10 }
        })
    };
    let (status, decision) = server
        .post(Some(&cert), None, "/v1/decide", action("billing-refunds"))
        .await;
    assert_eq!(
        (status, decision["effect"].as_str()),
        (200, Some("allow")),
        "{decision}"
    );
    assert_eq!(decision["tasks"], "opened");
    let (_, decision) = server
        .post(Some(&cert), None, "/v1/decide", action("admin-everything"))
        .await;
    assert_eq!(decision["effect"], "deny");
    assert!(
        decision["reason"]
            .as_str()
            .unwrap()
            .contains("`task.intent` is `admin-everything`"),
        "{decision}"
    );
    // An action of the same agent outside any opened task is denied too.
    let (_, decision) = server.decide(Some(&cert), None, AGENT).await;
    assert!(
        decision["reason"]
            .as_str()
            .unwrap()
            .contains("names no task"),
        "{decision}"
    );
}
