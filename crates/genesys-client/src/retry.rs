//! When to try again and how long to wait first, kept apart: [`classify`] decides from one
//! attempt's outcome alone, [`Backoff`] and [`RetryPolicy`] turn that into a wait or a refusal.
//! Everything here is pure (clocks and randomness are passed in), so each part is unit-tested.

use std::time::{Duration, SystemTime};

use crate::config::RetrySettings;

/// Longest `Retry-After` believed. A larger one (or a far-off date) is read as this, so that
/// `Instant` arithmetic cannot overflow and one odd header cannot shut a route for good.
pub const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What one HTTP attempt produced, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Genesys answered with this status (and, for 429s, perhaps a parsed `Retry-After`).
    Status {
        /// HTTP status code.
        status: u16,
        /// The answer's `Retry-After`, already parsed by [`parse_retry_after`].
        retry_after: Option<Duration>,
    },
    /// The attempt's timeout ran out before a complete answer arrived.
    Timeout,
    /// The connection could not be opened or broke (refused, reset, TLS, DNS).
    Transport,
}

impl Outcome {
    /// A short label for metrics and logs: the status as text, `timeout` or `transport`.
    pub fn label(&self) -> String {
        match self {
            Self::Status { status, .. } => status.to_string(),
            Self::Timeout => "timeout".to_owned(),
            Self::Transport => "transport".to_owned(),
        }
    }
}

/// What to do after an attempt, before any budget or attempt cap is considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A 2xx: the operation succeeded.
    Done,
    /// A 429 naming its wait: try again after exactly this long.
    RetryAfter(Duration),
    /// A transient failure (429 without `Retry-After`, 502/503/504, timeout, transport):
    /// try again after a backoff step.
    Backoff,
    /// A 401: the access token was refused; drop it, fetch another, try once more.
    RefreshToken,
    /// Anything else (other 4xx, other 5xx): final, never retried.
    Fail,
}

/// Classifies one attempt's outcome. Pure: the same outcome always gives the same decision.
pub fn classify(outcome: &Outcome) -> Decision {
    match *outcome {
        Outcome::Status { status, .. } if (200..300).contains(&status) => Decision::Done,
        Outcome::Status {
            status: 429,
            retry_after: Some(wait),
        } => Decision::RetryAfter(wait),
        Outcome::Status {
            status: 429 | 502 | 503 | 504,
            ..
        } => Decision::Backoff,
        Outcome::Status { status: 401, .. } => Decision::RefreshToken,
        Outcome::Status { .. } => Decision::Fail,
        Outcome::Timeout | Outcome::Transport => Decision::Backoff,
    }
}

/// Parses a `Retry-After` value (RFC 9110 section 10.2.3): either delta-seconds (`"120"`) or an
/// HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`), the latter relative to `now`. A date in the
/// past means "now" (zero); waits beyond [`LONGEST_RETRY_AFTER`] are cut to it. Anything else is
/// `None`, so the caller falls back to its backoff.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit strings saturate rather than fail.
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(LONGEST_RETRY_AFTER))
}

