//! Console sessions: who logged in, until when, and the token their forms must carry.
//!
//! A login exchanges a token (the admin token, or an approver group's token with the
//! approver's name) for a random session id in an `HttpOnly`, `SameSite=Strict` cookie
//! scoped to `/console`. The token itself is never stored. Every form carries the
//! session's CSRF token, compared in constant time; together with `SameSite=Strict` a
//! page of another site cannot make a logged-in approver approve anything. Sessions are
//! bounded in number and lifetime.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "arbiter_console";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Sessions held at once; the oldest is dropped beyond.
pub const MAX_SESSIONS: usize = 1_000;

/// Who is logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The admin token: sees everything, answers nothing.
    Admin,
    /// An approver, by the token of `group`.
    Approver {
        /// Who they said they are.
        name: String,
        /// The group whose token they presented.
        group: String,
    },
}

impl Principal {
    /// As shown in the page header.
    pub fn label(&self) -> String {
        match self {
            Principal::Admin => "admin (reads; does not approve)".to_owned(),
            Principal::Approver { name, group } => format!("{name} (approver, {group})"),
        }
    }
}

/// One login.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub principal: Principal,
    /// What its forms must carry.
    pub csrf: String,
    started: Instant,
}

/// The sessions of one server.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

fn random_token() -> String {
    // Two v4 UUIDs: 244 random bits from the OS generator.
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    /// Starts a session for `principal`; returns its id (the cookie's value).
    pub fn start(&self, principal: Principal) -> String {
        let id = random_token();
        let mut sessions = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.started.elapsed() < SESSION_TTL);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.started)
                .map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            id.clone(),
            Session {
                principal,
                csrf: random_token(),
                started: Instant::now(),
            },
        );
        id
    }

    /// The live session `id`, if any.
    pub fn get(&self, id: &str) -> Option<Session> {
        let sessions = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .get(id)
            .filter(|s| s.started.elapsed() < SESSION_TTL)
            .cloned()
    }

    /// Ends session `id`.
    pub fn end(&self, id: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

impl Session {
    /// Whether `presented` is this session's CSRF token, in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        presented.len() == self.csrf.len()
            && bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_until_it_ends_and_checks_its_csrf_token() {
        let sessions = Sessions::default();
        let id = sessions.start(Principal::Admin);
        let session = sessions.get(&id).unwrap();
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches("forged"));
        assert!(sessions.get("other").is_none());
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
    }
}
