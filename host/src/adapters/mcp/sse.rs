//! Server-sent events, as far as an MCP relay needs them: cut a byte stream into events
//! (to rewrite the one that answers `tools/list`, and pass every other one through
//! byte for byte) and write events for answers the gateway makes itself.

use bytes::Bytes;

/// One event block as it arrived, its terminating blank line included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent(pub Vec<u8>);

impl RawEvent {
    /// The event's data: its `data:` lines joined with `\n` (none: `None`).
    pub fn data(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.0);
        let mut data: Option<String> = None;
        for line in text.split(['\n', '\r']) {
            let value = if line == "data" {
                Some("")
            } else {
                line.strip_prefix("data:")
                    .map(|v| v.strip_prefix(' ').unwrap_or(v))
            };
            if let Some(value) = value {
                match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => data = Some(value.to_owned()),
                }
            }
        }
        data
    }

    /// The same event with `data` in place of its data lines (its `id:`, `event:` and
    /// `retry:` fields kept).
    pub fn with_data(&self, data: &str) -> Bytes {
        let text = String::from_utf8_lossy(&self.0);
        let mut out = String::with_capacity(data.len() + 32);
        for line in text.split(['\n', '\r']) {
            if line.is_empty() || line == "data" || line.starts_with("data:") {
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        for line in data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        Bytes::from(out)
    }
}

/// The stream was cut: one event grew past the bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an SSE event exceeds {0} bytes")]
pub struct Oversize(pub usize);

/// Cuts a byte stream into events.
#[derive(Debug)]
pub struct Splitter {
    buffer: Vec<u8>,
    max: usize,
}

impl Splitter {
    /// A splitter refusing events larger than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buffer: Vec::new(),
            max,
        }
    }

    /// Adds a chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<RawEvent>, Oversize> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = event_end(&self.buffer) {
            let rest = self.buffer.split_off(end);
            events.push(RawEvent(std::mem::replace(&mut self.buffer, rest)));
        }
        if self.buffer.len() > self.max {
            return Err(Oversize(self.max));
        }
        Ok(events)
    }

    /// What is left when the stream ends (an event without its blank line).
    pub fn finish(self) -> Option<RawEvent> {
        (!self.buffer.is_empty()).then_some(RawEvent(self.buffer))
    }
}

/// The end of the first event: just past the first blank line (`\n\n`, `\r\n\r\n`,
/// `\r\r`, or mixed).
fn event_end(buffer: &[u8]) -> Option<usize> {
    let mut i = 0;
    let mut line_empty = true;
    while i < buffer.len() {
        let b = buffer.get(i).copied()?;
        let eol_len = match b {
            b'\n' => 1,
            b'\r' if buffer.get(i + 1) == Some(&b'\n') => 2,
            // A lone `\r` at the very end may be the first half of `\r\n`: wait.
            b'\r' if i + 1 == buffer.len() => return None,
            b'\r' => 1,
            _ => {
                line_empty = false;
                i += 1;
                continue;
            }
        };
        if line_empty {
            return Some(i + eol_len);
        }
        line_empty = true;
        i += eol_len;
    }
    None
}

/// One `message` event carrying `json`.
pub fn message_event(json: &str) -> Bytes {
    let mut out = String::with_capacity(json.len() + 24);
    out.push_str("event: message\n");
    for line in json.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_cut_at_blank_lines_whatever_the_chunks() {
        let stream = b"id: 1\nevent: message\ndata: {\"a\":1}\n\n: comment\n\ndata: x\r\ndata: y\r\n\r\nretry: 5";
        for cut in 1..stream.len() {
            let mut splitter = Splitter::new(1024);
            let (a, b) = stream.split_at(cut);
            let mut events = splitter.push(a).unwrap();
            events.extend(splitter.push(b).unwrap());
            assert_eq!(events.len(), 3, "cut at {cut}");
            assert_eq!(events[0].data().as_deref(), Some("{\"a\":1}"));
            assert_eq!(events[1].data(), None);
            assert_eq!(events[2].data().as_deref(), Some("x\ny"));
            assert_eq!(splitter.finish(), Some(RawEvent(b"retry: 5".to_vec())));
        }
    }

    #[test]
    fn rewriting_keeps_the_other_fields() {
        let event = RawEvent(b"id: 7\nevent: message\ndata: old\n\n".to_vec());
        assert_eq!(
            &event.with_data("new")[..],
            b"id: 7\nevent: message\ndata: new\n\n"
        );
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut splitter = Splitter::new(8);
        assert_eq!(splitter.push(b"data: 0123456789"), Err(Oversize(8)));
    }
}
