//! The access-token cache shared by all workers: one token, refreshed before it expires, and
//! at most one token request in flight however many callers need one.
//!
//! The fetch itself is passed in by the caller and runs on the caller's own worker (awc futures
//! are not `Send`); only the coordination lives here, and it is `Send + Sync`. Callers that find
//! a fetch in flight subscribe to its result through a `watch` channel. If the fetching caller is
//! dropped mid-way, its channel closes and one waiter takes over the fetch.

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
    refresh_at: Instant,
    expires_at: Instant,
}

type FetchResult = Option<Result<AccessToken, GenesysError>>;

#[derive(Default)]
struct State {
    current: Option<Cached>,
    in_flight: Option<(u64, watch::Receiver<FetchResult>)>,
    next_id: u64,
}

/// What a caller does next, decided under the lock.
enum Step {
    Use(AccessToken),
    Wait(watch::Receiver<FetchResult>),
    /// Fetch; `fallback` is a still-valid token to use if a proactive refresh fails.
    Fetch {
        ticket: Ticket,
        fallback: Option<AccessToken>,
    },
}

/// Cached access token with single-flight fetching. `Send + Sync`; one per process.
#[derive(Default)]
pub struct TokenCache {
    state: Mutex<State>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("has_token", &self.has_token())
            .finish_non_exhaustive()
    }
}

/// The right to fetch: while it lives, others wait for its result. Dropping it unfinished
/// (the fetching caller was cancelled) closes the channel and clears the slot.
struct Ticket {
    id: u64,
    sender: watch::Sender<FetchResult>,
}

impl TokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under this lock can panic half-way, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an unexpired token is cached.
    pub fn has_token(&self) -> bool {
        let now = Instant::now();
        self.lock().current.as_ref().is_some_and(|c| now < c.expires_at)
    }

    /// Drops the cached token if it is still the one of `generation` (a 401 came back for it).
    /// Returns whether it was dropped; `false` means someone already replaced it.
    pub fn invalidate(&self, generation: u64) -> bool {
        let mut state = self.lock();
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
        let mut state = self.lock();
        let usable = state.current.as_ref().filter(|c| now < c.expires_at);
        let fresh = usable.filter(|c| now < c.refresh_at).map(|c| c.token.clone());
        let usable = usable.map(|c| c.token.clone());
        if !force && let Some(token) = fresh {
            return Step::Use(token);
        }
        if let Some((_, receiver)) = &state.in_flight {
            return match usable {
                // Inside the refresh margin: one caller refreshes, the others keep the current token.
                Some(token) if !force => Step::Use(token),
                _ => Step::Wait(receiver.clone()),
            };
        }
        let id = state.next_id;
        state.next_id += 1;
        let (sender, receiver) = watch::channel(None);
        state.in_flight = Some((id, receiver));
        Step::Fetch {
            ticket: Ticket { id, sender },
            fallback: usable.filter(|_| !force),
        }
    }

    fn finish(
        &self,
        ticket: &Ticket,
        result: Result<FreshToken, GenesysError>,
    ) -> Result<AccessToken, GenesysError> {
        let mut state = self.lock();
        let result = result.map(|fresh| {
            let lifetime = fresh.lifetime.min(LONGEST_TOKEN_LIFETIME);
            let token = AccessToken {
                value: fresh.value.into(),
                generation: ticket.id,
                lifetime,
            };
            let expires_at = fresh.requested_at + lifetime;
            state.current = Some(Cached {
                token: token.clone(),
                refresh_at: expires_at - refresh_margin(lifetime),
                expires_at,
            });
            token
        });
        if state.in_flight.as_ref().is_some_and(|(id, _)| *id == ticket.id) {
            state.in_flight = None;
        }
        ticket.sender.send_replace(Some(result.clone()));
        result
    }

    fn abandon(&self, id: u64) {
        let mut state = self.lock();
        if state
            .in_flight
            .as_ref()
            .is_some_and(|(current, _)| *current == id)
        {
            state.in_flight = None;
        }
    }

    /// A usable token: the cached one, or one fetched by `fetch` (run here, on the caller's
    /// worker) or by whichever caller is already fetching. With `force`, a new token is fetched
    /// even if the cached one is fresh (or the fetch in flight is joined). Waiting for another
    /// caller's fetch ends at `deadline` with [`GenesysError::Timeout`]; that fetch's error is
    /// returned as is, without a fetch of our own.
    pub async fn get<F, Fut>(
        &self,
        force: bool,
        deadline: Instant,
        fetch: F,
    ) -> Result<AccessToken, GenesysError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<FreshToken, GenesysError>>,
    {
        loop {
            match self.step(force, Instant::now()) {
                Step::Use(token) => return Ok(token),
                Step::Fetch { ticket, fallback } => {
                    let _abandon_if_dropped = AbandonOnDrop {
                        cache: self,
                        id: ticket.id,
                    };
                    let result = self.finish(&ticket, fetch().await);
                    return match (result, fallback) {
                        (Err(error), Some(old)) if self.still_valid(&old) => {
                            tracing::warn!(error = %error, "token refresh failed; keeping the current token");
                            Ok(old)
                        }
                        (result, _) => result,
                    };
                }
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

    fn still_valid(&self, token: &AccessToken) -> bool {
        let now = Instant::now();
        let state = self.lock();
        match &state.current {
            Some(c) if c.token.generation == token.generation => now < c.expires_at,
            // Replaced meanwhile (a later fetch succeeded) or dropped after a 401: do not revive it.
            _ => false,
        }
    }
}

/// Clears the in-flight slot if the fetching future is dropped before it finishes.
struct AbandonOnDrop<'a> {
    cache: &'a TokenCache,
    id: u64,
}

impl Drop for AbandonOnDrop<'_> {
    fn drop(&mut self) {
        self.cache.abandon(self.id);
    }
}

