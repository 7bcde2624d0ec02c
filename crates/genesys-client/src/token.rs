//! The access-token cache shared by all workers: one token, refreshed before it expires, and
//! at most one token request in flight however many callers need one.
//!
//! A missing or expired token is fetched by the caller that takes the in-flight slot, on its own
//! worker (awc futures are not `Send`); callers that find a fetch in flight subscribe to its
//! result through a `watch` channel. If the fetching caller is dropped mid-way, its channel
//! closes and one waiter takes over the fetch.
//!
//! A token that is still valid but due for refresh never makes anyone wait: the caller that takes
//! the slot is handed a [`Refresh`] to start as a detached task, and every caller carries on with
//! the current token. A failed token request pauses these background refreshes for
//! [`REFRESH_COOLDOWN`]. Only the coordination lives here, and it is `Send + Sync`.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::error::GenesysError;

/// Least time before expiry at which a token is refreshed.
const MIN_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Longest lifetime believed: Genesys grants at most 48 h, and a larger `expires_in` must not
/// overflow `Instant` arithmetic (a refresh that comes early is harmless).
pub const LONGEST_TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long after a failed token request no background refresh starts, so a login host that is
/// down is asked a few times a minute rather than once per API call. Expired or missing tokens
/// are still fetched at once.
pub const REFRESH_COOLDOWN: Duration = Duration::from_secs(5);

/// A cached bearer token. `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    value: Arc<str>,
    generation: u64,
    lifetime: Duration,
}

impl AccessToken {
    /// The bearer value, for the `Authorization` header only.
    pub(crate) fn secret(&self) -> &str {
        &self.value
    }

    /// Which fetch produced this token; used to drop it only while it is still the cached one.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The lifetime Genesys granted, at most [`LONGEST_TOKEN_LIFETIME`].
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"[redacted]")
            .field("generation", &self.generation)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// A token just obtained from the token endpoint.
pub struct FreshToken {
    /// The bearer value.
    pub value: String,
    /// The lifetime Genesys granted (`expires_in`).
    pub lifetime: Duration,
    /// When the token request was sent: the lifetime counts from no earlier than this.
    pub requested_at: Instant,
}

/// How long before expiry a token of `lifetime` is refreshed: max(60 s, 10 % of the lifetime),
/// but never more than half the lifetime, so short-lived tokens are not refreshed on every call.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    MIN_REFRESH_MARGIN.max(lifetime / 10).min(lifetime / 2)
}

struct Cached {
    token: AccessToken,
    obtained_at: Instant,
    refresh_at: Instant,
    expires_at: Instant,
}

/// How the last token request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LastRequest {
    finished: Instant,
    /// `ok`, or the error's [`GenesysError::kind`].
    outcome: &'static str,
}

/// What the cache holds at one instant, for readiness and metrics (never the token itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenState {
    /// Whether an unexpired token is cached.
    pub held: bool,
    /// How long ago the held token was requested.
    pub age: Option<Duration>,
    /// How long the held token stays valid.
    pub expires_in: Option<Duration>,
    /// How long until the held token is due for refresh (zero once due).
    pub refresh_in: Option<Duration>,
    /// How long ago the last token request ended, and how (`ok` or an error kind).
    pub last_request: Option<(Duration, &'static str)>,
    /// How long background refreshes stay paused after a failed token request.
    pub paused_for: Option<Duration>,
}

type FetchResult = Option<Result<AccessToken, GenesysError>>;

#[derive(Default)]
struct State {
    current: Option<Cached>,
    in_flight: Option<(u64, watch::Receiver<FetchResult>)>,
    next_id: u64,
    /// No background refresh starts before this instant (the last token request failed).
    refresh_paused_until: Option<Instant>,
    last_request: Option<LastRequest>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Nothing under this lock can panic half-way, so a poisoned state is still consistent.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a caller does next, decided under the lock.
enum Step {
    Use(AccessToken),
    Wait(watch::Receiver<FetchResult>),
    Fetch(Ticket),
    /// Use `current` now and start `refresh` in the background.
    Refresh {
        current: AccessToken,
        refresh: Refresh,
    },
}

/// Cached access token with single-flight fetching. `Send + Sync`; one per process.
#[derive(Default)]
pub struct TokenCache {
    // Shared with the tickets, so a background refresh can outlive the call that started it.
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("has_token", &self.has_token())
            .finish_non_exhaustive()
    }
}

