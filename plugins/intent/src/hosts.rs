//! URL and e-mail constraints: the host (or mail domain) must be on an allow list.
//!
//! URLs are parsed with the `url` crate (WHATWG URL Standard, the parser browsers use),
//! which canonicalises hosts: lowercase, percent-decoded, IDNA to punycode, IPv4 in
//! decimal/octal/hex/short notations to dotted quads, userinfo split off
//! (`https://docs.rs@evil.com/` has host `evil.com`). On top of that, trailing dots
//! are stripped, and inputs on which other URL parsers are known to disagree with the
//! WHATWG one are refused outright: backslashes, whitespace and control characters,
//! more than one `@` in the authority. A URL to an allowed host that carries userinfo
//! (`https://user:pw@docs.rs/`) is refused too: it would leak credentials, and a server
//! that percent-decodes before parsing may see another host.

use crate::text::{echo, list};
use url::{Host, Url};

/// Longest URL or address accepted, in bytes.
const MAX_INPUT_BYTES: usize = 8192;

/// A canonical host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Canonical {
    Domain(String),
    Ip(String),
}

impl Canonical {
    fn text(&self) -> &str {
        match self {
            Self::Domain(d) | Self::Ip(d) => d,
        }
    }

    fn from_host<S: AsRef<str>>(host: &Host<S>) -> Result<Self, String> {
        match host {
            Host::Domain(d) => {
                let d = d.as_ref().trim_end_matches('.');
                if d.is_empty() {
                    return Err("has an empty host".to_owned());
                }
                // Opaque hosts (non-special schemes) are not decoded by the parser.
                if d.contains('%') || !d.is_ascii() {
                    return Err(format!("has a host `{}` that is not canonical", echo(d)));
                }
                Ok(Self::Domain(d.to_ascii_lowercase()))
            }
            Host::Ipv4(a) => Ok(Self::Ip(a.to_string())),
            Host::Ipv6(a) => Ok(Self::Ip(format!("[{a}]"))),
        }
    }
}

/// One entry of an allow list: `docs.rs`, `*.github.com` (subdomains only), or an IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    text: String,
    kind: PatternKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternKind {
    Exact(Canonical),
    /// `.github.com`: matches hosts that end with it and have a label before it.
    Subdomains(String),
}

impl HostPattern {
    /// Parses and canonicalises an entry, exactly as hosts in inputs are.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (wild, host) = match entry.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        if host.is_empty()
            || host.contains(['*', '/', '@', '?', '#', '\\', ' ', '%'])
            || (host.contains(':') && !host.starts_with('['))
        {
            return Err(format!(
                "host `{}` must be a host name, `*.` followed by a domain, or an IP address (no scheme, port or path)",
                echo(entry)
            ));
        }
        let parsed =
            Host::parse(host).map_err(|e| format!("host `{}` is invalid: {e}", echo(entry)))?;
        let canonical =
            Canonical::from_host(&parsed).map_err(|e| format!("host `{}` {e}", echo(entry)))?;
        let kind = match (wild, canonical) {
            (false, c) => PatternKind::Exact(c),
            (true, Canonical::Domain(d)) => PatternKind::Subdomains(format!(".{d}")),
            (true, Canonical::Ip(_)) => {
                return Err(format!(
                    "host `{}`: `*.` cannot prefix an IP address",
                    echo(entry)
                ));
            }
        };
        Ok(Self {
            text: entry.to_owned(),
            kind,
        })
    }

    fn matches(&self, host: &Canonical) -> bool {
        match (&self.kind, host) {
            (PatternKind::Exact(c), h) => c == h,
            (PatternKind::Subdomains(suffix), Canonical::Domain(d)) => {
                d.len() > suffix.len() && d.ends_with(suffix.as_str())
            }
            (PatternKind::Subdomains(_), Canonical::Ip(_)) => false,
        }
    }
}

fn parse_patterns(field: &str, entries: &[String]) -> Result<Vec<HostPattern>, String> {
    if entries.is_empty() {
        return Err(format!("{field} must list at least one host"));
    }
    entries
        .iter()
        .map(|e| HostPattern::parse(e).map_err(|why| format!("{field}: {why}")))
        .collect()
}

fn allowed(patterns: &[HostPattern], host: &Canonical) -> bool {
    patterns.iter().any(|p| p.matches(host))
}

fn names(patterns: &[HostPattern]) -> String {
    list(patterns.iter().map(|p| p.text.as_str()))
}