#[cfg(test)]
mod tests {
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
    async fn a_fresh_token_is_reused_without_fetching() {
        let cache = TokenCache::new();
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(fresh("t1", 3600 * SEC))
        };
        let a = cache.get(false, far(), fetch).await.unwrap();
        let b = cache.get(false, far(), fetch).await.unwrap();
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
        let callers = (0..20).map(|_| cache.get(false, far(), fetch));
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

    /// A cache holding `value`, a 3 s token requested 2 s ago: still valid, but past its refresh
    /// point (1.5 s).
    async fn cache_with_a_token_due_for_refresh(value: &str) -> TokenCache {
        let cache = TokenCache::new();
        let requested_at = Instant::now() - 2 * SEC;
        cache
            .get(false, far(), || async {
                Ok(FreshToken {
                    value: value.to_owned(),
                    lifetime: 3 * SEC,
                    requested_at,
                })
            })
            .await
            .unwrap();
        cache
    }

    #[tokio::test(flavor = "current_thread")]
    async fn inside_the_refresh_margin_one_caller_refreshes_and_the_others_keep_the_current_token() {
        let cache = cache_with_a_token_due_for_refresh("old").await;
        let (release, released) = watch::channel(false);
        let fetches = AtomicUsize::new(0);
        let fetch = || {
            let mut released = released.clone();
            let fetches = &fetches;
            async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                released.wait_for(|r| *r).await.unwrap();
                Ok(fresh("new", 3 * SEC))
            }
        };
        let refresher = cache.get(false, far(), fetch);
        let others = async {
            tokio::task::yield_now().await;
            let mut seen = Vec::new();
            for _ in 0..5 {
                seen.push(cache.get(false, far(), fetch).await.unwrap().secret().to_owned());
            }
            release.send_replace(true);
            seen
        };
        let (refreshed, seen) = futures_util::future::join(refresher, others).await;
        assert_eq!(refreshed.unwrap().secret(), "new");
        assert_eq!(seen, ["old"; 5]);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_refresh_keeps_the_still_valid_token() {
        let cache = cache_with_a_token_due_for_refresh("old").await;
        let token = cache
            .get(false, far(), || async {
                Err(GenesysError::Timeout { correlation_id: None })
            })
            .await
            .unwrap();
        assert_eq!(token.secret(), "old");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn invalidate_drops_only_the_generation_that_was_refused() {
        let cache = TokenCache::new();
        let first = cache
            .get(false, far(), || async { Ok(fresh("a", 3600 * SEC)) })
            .await
            .unwrap();
        assert!(cache.invalidate(first.generation()));
        let second = cache
            .get(false, far(), || async { Ok(fresh("b", 3600 * SEC)) })
            .await
            .unwrap();
        assert_ne!(first.generation(), second.generation());
        // A late 401 for the first token must not throw away its replacement.
        assert!(!cache.invalidate(first.generation()));
        assert!(cache.has_token());
        let again = cache
            .get(false, far(), || async { Ok(fresh("c", 3600 * SEC)) })
            .await
            .unwrap();
        assert_eq!(again.secret(), "b");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn force_fetches_even_when_the_token_is_fresh() {
        let cache = TokenCache::new();
        cache
            .get(false, far(), || async { Ok(fresh("a", 3600 * SEC)) })
            .await
            .unwrap();
        let forced = cache
            .get(true, far(), || async { Ok(fresh("b", 3600 * SEC)) })
            .await
            .unwrap();
        assert_eq!(forced.secret(), "b");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_waiting_caller_is_woken_and_fetches_itself_when_the_fetching_caller_is_cancelled() {
        let cache = Arc::new(TokenCache::new());
        let mut fetching = Box::pin(cache.get(false, far(), std::future::pending));
        assert!(fetching.as_mut().now_or_never().is_none(), "holds the fetch slot");
        let started = Arc::new(AtomicBool::new(false));
        let waiter = tokio::spawn({
            let (cache, started) = (cache.clone(), started.clone());
            async move {
                started.store(true, Ordering::SeqCst);
                cache
                    .get(false, far(), || async { Ok(fresh("taken-over", 60 * SEC)) })
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
        let stuck = tokio::time::timeout(Duration::from_millis(20), cache.get(false, far(), never)).await;
        assert!(stuck.is_err());
        let token = cache
            .get(false, far(), || async { Ok(fresh("t", 60 * SEC)) })
            .await
            .unwrap();
        assert_eq!(token.secret(), "t");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_waiter_gives_up_at_its_deadline() {
        let cache = TokenCache::new();
        let never = || std::future::pending::<Result<FreshToken, GenesysError>>();
        let fetching = cache.get(false, far(), never);
        let waiting = async {
            tokio::task::yield_now().await;
            cache
                .get(false, Instant::now() + Duration::from_millis(100), never)
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
            .get(false, far(), || async { Ok(fresh("t", Duration::MAX)) })
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
