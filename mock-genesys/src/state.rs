//! The emulator's in-memory state, shared by every worker and by [`crate::MockServer`].
//!
//! Each piece has its own mutex, held only for a few map operations (never across I/O or awaits);
//! access tokens need no stored state at all (see [`AccessTokens`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use domain::QueueId;

use crate::deployments::{Deployment, DeploymentConfig, Deployments, PutError};
use crate::faults::{ActiveFault, FaultAction, FaultList, FaultListFull, FaultSpec};
use crate::journal::{Journal, JournalEntry, RequestDirection};
use crate::sessions::SessionStore;
use crate::settings::{
    ClientConfig, InvalidSetting, MockSettings, RateLimit, RuntimeSettings, SettingsPatch,
};
use crate::signing::{AccessTokens, TokenSigner};

pub(crate) struct MockState {
    startup: RuntimeSettings,
    pub(crate) issuer: String,
    clients: Vec<ClientConfig>,
    queues: HashMap<QueueId, String>,
    pub(crate) signer: TokenSigner,
    runtime: Mutex<RuntimeSettings>,
    tokens: AccessTokens,
    windows: Mutex<HashMap<String, FixedWindow>>,
    faults: Mutex<FaultList>,
    journal: Mutex<Journal>,
    next_request_id: AtomicU64,
    startup_deployments: Vec<DeploymentConfig>,
    deployments: Mutex<Deployments>,
    pub(crate) sessions: Mutex<SessionStore>,
    open_websockets: AtomicUsize,
    pub(crate) limits: Limits,
}

/// The bounds and timeouts fixed at start-up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_websockets: usize,
    pub(crate) websocket_idle_timeout: Duration,
    pub(crate) websocket_max_message_bytes: usize,
    pub(crate) identity_provider_timeout: Duration,
}