/// Settings form of a URL constraint.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUrl {
    argument: String,
    hosts: Vec<String>,
    #[serde(default)]
    schemes: Option<Vec<String>>,
    #[serde(default)]
    ports: Option<Vec<u16>>,
    #[serde(default = "yes")]
    required: bool,
}

fn yes() -> bool {
    true
}

/// A compiled URL constraint.
#[derive(Debug, Clone)]
pub struct UrlConstraint {
    /// JSON pointer to the argument.
    pub argument: String,
    hosts: Vec<HostPattern>,
    schemes: Vec<String>,
    ports: Option<Vec<u16>>,
    /// Whether the argument must be present.
    pub required: bool,
}

impl UrlConstraint {
    /// Compiles the settings form.
    pub fn compile(raw: RawUrl) -> Result<Self, String> {
        crate::text::validate_pointer(&raw.argument)?;
        let hosts = parse_patterns("url.hosts", &raw.hosts)?;
        let schemes = match raw.schemes {
            None => vec!["https".to_owned()],
            Some(s) if s.is_empty() => {
                return Err("url.schemes must list at least one scheme".to_owned());
            }
            Some(s) => {
                for scheme in &s {
                    let ok = scheme
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_lowercase())
                        && scheme.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c)
                        });
                    if !ok {
                        return Err(format!(
                            "url.schemes entry `{}` must be a lowercase scheme such as `https`",
                            echo(scheme)
                        ));
                    }
                }
                s
            }
        };
        if raw.ports.as_ref().is_some_and(Vec::is_empty) {
            return Err("url.ports must list at least one port when set".to_owned());
        }
        Ok(Self {
            argument: raw.argument,
            hosts,
            schemes,
            ports: raw.ports,
            required: raw.required,
        })
    }

    /// Checks one argument value.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let arg = echo(&self.argument);
        let shown = echo(value);
        let fail = |why: &str| Err(format!("argument `{arg}` url `{shown}` {why}"));
        if value.len() > MAX_INPUT_BYTES {
            return fail(&format!("is longer than {MAX_INPUT_BYTES} bytes"));
        }
        if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return fail("contains whitespace or control characters");
        }
        if value.contains('\\') {
            return fail("contains a backslash, which URL parsers disagree on");
        }
        let url = match Url::parse(value) {
            Ok(url) => url,
            Err(e) => return fail(&format!("is not an absolute URL ({e})")),
        };
        if !self.schemes.iter().any(|s| s == url.scheme()) {
            return fail(&format!(
                "has scheme `{}`, allowed are {}",
                echo(url.scheme()),
                list(self.schemes.iter().map(String::as_str))
            ));
        }
        let Some(host) = url.host() else {
            return fail("has no host");
        };
        let host = match Canonical::from_host(&host) {
            Ok(h) => h,
            Err(why) => return fail(&why),
        };
        if authority_ats(value) > 1 {
            return fail("has more than one `@` in its authority, which URL parsers disagree on");
        }
        if !allowed(&self.hosts, &host) {
            return fail(&format!(
                "has host `{}`, which is not among the allowed hosts {}",
                echo(host.text()),
                names(&self.hosts)
            ));
        }
        if !url.username().is_empty() || url.password().is_some() || authority_ats(value) > 0 {
            return fail("carries userinfo (credentials) before the host");
        }
        if let Some(ports) = &self.ports {
            let port = url.port_or_known_default();
            if !port.is_some_and(|p| ports.contains(&p)) {
                let shown_port = port.map_or_else(|| "none".to_owned(), |p| p.to_string());
                return fail(&format!("has port `{shown_port}`, which is not allowed"));
            }
        }
        Ok(())
    }
}

/// Counts `@` in the raw authority (between `//` and the next `/`, `?` or `#`).
fn authority_ats(value: &str) -> usize {
    let Some((_, rest)) = value.split_once("//") else {
        return 0;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest.get(..end).map_or(0, |a| a.matches('@').count())
}

/// Settings form of an e-mail constraint.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    argument: String,
    domains: Vec<String>,
    #[serde(default = "yes")]
    required: bool,
}

/// A compiled e-mail constraint: every address must be at an allowed domain.
#[derive(Debug, Clone)]
pub struct EmailConstraint {
    /// JSON pointer to the argument (a string or an array of strings).
    pub argument: String,
    domains: Vec<HostPattern>,
    /// Whether the argument must be present.
    pub required: bool,
}