/// Exponential backoff with full jitter: the wait before retry `n` (1-based) is drawn uniformly
/// from `[0, min(cap, base * 2^(n-1))]`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A backoff with fresh randomness.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            rng: fastrand::Rng::new(),
        }
    }

    /// A backoff whose jitter is reproducible (for tests).
    pub fn with_seed(base: Duration, cap: Duration, seed: u64) -> Self {
        Self {
            base,
            cap,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The largest wait retry `retry` (1-based) may get: `min(cap, base * 2^(retry-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry `retry` (1-based), jittered over `[0, ceiling]`.
    pub fn delay(&mut self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry).as_millis().min(u128::from(u64::MAX)) as u64;
        Duration::from_millis(self.rng.u64(0..=ceiling))
    }
}

/// Why the policy will not retry again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The decision was final (`Done`, `Fail`, or a `RefreshToken` the caller has not handled).
    Final,
    /// All attempts are used; `wait` is what the next one would have needed.
    AttemptsExhausted {
        /// The wait the next attempt would have needed.
        wait: Duration,
    },
    /// The wait would overrun what is left of the budget.
    OverBudget {
        /// The wait the next attempt would have needed.
        wait: Duration,
    },
}

/// Attempt cap and budget on top of [`classify`] and [`Backoff`].
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    max_attempts: u32,
    backoff: Backoff,
}

impl RetryPolicy {
    /// The policy of `settings`, with fresh jitter.
    pub fn new(settings: &RetrySettings) -> Self {
        Self::with_backoff(
            settings.max_attempts,
            Backoff::new(settings.backoff_base, settings.backoff_cap),
        )
    }

    /// A policy with an explicit backoff (seeded in tests).
    pub fn with_backoff(max_attempts: u32, backoff: Backoff) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            backoff,
        }
    }

    /// After attempt number `attempts_made` (1-based) ended with `decision`, with `remaining`
    /// left of the budget: how long to wait before the next attempt, or why not to make one.
    pub fn next_wait(
        &mut self,
        decision: Decision,
        attempts_made: u32,
        remaining: Duration,
    ) -> Result<Duration, GiveUp> {
        let wait = match decision {
            Decision::RetryAfter(wait) => wait,
            Decision::Backoff => self.backoff.delay(attempts_made),
            Decision::Done | Decision::Fail | Decision::RefreshToken => return Err(GiveUp::Final),
        };
        if attempts_made >= self.max_attempts {
            Err(GiveUp::AttemptsExhausted { wait })
        } else if wait >= remaining {
            Err(GiveUp::OverBudget { wait })
        } else {
            Ok(wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> Outcome {
        Outcome::Status {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn success_statuses_are_done() {
        for s in [200, 201, 204] {
            assert_eq!(classify(&status(s)), Decision::Done, "{s}");
        }
    }

    #[test]
    fn a_429_waits_its_retry_after_or_backs_off_without_one() {
        let with = Outcome::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(classify(&with), Decision::RetryAfter(Duration::from_secs(3)));
        assert_eq!(classify(&status(429)), Decision::Backoff);
    }

    #[test]
    fn gateway_errors_and_broken_attempts_back_off() {
        for s in [502, 503, 504] {
            assert_eq!(classify(&status(s)), Decision::Backoff, "{s}");
        }
        assert_eq!(classify(&Outcome::Timeout), Decision::Backoff);
        assert_eq!(classify(&Outcome::Transport), Decision::Backoff);
    }

    #[test]
    fn a_401_asks_for_a_fresh_token() {
        assert_eq!(classify(&status(401)), Decision::RefreshToken);
    }

    #[test]
    fn other_client_errors_and_500_are_never_retried() {
        for s in [400, 403, 404, 409, 422, 500, 501] {
            assert_eq!(classify(&status(s)), Decision::Fail, "{s}");
        }
    }

    #[test]
    fn retry_after_reads_delta_seconds() {
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_beyond_a_day_is_read_as_a_day_in_both_forms() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        for far in [
            "99999999999999999999999",
            "18446744073709551615",
            "86401",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(parse_retry_after(far, now), Some(LONGEST_RETRY_AFTER), "{far:?}");
        }
        assert_eq!(parse_retry_after("86400", now), Some(LONGEST_RETRY_AFTER));
        assert_eq!(parse_retry_after("86399", now), Some(Duration::from_secs(86_399)));
    }

    #[test]
    fn retry_after_reads_an_http_date_relative_to_now() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        // RFC 850 and asctime forms are obsolete but still valid HTTP-dates.
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:05 2015", now),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn retry_after_in_the_past_means_now_and_garbage_means_unknown() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-5", "1.5", "soon", "Wed, 32 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn backoff_ceiling_doubles_from_the_base_up_to_the_cap() {
        let b = Backoff::with_seed(Duration::from_millis(500), Duration::from_secs(8), 1);
        let ceilings: Vec<_> = (1..=7).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(b.ceiling(200), Duration::from_secs(8));
    }

    #[test]
    fn backoff_jitter_covers_the_whole_range_and_never_exceeds_the_ceiling() {
        let mut b = Backoff::with_seed(Duration::from_millis(500), Duration::from_secs(8), 7);
        let draws: Vec<Duration> = (0..2000).map(|_| b.delay(3)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_secs(2)));
        // Full jitter: both ends of [0, 2 s] are reached, not just values near the ceiling.
        assert!(draws.iter().any(|d| *d < Duration::from_millis(100)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(1900)));
    }

    #[test]
    fn backoff_with_the_same_seed_repeats_itself() {
        let draw = |seed| {
            let mut b = Backoff::with_seed(Duration::from_millis(500), Duration::from_secs(8), seed);
            (1..=4).map(|n| b.delay(n)).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    fn policy() -> RetryPolicy {
        RetryPolicy::with_backoff(
            4,
            Backoff::with_seed(Duration::from_millis(500), Duration::from_secs(8), 3),
        )
    }

    #[test]
    fn policy_waits_the_retry_after_while_budget_and_attempts_last() {
        let mut p = policy();
        let wait = Duration::from_secs(1);
        assert_eq!(
            p.next_wait(Decision::RetryAfter(wait), 1, Duration::from_secs(9)),
            Ok(wait)
        );
    }

    #[test]
    fn policy_refuses_a_wait_that_would_overrun_the_budget() {
        let mut p = policy();
        let wait = Duration::from_secs(120);
        assert_eq!(
            p.next_wait(Decision::RetryAfter(wait), 1, Duration::from_secs(10)),
            Err(GiveUp::OverBudget { wait })
        );
    }

    #[test]
    fn policy_stops_after_the_attempt_cap() {
        let mut p = policy();
        for made in 1..4 {
            assert!(
                p.next_wait(Decision::Backoff, made, Duration::from_secs(60))
                    .is_ok()
            );
        }
        assert!(matches!(
            p.next_wait(Decision::Backoff, 4, Duration::from_secs(60)),
            Err(GiveUp::AttemptsExhausted { .. })
        ));
    }

    #[test]
    fn policy_backoff_waits_stay_under_each_ceiling() {
        let mut p = policy();
        for (made, ceiling_ms) in [(1, 500), (2, 1000), (3, 2000)] {
            let wait = p
                .next_wait(Decision::Backoff, made, Duration::from_secs(60))
                .unwrap();
            assert!(wait <= Duration::from_millis(ceiling_ms), "{made}: {wait:?}");
        }
    }

    #[test]
    fn policy_never_retries_final_decisions() {
        let mut p = policy();
        for d in [Decision::Done, Decision::Fail, Decision::RefreshToken] {
            assert_eq!(p.next_wait(d, 1, Duration::from_secs(60)), Err(GiveUp::Final));
        }
    }
}