/// Locks `m`, ignoring poisoning: every critical section leaves the data consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MockState {
    pub(crate) fn new(settings: &MockSettings) -> std::io::Result<Self> {
        settings
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        // ID tokens are checked through jsonwebtoken, which needs its crypto provider.
        jose::install_provider();
        Ok(Self {
            startup: settings.runtime(),
            issuer: settings.issuer.clone(),
            clients: settings.clients.clone(),
            queues: settings.queues.iter().map(|q| (q.id, q.name.clone())).collect(),
            signer: TokenSigner::generate()?,
            runtime: Mutex::new(settings.runtime()),
            tokens: AccessTokens::generate()?,
            windows: Mutex::new(HashMap::new()),
            faults: Mutex::new(FaultList::default()),
            journal: Mutex::new(Journal::new(settings.journal_limit, settings.journal_max_bytes)),
            next_request_id: AtomicU64::new(1),
            startup_deployments: settings.deployments.clone(),
            deployments: Mutex::new(Deployments::new(&settings.deployments)),
            sessions: Mutex::new(SessionStore::new(settings.max_sessions)),
            open_websockets: AtomicUsize::new(0),
            limits: Limits {
                max_websockets: settings.max_websockets,
                websocket_idle_timeout: Duration::from_secs(settings.websocket_idle_timeout_seconds),
                websocket_max_message_bytes: settings.websocket_max_message_bytes,
                identity_provider_timeout: Duration::from_millis(settings.identity_provider_timeout_ms),
            },
        })
    }

    pub(crate) fn runtime(&self) -> RuntimeSettings {
        lock(&self.runtime).clone()
    }

    pub(crate) fn patch_settings(&self, patch: &SettingsPatch) -> Result<RuntimeSettings, InvalidSetting> {
        let mut runtime = lock(&self.runtime);
        let next = runtime.patched(patch)?;
        if next.rate_limit != runtime.rate_limit {
            // New figures start from a fresh window rather than inheriting old counts.
            lock(&self.windows).clear();
        }
        *runtime = next.clone();
        Ok(next)
    }

    /// Clears journal, faults, windows and web-messaging sessions, revokes every token and restores
    /// the start-up settings and deployments.
    pub(crate) fn reset(&self) {
        *lock(&self.runtime) = self.startup.clone();
        *lock(&self.deployments) = Deployments::new(&self.startup_deployments);
        lock(&self.sessions).clear();
        self.tokens.revoke_all();
        lock(&self.windows).clear();
        lock(&self.faults).clear();
        lock(&self.journal).clear();
    }

    /// The index of the configured client `id`, if `secret` is its secret.
    pub(crate) fn authenticate(&self, id: &str, secret: &str) -> Option<usize> {
        self.clients.iter().position(|c| c.id == id && c.secret == secret)
    }

    pub(crate) fn queue_name(&self, id: &QueueId) -> Option<&str> {
        self.queues.get(id).map(String::as_str)
    }

    /// A new access token of the client at `client_index`, valid for the current token TTL.
    pub(crate) fn issue_token(&self, client_index: usize, ttl: Duration) -> String {
        self.tokens.issue(client_index, ttl)
    }

    /// The client owning a live access token (issued here, not expired, not revoked).
    pub(crate) fn token_client(&self, token: &str) -> Option<&ClientConfig> {
        self.clients.get(self.tokens.client_index(token)?)
    }

    pub(crate) fn revoke_tokens(&self) {
        self.tokens.revoke_all();
    }

    /// Counts one API request of `key` (an OAuth client id, or `deployment:<id>` for the token
    /// routes) against the rate limit, if one is on.
    pub(crate) fn admit(&self, key: &str) -> Option<(RateLimit, Admission)> {
        let limit = lock(&self.runtime).rate_limit?;
        let now = Instant::now();
        let mut windows = lock(&self.windows);
        let window = windows
            .entry(key.to_owned())
            .or_insert_with(|| FixedWindow::starting(now));
        Some((limit, window.admit(&limit, now)))
    }

    pub(crate) fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn take_fault(&self, method: &str, path: &str) -> Option<FaultAction> {
        lock(&self.faults).take(method, path)
    }

    pub(crate) fn add_fault(&self, spec: FaultSpec) -> Result<String, FaultListFull> {
        lock(&self.faults).add(spec)
    }

    pub(crate) fn faults(&self) -> Vec<ActiveFault> {
        lock(&self.faults).list()
    }

    pub(crate) fn remove_fault(&self, id: &str) -> bool {
        lock(&self.faults).remove(id)
    }

    pub(crate) fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub(crate) fn journal(&self, entry: JournalEntry) {
        lock(&self.journal).push(entry);
    }

    /// The matching journal entries, oldest first (pointers: serialize them outside the lock).
    pub(crate) fn requests(
        &self,
        path: Option<&str>,
        direction: Option<RequestDirection>,
    ) -> Vec<Arc<JournalEntry>> {
        lock(&self.journal).entries(path, direction)
    }

    pub(crate) fn journal_bytes(&self) -> usize {
        lock(&self.journal).bytes()
    }

    pub(crate) fn deployment(&self, id: &str) -> Option<Arc<Deployment>> {
        lock(&self.deployments).get(id)
    }

    pub(crate) fn deployments(&self) -> Vec<Arc<Deployment>> {
        lock(&self.deployments).all()
    }

    pub(crate) fn put_deployment(&self, config: DeploymentConfig) -> Result<bool, PutError> {
        lock(&self.deployments).put(config)
    }

    /// Deletes a deployment and its rate-limit window, so that windows stay as bounded as
    /// deployments are.
    pub(crate) fn remove_deployment(&self, id: &str) -> bool {
        let removed = lock(&self.deployments).remove(id);
        if removed {
            lock(&self.windows).remove(&deployment_window(id));
        }
        removed
    }

    pub(crate) fn any_deployment_allows(&self, origin: &str) -> bool {
        lock(&self.deployments).any_allows_origin(origin)
    }

    /// A slot for one more WebSocket, released when the guard drops; `None` when all are taken.
    pub(crate) fn open_websocket(self: &Arc<Self>) -> Option<WebSocketSlot> {
        let taken = self
            .open_websockets
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.limits.max_websockets).then_some(open + 1)
            });
        taken.ok().map(|_| WebSocketSlot(Arc::clone(self)))
    }

    pub(crate) fn open_websocket_count(&self) -> usize {
        self.open_websockets.load(Ordering::Acquire)
    }

    pub(crate) fn clear_requests(&self) {
        lock(&self.journal).clear();
    }
}

