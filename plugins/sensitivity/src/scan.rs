//! Detectors and the argument walker.
//!
//! Built-in detectors are hand-written byte scans dispatched from one pass over each
//! string (no regex): at each byte only the detectors whose literal prefix can start
//! there are tried. Candidate substrings in base64 (standard or url-safe), hex or
//! percent-encoding are decoded and re-scanned, up to `decode_depth` levels.

use crate::settings::{PatternLabel, Settings};
use arbiter_guest::Sensitivity;
use arbiter_guest::serde_json::{self, Value};
use std::fmt::Write as _;

/// The built-in detectors. The discriminant is the bit used by `disabled_detectors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Builtin {
    /// PEM / OpenSSH / PuTTY private keys, and DER private keys in base64.
    PrivateKey = 0,
    /// AWS access key ids (`AKIA` / `ASIA`).
    AwsAccessKey,
    /// GCP service-account JSON (`"private_key"`).
    GcpServiceAccount,
    /// GitHub tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`).
    GithubToken,
    /// Slack tokens (`xoxb-`, `xoxa-`, `xoxp-`, `xoxr-`, `xoxs-`).
    SlackToken,
    /// Slack incoming-webhook URLs.
    SlackWebhook,
    /// Stripe live keys (`sk_live_`, `rk_live_`).
    StripeKey,
    /// `Bearer <token>`.
    BearerToken,
    /// `Basic <base64 user:password>`.
    BasicAuth,
    /// JSON Web Tokens.
    Jwt,
    /// `scheme://user:password@host`.
    UrlCredentials,
    /// Object members named like credentials (`password`, `api_key`, ...).
    CredentialField,
    /// Payment card numbers (Luhn-checked).
    CardNumber,
    /// E-mail addresses.
    Email,
    /// US social security numbers (`ddd-dd-dddd`).
    UsSsn,
    /// IBANs (mod-97 checked).
    Iban,
}

impl Builtin {
    /// Every built-in detector.
    pub const ALL: [Self; 16] = [
        Self::PrivateKey,
        Self::AwsAccessKey,
        Self::GcpServiceAccount,
        Self::GithubToken,
        Self::SlackToken,
        Self::SlackWebhook,
        Self::StripeKey,
        Self::BearerToken,
        Self::BasicAuth,
        Self::Jwt,
        Self::UrlCredentials,
        Self::CredentialField,
        Self::CardNumber,
        Self::Email,
        Self::UsSsn,
        Self::Iban,
    ];

    /// The detector's name in settings and reasons.
    pub fn name(self) -> &'static str {
        match self {
            Self::PrivateKey => "private-key",
            Self::AwsAccessKey => "aws-access-key",
            Self::GcpServiceAccount => "gcp-service-account",
            Self::GithubToken => "github-token",
            Self::SlackToken => "slack-token",
            Self::SlackWebhook => "slack-webhook",
            Self::StripeKey => "stripe-key",
            Self::BearerToken => "bearer-token",
            Self::BasicAuth => "basic-auth",
            Self::Jwt => "jwt",
            Self::UrlCredentials => "url-credentials",
            Self::CredentialField => "credential-field",
            Self::CardNumber => "card-number",
            Self::Email => "email",
            Self::UsSsn => "us-ssn",
            Self::Iban => "iban",
        }
    }

    /// What a hit means.
    pub fn class(self) -> Class {
        match self {
            Self::CardNumber => Class {
                secret: false,
                pii: true,
                level: Some(Sensitivity::Restricted),
            },
            Self::Email | Self::UsSsn | Self::Iban => Class {
                secret: false,
                pii: true,
                level: None,
            },
            _ => Class {
                secret: true,
                pii: false,
                level: None,
            },
        }
    }
}

/// What a detector's hit means: a secret, personal data, and/or a sensitivity level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Class {
    /// Credentials or key material.
    pub secret: bool,
    /// Personal data.
    pub pii: bool,
    /// The sensitivity level the data has.
    pub level: Option<Sensitivity>,
}

impl Class {
    fn of_label(label: PatternLabel) -> Self {
        match label {
            PatternLabel::Secret => Self {
                secret: true,
                ..Self::default()
            },
            PatternLabel::Pii => Self {
                pii: true,
                ..Self::default()
            },
            PatternLabel::Level(level) => Self {
                level: Some(level),
                ..Self::default()
            },
        }
    }
}

