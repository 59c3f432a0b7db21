//! Helpers for building reasons: echoed input is clipped and made safe to quote.

use std::borrow::Cow;

/// Longest reason the contract allows, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;
/// Longest piece of echoed input in a reason, in bytes.
const MAX_ECHO_BYTES: usize = 120;

/// Clips `text` to [`MAX_ECHO_BYTES`] on a character boundary (marking the cut with `…`)
/// and replaces backticks and control characters with `?`, so echoed input can neither
/// break the reason's backtick quoting nor inject line breaks into logs.
pub fn echo(text: &str) -> Cow<'_, str> {
    let clean = |c: char| c != '`' && !c.is_control();
    if text.len() <= MAX_ECHO_BYTES && text.chars().all(clean) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(MAX_ECHO_BYTES.min(text.len()) + 3);
    for c in text.chars() {
        let c = if clean(c) { c } else { '?' };
        if out.len() + c.len_utf8() > MAX_ECHO_BYTES {
            out.push('…');
            break;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Cuts a whole reason to fit [`MAX_REASON_BYTES`] on a character boundary.
pub fn cap(mut reason: String) -> String {
    if reason.len() <= MAX_REASON_BYTES {
        return reason;
    }
    let mut end = MAX_REASON_BYTES - '…'.len_utf8();
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.truncate(end);
    reason.push('…');
    reason
}

/// Joins items as `` `a`, `b` `` (each echoed), naming at most four.
pub fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut count = 0usize;
    for item in items {
        if count < 4 {
            if count > 0 {
                out.push_str(", ");
            }
            out.push('`');
            out.push_str(&echo(item));
            out.push('`');
        }
        count += 1;
    }
    if count > 4 {
        out.push_str(&format!(" and {} more", count - 4));
    }
    out
}

/// A JSON value's type name, for "wrong type" reasons.
pub fn type_name(value: &arbiter_guest::serde_json::Value) -> &'static str {
    use arbiter_guest::serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks that `pointer` is a JSON pointer naming an argument (`/path`, `/a/0`, `/a~1b`).
pub fn validate_pointer(pointer: &str) -> Result<(), String> {
    if !pointer.starts_with('/') {
        return Err(format!(
            "argument `{}` must be a JSON pointer starting with `/` (e.g. `/path`)",
            echo(pointer)
        ));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "argument `{}` has a `~` not followed by `0` or `1`",
                echo(pointer)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;

    #[test]
    fn echo_clips_and_cleans() {
        assert_eq!(echo("a`b\nc"), "a?b?c");
        let long = "é".repeat(200);
        let e = echo(&long);
        assert!(e.len() <= MAX_ECHO_BYTES + 3);
        assert!(e.ends_with('…'));
        assert_eq!(cap("x".repeat(5000)).len(), MAX_REASON_BYTES);
    }

    #[test]
    fn pointers() {
        assert!(validate_pointer("/path").is_ok());
        assert!(validate_pointer("/a~1b/0").is_ok());
        assert!(validate_pointer("path").is_err());
        assert!(validate_pointer("/a~2").is_err());
        assert!(validate_pointer("").is_err());
    }
}
