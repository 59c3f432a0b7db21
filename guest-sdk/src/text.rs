//! Text for reasons: clipping to a byte bound, and echoing the action's input safely.
//!
//! A reason is read by people, in decision logs and audit trails, and it often quotes the
//! action's own input between backticks (a tool name, a path, a URL). That input comes
//! from the agent, so it is untrusted: a backtick in it would close the quote early and
//! let the rest pass for the plugin's own words, a line break would forge a log line, and
//! a long value would crowd out the reason or push it past the contract's bound.
//! [`echo`] deals with all three; [`clip`] only shortens. Reasons as a whole need no
//! call: the SDK clips every reason to [`crate::bounds::MAX_REASON_BYTES`] before it
//! leaves the component (see [`crate::bounds`]).
//!
//! ```
//! use arbiter_guest::text::{clip, echo, list};
//!
//! assert_eq!(echo("evil`tool\nline", 64), "evil?tool?line");
//! assert_eq!(clip("abcdefgh", 6), "abc…"); // at most 6 bytes, `…` is 3
//! assert_eq!(list(["a", "b`c"], 64), "`a`, `b?c`");
//! ```

use std::borrow::Cow;

/// Marks where [`clip`] and [`echo`] cut a text (3 bytes in UTF-8).
pub const CLIP_MARKER: &str = "…";

/// What [`echo`] writes instead of a backtick or a control character.
pub const REPLACEMENT: char = '?';

/// How many items [`list`] names before it says "and N more".
pub const LIST_ITEMS: usize = 4;

/// `text` cut to at most `max` bytes on a character boundary, the cut marked with
/// [`CLIP_MARKER`] (counted in the `max` bytes; when `max` is smaller than the marker,
/// the text is cut without one). Text that fits is returned as it is.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let marker = if max >= CLIP_MARKER.len() {
        CLIP_MARKER
    } else {
        ""
    };
    let mut end = max.saturating_sub(marker.len());
    // Offset 0 is always a boundary, so this stops.
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    let mut out = String::with_capacity(end + marker.len());
    out.push_str(text.get(..end).unwrap_or_default());
    out.push_str(marker);
    Cow::Owned(out)
}

/// Input made safe to quote between backticks in a reason: backticks and control
/// characters (line breaks, escapes, NUL, ...) become [`REPLACEMENT`], and the result is
/// [`clip`]ped to `max` bytes. Clean input that fits is returned as it is.
///
/// Write the backticks around it yourself: `` format!("tool `{}`", echo(name, 128)) ``.
pub fn echo(text: &str, max: usize) -> Cow<'_, str> {
    let safe = |c: char| c != '`' && !c.is_control();
    if text.len() <= max && text.chars().all(safe) {
        return Cow::Borrowed(text);
    }
    // Clean no more than can be shown: once past `max` bytes, `clip` will cut anyway.
    let mut clean = String::with_capacity(text.len().min(max.saturating_add(4)));
    for c in text.chars() {
        if clean.len() > max {
            break;
        }
        clean.push(if safe(c) { c } else { REPLACEMENT });
    }
    let cut = match clip(&clean, max) {
        Cow::Owned(cut) => Some(cut),
        Cow::Borrowed(_) => None,
    };
    Cow::Owned(cut.unwrap_or(clean))
}

/// Items as `` `a`, `b`, `c` ``, each [`echo`]ed to `max_item_bytes`, naming at most
/// [`LIST_ITEMS`] and then saying how many more there are (`` `a`, `b`, `c`, `d` and 2
/// more ``). An empty list gives an empty string.
pub fn list<'a>(items: impl IntoIterator<Item = &'a str>, max_item_bytes: usize) -> String {
    let mut out = String::new();
    let mut count = 0usize;
    for item in items {
        if count < LIST_ITEMS {
            if count > 0 {
                out.push_str(", ");
            }
            out.push('`');
            out.push_str(&echo(item, max_item_bytes));
            out.push('`');
        }
        count += 1;
    }
    if count > LIST_ITEMS {
        out.push_str(&format!(" and {} more", count - LIST_ITEMS));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_within_the_bound_on_a_char_boundary() {
        assert!(matches!(clip("short", 5), Cow::Borrowed("short")));
        assert_eq!(clip("abcdef", 5), "ab…");
        // `é` is 2 bytes: 1000 of them are 2000 bytes; the cut may not split one.
        let long = "é".repeat(1000);
        let cut = clip(&long, 1024);
        assert_eq!(cut.len(), 1023);
        assert!(cut.ends_with(CLIP_MARKER));
        assert_eq!(clip(&"x".repeat(5000), 1024).len(), 1024);
        // No room for the marker: cut without one.
        assert_eq!(clip("abcdef", 2), "ab");
        assert_eq!(clip("éé", 1), "");
        assert_eq!(clip("abc", 0), "");
    }

    #[test]
    fn echo_replaces_what_breaks_quoting_or_logs() {
        assert!(matches!(echo("fs/read_file", 64), Cow::Borrowed(_)));
        assert_eq!(echo("a`b\nc\u{1b}[31m\u{85}", 64), "a?b?c?[31m?");
        let long = format!("{}`", "é".repeat(200));
        let e = echo(&long, 120);
        assert!(e.len() <= 120, "{}", e.len());
        assert!(e.ends_with(CLIP_MARKER));
        assert!(!e.contains('`'));
        // A 2-byte control character becomes 1 byte, so the cleaned text can fit.
        assert_eq!(echo("ab\u{85}", 3), "ab?");
        // A huge input is cleaned only as far as it can be shown.
        assert_eq!(echo(&"`".repeat(1 << 20), 8), "?????…");
    }

    #[test]
    fn list_names_four_then_counts() {
        assert_eq!(list([], 64), "");
        assert_eq!(list(["/repo"], 64), "`/repo`");
        assert_eq!(
            list(["a", "b", "c", "d", "e", "f"], 64),
            "`a`, `b`, `c`, `d` and 2 more"
        );
        assert_eq!(list(["x`y", "long-item"], 6), "`x?y`, `lon…`");
    }
}