/// The rate-limit window key of a deployment's browser-facing routes (they have no OAuth client).
pub(crate) fn deployment_window(deployment_id: &str) -> String {
    format!("deployment:{}", deployment_id.to_ascii_lowercase())
}

/// One open WebSocket, counted against `max_websockets` until dropped.
pub(crate) struct WebSocketSlot(Arc<MockState>);

impl Drop for WebSocketSlot {
    fn drop(&mut self) {
        self.0.open_websockets.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Within the limit: `count` requests so far in this window.
    Allowed { count: u32, reset_secs: u64 },
    /// Over the limit until the window resets.
    Limited { count: u32, reset_secs: u64 },
}

/// One client's current window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FixedWindow {
    started: Instant,
    count: u32,
}

impl FixedWindow {
    pub(crate) fn starting(now: Instant) -> Self {
        Self {
            started: now,
            count: 0,
        }
    }

    pub(crate) fn admit(&mut self, limit: &RateLimit, now: Instant) -> Admission {
        let length = Duration::from_secs(limit.window_seconds);
        if now.saturating_duration_since(self.started) >= length {
            *self = Self::starting(now);
        }
        let left = length.saturating_sub(now.saturating_duration_since(self.started));
        // Whole seconds, rounded up, so that waiting that long always lands in the next window.
        let reset_secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        if self.count >= limit.requests {
            return Admission::Limited {
                count: self.count,
                reset_secs: reset_secs.max(1),
            };
        }
        self.count += 1;
        Admission::Allowed {
            count: self.count,
            reset_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        requests: 2,
        window_seconds: 10,
    };

    #[test]
    fn a_window_admits_its_quota_then_limits_until_it_resets() {
        let t0 = Instant::now();
        let mut window = FixedWindow::starting(t0);
        assert_eq!(
            window.admit(&LIMIT, t0),
            Admission::Allowed {
                count: 1,
                reset_secs: 10
            }
        );
        assert_eq!(
            window.admit(&LIMIT, t0 + Duration::from_millis(2500)),
            Admission::Allowed {
                count: 2,
                reset_secs: 8
            }
        );
        assert_eq!(
            window.admit(&LIMIT, t0 + Duration::from_millis(9100)),
            Admission::Limited {
                count: 2,
                reset_secs: 1
            }
        );
        assert_eq!(
            window.admit(&LIMIT, t0 + Duration::from_secs(10)),
            Admission::Allowed {
                count: 1,
                reset_secs: 10
            }
        );
    }

    #[test]
    fn retry_after_is_never_zero() {
        let t0 = Instant::now();
        let mut window = FixedWindow::starting(t0);
        let one = RateLimit {
            requests: 1,
            window_seconds: 1,
        };
        window.admit(&one, t0);
        assert_eq!(
            window.admit(&one, t0 + Duration::from_millis(999)),
            Admission::Limited {
                count: 1,
                reset_secs: 1
            }
        );
    }

    #[test]
    fn deleting_a_deployment_drops_its_rate_limit_window() {
        let state = MockState::new(&MockSettings::default()).unwrap();
        let id = crate::deployments::DEFAULT_DEPLOYMENT_ID;
        state.admit(&deployment_window(&id.to_uppercase()));
        assert_eq!(lock(&state.windows).len(), 1);
        assert!(state.remove_deployment(id));
        assert!(lock(&state.windows).is_empty());
    }
}