impl EmailConstraint {
    /// Compiles the settings form.
    pub fn compile(raw: RawEmail) -> Result<Self, String> {
        crate::text::validate_pointer(&raw.argument)?;
        let domains = parse_patterns("email.domains", &raw.domains)?;
        if domains
            .iter()
            .any(|d| matches!(d.kind, PatternKind::Exact(Canonical::Ip(_))))
        {
            return Err("email.domains must be domain names, not IP addresses".to_owned());
        }
        Ok(Self {
            argument: raw.argument,
            domains,
            required: raw.required,
        })
    }

    /// Checks one address. Only plain `local@domain` is accepted: display names,
    /// lists, comments, quoted local parts and IP-literal domains are refused, since
    /// mail libraries disagree on them.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let arg = echo(&self.argument);
        let shown = echo(value);
        let fail = |why: &str| Err(format!("argument `{arg}` address `{shown}` {why}"));
        if value.len() > MAX_INPUT_BYTES {
            return fail(&format!("is longer than {MAX_INPUT_BYTES} bytes"));
        }
        if value
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>,;:\"()[]\\%!".contains(c))
        {
            return fail("is not a plain `local@domain` address");
        }
        let mut parts = value.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return fail("must contain exactly one `@`");
        };
        if local.is_empty() || domain.is_empty() {
            return fail("is not a plain `local@domain` address");
        }
        let host = Host::parse(domain)
            .map_err(|e| format!("argument `{arg}` address `{shown}` has an invalid domain ({e})"))
            .and_then(|h| {
                Canonical::from_host(&h)
                    .map_err(|why| format!("argument `{arg}` address `{shown}` {why}"))
            })?;
        if matches!(host, Canonical::Ip(_)) {
            return fail("has an IP address as its domain");
        }
        if !allowed(&self.domains, &host) {
            return fail(&format!(
                "is at domain `{}`, which is not among the allowed domains {}",
                echo(host.text()),
                names(&self.domains)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> UrlConstraint {
        UrlConstraint::compile(RawUrl {
            argument: "/url".to_owned(),
            hosts: vec!["docs.rs".into(), "*.github.com".into(), "127.0.0.1".into()],
            schemes: Some(vec!["https".into(), "http".into()]),
            ports: None,
            required: true,
        })
        .unwrap()
    }

    #[test]
    fn canonical_hosts() {
        let c = docs();
        for ok in [
            "https://docs.rs/serde",
            "https://DOCS.RS./serde",
            "https://docs%2Ers/x",
            "https://api.github.com/repos",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
        ] {
            assert!(c.check(ok).is_ok(), "{ok}: {:?}", c.check(ok));
        }
        for bad in [
            "https://docs.rs@evil.com/",
            "https://docs.rs.evil.com/",
            "https://github.com/",
            "https://evilgithub.com/",
            "https://docs.rs\\@evil.com/",
            "https://user:pw@docs.rs/",
            "https://a@b@docs.rs/",
            "https://d\u{043E}cs.rs/",
            "ftp://docs.rs/",
            "docs.rs/x",
            "https://docs.rs /x",
            "https://docs.rs%252Ers/",
            "https://[::ffff:127.0.0.1]/",
        ] {
            assert!(c.check(bad).is_err(), "{bad} should be denied");
        }
        assert!(
            c.check("https://docs.rs@evil.com/")
                .unwrap_err()
                .contains("`evil.com`")
        );
    }

    #[test]
    fn patterns() {
        assert!(HostPattern::parse("*.github.com").is_ok());
        assert!(
            HostPattern::parse("Docs.RS.")
                .unwrap()
                .matches(&Canonical::Domain("docs.rs".into()))
        );
        assert!(HostPattern::parse("https://docs.rs").is_err());
        assert!(HostPattern::parse("docs.rs:443").is_err());
        assert!(HostPattern::parse("*.10.0.0.1").is_err());
        assert!(HostPattern::parse("a.*.com").is_err());
        assert!(HostPattern::parse("[::1]").is_ok());
    }

    #[test]
    fn email() {
        let c = EmailConstraint::compile(RawEmail {
            argument: "/to".to_owned(),
            domains: vec!["example.com".into()],
            required: true,
        })
        .unwrap();
        assert!(c.check("ops@example.com").is_ok());
        assert!(c.check("ops@EXAMPLE.com.").is_ok());
        assert!(c.check("ops@evil.com").is_err());
        assert!(c.check("ops@example.com@evil.com").is_err());
        assert!(c.check("\"ops@example.com\"@evil.com").is_err());
        assert!(c.check("Ops <ops@evil.com>").is_err());
        assert!(c.check("ops@example.com,x@evil.com").is_err());
        assert!(c.check("ops@example.com.evil.com").is_err());
        assert!(c.check("ops@[10.0.0.1]").is_err());
    }
}
