//! Web-messaging sessions: the authenticated sessions the code exchange opens (with their refresh
//! tokens) and the session tokens the WebSocket has seen.
//!
//! Both tables are bounded; expired entries are pruned when a new one needs room. Tokens are kept
//! only as SHA-256 digests, so the store never holds a usable refresh or session token.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use uuid::Uuid;

type TokenDigest = [u8; 32];

fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// A session opened by a code exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthSession {
    /// The session id (`sid` of its messaging JWTs).
    pub(crate) id: String,
    /// The deployment, lowercased.
    pub(crate) deployment_id: String,
    /// The visitor (the ID token's `sub`).
    pub(crate) sub: String,
    /// The identity provider's access-token lifetime, which caps every JWT of the session.
    pub(crate) provider_ttl: Option<Duration>,
    refresh_digest: TokenDigest,
    refresh_expires: Instant,
    /// When the session can be forgotten: its refresh token and every JWT issued have expired.
    forget_at: Instant,
}

/// Why a session could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreFull;

/// A session token the WebSocket has configured.
#[derive(Debug, Clone)]
struct SessionToken {
    sub: String,
    forget_at: Instant,
}

/// The bounded session tables.
pub(crate) struct SessionStore {
    sessions: HashMap<String, AuthSession>,
    by_refresh: HashMap<TokenDigest, String>,
    session_tokens: HashMap<TokenDigest, SessionToken>,
    max: usize,
}

impl SessionStore {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            sessions: HashMap::new(),
            by_refresh: HashMap::new(),
            session_tokens: HashMap::new(),
            max,
        }
    }

    /// Opens a session and returns it with its new refresh token, valid for `refresh_ttl`.
    ///
    /// `jwt_ttl` is the lifetime of the first JWT, which the session must outlive.
    pub(crate) fn open(
        &mut self,
        deployment_id: &str,
        sub: &str,
        provider_ttl: Option<Duration>,
        refresh_ttl: Duration,
        jwt_ttl: Duration,
        now: Instant,
    ) -> Result<(AuthSession, String), StoreFull> {
        if self.sessions.len() >= self.max {
            self.prune(now);
            if self.sessions.len() >= self.max {
                return Err(StoreFull);
            }
        }
        let refresh_token = random_token();
        let refresh_expires = now + refresh_ttl;
        let session = AuthSession {
            id: Uuid::new_v4().to_string(),
            deployment_id: deployment_id.to_ascii_lowercase(),
            sub: sub.to_owned(),
            provider_ttl,
            refresh_digest: digest(&refresh_token),
            refresh_expires,
            forget_at: refresh_expires.max(now + jwt_ttl),
        };
        self.by_refresh.insert(session.refresh_digest, session.id.clone());
        self.sessions.insert(session.id.clone(), session.clone());
        Ok((session, refresh_token))
    }

    /// The session a live refresh token of `deployment_id` belongs to, extended so that it outlives
    /// a JWT of `jwt_ttl` issued now.
    pub(crate) fn refresh(
        &mut self,
        refresh_token: &str,
        deployment_id: &str,
        jwt_ttl: Duration,
        now: Instant,
    ) -> Option<AuthSession> {
        let id = self.by_refresh.get(&digest(refresh_token))?;
        let session = self.sessions.get_mut(id)?;
        if session.refresh_expires <= now || !session.deployment_id.eq_ignore_ascii_case(deployment_id) {
            return None;
        }
        session.forget_at = session.forget_at.max(now + jwt_ttl);
        Some(session.clone())
    }

    /// The session `id`, unless it was revoked or forgotten.
    pub(crate) fn live(&self, id: &str) -> Option<&AuthSession> {
        self.sessions.get(id)
    }

    /// Ends a session: its refresh token and JWTs stop working. False if it was not live.
    pub(crate) fn revoke(&mut self, id: &str) -> bool {
        match self.sessions.remove(id) {
            Some(session) => {
                self.by_refresh.remove(&session.refresh_digest);
                true
            }
            None => false,
        }
    }

    /// Records a WebSocket session token and returns the pseudonymous `sub` of its anonymous
    /// visitor and whether the token is new. It is remembered for `retention` after its last use.
    pub(crate) fn touch_session_token(
        &mut self,
        token: &str,
        retention: Duration,
        now: Instant,
    ) -> Result<(String, bool), StoreFull> {
        let key = digest(token);
        if let Some(known) = self.session_tokens.get_mut(&key)
            && known.forget_at > now
        {
            known.forget_at = now + retention;
            return Ok((known.sub.clone(), false));
        }
        if self.session_tokens.len() >= self.max {
            self.prune(now);
            if self.session_tokens.len() >= self.max {
                return Err(StoreFull);
            }
        }
        let sub = Uuid::new_v4().to_string();
        self.session_tokens.insert(
            key,
            SessionToken {
                sub: sub.clone(),
                forget_at: now + retention,
            },
        );
        Ok((sub, true))
    }

    /// Authenticated sessions held (for tests and bounds).
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Drops everything that has expired.
    pub(crate) fn prune(&mut self, now: Instant) {
        let by_refresh = &mut self.by_refresh;
        self.sessions.retain(|_, session| {
            let keep = session.forget_at > now;
            if !keep {
                by_refresh.remove(&session.refresh_digest);
            }
            keep
        });
        self.session_tokens.retain(|_, session| session.forget_at > now);
    }

    pub(crate) fn clear(&mut self) {
        self.sessions.clear();
        self.by_refresh.clear();
        self.session_tokens.clear();
    }
}

