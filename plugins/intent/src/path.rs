//! Path constraints: the argument must name a location under one of the allowed roots.
//!
//! The check is lexical (no file system access: a plugin has none). To be robust
//! against whatever decoding the tool server applies, the raw value **and every
//! percent-decoding of it** (decoded once, twice, ... until stable, at most
//! [`MAX_DECODE_ROUNDS`] times) must each normalise to a path under a root. Each form is
//! normalised the same way:
//!
//! - NUL bytes, other control characters and Unicode lookalikes of `/`, `\` and `.`
//!   are refused; percent-decoding to invalid UTF-8 (e.g. overlong `%c0%ae`) is refused;
//! - `\` is a separator, like `/` (servers on Windows treat it so);
//! - a first segment containing `:` (`C:`, `file:`, `https:`) and a leading `~` are
//!   refused: they name something other than a plain path;
//! - a relative path is joined to `base` if the constraint sets one, else refused;
//! - empty and `.` segments are dropped, `..` removes the previous segment, and `..`
//!   above `/` is refused; segments of only dots and spaces other than `.`/`..` (e.g.
//!   `.. `, `...`) are refused because Windows trims them to `..`/`.`;
//! - the result is under a root when it equals the root or starts with root + `/`.
//!
//! Symbolic links cannot be seen from here: the tool server must not follow links out
//! of its roots (or the roots must not contain any).

use crate::text::{echo, list};

/// How many times a value is percent-decoded before it must be stable.
pub const MAX_DECODE_ROUNDS: usize = 4;

/// Characters that some layer may fold into `/`, `\` or `.` (NFKC and friends).
const LOOKALIKES: &[char] = &[
    '\u{2215}', // division slash
    '\u{2044}', // fraction slash
    '\u{29F8}', // big solidus
    '\u{FF0F}', // fullwidth solidus
    '\u{FE68}', // small reverse solidus
    '\u{FF3C}', // fullwidth reverse solidus
    '\u{29F5}', // reverse solidus operator
    '\u{FF0E}', // fullwidth full stop
    '\u{2024}', // one dot leader
    '\u{FE52}', // small full stop
];

/// A compiled path constraint.
#[derive(Debug, Clone)]
pub struct PathConstraint {
    /// JSON pointer to the argument.
    pub argument: String,
    /// Normalised absolute roots, without trailing `/` (except `/` itself).
    pub roots: Vec<String>,
    /// Normalised absolute base for relative paths, if relative paths are allowed.
    pub base: Option<String>,
    /// Whether the argument must be present.
    pub required: bool,
}

/// Settings form of a path constraint.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPath {
    argument: String,
    roots: Vec<String>,
    #[serde(default)]
    base: Option<String>,
    #[serde(default = "yes")]
    required: bool,
}

fn yes() -> bool {
    true
}

impl PathConstraint {
    /// Compiles the settings form, naming what is wrong.
    pub fn compile(raw: RawPath) -> Result<Self, String> {
        crate::text::validate_pointer(&raw.argument)?;
        if raw.roots.is_empty() {
            return Err("path.roots must list at least one absolute path".to_owned());
        }
        let mut roots = Vec::with_capacity(raw.roots.len());
        for root in &raw.roots {
            roots.push(normalise_setting(root).map_err(|e| format!("path.roots entry {e}"))?);
        }
        let base = match raw.base {
            None => None,
            Some(base) => {
                let base = normalise_setting(&base).map_err(|e| format!("path.base {e}"))?;
                if !roots.iter().any(|r| under(&base, r)) {
                    return Err(format!(
                        "path.base `{}` is not under any of path.roots",
                        echo(&base)
                    ));
                }
                Some(base)
            }
        };
        Ok(Self {
            argument: raw.argument,
            roots,
            base,
            required: raw.required,
        })
    }

    /// Checks one argument value.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let arg = echo(&self.argument);
        let mut form = std::borrow::Cow::Borrowed(value);
        let mut round = 0usize;
        loop {
            let resolved = normalise(&form, self.base.as_deref())
                .map_err(|why| format!("argument `{arg}` path `{}` {why}", echo(value)))?;
            if !self.roots.iter().any(|root| under(&resolved, root)) {
                let how = if round == 0 {
                    String::new()
                } else {
                    format!(" after {round} round(s) of percent-decoding")
                };
                return Err(format!(
                    "argument `{arg}` path `{}` resolves to `{}`{how}, outside the allowed roots {}",
                    echo(value),
                    echo(&resolved),
                    list(self.roots.iter().map(String::as_str))
                ));
            }
            match percent_decode(&form) {
                Decoded::Unchanged => return Ok(()),
                Decoded::Invalid => {
                    return Err(format!(
                        "argument `{arg}` path `{}` percent-decodes to invalid UTF-8",
                        echo(value)
                    ));
                }
                Decoded::Changed(next) => {
                    round += 1;
                    if round > MAX_DECODE_ROUNDS {
                        return Err(format!(
                            "argument `{arg}` path `{}` is percent-encoded more than {MAX_DECODE_ROUNDS} times",
                            echo(value)
                        ));
                    }
                    form = std::borrow::Cow::Owned(next);
                }
            }
        }
    }
}

/// Whether normalised `path` is `root` or below it.
fn under(path: &str, root: &str) -> bool {
    root == "/"
        || path == root
        || (path.len() > root.len()
            && path.starts_with(root)
            && path.as_bytes().get(root.len()) == Some(&b'/'))
}