/// The right to fetch: while it lives, others wait for its result (or keep a valid token).
/// Dropping it unfinished (the fetch was cancelled) clears the slot and closes the channel.
struct Ticket {
    id: u64,
    sender: watch::Sender<FetchResult>,
    state: Arc<Mutex<State>>,
}

impl Ticket {
    /// Stores the fetch's result, frees the slot and hands the result to the waiters.
    fn finish(self, result: Result<FreshToken, GenesysError>) -> Result<AccessToken, GenesysError> {
        let mut state = lock(&self.state);
        let result = result.map(|fresh| {
            let lifetime = fresh.lifetime.min(LONGEST_TOKEN_LIFETIME);
            let token = AccessToken {
                value: fresh.value.into(),
                generation: self.id,
                lifetime,
            };
            let expires_at = fresh.requested_at + lifetime;
            state.current = Some(Cached {
                token: token.clone(),
                obtained_at: fresh.requested_at,
                refresh_at: expires_at - refresh_margin(lifetime),
                expires_at,
            });
            token
        });
        let now = Instant::now();
        state.refresh_paused_until = result.is_err().then(|| now + REFRESH_COOLDOWN);
        state.last_request = Some(LastRequest {
            finished: now,
            outcome: result.as_ref().map_or_else(GenesysError::kind, |_| "ok"),
        });
        if state.in_flight.as_ref().is_some_and(|(id, _)| *id == self.id) {
            state.in_flight = None;
        }
        self.sender.send_replace(Some(result.clone()));
        result
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // Runs before `sender` closes, so woken waiters find the slot free and one takes over.
        let mut state = lock(&self.state);
        if state.in_flight.as_ref().is_some_and(|(id, _)| *id == self.id) {
            state.in_flight = None;
        }
    }
}

/// A background refresh of a still-valid token: holds the single-flight slot until
/// [`Refresh::run`] ends or it is dropped. Start it on a detached task; nobody waits for it except
/// callers whose token has expired meanwhile (or who force a new one).
#[must_use = "dropping a Refresh frees the slot without refreshing"]
pub struct Refresh {
    ticket: Ticket,
}

impl fmt::Debug for Refresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresh").field("id", &self.ticket.id).finish()
    }
}

impl Refresh {
    /// Runs `fetch` until it ends or `deadline` passes and caches its token. On failure the
    /// current token stays (it is still valid) and background refreshes pause for
    /// [`REFRESH_COOLDOWN`].
    pub async fn run<Fut>(self, deadline: Instant, fetch: Fut)
    where
        Fut: Future<Output = Result<FreshToken, GenesysError>>,
    {
        // The refresh's own bound: a login host that never answers must not hold the slot forever.
        let result = tokio::time::timeout_at(deadline.into(), fetch)
            .await
            .unwrap_or(Err(GenesysError::Timeout { correlation_id: None }));
        if let Err(error) = self.ticket.finish(result) {
            tracing::warn!(
                error = %error,
                kind = error.kind(),
                "background token refresh failed; keeping the current token"
            );
        }
    }
}