/// Which detector found something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detector {
    /// A built-in detector.
    Builtin(Builtin),
    /// The operator pattern at this index in the settings.
    Custom(usize),
}

impl Detector {
    /// The detector's name.
    pub fn name(self, settings: &Settings) -> &str {
        match self {
            Self::Builtin(b) => b.name(),
            Self::Custom(i) => settings
                .patterns
                .get(i)
                .map_or("custom", |p| p.name.as_str()),
        }
    }

    /// What a hit means.
    pub fn class(self, settings: &Settings) -> Class {
        match self {
            Self::Builtin(b) => b.class(),
            Self::Custom(i) => settings
                .patterns
                .get(i)
                .map_or(Class::default(), |p| Class::of_label(p.label)),
        }
    }
}

/// One detection: which detector, in which argument, under which encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The detector.
    pub detector: Detector,
    /// JSON pointer of the argument (string, number or object member) that carries it.
    pub pointer: String,
    /// The outermost encoding it was hidden under, if any.
    pub encoding: Option<&'static str>,
    /// Found in an object key: `pointer` is then the object holding the key, so that
    /// neither reasons nor obligations echo the key.
    pub in_key: bool,
}

/// At most this many findings are kept (the summary flags stay exact).
pub const MAX_FINDINGS: usize = 64;

/// The result of scanning one action's arguments.
#[derive(Debug, Default)]
pub struct Scan {
    /// Findings, deduplicated by detector and pointer, in document order.
    pub findings: Vec<Finding>,
    /// More findings existed than [`MAX_FINDINGS`].
    pub truncated: bool,
    /// Any finding was a secret.
    pub secret: bool,
    /// Any finding was personal data.
    pub pii: bool,
    /// Highest level among findings.
    pub level: Option<Sensitivity>,
}

