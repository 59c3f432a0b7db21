//! The handshake-era sessions whose client declared URL elicitation at `initialize`
//! (`capabilities.elicitation.url`, 2025-11-25). The spec forbids sending a mode the
//! client did not declare, and later requests of a session do not repeat it, so the
//! gateway remembers it per upstream and session id. Bounded: the oldest session is
//! forgotten first, and a forgotten session only loses the native prompt (its step-ups
//! get the plain step-up error).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// Sessions remembered at most.
pub const MAX_URL_ELICITATION_SESSIONS: usize = 10_000;

/// An upstream's name and a session id.
type SessionKey = (String, String);

/// The set of `(upstream, session id)` that accept URL elicitation.
#[derive(Debug, Default)]
pub struct UrlElicitationSessions {
    inner: Mutex<(HashSet<SessionKey>, VecDeque<SessionKey>)>,
}

impl UrlElicitationSessions {
    /// Remembers that `session` of `upstream` accepts URL elicitation.
    pub fn remember(&self, upstream: &str, session: &str) {
        let key = (upstream.to_owned(), session.to_owned());
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (set, order) = &mut *guard;
        if set.insert(key.clone()) {
            order.push_back(key);
        }
        while order.len() > MAX_URL_ELICITATION_SESSIONS {
            if let Some(oldest) = order.pop_front() {
                set.remove(&oldest);
            }
        }
    }

    /// Whether `session` of `upstream` accepts URL elicitation.
    pub fn accepts(&self, upstream: &str, session: &str) -> bool {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.contains(&(upstream.to_owned(), session.to_owned()))
    }
}