/// Normalises a root or base from the settings: absolute, no `..`, no decoding.
fn normalise_setting(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("`{}` must be an absolute path", echo(path)));
    }
    if path.split(['/', '\\']).any(|s| s == "..") {
        return Err(format!("`{}` must not contain `..`", echo(path)));
    }
    normalise(path, None).map_err(|why| format!("`{}` {why}", echo(path)))
}

/// Lexically normalises one form of a path, see the module docs.
fn normalise(path: &str, base: Option<&str>) -> Result<String, String> {
    for c in path.chars() {
        if c == '\0' {
            return Err("contains a NUL byte".to_owned());
        }
        if c.is_control() {
            return Err("contains a control character".to_owned());
        }
        if !c.is_ascii() && LOOKALIKES.contains(&c) {
            return Err("contains a Unicode lookalike of `/`, `\\` or `.`".to_owned());
        }
    }
    if path.is_empty() {
        return Err("is empty".to_owned());
    }
    if path.starts_with('~') {
        return Err("starts with `~` (home directory expansion)".to_owned());
    }
    let absolute = path.starts_with(['/', '\\']);
    let first = path
        .split(['/', '\\'])
        .find(|s| !s.is_empty())
        .unwrap_or("");
    if first.contains(':') {
        return Err("starts with a drive letter or URL scheme".to_owned());
    }
    let joined;
    let full = if absolute {
        path
    } else {
        match base {
            Some(base) => {
                joined = format!("{base}/{path}");
                joined.as_str()
            }
            None => return Err("is relative, and relative paths are not allowed".to_owned()),
        }
    };
    let mut segments: Vec<&str> = Vec::new();
    for segment in full.split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err("climbs above `/`".to_owned());
                }
            }
            other if other.chars().all(|c| c == '.' || c == ' ') => {
                return Err(format!("has an ambiguous dot segment `{}`", echo(other)));
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(full.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

enum Decoded {
    Unchanged,
    Changed(String),
    Invalid,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes every valid `%XX`; other `%` are kept as they are.
fn percent_decode(text: &str) -> Decoded {
    if !text.contains('%') {
        return Decoded::Unchanged;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut changed = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h * 16 + l);
            changed = true;
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    if !changed {
        return Decoded::Unchanged;
    }
    match String::from_utf8(out) {
        Ok(s) => Decoded::Changed(s),
        Err(_) => Decoded::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(base: bool) -> PathConstraint {
        PathConstraint::compile(RawPath {
            argument: "/path".to_owned(),
            roots: vec!["/repo/".to_owned(), "/srv//docs".to_owned()],
            base: base.then(|| "/repo".to_owned()),
            required: true,
        })
        .unwrap()
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalise("/a//b/./c/../d/", None).unwrap(), "/a/b/d");
        assert_eq!(normalise("\\a\\b", None).unwrap(), "/a/b");
        assert_eq!(normalise("x/y", Some("/repo")).unwrap(), "/repo/x/y");
        assert!(normalise("/..", None).is_err());
        assert!(normalise("C:\\Windows", None).is_err());
        assert!(normalise("file:///etc/passwd", None).is_err());
        assert!(normalise("~/x", Some("/repo")).is_err());
        assert!(normalise("/repo/.. /etc", None).is_err());
    }

    #[test]
    fn roots_and_prefixes() {
        let c = repo(false);
        assert_eq!(c.roots, vec!["/repo", "/srv/docs"]);
        assert!(c.check("/repo").is_ok());
        assert!(c.check("/repo/src/lib.rs").is_ok());
        assert!(c.check("/srv/docs/a").is_ok());
        assert!(c.check("/repository/x").is_err());
        assert!(c.check("/repo/../etc/passwd").is_err());
        assert!(c.check("/repo/%2e%2e/etc/passwd").is_err());
        assert!(c.check("/repo/%252e%252e/etc/passwd").is_err());
        assert!(c.check("/repo/%c0%ae%c0%ae/etc").is_err());
        assert!(c.check("/repo/a\0b").is_err());
        assert!(c.check("/repo/a%00b").is_err());
        assert!(c.check("src/lib.rs").is_err());
        assert!(repo(true).check("src/lib.rs").is_ok());
        assert!(repo(true).check("../etc/passwd").is_err());
        assert!(repo(true).check("%2e%2e/etc/passwd").is_err());
    }

    #[test]
    fn raw_form_must_also_be_in_root() {
        // Decodes to /repo/x, but a server that does not decode reads a file under /etc.
        let c = repo(false);
        assert!(c.check("/etc/%2F..%2F..%2Frepo/x").is_err());
    }

    #[test]
    fn settings_errors() {
        let bad = |roots: &[&str], base: Option<&str>| {
            PathConstraint::compile(RawPath {
                argument: "/path".to_owned(),
                roots: roots.iter().map(|s| (*s).to_owned()).collect(),
                base: base.map(str::to_owned),
                required: true,
            })
            .unwrap_err()
        };
        assert!(bad(&[], None).contains("at least one"));
        assert!(bad(&["repo"], None).contains("absolute"));
        assert!(bad(&["/repo/../etc"], None).contains("`..`"));
        assert!(bad(&["/repo"], Some("/etc")).contains("not under"));
    }
}