impl TokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether an unexpired token is cached.
    pub fn has_token(&self) -> bool {
        let now = Instant::now();
        lock(&self.state)
            .current
            .as_ref()
            .is_some_and(|c| now < c.expires_at)
    }

    /// What the cache holds at `now`.
    pub fn state(&self, now: Instant) -> TokenState {
        let state = lock(&self.state);
        let held = state.current.as_ref().filter(|c| now < c.expires_at);
        TokenState {
            held: held.is_some(),
            age: held.map(|c| now.saturating_duration_since(c.obtained_at)),
            expires_in: held.map(|c| c.expires_at - now),
            refresh_in: held.map(|c| c.refresh_at.saturating_duration_since(now)),
            last_request: state
                .last_request
                .map(|last| (now.saturating_duration_since(last.finished), last.outcome)),
            paused_for: state
                .refresh_paused_until
                .filter(|until| *until > now)
                .map(|until| until - now),
        }
    }

    /// Drops the cached token if it is still the one of `generation` (a 401 came back for it).
    /// Returns whether it was dropped; `false` means someone already replaced it.
    pub fn invalidate(&self, generation: u64) -> bool {
        let mut state = lock(&self.state);
        if state
            .current
            .as_ref()
            .is_some_and(|c| c.token.generation == generation)
        {
            state.current = None;
            true
        } else {
            false
        }
    }

    fn step(&self, force: bool, now: Instant) -> Step {
        let mut state = lock(&self.state);
        let valid = state
            .current
            .as_ref()
            .filter(|c| now < c.expires_at)
            .map(|c| (c.token.clone(), now >= c.refresh_at));
        match valid {
            // A valid token never waits: if it is due, at most one background refresh runs.
            Some((token, due)) if !force => {
                let paused = state.refresh_paused_until.is_some_and(|until| now < until);
                if !due || paused || state.in_flight.is_some() {
                    return Step::Use(token);
                }
                Step::Refresh {
                    current: token,
                    refresh: Refresh {
                        ticket: self.take_slot(&mut state),
                    },
                }
            }
            _ => match &state.in_flight {
                Some((_, receiver)) => Step::Wait(receiver.clone()),
                None => Step::Fetch(self.take_slot(&mut state)),
            },
        }
    }

    fn take_slot(&self, state: &mut State) -> Ticket {
        let id = state.next_id;
        state.next_id += 1;
        let (sender, receiver) = watch::channel(None);
        state.in_flight = Some((id, receiver));
        Ticket {
            id,
            sender,
            state: Arc::clone(&self.state),
        }
    }

    /// A usable token.
    ///
    /// - Fresh: the cached one.
    /// - Valid but due for refresh: the cached one; the one caller that takes the slot first
    ///   passes a [`Refresh`] to `start_refresh`, which must run it on a detached task.
    /// - Missing or expired (or `force`): one fetched by `fetch` (run here, on the caller's
    ///   worker), or by whichever caller or refresh is already fetching. Waiting for another's
    ///   fetch ends at `deadline` with [`GenesysError::Timeout`]; its error is returned as is.
    ///
    /// `force` fetches a new token even if the cached one is fresh (or joins the fetch in flight).
    pub async fn get<F, Fut, S>(
        &self,
        force: bool,
        deadline: Instant,
        fetch: F,
        start_refresh: S,
    ) -> Result<AccessToken, GenesysError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<FreshToken, GenesysError>>,
        S: FnOnce(Refresh),
    {
        // `Refresh` is returned at most once per call (it ends the call); the Option lets the loop own it.
        let mut start_refresh = Some(start_refresh);
        loop {
            match self.step(force, Instant::now()) {
                Step::Use(token) => return Ok(token),
                Step::Refresh { current, refresh } => {
                    if let Some(start) = start_refresh.take() {
                        start(refresh);
                    }
                    return Ok(current);
                }
                Step::Fetch(ticket) => return ticket.finish(fetch().await),
                Step::Wait(mut receiver) => {
                    let waited =
                        tokio::time::timeout_at(deadline.into(), receiver.wait_for(Option::is_some)).await;
                    match waited {
                        Err(_elapsed) => return Err(GenesysError::Timeout { correlation_id: None }),
                        Ok(Ok(result)) => return result.clone().expect("wait_for returns only a Some"),
                        // The fetching caller was dropped before it finished: take over.
                        Ok(Err(_closed)) => continue,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use futures_util::FutureExt;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn fresh(value: &str, lifetime: Duration) -> FreshToken {
        FreshToken {
            value: value.to_owned(),
            lifetime,
            requested_at: Instant::now(),
        }
    }

    fn far() -> Instant {
        Instant::now() + 30 * SEC
    }

    /// `get` whose fetch, if it runs, yields `secret` for `lifetime`; no refresh may be due.
    async fn get_fetching(cache: &TokenCache, force: bool, secret: &str, lifetime: Duration) -> AccessToken {
        cache
            .get(force, far(), || async { Ok(fresh(secret, lifetime)) }, no_refresh)
            .await
            .unwrap()
    }

    /// For calls that must not find a token due for refresh.
    fn no_refresh(refresh: Refresh) {
        panic!("unexpected background refresh: {refresh:?}");
    }

    /// Keeps the `Refresh` handed out, so the test decides when and how it ends.
    #[derive(Default)]
    struct Started(RefCell<Vec<Refresh>>);

    impl Started {
        fn hook(&self) -> impl FnOnce(Refresh) + '_ {
            |refresh| self.0.borrow_mut().push(refresh)
        }

        fn count(&self) -> usize {
            self.0.borrow().len()
        }

        fn take(&self) -> Refresh {
            self.0.borrow_mut().pop().expect("a refresh was started")
        }
    }

    #[test]
    fn refresh_margin_is_a_minute_or_a_tenth_of_the_lifetime_but_at_most_half() {
        assert_eq!(
            refresh_margin(Duration::from_secs(86_400)),
            Duration::from_secs(8_640)
        );
        assert_eq!(refresh_margin(Duration::from_secs(300)), Duration::from_secs(60));
        assert_eq!(refresh_margin(Duration::from_secs(600)), Duration::from_secs(60));
        assert_eq!(
            refresh_margin(Duration::from_secs(3)),
            Duration::from_millis(1500)
        );
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_state_reports_the_held_token_and_the_last_request_without_the_token() {
        let cache = TokenCache::new();
        assert_eq!(cache.state(Instant::now()), TokenState::default());
        get_fetching(&cache, false, "t1", 600 * SEC).await;
        let state = cache.state(Instant::now());
        assert!(state.held);
        assert!(state.expires_in.unwrap() <= 600 * SEC && state.expires_in.unwrap() > 590 * SEC);
        assert!(
            state.refresh_in.unwrap() <= 540 * SEC,
            "due a minute before expiry"
        );
        assert_eq!(state.last_request.map(|(_, outcome)| outcome), Some("ok"));
        assert_eq!(state.paused_for, None);

        let failed = cache
            .get(
                true,
                far(),
                || async {
                    Err(GenesysError::Transport {
                        message: "refused".into(),
                        correlation_id: None,
                    })
                },
                no_refresh,
            )
            .await;
        assert!(failed.is_err());
        let state = cache.state(Instant::now());
        assert!(state.held, "the earlier token is still valid");
        assert_eq!(state.last_request.map(|(_, outcome)| outcome), Some("transport"));
        assert!(
            state
                .paused_for
                .is_some_and(|p| p <= REFRESH_COOLDOWN && p > REFRESH_COOLDOWN / 2)
        );
        assert!(!format!("{state:?}").contains("t1"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_fresh_token_is_reused_without_fetching() {
        let cache = TokenCache::new();
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(fresh("t1", 3600 * SEC))
        };
        let a = cache.get(false, far(), fetch, no_refresh).await.unwrap();
        let b = cache.get(false, far(), fetch, no_refresh).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(a.generation(), b.generation());
        assert_eq!(b.secret(), "t1");
        assert!(cache.has_token());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_callers_share_one_fetch_and_its_error() {
        let cache = TokenCache::new();
        let fetches = AtomicUsize::new(0);
        let (release, released) = watch::channel(false);
        let fetch = || {
            let mut released = released.clone();
            let fetches = &fetches;
            async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                released.wait_for(|r| *r).await.unwrap();
                Err(GenesysError::UpstreamAuth {
                    status: 401,
                    reason: "invalid_client".into(),
                    correlation_id: None,
                })
            }
        };
        let callers = (0..20).map(|_| cache.get(false, far(), fetch, no_refresh));
        let all = futures_join(callers, async { release.send_replace(true) });
        let results = all.await;
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(GenesysError::UpstreamAuth { status: 401, .. })))
        );
        assert!(!cache.has_token());
    }

    /// Polls every caller and then `after` on one task, so they all start before the fetch ends.
    async fn futures_join<I, F, A>(callers: I, after: A) -> Vec<F::Output>
    where
        I: IntoIterator<Item = F>,
        F: Future,
        A: Future,
    {
        let all = futures_util::future::join_all(callers);
        let (results, _) = futures_util::future::join(all, async {
            tokio::task::yield_now().await;
            after.await
        })
        .await;
        results
    }

    /// A cache holding `value`, a token of `lifetime` requested `age` ago.
    async fn cache_with(value: &str, lifetime: Duration, age: Duration) -> TokenCache {
        let cache = TokenCache::new();
        let requested_at = Instant::now() - age;
        let fetch = || async {
            Ok(FreshToken {
                value: value.to_owned(),
                lifetime,
                requested_at,
            })
        };
        cache.get(false, far(), fetch, no_refresh).await.unwrap();
        cache
    }

    /// A 3 s token requested 2 s ago: still valid, but past its refresh point (1.5 s).
    async fn cache_with_a_token_due_for_refresh(value: &str) -> TokenCache {
        cache_with(value, 3 * SEC, 2 * SEC).await
    }

    fn must_not_fetch() -> std::future::Ready<Result<FreshToken, GenesysError>> {
        panic!("a valid token must not be fetched on the caller's path")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn inside_the_refresh_margin_every_caller_gets_the_current_token_and_one_starts_a_refresh() {
        let cache = cache_with_a_token_due_for_refresh("old").await;
        let started = Started::default();
        for _ in 0..5 {
            let token = cache
                .get(false, far(), must_not_fetch, started.hook())
                .now_or_never()
                .expect("a valid token is handed out without waiting")
                .unwrap();
            assert_eq!(token.secret(), "old");
        }
        assert_eq!(started.count(), 1, "one refresh for all callers");

        started
            .take()
            .run(far(), async { Ok(fresh("new", 3 * SEC)) })
            .await;
        let token = cache.get(false, far(), must_not_fetch, no_refresh).await.unwrap();
        assert_eq!(token.secret(), "new");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_background_refresh_keeps_the_token_and_pauses_refreshes_for_the_cooldown() {
        // A 20 s token 11 s old: due for refresh (at 10 s) and valid well past the cool-down.
        let cache = cache_with("old", 20 * SEC, 11 * SEC).await;
        let started = Started::default();
        let token = cache
            .get(false, far(), must_not_fetch, started.hook())
            .await
            .unwrap();
        assert_eq!(token.secret(), "old");
        started
            .take()
            .run(far(), async {
                Err(GenesysError::Upstream {
                    status: 503,
                    correlation_id: None,
                })
            })
            .await;

        let token = cache
            .get(false, far(), must_not_fetch, started.hook())
            .await
            .unwrap();
        assert_eq!(token.secret(), "old", "the failed refresh kept the valid token");
        assert_eq!(started.count(), 0, "no new refresh during the cool-down");
        assert!(matches!(cache.step(false, Instant::now()), Step::Use(_)));
        // Once the cool-down is over, the next caller tries again.
        let after_cooldown = Instant::now() + REFRESH_COOLDOWN + SEC;
        assert!(matches!(cache.step(false, after_cooldown), Step::Refresh { .. }));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_background_refresh_that_never_answers_frees_the_slot_at_its_deadline() {
        let cache = cache_with_a_token_due_for_refresh("old").await;
        let started = Started::default();
        cache
            .get(false, far(), must_not_fetch, started.hook())
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_millis(50);
        tokio::time::timeout(10 * SEC, started.take().run(deadline, std::future::pending()))
            .await
            .expect("the refresh ends at its own deadline");
        // The slot is free: a forced caller fetches at once instead of waiting for the dead refresh.
        let forced = get_fetching(&cache, true, "forced", 3 * SEC).await;
        assert_eq!(forced.secret(), "forced");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_dropped_background_refresh_lets_the_next_caller_start_one_without_a_cooldown() {
        let cache = cache_with_a_token_due_for_refresh("old").await;
        let started = Started::default();
        cache
            .get(false, far(), must_not_fetch, started.hook())
            .await
            .unwrap();
        drop(started.take());
        cache
            .get(false, far(), must_not_fetch, started.hook())
            .await
            .unwrap();
        assert_eq!(started.count(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn callers_whose_token_is_gone_wait_for_the_background_refresh_instead_of_fetching_again() {
        let cache = cache_with_a_token_due_for_refresh("old").await;
        let started = Started::default();
        let old = cache
            .get(false, far(), must_not_fetch, started.hook())
            .await
            .unwrap();
        // A 401 for the old token: the next caller has no valid token and must not start a second request.
        assert!(cache.invalidate(old.generation()));
        let waiting = cache.get(false, far(), must_not_fetch, no_refresh);
        let refresh = started.take();
        let (token, ()) = futures_util::future::join(waiting, async {
            tokio::task::yield_now().await;
            refresh.run(far(), async { Ok(fresh("new", 3 * SEC)) }).await;
        })
        .await;
        assert_eq!(token.unwrap().secret(), "new");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn invalidate_drops_only_the_generation_that_was_refused() {
        let cache = TokenCache::new();
        let first = get_fetching(&cache, false, "a", 3600 * SEC).await;
        assert!(cache.invalidate(first.generation()));
        let second = get_fetching(&cache, false, "b", 3600 * SEC).await;
        assert_ne!(first.generation(), second.generation());
        // A late 401 for the first token must not throw away its replacement.
        assert!(!cache.invalidate(first.generation()));
        assert!(cache.has_token());
        let again = get_fetching(&cache, false, "c", 3600 * SEC).await;
        assert_eq!(again.secret(), "b");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn force_fetches_even_when_the_token_is_fresh() {
        let cache = TokenCache::new();
        get_fetching(&cache, false, "a", 3600 * SEC).await;
        let forced = get_fetching(&cache, true, "b", 3600 * SEC).await;
        assert_eq!(forced.secret(), "b");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_waiting_caller_is_woken_and_fetches_itself_when_the_fetching_caller_is_cancelled() {
        let cache = Arc::new(TokenCache::new());
        let mut fetching = Box::pin(cache.get(false, far(), std::future::pending, no_refresh));
        assert!(fetching.as_mut().now_or_never().is_none(), "holds the fetch slot");
        let started = Arc::new(AtomicBool::new(false));
        let waiter = tokio::spawn({
            let (cache, started) = (cache.clone(), started.clone());
            async move {
                started.store(true, Ordering::SeqCst);
                cache
                    .get(
                        false,
                        far(),
                        || async { Ok(fresh("taken-over", 60 * SEC)) },
                        no_refresh,
                    )
                    .await
            }
        });
        while !started.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        // One thread: the waiter's first poll is over, so it is parked on the fetch in flight.
        assert!(!waiter.is_finished(), "the waiter waits instead of fetching");

        drop(fetching);
        // Only the closed channel can wake the waiter; a lost wake-up hangs until this timeout.
        let token = tokio::time::timeout(30 * SEC, waiter)
            .await
            .expect("the waiter was woken")
            .expect("the waiter did not panic")
            .expect("the waiter fetched a token");
        assert_eq!(token.secret(), "taken-over");
        assert!(cache.has_token());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_fetch_frees_the_slot_for_the_next_caller() {
        let cache = TokenCache::new();
        let never = || std::future::pending::<Result<FreshToken, GenesysError>>();
        // The first caller takes the fetch slot, then is dropped when its timeout fires.
        let stuck = tokio::time::timeout(
            Duration::from_millis(20),
            cache.get(false, far(), never, no_refresh),
        )
        .await;
        assert!(stuck.is_err());
        let token = get_fetching(&cache, false, "t", 60 * SEC).await;
        assert_eq!(token.secret(), "t");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_waiter_gives_up_at_its_deadline() {
        let cache = TokenCache::new();
        let never = || std::future::pending::<Result<FreshToken, GenesysError>>();
        let fetching = cache.get(false, far(), never, no_refresh);
        let waiting = async {
            tokio::task::yield_now().await;
            cache
                .get(
                    false,
                    Instant::now() + Duration::from_millis(100),
                    never,
                    no_refresh,
                )
                .await
        };
        tokio::select! {
            _ = fetching => panic!("the pending fetch cannot finish"),
            waited = waiting => assert!(matches!(waited, Err(GenesysError::Timeout { .. }))),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lifetime_too_large_for_the_clock_is_cut_to_the_longest_believed() {
        let cache = TokenCache::new();
        let token = cache
            .get(
                false,
                far(),
                || async { Ok(fresh("t", Duration::MAX)) },
                no_refresh,
            )
            .await
            .unwrap();
        assert_eq!(token.lifetime(), LONGEST_TOKEN_LIFETIME);
        assert!(cache.has_token());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = AccessToken {
            value: "very-secret".into(),
            generation: 1,
            lifetime: SEC,
        };
        assert!(!format!("{token:?}").contains("very-secret"));
    }
}
