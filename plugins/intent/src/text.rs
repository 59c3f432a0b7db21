//! Helpers for building reasons. Echoing input safely is the SDK's
//! ([`arbiter_guest::text`]); this module fixes how much of it intent shows.

use std::borrow::Cow;

/// Longest piece of echoed input in a reason, in bytes.
const MAX_ECHO_BYTES: usize = 120;

/// Input made safe to quote in a reason, at most [`MAX_ECHO_BYTES`] bytes
/// ([`arbiter_guest::text::echo`]).
pub fn echo(text: &str) -> Cow<'_, str> {
    arbiter_guest::text::echo(text, MAX_ECHO_BYTES)
}

/// Items as `` `a`, `b` `` (each echoed), naming at most four
/// ([`arbiter_guest::text::list`]).
pub fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    arbiter_guest::text::list(items, MAX_ECHO_BYTES)
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
    use super::*;
    use arbiter_guest::bounds::MAX_REASON_BYTES;

    #[test]
    fn echo_clips_and_cleans() {
        assert_eq!(echo("a`b\nc"), "a?b?c");
        let long = "é".repeat(200);
        let e = echo(&long);
        assert!(e.len() <= MAX_ECHO_BYTES + 3);
        assert!(e.ends_with('…'));
        assert_eq!(
            arbiter_guest::text::clip(&"x".repeat(5000), MAX_REASON_BYTES).len(),
            MAX_REASON_BYTES
        );
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