/// Bytes of argument text (strings, keys, numbers) in `value`, counting stops once past `limit`.
pub fn measure(value: &Value, limit: usize) -> usize {
    fn go(value: &Value, limit: usize, total: &mut usize) {
        if *total > limit {
            return;
        }
        match value {
            Value::String(s) => *total += s.len(),
            // Upper bound of a number's decimal text; exact enough for a cap.
            Value::Number(_) => *total += 24,
            Value::Array(items) => {
                for item in items {
                    go(item, limit, total);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    *total += k.len();
                    go(item, limit, total);
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }
    let mut total = 0;
    go(value, limit, &mut total);
    total
}

/// Scans every string, object key and number in `arguments`.
///
/// `email_exempt` lists pointers (an egress rule's e-mail destinations) where e-mail
/// addresses are routing, not data carried, so the `email` detector ignores them.
pub fn scan(settings: &Settings, arguments: &Value, email_exempt: &[String]) -> Scan {
    let mut walker = Walker {
        settings,
        email_exempt,
        path: Vec::new(),
        in_key: false,
        scan: Scan::default(),
    };
    walker.walk(arguments);
    walker.scan
}

#[derive(Debug, Clone, Copy)]
enum Seg<'v> {
    Key(&'v str),
    Index(usize),
}

struct Walker<'s, 'v> {
    settings: &'s Settings,
    email_exempt: &'s [String],
    path: Vec<Seg<'v>>,
    in_key: bool,
    scan: Scan,
}

/// Shortest base64 run decoded (12 characters = 9 bytes).
const MIN_B64_RUN: usize = 12;
/// Shortest hex run decoded (16 characters = 8 bytes).
const MIN_HEX_RUN: usize = 16;

/// Normalised object-member names that hold credentials.
const CREDENTIAL_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "clientsecret",
    "apikey",
    "apisecret",
    "accesstoken",
    "refreshtoken",
    "authtoken",
    "sessiontoken",
    "privatekey",
    "secretkey",
    "secretaccesskey",
    "awssecretaccesskey",
];

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{034F}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

impl<'s, 'v> Walker<'s, 'v> {
    fn pointer(&self) -> String {
        let mut p = String::new();
        let depth = self.path.len().saturating_sub(usize::from(self.in_key));
        for seg in self.path.iter().take(depth) {
            p.push('/');
            match seg {
                Seg::Key(k) => {
                    for c in k.chars() {
                        match c {
                            '~' => p.push_str("~0"),
                            '/' => p.push_str("~1"),
                            c => p.push(c),
                        }
                    }
                }
                Seg::Index(i) => {
                    let _ = write!(p, "{i}");
                }
            }
        }
        p
    }

    fn hit(&mut self, detector: Detector, encoding: Option<&'static str>) {
        let pointer = self.pointer();
        if detector == Detector::Builtin(Builtin::Email)
            && !self.in_key
            && self.email_exempt.iter().any(|ex| is_under(&pointer, ex))
        {
            return;
        }
        let class = detector.class(self.settings);
        self.scan.secret |= class.secret;
        self.scan.pii |= class.pii;
        self.scan.level = self.scan.level.max(class.level);
        let in_key = self.in_key;
        if self
            .scan
            .findings
            .iter()
            .any(|f| f.detector == detector && f.pointer == pointer && f.in_key == in_key)
        {
            return;
        }
        if self.scan.findings.len() >= MAX_FINDINGS {
            self.scan.truncated = true;
            return;
        }
        self.scan.findings.push(Finding {
            detector,
            pointer,
            encoding,
            in_key,
        });
    }

    fn builtin(&mut self, b: Builtin, encoding: Option<&'static str>) {
        if self.settings.enabled(b) {
            self.hit(Detector::Builtin(b), encoding);
        }
    }

    fn walk(&mut self, value: &'v Value) {
        match value {
            Value::String(s) => self.text(s),
            Value::Number(n) => {
                let text = n.to_string();
                self.scan_text(&text, 0, None);
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    self.walk(item);
                    self.path.pop();
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    self.path.push(Seg::Key(k));
                    self.in_key = true;
                    self.text(k);
                    self.in_key = false;
                    self.field(k, item);
                    self.walk(item);
                    self.path.pop();
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }

    /// Member-name detectors: GCP `private_key` and credential-named fields.
    fn field(&mut self, key: &str, value: &Value) {
        let Some(text) = value.as_str() else {
            return;
        };
        if key == "private_key" && !text.trim().is_empty() {
            self.builtin(Builtin::GcpServiceAccount, None);
        }
        if self.settings.enabled(Builtin::CredentialField)
            && is_credential_field(key)
            && looks_like_credential(text)
        {
            self.builtin(Builtin::CredentialField, None);
        }
    }

    fn text(&mut self, s: &str) {
        if !s.is_ascii() && s.chars().any(is_invisible) {
            let cleaned: String = s.chars().filter(|c| !is_invisible(*c)).collect();
            self.scan_text(&cleaned, 0, None);
        } else {
            self.scan_text(s, 0, None);
        }
    }

    fn scan_text(&mut self, s: &str, depth: u8, encoding: Option<&'static str>) {
        let b = s.as_bytes();
        self.builtins(b, encoding);
        let settings = self.settings;
        for (i, pattern) in settings.patterns.iter().enumerate() {
            // A match starts with the prefilter literal, so the search can begin at the
            // literal's first occurrence (look-behind such as `\b` still sees the text before).
            let start = match &pattern.prefilter {
                Some(literal) => s.find(literal.as_str()),
                None => Some(0),
            };
            if start.is_some_and(|start| pattern.regex.is_match_at(s, start)) {
                self.hit(Detector::Custom(i), encoding);
            }
        }
        if depth < settings.decode_depth {
            self.decode(b, depth, encoding);
        }
    }

    fn decode(&mut self, b: &[u8], depth: u8, encoding: Option<&'static str>) {
        if b.contains(&b'%') && has_percent_escape(b) {
            let decoded = percent_decode(b);
            let text = String::from_utf8_lossy(&decoded);
            self.scan_text(&text, depth + 1, encoding.or(Some("percent")));
        }
        let mut i = 0;
        while i < b.len() {
            let start = i;
            while b.get(i).copied().is_some_and(is_b64) {
                i += 1;
            }
            if i == start {
                i += 1;
                continue;
            }
            let first = b.get(start..i).unwrap_or_default();
            // Line-wrapped base64 (MIME, PEM bodies): line breaks inside a run are skipped,
            // which needs a copy; the common unwrapped run is used in place.
            if !matches!(b.get(i), Some(b'\r' | b'\n')) {
                if first.len() >= MIN_B64_RUN {
                    let all_hex = first.iter().all(u8::is_ascii_hexdigit);
                    self.decode_run(first, all_hex, depth, encoding);
                }
                continue;
            }
            let mut run = first.to_vec();
            loop {
                let mut j = i;
                while matches!(b.get(j), Some(b'\r' | b'\n')) {
                    j += 1;
                }
                if !b.get(j).copied().is_some_and(is_b64) {
                    break;
                }
                i = j;
                while let Some(c) = b.get(i).copied().filter(|c| is_b64(*c)) {
                    run.push(c);
                    i += 1;
                }
            }
            if run.len() >= MIN_B64_RUN {
                let all_hex = run.iter().all(u8::is_ascii_hexdigit);
                self.decode_run(&run, all_hex, depth, encoding);
            }
        }
    }

    fn decode_run(&mut self, run: &[u8], all_hex: bool, depth: u8, encoding: Option<&'static str>) {
        if all_hex
            && run.len() >= MIN_HEX_RUN
            && run.len().is_multiple_of(2)
            && plausible_prefix(&hex_decode(run.get(..16).unwrap_or_default()))
        {
            let decoded = hex_decode(run);
            if let Some(text) = textual(&decoded) {
                self.scan_text(text, depth + 1, encoding.or(Some("hex")));
                return;
            }
        }
        if run.len() < MIN_B64_RUN {
            return;
        }
        for offset in 0..4 {
            let Some(part) = run.get(offset..) else {
                return;
            };
            if part.len() < MIN_B64_RUN {
                return;
            }
            if !plausible_b64(part) {
                continue;
            }
            let decoded = b64_decode(part);
            if let Some(text) = textual(&decoded) {
                self.scan_text(text, depth + 1, encoding.or(Some("base64")));
                return;
            }
            if binary_private_key(&decoded) {
                self.builtin(Builtin::PrivateKey, encoding.or(Some("base64")));
                return;
            }
        }
    }

    fn builtins(&mut self, b: &[u8], encoding: Option<&'static str>) {
        for (i, &c) in b.iter().enumerate() {
            if TRIGGERS.get(usize::from(c)) != Some(&true) {
                continue;
            }
            let rest = b.get(i..).unwrap_or_default();
            let prev = i.checked_sub(1).and_then(|p| b.get(p)).copied();
            let found = match c {
                b'A'..=b'Z' => {
                    let mut found = None;
                    if c == b'A' && aws_key(rest) {
                        found = Some(Builtin::AwsAccessKey);
                    } else if c == b'B' {
                        found = auth_scheme(rest, prev);
                    } else if c == b'P' && rest.starts_with(b"PuTTY-User-Key-File-") {
                        found = Some(Builtin::PrivateKey);
                    }
                    if found.is_none()
                        && !prev.is_some_and(|p| p.is_ascii_alphanumeric())
                        && iban(rest)
                    {
                        found = Some(Builtin::Iban);
                    }
                    found
                }
                b'b' => {
                    if rest.starts_with(b"b3BlbnNzaC1rZXktdjE") {
                        Some(Builtin::PrivateKey)
                    } else {
                        auth_scheme(rest, prev)
                    }
                }
                b'e' => (!prev.is_some_and(|p| is_b64url(p) || p == b'.') && jwt(rest))
                    .then_some(Builtin::Jwt),
                b'g' => github_token(rest).then_some(Builtin::GithubToken),
                b'h' => slack_webhook(rest).then_some(Builtin::SlackWebhook),
                b'r' | b's' => stripe_key(rest).then_some(Builtin::StripeKey),
                b'x' => slack_token(rest).then_some(Builtin::SlackToken),
                b'0'..=b'9' => {
                    if card_number(b, i) {
                        Some(Builtin::CardNumber)
                    } else if us_ssn(b, i) {
                        Some(Builtin::UsSsn)
                    } else {
                        None
                    }
                }
                b'-' => pem_private_key(rest).then_some(Builtin::PrivateKey),
                b'"' => gcp_json(rest).then_some(Builtin::GcpServiceAccount),
                b':' => url_credentials(rest).then_some(Builtin::UrlCredentials),
                b'@' => email(b, i).then_some(Builtin::Email),
                _ => None,
            };
            if let Some(builtin) = found {
                self.builtin(builtin, encoding);
            }
        }
    }
}

/// Whether JSON pointer `pointer` is `base` or inside it.
pub fn is_under(pointer: &str, base: &str) -> bool {
    pointer
        .strip_prefix(base)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Bytes at which some built-in detector can start.
#[allow(clippy::indexing_slicing)] // const evaluation: an out-of-range index fails the build
static TRIGGERS: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = matches!(
            c as u8,
            b'A'..=b'Z'
                | b'0'..=b'9'
                | b'b'
                | b'e'
                | b'g'
                | b'h'
                | b'r'
                | b's'
                | b'x'
                | b'-'
                | b'"'
                | b':'
                | b'@'
        );
        c += 1;
    }
    table
};

fn is_credential_field(key: &str) -> bool {
    let mut norm = [0u8; 24];
    let mut n = 0;
    for c in key.bytes() {
        if matches!(c, b'-' | b'_' | b' ' | b'.') {
            continue;
        }
        let Some(slot) = norm.get_mut(n) else {
            return false;
        };
        *slot = c.to_ascii_lowercase();
        n += 1;
    }
    let norm = norm.get(..n).unwrap_or_default();
    CREDENTIAL_FIELDS.iter().any(|f| f.as_bytes() == norm)
}

fn looks_like_credential(value: &str) -> bool {
    let value = value.trim();
    if value.len() < 6 || value.starts_with("${") || value.starts_with("{{") {
        return false;
    }
    let mut bytes = value.bytes();
    let first = bytes.next();
    if bytes.all(|c| Some(c) == first) {
        return false;
    }
    !value.to_ascii_lowercase().contains("redacted")
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_')
}

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_')
}

fn b64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Decodes base64 in either alphabet (mixed is accepted), ignoring padding and any
/// trailing partial character.
fn b64_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in input {
        let Some(v) = b64_value(c) else {
            break;
        };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// Whether the first decoded bytes could start text or a binary private key; rejects
/// most random runs (identifiers, paths, digests) before a full decode.
fn plausible_b64(part: &[u8]) -> bool {
    let mut buf = [0u8; 12];
    let mut n = 0;
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in part.iter().take(16) {
        let Some(v) = b64_value(c) else {
            break;
        };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if let Some(slot) = buf.get_mut(n) {
                *slot = ((acc >> bits) & 0xff) as u8;
                n += 1;
            }
        }
    }
    let prefix = buf.get(..n).unwrap_or_default();
    prefix.first() == Some(&0x30) || prefix.starts_with(b"openssh") || plausible_prefix(prefix)
}

/// Valid UTF-8 (a sequence cut at the end is fine) without control characters other
/// than tab, CR and LF.
fn plausible_prefix(prefix: &[u8]) -> bool {
    let valid = match std::str::from_utf8(prefix) {
        Ok(text) => text.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => return false,
    };
    prefix
        .get(..valid)
        .unwrap_or_default()
        .iter()
        .all(|&c| c >= 0x20 && c != 0x7f || matches!(c, b'\t' | b'\n' | b'\r'))
}

fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

fn hex_decode(input: &[u8]) -> Vec<u8> {
    input
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => (hex_value(*hi) << 4) | hex_value(*lo),
            _ => 0,
        })
        .collect()
}

