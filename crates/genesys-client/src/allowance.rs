//! Genesys' allowance as a budget the client manages, so that a busy minute costs at most one 429.
//!
//! Genesys allows each OAuth client a number of API requests per window (300 a minute by default)
//! and answers 429 past it. Two guards keep the process under it:
//! - a process-wide GCRA (`governor`) at a share of the allowance, whose burst is small enough
//!   that no window of the allowance's length can hold more requests than Genesys allows;
//! - the window Genesys reports on every answer (`inin-ratelimit-allowed`, `-count`, `-reset`):
//!   when what it says is left is taken by requests in flight (another process may share the
//!   client), no request is sent until the window resets.
//!
//! A caller that finds no room gets [`NoRoom`] at once with an honest wait, never a queue.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// How much of Genesys' allowance the process may spend.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowanceSettings {
    /// Genesys' allowance for this OAuth client, in requests per minute (300 by default).
    pub requests_per_minute: u32,
    /// The share of it this process spends, from 0 (exclusive) to 1.
    pub share: f64,
    /// Requests that may go at once before the rate applies.
    pub burst: u32,
}

impl Default for AllowanceSettings {
    fn default() -> Self {
        Self {
            requests_per_minute: 300,
            share: 0.98,
            burst: 5,
        }
    }
}

impl AllowanceSettings {
    /// The sustained rate of the budget, in requests per minute.
    pub fn budget_per_minute(&self) -> f64 {
        f64::from(self.requests_per_minute) * self.share
    }

    /// Why these figures could let a minute hold more requests than Genesys allows, if they could.
    pub fn check(&self) -> Result<(), String> {
        if self.requests_per_minute == 0 {
            return Err("requests_per_minute must be at least 1".to_owned());
        }
        if !(self.share > 0.0 && self.share <= 1.0) {
            return Err(format!(
                "the share must be above 0 and at most 1, not {}",
                self.share
            ));
        }
        if self.burst == 0 {
            return Err("the burst must be at least 1".to_owned());
        }
        let worst_minute = self.budget_per_minute().floor() + f64::from(self.burst);
        if worst_minute > f64::from(self.requests_per_minute) {
            return Err(format!(
                "a share of {} with a burst of {} lets one minute hold {worst_minute} requests, over \
                 Genesys' {} (lower the share or the burst)",
                self.share, self.burst, self.requests_per_minute
            ));
        }
        Ok(())
    }
}

/// No request may go now; `retry_after` says when one may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom {
    /// How long until a request may go.
    pub retry_after: Duration,
    /// Which guard refused.
    pub reason: NoRoomReason,
}

/// Which guard refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoomReason {
    /// The process' own budget (the GCRA) is spent for now.
    Budget,
    /// Genesys' reported window is spent (by this process or another one sharing the client).
    Window,
}

/// The window as Genesys last reported it.
#[derive(Debug, Clone, Copy)]
struct ReportedWindow {
    /// Requests Genesys still accepted in the window when it answered.
    remaining: u32,
    /// When the window resets.
    resets_at: Instant,
    /// Requests sent since that answer, plus those in flight when it came (they may not be
    /// counted in it yet).
    sent_since: u32,
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// The process-wide budget. `Send + Sync`; one per process, shared by every worker.
pub struct UpstreamAllowance {
    settings: AllowanceSettings,
    limiter: Limiter,
    window: Mutex<Option<ReportedWindow>>,
    in_flight: AtomicU32,
    /// Burst capacity left after the last admitted request, for the metrics.
    budget_left: AtomicU32,
    refused: AtomicU64,
}

impl std::fmt::Debug for UpstreamAllowance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamAllowance")
            .field("settings", &self.settings)
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A request admitted by the allowance; counts as in flight until dropped.
#[derive(Debug)]
pub struct Permit<'a> {
    allowance: &'a UpstreamAllowance,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.allowance.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl UpstreamAllowance {
    /// A full budget for `settings` (figures [`AllowanceSettings::check`] refuses are clamped so
    /// the limiter can still be built).
    pub fn new(settings: AllowanceSettings) -> Self {
        let per_minute = settings.budget_per_minute().max(0.001);
        let period = Duration::from_secs_f64(60.0 / per_minute).max(Duration::from_micros(1));
        let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .expect("the period is at least a microsecond")
            .allow_burst(burst);
        Self {
            limiter: RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>(),
            window: Mutex::new(None),
            in_flight: AtomicU32::new(0),
            budget_left: AtomicU32::new(burst.get()),
            refused: AtomicU64::new(0),
            settings,
        }
    }

