//! The MCP servers behind the gateway: [`http::HttpUpstream`] (Streamable HTTP) and
//! [`stdio::StdioUpstream`] (processes the gateway spawns, [`child::Child`]).

pub mod child;
pub mod http;
pub mod stdio;

use super::jsonrpc;
use std::time::Duration;

/// What went wrong with an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFault {
    /// Cannot be reached (refused, no room for a session).
    Unavailable,
    /// Did not start answering in time.
    Timeout,
    /// Answered something that is not MCP.
    Invalid,
    /// The stdio process stopped.
    Exited,
}

impl UpstreamFault {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Invalid => "invalid-answer",
            Self::Exited => "exited",
        }
    }

    /// The JSON-RPC error code the client gets.
    pub fn code(self) -> i64 {
        match self {
            Self::Unavailable | Self::Exited => jsonrpc::UPSTREAM_UNAVAILABLE,
            Self::Timeout => jsonrpc::UPSTREAM_TIMEOUT,
            Self::Invalid => jsonrpc::UPSTREAM_INVALID,
        }
    }

    /// The HTTP status the client gets: the upstream failed, not the client.
    pub fn status(self) -> u16 {
        match self {
            Self::Timeout => 504,
            _ => 502,
        }
    }
}

/// An upstream failure, with what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UpstreamError {
    /// The kind.
    pub fault: UpstreamFault,
    /// What happened.
    pub message: String,
}

impl UpstreamError {
    /// Cannot be reached.
    pub fn unavailable(message: String) -> Self {
        Self {
            fault: UpstreamFault::Unavailable,
            message,
        }
    }

    /// No answer in time.
    pub fn timeout(after: Duration) -> Self {
        Self {
            fault: UpstreamFault::Timeout,
            message: format!(
                "no answer within {} ms (`gateway.upstream_timeout_ms`)",
                after.as_millis()
            ),
        }
    }

    /// Not MCP.
    pub fn invalid(message: String) -> Self {
        Self {
            fault: UpstreamFault::Invalid,
            message,
        }
    }

    /// The process stopped.
    pub fn exited(why: String) -> Self {
        Self {
            fault: UpstreamFault::Exited,
            message: format!("the stdio server stopped: {why}"),
        }
    }
}

/// One configured upstream.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// Streamable HTTP.
    Http(std::sync::Arc<http::HttpUpstream>),
    /// Stdio processes.
    Stdio(std::sync::Arc<stdio::StdioUpstream>),
}