fn has_percent_escape(b: &[u8]) -> bool {
    b.iter().enumerate().any(|(i, &c)| {
        c == b'%'
            && b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    })
}

fn percent_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let (Some(&hi), Some(&lo)) = (b.get(i + 1), b.get(i + 2))
            && hi.is_ascii_hexdigit()
            && lo.is_ascii_hexdigit()
        {
            out.push((hex_value(hi) << 4) | hex_value(lo));
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The decoded bytes as text, if they look like text: a valid UTF-8 prefix covering at
/// least 80% of them, of at least 6 bytes, with few control characters.
fn textual(decoded: &[u8]) -> Option<&str> {
    let text = match std::str::from_utf8(decoded) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(decoded.get(..e.valid_up_to())?).ok()?,
    };
    if text.len() < 6 || text.len() * 10 < decoded.len() * 8 {
        return None;
    }
    let controls = text
        .bytes()
        .filter(|&c| (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r')) || c == 0x7f)
        .count();
    (controls * 20 <= text.len()).then_some(text)
}

/// DER-encoded private keys (PKCS#1, PKCS#8, SEC1) and OpenSSH's binary key format.
fn binary_private_key(d: &[u8]) -> bool {
    if d.starts_with(b"openssh-key-v1\0") {
        return true;
    }
    if d.len() < 40 || d.first() != Some(&0x30) {
        return false;
    }
    // Skip the outer SEQUENCE header (short or long length form).
    let body = match d.get(1) {
        Some(&len) if len < 0x80 => d.get(2..),
        Some(0x81) => d.get(3..),
        Some(0x82) => d.get(4..),
        _ => None,
    };
    // version INTEGER 0 or 1, then a SEQUENCE (PKCS#8 AlgorithmIdentifier),
    // INTEGER (PKCS#1 modulus) or OCTET STRING (SEC1 private key).
    matches!(
        body,
        Some([0x02, 0x01, 0x00 | 0x01, 0x30 | 0x02 | 0x04, ..])
    )
}

fn eq_ignore_case(hay: &[u8], lower: &[u8]) -> bool {
    hay.len() >= lower.len()
        && hay
            .iter()
            .zip(lower)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
}

/// Number of bytes from `from` satisfying `f`, up to `max`.
fn count_while(b: &[u8], from: usize, max: usize, f: impl Fn(u8) -> bool) -> usize {
    b.get(from..)
        .unwrap_or_default()
        .iter()
        .take(max)
        .take_while(|c| f(**c))
        .count()
}

fn pem_private_key(rest: &[u8]) -> bool {
    if !eq_ignore_case(rest, b"-----begin") {
        return false;
    }
    let window = rest.get(10..rest.len().min(90)).unwrap_or_default();
    window
        .windows(11)
        .any(|w| eq_ignore_case(w, b"private key"))
}

fn aws_key(rest: &[u8]) -> bool {
    (rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA"))
        && count_while(rest, 4, 16, |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit()
        }) == 16
}

fn github_token(rest: &[u8]) -> bool {
    if rest.starts_with(b"github_pat_") {
        return count_while(rest, 11, 40, |c| c.is_ascii_alphanumeric() || c == b'_') >= 40;
    }
    matches!(
        rest,
        [b'g', b'h', b'p' | b'o' | b'u' | b's' | b'r', b'_', ..]
    ) && count_while(rest, 4, 30, |c| c.is_ascii_alphanumeric()) >= 30
}

fn slack_token(rest: &[u8]) -> bool {
    matches!(
        rest,
        [b'x', b'o', b'x', b'b' | b'a' | b'p' | b'r' | b's', b'-', ..]
    ) && count_while(rest, 5, 10, |c| c.is_ascii_alphanumeric() || c == b'-') >= 10
}

fn slack_webhook(rest: &[u8]) -> bool {
    const PREFIX: &[u8] = b"hooks.slack.com/services/";
    rest.starts_with(PREFIX)
        && count_while(rest, PREFIX.len(), 10, |c| {
            c.is_ascii_alphanumeric() || c == b'/'
        }) >= 10
}

fn stripe_key(rest: &[u8]) -> bool {
    (rest.starts_with(b"sk_live_") || rest.starts_with(b"rk_live_"))
        && count_while(rest, 8, 10, |c| c.is_ascii_alphanumeric()) >= 10
}

fn gcp_json(rest: &[u8]) -> bool {
    const KEY: &[u8] = b"\"private_key\"";
    if !rest.starts_with(KEY) {
        return false;
    }
    let spaces = count_while(rest, KEY.len(), 16, |c| c.is_ascii_whitespace());
    rest.get(KEY.len() + spaces) == Some(&b':')
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// `Bearer <token>` or `Basic <base64 user:password>`, case-insensitive.
fn auth_scheme(rest: &[u8], prev: Option<u8>) -> Option<Builtin> {
    if prev.is_some_and(|p| p.is_ascii_alphanumeric()) {
        return None;
    }
    if eq_ignore_case(rest, b"bearer") {
        let spaces = count_while(rest, 6, 8, |c| c == b' ' || c == b'\t');
        if spaces == 0 {
            return None;
        }
        let len = count_while(rest, 6 + spaces, 4096, is_token_char);
        let token = rest.get(6 + spaces..6 + spaces + len).unwrap_or_default();
        return (len >= 16 && token.iter().any(u8::is_ascii_digit)).then_some(Builtin::BearerToken);
    }
    if eq_ignore_case(rest, b"basic") {
        let spaces = count_while(rest, 5, 8, |c| c == b' ' || c == b'\t');
        if spaces == 0 {
            return None;
        }
        let len = count_while(rest, 5 + spaces, 1024, |c| is_b64(c) || c == b'=');
        if len < 8 {
            return None;
        }
        let token = rest.get(5 + spaces..5 + spaces + len).unwrap_or_default();
        let decoded = b64_decode(token);
        let printable = decoded.len() >= 3 && decoded.iter().all(|c| (0x20..0x7f).contains(c));
        return (printable && decoded.contains(&b':')).then_some(Builtin::BasicAuth);
    }
    None
}

fn jwt(rest: &[u8]) -> bool {
    let header = count_while(rest, 0, 2048, is_b64url);
    if header < 10 || rest.get(header) != Some(&b'.') {
        return false;
    }
    let payload = count_while(rest, header + 1, 1 << 20, is_b64url);
    if payload < 2 || rest.get(header + 1 + payload) != Some(&b'.') {
        return false;
    }
    let decoded = b64_decode(rest.get(..header).unwrap_or_default());
    match serde_json::from_slice::<Value>(&decoded) {
        Ok(Value::Object(map)) => map.contains_key("alg"),
        _ => false,
    }
}

fn url_credentials(rest: &[u8]) -> bool {
    if !rest.starts_with(b"://") {
        return false;
    }
    let len = count_while(rest, 3, 512, |c| {
        !matches!(c, b'/' | b'?' | b'#' | b'\\' | b'"' | b'\'' | b'<' | b'>') && c > b' '
    });
    let authority = rest.get(3..3 + len).unwrap_or_default();
    let Some(at) = authority.iter().rposition(|&c| c == b'@') else {
        return false;
    };
    let userinfo = authority.get(..at).unwrap_or_default();
    userinfo
        .iter()
        .position(|&c| c == b':')
        .is_some_and(|colon| colon + 1 < userinfo.len())
}

fn is_email_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

fn email(b: &[u8], at: usize) -> bool {
    let mut start = at;
    while start > 0 && at - start < 64 && b.get(start - 1).copied().is_some_and(is_email_local) {
        start -= 1;
    }
    if start == at {
        return false;
    }
    // `scheme://user@host` is URL userinfo, not an address.
    if start >= 3 && b.get(start - 3..start) == Some(b"://") {
        return false;
    }
    let len = count_while(b, at + 1, 253, is_domain_char);
    let mut domain = b.get(at + 1..at + 1 + len).unwrap_or_default();
    while let [head @ .., b'.' | b'-'] = domain {
        domain = head;
    }
    // `git@github.com:owner/repo` is an SSH remote, not an address.
    if domain.len() == len && b.get(at + 1 + len) == Some(&b':') {
        return false;
    }
    if domain.first().is_none_or(|c| !c.is_ascii_alphanumeric()) {
        return false;
    }
    let Some(dot) = domain.iter().rposition(|&c| c == b'.') else {
        return false;
    };
    let tld = domain.get(dot + 1..).unwrap_or_default();
    tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)
}

/// A card number starting at digit `i`: 13-19 digits in groups separated by single
/// spaces or dashes, a plausible issuer prefix and a valid Luhn check digit. Any run of
/// whole groups inside a longer grouped number is tried, so a prefixed number does not
/// hide a card.
fn card_number(b: &[u8], i: usize) -> bool {
    // Only at the start of a number (not inside one, not after a separator inside one).
    if let Some(p) = i.checked_sub(1).and_then(|p| b.get(p)) {
        if p.is_ascii_digit() {
            return false;
        }
        if matches!(p, b' ' | b'-')
            && i.checked_sub(2)
                .and_then(|q| b.get(q))
                .is_some_and(u8::is_ascii_digit)
        {
            return false;
        }
    }
    const MAX_GROUPS: usize = 8;
    let mut digits = [0u8; 48];
    let mut ends = [0usize; MAX_GROUPS];
    let mut groups = 0;
    let mut count = 0;
    let mut j = i;
    loop {
        match b.get(j).copied() {
            Some(c) if c.is_ascii_digit() => {
                let Some(slot) = digits.get_mut(count) else {
                    break;
                };
                *slot = c - b'0';
                count += 1;
                j += 1;
            }
            Some(b' ' | b'-') if b.get(j + 1).is_some_and(u8::is_ascii_digit) => {
                if let Some(end) = ends.get_mut(groups) {
                    *end = count;
                }
                groups += 1;
                if groups >= MAX_GROUPS {
                    break;
                }
                j += 1;
            }
            _ => break,
        }
    }
    if let Some(end) = ends.get_mut(groups) {
        *end = count;
        groups += 1;
    }
    let ends = ends.get(..groups.min(MAX_GROUPS)).unwrap_or_default();
    let starts = std::iter::once(0).chain(ends.iter().copied());
    for start in starts {
        for &end in ends {
            if end <= start {
                continue;
            }
            if let Some(candidate) = digits.get(start..end)
                && plausible_card(candidate)
            {
                return true;
            }
        }
    }
    false
}

fn plausible_card(digits: &[u8]) -> bool {
    let n = digits.len();
    if !(13..=19).contains(&n) {
        return false;
    }
    let first = digits.first().copied().unwrap_or(0);
    if !(2..=6).contains(&first) || (n == 13 && first != 4) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &d)| {
            let d = u32::from(d);
            if k % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn us_ssn(b: &[u8], i: usize) -> bool {
    if i.checked_sub(1)
        .and_then(|p| b.get(p))
        .is_some_and(|p| p.is_ascii_digit() || *p == b'-')
    {
        return false;
    }
    let Some(s) = b.get(i..i + 11) else {
        return false;
    };
    let shape = s.iter().enumerate().all(|(k, c)| {
        if k == 3 || k == 6 {
            *c == b'-'
        } else {
            c.is_ascii_digit()
        }
    });
    if !shape
        || b.get(i + 11)
            .is_some_and(|c| c.is_ascii_digit() || *c == b'-')
    {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        s.get(r)
            .unwrap_or_default()
            .iter()
            .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'))
    };
    let (area, group, serial) = (num(0..3), num(4..6), num(7..11));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn iban_digit(rem: u32, c: u8) -> u32 {
    if c.is_ascii_digit() {
        (rem * 10 + u32::from(c - b'0')) % 97
    } else {
        (rem * 100 + u32::from(c - b'A') + 10) % 97
    }
}

/// An IBAN: country code, two check digits and 11-30 characters, optionally grouped by
/// single spaces, with a valid mod-97 check.
fn iban(rest: &[u8]) -> bool {
    let head = match rest.get(..4) {
        Some(head @ [a, b, c, d])
            if a.is_ascii_uppercase()
                && b.is_ascii_uppercase()
                && c.is_ascii_digit()
                && d.is_ascii_digit() =>
        {
            head
        }
        _ => return false,
    };
    let ok = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let finish = |rem: u32| head.iter().fold(rem, |r, &c| iban_digit(r, c)) == 1;
    let mut rem = 0u32;
    let mut len = 0usize;
    let mut j = 4;
    if rest.get(j) == Some(&b' ') {
        j += 1;
    }
    loop {
        match rest.get(j).copied() {
            Some(c) if ok(c) && len < 30 => {
                rem = iban_digit(rem, c);
                len += 1;
                j += 1;
            }
            Some(b' ') if rest.get(j + 1).copied().is_some_and(ok) && len < 30 => {
                if len >= 11 && finish(rem) {
                    return true;
                }
                j += 1;
            }
            _ => break,
        }
    }
    len >= 11 && !rest.get(j).copied().is_some_and(ok) && finish(rem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_prefixes() {
        let d = |s: &str| s.bytes().map(|c| c - b'0').collect::<Vec<_>>();
        assert!(plausible_card(&d("4111111111111111")));
        assert!(plausible_card(&d("5500000000000004")));
        assert!(plausible_card(&d("378282246310005")));
        assert!(!plausible_card(&d("4111111111111112")));
        // Unix-ms timestamps start with 1 and are not cards even when Luhn passes.
        assert!(!plausible_card(&d("1767225600005")));
    }

    #[test]
    fn iban_checks() {
        assert!(iban(b"DE89370400440532013000"));
        assert!(iban(b"DE89 3704 0044 0532 0130 00 is mine"));
        assert!(iban(b"GB82 WEST 1234 5698 7654 32"));
        assert!(!iban(b"DE89370400440532013001"));
    }

    #[test]
    fn decoders() {
        assert_eq!(b64_decode(b"aGVsbG8gd29ybGQ"), b"hello world");
        assert_eq!(b64_decode(b"-_-_"), b64_decode(b"+/+/"));
        assert_eq!(hex_decode(b"68656c6c6f"), b"hello");
        assert_eq!(percent_decode(b"a%40b%2Ec"), b"a@b.c");
        assert!(textual(b"\x8f\x01\xff\xfe").is_none());
    }

    #[test]
    fn der_keys() {
        let mut pkcs8 = vec![0x30, 0x82, 0x04, 0xbd, 0x02, 0x01, 0x00, 0x30, 0x0d];
        pkcs8.resize(64, 0);
        assert!(binary_private_key(&pkcs8));
        let mut cert = vec![0x30, 0x82, 0x04, 0xbd, 0x30, 0x82, 0x03, 0xa5];
        cert.resize(64, 0);
        assert!(!binary_private_key(&cert));
    }
}
