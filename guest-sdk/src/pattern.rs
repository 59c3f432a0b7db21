//! Tool-name patterns.

/// A pattern over tools, written `server/name` or `name`.
///
/// Matching is exact and case-sensitive: no case folding and no Unicode normalisation,
/// so a lookalike name (`read_fiIe`, a Cyrillic `а`) never matches. The only wildcard is a
/// single trailing `*` in either part (`github/*`, `*/read_*`, `fs.*`).
/// A pattern without `/` matches the tool name on any server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPattern {
    server: Option<Part>,
    name: Part,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Exact(String),
    Prefix(String),
}

impl Part {
    fn parse(text: &str) -> Result<Self, String> {
        match text.find('*') {
            None => Ok(Self::Exact(text.to_owned())),
            Some(at) if at + 1 == text.len() => Ok(Self::Prefix(text[..at].to_owned())),
            Some(_) => Err(format!("pattern `{text}` has a `*` that is not at the end")),
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(exact) => exact == value,
            Self::Prefix(prefix) => value.starts_with(prefix.as_str()),
        }
    }
}

impl ToolPattern {
    /// Parses `server/name` or `name`; `*` may only end a part.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("tool pattern is empty".to_owned());
        }
        match pattern.split_once('/') {
            Some((server, name)) => Ok(Self {
                server: Some(Part::parse(server)?),
                name: Part::parse(name)?,
            }),
            None => Ok(Self {
                server: None,
                name: Part::parse(pattern)?,
            }),
        }
    }

    /// Whether the tool `server`/`name` matches.
    pub fn matches(&self, server: &str, name: &str) -> bool {
        self.server.as_ref().is_none_or(|s| s.matches(server)) && self.name.matches(name)
    }

    /// Whether `tool` matches.
    pub fn matches_tool(&self, tool: &crate::Tool) -> bool {
        self.matches(&tool.server, &tool.name)
    }
}

impl<'de> serde::Deserialize<'de> for ToolPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix() -> Result<(), String> {
        assert!(ToolPattern::parse("read_file")?.matches("fs", "read_file"));
        assert!(!ToolPattern::parse("read_file")?.matches("fs", "Read_File"));
        assert!(ToolPattern::parse("fs/read_*")?.matches("fs", "read_dir"));
        assert!(!ToolPattern::parse("fs/read_*")?.matches("web", "read_dir"));
        assert!(ToolPattern::parse("*/x")?.matches("any", "x"));
        assert!(ToolPattern::parse("a*b").is_err());
        // Cyrillic `а` is not Latin `a`.
        assert!(!ToolPattern::parse("read_file")?.matches("fs", "re\u{0430}d_file"));
        Ok(())
    }
}