    /// The figures it was built with.
    pub fn settings(&self) -> &AllowanceSettings {
        &self.settings
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Option<ReportedWindow>> {
        self.window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits one request now, or says how long until one may go. Never waits.
    pub fn try_acquire(&self, now: Instant) -> Result<Permit<'_>, NoRoom> {
        // The reported window first: a request it refuses must not spend the budget.
        let mut window = self.window();
        if let Some(reported) = window.as_ref().filter(|w| w.resets_at > now)
            && reported.sent_since >= reported.remaining
        {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(NoRoom {
                retry_after: reported.resets_at - now,
                reason: NoRoomReason::Window,
            });
        }
        match self.limiter.check() {
            Ok(snapshot) => {
                self.budget_left
                    .store(snapshot.remaining_burst_capacity(), Ordering::Relaxed);
                if let Some(reported) = window.as_mut() {
                    reported.sent_since = reported.sent_since.saturating_add(1);
                }
                self.in_flight.fetch_add(1, Ordering::AcqRel);
                Ok(Permit { allowance: self })
            }
            Err(not_until) => {
                self.budget_left.store(0, Ordering::Relaxed);
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(NoRoom {
                    retry_after: not_until.wait_time_from(DefaultClock::default().now()),
                    reason: NoRoomReason::Budget,
                })
            }
        }
    }

    /// Takes in what Genesys reported on an answer: `allowed` requests per window, `count` used,
    /// `reset` until the window resets. Called before the answer's permit is dropped.
    pub fn observe(&self, allowed: u32, count: u32, reset: Duration, now: Instant) {
        let resets_at = now + reset.min(Duration::from_secs(3600));
        let remaining = allowed.saturating_sub(count);
        // Everything still in flight, this answer's own request aside, may be uncounted.
        let uncounted = self.in_flight.load(Ordering::Acquire).saturating_sub(1);
        let mut window = self.window();
        let newer = match *window {
            // Answers of one window can arrive out of order: the one that counted most is the latest.
            Some(current)
                if current.resets_at > now && resets_at <= current.resets_at + Duration::from_secs(1) =>
            {
                remaining < current.remaining
            }
            _ => true,
        };
        if newer {
            *window = Some(ReportedWindow {
                remaining,
                resets_at,
                sent_since: uncounted,
            });
        }
    }

    /// Burst capacity left after the last admitted request (for the metrics).
    pub fn budget_left(&self) -> u32 {
        self.budget_left.load(Ordering::Relaxed)
    }

    /// Requests to Genesys in flight right now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests refused by either guard since start-up.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// What Genesys last said is left of its window, while that window lasts.
    pub fn reported_remaining(&self, now: Instant) -> Option<u32> {
        self.window()
            .filter(|w| w.resets_at > now)
            .map(|w| w.remaining.saturating_sub(w.sent_since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(requests_per_minute: u32, share: f64, burst: u32) -> AllowanceSettings {
        AllowanceSettings {
            requests_per_minute,
            share,
            burst,
        }
    }

    #[test]
    fn the_defaults_never_let_a_minute_exceed_genesys_allowance() {
        AllowanceSettings::default().check().unwrap();
        assert!(settings(300, 0.98, 10).check().is_err(), "294 + 10 > 300");
        assert!(settings(300, 0.95, 15).check().is_ok(), "285 + 15 = 300");
        assert!(settings(300, 0.0, 1).check().is_err());
        assert!(settings(300, 1.5, 1).check().is_err());
        assert!(settings(0, 0.5, 1).check().is_err());
    }

    #[test]
    fn admits_the_burst_at_once_then_refuses_with_the_wait_until_the_next_slot() {
        // One request a minute: no pause of a loaded machine refills the budget during the test.
        let allowance = UpstreamAllowance::new(settings(1, 1.0, 1));
        let now = Instant::now();
        let first = allowance.try_acquire(now).expect("the burst");
        let refused = allowance.try_acquire(now).unwrap_err();
        assert_eq!(refused.reason, NoRoomReason::Budget);
        assert!(
            refused.retry_after > Duration::from_secs(50) && refused.retry_after <= Duration::from_secs(60),
            "{refused:?}"
        );
        assert_eq!(allowance.in_flight(), 1);
        drop(first);
        assert_eq!(allowance.in_flight(), 0);
        assert_eq!(allowance.refused(), 1);
    }

    #[test]
    fn stops_when_genesys_reports_its_window_taken_by_requests_in_flight() {
        let allowance = UpstreamAllowance::new(settings(6000, 1.0, 100));
        let now = Instant::now();
        let answered = allowance.try_acquire(now).unwrap();
        let in_flight: Vec<_> = (0..2).map(|_| allowance.try_acquire(now).unwrap()).collect();
        // Genesys counted 297 of 300: 3 left, and 2 requests are still in flight.
        allowance.observe(300, 297, Duration::from_secs(20), now);
        drop(answered);
        let last = allowance.try_acquire(now).expect("one more fits");
        let refused = allowance.try_acquire(now).unwrap_err();
        assert_eq!(refused.reason, NoRoomReason::Window);
        assert_eq!(refused.retry_after, Duration::from_secs(20));
        assert_eq!(allowance.reported_remaining(now), Some(0));
        // A new window opens the gate again.
        let later = now + Duration::from_secs(21);
        drop((last, in_flight));
        assert!(allowance.try_acquire(later).is_ok());
    }

    #[test]
    fn an_older_answer_of_the_same_window_does_not_widen_it() {
        let allowance = UpstreamAllowance::new(settings(6000, 1.0, 100));
        let now = Instant::now();
        allowance.observe(300, 299, Duration::from_secs(30), now);
        allowance.observe(300, 250, Duration::from_secs(30), now);
        assert_eq!(allowance.reported_remaining(now), Some(1));
    }
}
