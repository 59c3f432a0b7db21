//! Where an egress call sends its data: destination extraction and normalisation.
//!
//! Parsing is deliberately strict: anything that does not normalise cleanly (a URL
//! without `scheme://`, whitespace or control characters, an IPv6 literal, a
//! percent-encoded host, an address without `@`) is an unknown destination, and unknown
//! destinations are never allowed.

use crate::settings::{DestinationKind, EgressRule};
use arbiter_guest::serde_json::Value;
use arbiter_guest::text::{echo, list};

/// The outcome of checking an egress call's destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationCheck {
    /// Every destination is allowed (false when there is none or one is unparseable).
    pub allowed: bool,
    /// For reasons: the first destination that is not allowed, or the first destination.
    /// Only normalised domains, hosts and channel names are shown, never raw arguments.
    pub shown: String,
}

/// Checks every destination argument of `rule` in `arguments`.
pub fn check(rule: &EgressRule, arguments: &Value) -> DestinationCheck {
    let mut first_allowed: Option<String> = None;
    let mut any = false;
    for pointer in &rule.destinations {
        let Some(value) = arguments.pointer(pointer) else {
            continue;
        };
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for item in items {
            let Some(text) = item.as_str() else {
                return DestinationCheck {
                    allowed: false,
                    shown: format!("a non-string destination at `{}`", echo(pointer, 64)),
                };
            };
            let parts: Vec<&str> = match rule.kind {
                DestinationKind::Email => text
                    .split([',', ';'])
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .collect(),
                DestinationKind::Url | DestinationKind::Channel => vec![text],
            };
            for part in parts {
                any = true;
                let normalised = match rule.kind {
                    DestinationKind::Email => email_domain(part),
                    DestinationKind::Url => url_host(part),
                    DestinationKind::Channel => channel(part),
                };
                let Some(normalised) = normalised else {
                    return DestinationCheck {
                        allowed: false,
                        shown: format!("an unparseable destination at `{}`", echo(pointer, 64)),
                    };
                };
                if !rule.allowed.iter().any(|a| a.matches(&normalised)) {
                    return DestinationCheck {
                        allowed: false,
                        shown: format!("`{}`", echo(&normalised, 128)),
                    };
                }
                first_allowed.get_or_insert(normalised);
            }
        }
    }
    match first_allowed {
        Some(shown) if any => DestinationCheck {
            allowed: true,
            shown: format!("`{}`", echo(&shown, 128)),
        },
        _ => DestinationCheck {
            allowed: false,
            shown: format!(
                "a missing destination (no value at {})",
                list(rule.destinations.iter().map(String::as_str), 64)
            ),
        },
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && !host.starts_with('.')
        && !host.contains("..")
        && host
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
}

fn normalise_host(host: &str) -> Option<String> {
    let lower = host.to_ascii_lowercase();
    let host = lower.strip_suffix('.').unwrap_or(&lower);
    valid_host(host).then(|| host.to_owned())
}

/// The domain of an address: `a@b.com`, `Name <a@b.com>`; the last `@` decides.
pub fn email_domain(address: &str) -> Option<String> {
    let address = address.trim();
    let address = match address.rfind('<') {
        Some(open) => {
            let inner = address.get(open + 1..)?;
            let close = inner.find('>')?;
            inner.get(..close)?.trim()
        }
        None => address,
    };
    let address = address.strip_prefix("mailto:").unwrap_or(address);
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() || local.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    normalise_host(domain)
}

/// The host of an absolute URL, following the WHATWG split of authority and path:
/// the authority ends at `/`, `\`, `?` or `#`; userinfo ends at its last `@`.
pub fn url_host(url: &str) -> Option<String> {
    let url = url.trim();
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    let host_port = match authority.rfind('@') {
        Some(at) => authority.get(at + 1..)?,
        None => authority,
    };
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|c| c.is_ascii_digit()) => host,
        Some(_) => return None,
        None => host_port,
    };
    normalise_host(host)
}

/// A channel name without a leading `#`.
pub fn channel(name: &str) -> Option<String> {
    let name = name.trim();
    let name = name.strip_prefix('#').unwrap_or(name);
    (!name.is_empty() && !name.chars().any(char::is_control)).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_domains() {
        assert_eq!(
            email_domain("Bob@Corp.Example.").as_deref(),
            Some("corp.example")
        );
        assert_eq!(
            email_domain("Boss <boss@corp.example>").as_deref(),
            Some("corp.example")
        );
        assert_eq!(
            email_domain("\"boss@corp.example\"@evil.com").as_deref(),
            Some("evil.com")
        );
        assert_eq!(
            email_domain("boss@corp.example <x@evil.com>").as_deref(),
            Some("evil.com")
        );
        assert_eq!(email_domain("no-at-sign"), None);
        assert_eq!(email_domain("x@[10.0.0.1]"), None);
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://Docs.RS/tokio").as_deref(),
            Some("docs.rs")
        );
        assert_eq!(
            url_host("https://docs.rs@evil.com/").as_deref(),
            Some("evil.com")
        );
        assert_eq!(
            url_host("https://evil.com\\@docs.rs").as_deref(),
            Some("evil.com")
        );
        assert_eq!(
            url_host("https://evil.com#@docs.rs").as_deref(),
            Some("evil.com")
        );
        assert_eq!(
            url_host("https://docs.rs:443/x").as_deref(),
            Some("docs.rs")
        );
        assert_eq!(url_host("https://docs.rs./x").as_deref(), Some("docs.rs"));
        assert_eq!(url_host("https://docs%2Ers/"), None);
        assert_eq!(url_host("//docs.rs/"), None);
        assert_eq!(url_host("https:evil.com"), None);
        assert_eq!(url_host("https://[::1]/"), None);
        assert_eq!(url_host("https://docs.rs\t.evil.com/"), None);
    }
}
