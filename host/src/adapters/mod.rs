//! Protocol adapters (feature `server`): each parses its protocol into an action, calls
//! the shared [`crate::service::DecisionService`], and answers. Only HTTP today; the MCP
//! gateway and Envoy ext_authz come next, as siblings of [`http`].

pub mod http;
