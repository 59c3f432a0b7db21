//! Protocol adapters (feature `server`): each parses its protocol into an action, calls
//! the shared [`crate::service::DecisionService`], and answers. [`http`] is the decision
//! API, [`mcp`] the MCP gateway (feature `gateway`); both are served by the one accept
//! loop of [`listener`]. Envoy ext_authz comes next, as a sibling.

pub mod blocking;
pub mod http;
pub mod identity;
pub mod listener;
#[cfg(feature = "gateway")]
pub mod mcp;
pub mod tls;