/// 32 random bytes, base64url: a refresh token nobody can guess.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The same OS generator served the signing keys at start-up (as it serves every UUID here).
    getrandom::getrandom(&mut bytes).expect("the OS random generator is available");
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = "7f6e5d4c-3b2a-4190-8a7b-6c5d4e3f2a1b";
    const DAY: Duration = Duration::from_secs(86_400);
    const JWT: Duration = Duration::from_secs(900);

    fn open(store: &mut SessionStore, now: Instant) -> Result<(AuthSession, String), StoreFull> {
        store.open(DEPLOYMENT, "visitor", None, DAY, JWT, now)
    }

    #[test]
    fn a_refresh_token_works_for_its_deployment_until_it_expires_or_is_revoked() {
        let mut store = SessionStore::new(10);
        let t0 = Instant::now();
        let (session, refresh) = open(&mut store, t0).unwrap();
        assert_eq!(
            store
                .refresh(&refresh, &DEPLOYMENT.to_uppercase(), JWT, t0)
                .unwrap()
                .id,
            session.id
        );
        assert!(
            store
                .refresh(&refresh, "0b8c9e2f-0a11-4a51-9a35-6f1c1f4e3d7e", JWT, t0)
                .is_none()
        );
        assert!(store.refresh("guess", DEPLOYMENT, JWT, t0).is_none());
        assert!(
            store.refresh(&refresh, DEPLOYMENT, JWT, t0 + DAY).is_none(),
            "expired"
        );
        assert!(store.revoke(&session.id));
        assert!(store.refresh(&refresh, DEPLOYMENT, JWT, t0).is_none(), "revoked");
        assert!(store.live(&session.id).is_none());
        assert!(!store.revoke(&session.id));
    }

    #[test]
    fn a_full_store_refuses_until_expired_sessions_can_be_pruned() {
        let mut store = SessionStore::new(2);
        let t0 = Instant::now();
        open(&mut store, t0).unwrap();
        open(&mut store, t0).unwrap();
        assert_eq!(open(&mut store, t0 + JWT).unwrap_err(), StoreFull);
        assert!(
            open(&mut store, t0 + DAY).is_ok(),
            "both earlier sessions expired"
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn the_store_keeps_no_usable_token() {
        let mut store = SessionStore::new(2);
        let (_, refresh) = open(&mut store, Instant::now()).unwrap();
        assert_eq!(refresh.len(), 43);
        let debug = format!("{:?}", store.sessions);
        assert!(!debug.contains(&refresh));
    }

    #[test]
    fn a_session_token_is_new_once_and_keeps_its_sub() {
        let mut store = SessionStore::new(1);
        let t0 = Instant::now();
        let (sub, new) = store.touch_session_token("tok", DAY, t0).unwrap();
        assert!(new);
        assert_eq!(store.touch_session_token("tok", DAY, t0).unwrap(), (sub, false));
        assert_eq!(
            store.touch_session_token("other", DAY, t0).unwrap_err(),
            StoreFull
        );
        assert!(store.touch_session_token("other", DAY, t0 + DAY * 2).unwrap().1);
    }
}
