//! The shared 429 gate: once Genesys names a `Retry-After` for a route, every caller on every
//! worker holds back until it passes, instead of sending and collecting 429s of its own. Callers
//! held back are released spread over a short interval after the reopening, not all at once.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::observer::Operation;
use crate::retry::LONGEST_RETRY_AFTER;

/// The widest spread of waiters' releases after a reopening, whatever the closure's length.
pub const LONGEST_REOPENING_SPREAD: Duration = Duration::from_millis(250);

/// The spread of waiters' releases after a closure of `closed_for`: 10 % of it, at most
/// [`LONGEST_REOPENING_SPREAD`].
pub fn reopening_spread(closed_for: Duration) -> Duration {
    (closed_for / 10).min(LONGEST_REOPENING_SPREAD)
}

/// One closure of a route: when it reopens and how long the `Retry-After` that closed it was.
#[derive(Debug, Clone, Copy)]
struct Closure {
    until: Instant,
    length: Duration,
}

/// One closure per route. `Send + Sync`; one per process.
#[derive(Debug, Default)]
pub struct BackoffGate {
    closures: Mutex<[Option<Closure>; Operation::ALL.len()]>,
}

fn slot(route: Operation) -> usize {
    Operation::ALL
        .iter()
        .position(|op| *op == route)
        .expect("every operation is in Operation::ALL")
}

/// What a caller must do before sending on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passage {
    /// The route is open: send now.
    Open,
    /// Wait until this instant, then look again: the reopening plus this caller's share of the
    /// spread, or the bare reopening when the spread would overrun the caller's deadline.
    WaitUntil(Instant),
    /// The route stays closed past the caller's deadline for this long: fail fast.
    ClosedBeyondDeadline(Duration),
}

impl BackoffGate {
    /// An open gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Closes `route` for `wait` (at most [`LONGEST_RETRY_AFTER`]) from `now`. A later reopening
    /// wins over an earlier one; never reopens early.
    pub fn close_for(&self, route: Operation, now: Instant, wait: Duration) {
        // Capped so the instant stays on the clock; the gate stays shut rather than failing open.
        let wait = wait.min(LONGEST_RETRY_AFTER);
        let until = now + wait;
        let mut slots = self.closures.lock().unwrap_or_else(|e| e.into_inner());
        let current = &mut slots[slot(route)];
        if current.is_none_or(|c| c.until < until) {
            *current = Some(Closure { until, length: wait });
        }
    }

    fn closure(&self, route: Operation, now: Instant) -> Option<Closure> {
        let slots = self.closures.lock().unwrap_or_else(|e| e.into_inner());
        slots[slot(route)].filter(|c| c.until > now)
    }

    /// When `route` opens again, if it is closed at `now`.
    pub fn closed_until(&self, route: Operation, now: Instant) -> Option<Instant> {
        self.closure(route, now).map(|c| c.until)
    }

    /// What a caller with `deadline` must do at `now`; `rng` draws its share of the spread
    /// (uniform over `[0, reopening_spread(closure)]`). Pure apart from reading the gate.
    pub fn passage(
        &self,
        route: Operation,
        now: Instant,
        deadline: Instant,
        rng: &mut fastrand::Rng,
    ) -> Passage {
        let Some(Closure { until, length }) = self.closure(route, now) else {
            return Passage::Open;
        };
        if until > deadline {
            return Passage::ClosedBeyondDeadline(until - now);
        }
        let spread = reopening_spread(length).as_nanos() as u64;
        let release = until + Duration::from_nanos(rng.u64(0..=spread));
        // The spread never costs a caller its budget: with too little left it goes at the reopening.
        Passage::WaitUntil(if release <= deadline { release } else { until })
    }

    /// Waits until `route` is open, and then for this caller's share of the reopening spread.
    /// `Err(wait)` at once, without waiting, if it stays closed past `deadline`: `wait` is how
    /// long it stays closed from now.
    pub async fn wait_open(&self, route: Operation, deadline: Instant) -> Result<(), Duration> {
        let mut rng = fastrand::Rng::new();
        loop {
            match self.passage(route, Instant::now(), deadline, &mut rng) {
                Passage::Open => return Ok(()),
                // Look again after waking: another 429 may have moved the gate further out.
                Passage::WaitUntil(until) => tokio::time::sleep_until(until.into()).await,
                Passage::ClosedBeyondDeadline(wait) => return Err(wait),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    fn rng() -> fastrand::Rng {
        fastrand::Rng::with_seed(7)
    }

    /// Releases of `waiters` callers looking at the gate at `now` with `deadline`.
    fn releases(gate: &BackoffGate, now: Instant, deadline: Instant, waiters: usize) -> Vec<Instant> {
        let mut rng = rng();
        (0..waiters)
            .map(
                |_| match gate.passage(Operation::CreateGuest, now, deadline, &mut rng) {
                    Passage::WaitUntil(release) => release,
                    other => panic!("a wait expected, got {other:?}"),
                },
            )
            .collect()
    }

    #[test]
    fn the_spread_is_a_tenth_of_the_closure_and_at_most_a_quarter_second() {
        assert_eq!(reopening_spread(Duration::ZERO), Duration::ZERO);
        assert_eq!(reopening_spread(SEC), 100 * MS);
        assert_eq!(reopening_spread(2 * SEC), 200 * MS);
        assert_eq!(reopening_spread(3 * SEC), LONGEST_REOPENING_SPREAD);
        assert_eq!(reopening_spread(120 * SEC), LONGEST_REOPENING_SPREAD);
    }

    #[test]
    fn an_untouched_gate_is_open_on_every_route() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        for route in [Operation::FetchToken, Operation::CreateGuest, Operation::GetQueue] {
            assert_eq!(gate.passage(route, now, now + SEC, &mut rng()), Passage::Open);
        }
    }

    #[test]
    fn a_closed_route_makes_callers_wait_until_it_opens_and_leaves_other_routes_open() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        gate.close_for(Operation::CreateGuest, now, SEC);
        let Passage::WaitUntil(release) =
            gate.passage(Operation::CreateGuest, now, now + 10 * SEC, &mut rng())
        else {
            panic!("the closed route must make the caller wait");
        };
        assert!(
            release >= now + SEC && release <= now + SEC + 100 * MS,
            "{:?}",
            release - now
        );
        for route in [Operation::GetQueue, Operation::FetchToken] {
            assert_eq!(
                gate.passage(route, now, now + 10 * SEC, &mut rng()),
                Passage::Open
            );
        }
    }

    #[test]
    fn waiters_are_released_spread_within_the_bound_and_never_before_the_reopening() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        gate.close_for(Operation::CreateGuest, now, 2 * SEC);
        let opens = now + 2 * SEC;
        let bound = reopening_spread(2 * SEC);

        let released = releases(&gate, now, now + 10 * SEC, 200);
        for release in &released {
            assert!(*release >= opens, "released {:?} early", opens - *release);
            assert!(*release <= opens + bound, "released {:?} late", *release - opens);
        }
        // Spread out rather than bunched: 200 uniform draws over 200 ms cover most of it, and
        // nearly all differ (the seed is fixed, so this does not flake).
        let first = *released.iter().min().unwrap();
        let last = *released.iter().max().unwrap();
        assert!(last - first > bound * 3 / 4, "all within {:?}", last - first);
        let mut distinct = released.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 190, "{} distinct releases", distinct.len());
    }

    #[test]
    fn waiters_arriving_late_in_the_closure_get_the_same_spread() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        gate.close_for(Operation::CreateGuest, now, 2 * SEC);
        let opens = now + 2 * SEC;

        let released = releases(&gate, opens - MS, now + 10 * SEC, 200);
        let last = *released.iter().max().unwrap();
        assert!(
            last - opens > 150 * MS,
            "late arrivals bunched within {:?}",
            last - opens
        );
    }

    #[test]
    fn a_spread_that_would_overrun_the_deadline_gives_way_to_the_bare_reopening() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        gate.close_for(Operation::CreateGuest, now, 2 * SEC);
        let opens = now + 2 * SEC;

        // The deadline falls 50 ms into a 200 ms spread: releases stay at or before it.
        let deadline = opens + 50 * MS;
        let released = releases(&gate, now, deadline, 200);
        assert!(released.iter().all(|r| *r >= opens && *r <= deadline));
        assert!(
            released.contains(&opens),
            "draws past the deadline fall back to the reopening"
        );
        assert!(
            released.iter().any(|r| *r > opens),
            "draws within the deadline keep their spread"
        );

        // A deadline exactly at the reopening still waits, unjittered, rather than failing fast.
        assert_eq!(releases(&gate, now, opens, 20), vec![opens; 20]);
    }

    #[test]
    fn a_route_closed_past_the_deadline_fails_fast_with_the_remaining_wait() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        gate.close_for(Operation::CreateGuest, now, 120 * SEC);
        assert_eq!(
            gate.passage(Operation::CreateGuest, now + 20 * SEC, now + 30 * SEC, &mut rng()),
            Passage::ClosedBeyondDeadline(100 * SEC)
        );
    }

    #[test]
    fn the_route_reopens_once_the_instant_has_passed() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        gate.close_for(Operation::GetQueue, now, SEC);
        assert_eq!(
            gate.passage(Operation::GetQueue, now + SEC, now + 5 * SEC, &mut rng()),
            Passage::Open
        );
        assert_eq!(gate.closed_until(Operation::GetQueue, now + 2 * SEC), None);
    }

    #[test]
    fn a_shorter_retry_after_never_reopens_the_gate_early() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        gate.close_for(Operation::CreateGuest, now, 5 * SEC);
        gate.close_for(Operation::CreateGuest, now, SEC);
        assert_eq!(
            gate.closed_until(Operation::CreateGuest, now),
            Some(now + 5 * SEC)
        );
        gate.close_for(Operation::CreateGuest, now, 7 * SEC);
        assert_eq!(
            gate.closed_until(Operation::CreateGuest, now),
            Some(now + 7 * SEC)
        );
    }

    #[test]
    fn a_retry_after_beyond_the_longest_keeps_the_gate_shut_for_the_longest() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        gate.close_for(Operation::CreateGuest, now, Duration::MAX);
        assert_eq!(
            gate.closed_until(Operation::CreateGuest, now),
            Some(now + LONGEST_RETRY_AFTER)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn waiting_callers_are_held_until_the_gate_opens() {
        let gate = BackoffGate::new();
        let start = Instant::now();
        gate.close_for(Operation::CreateGuest, start, Duration::from_millis(300));
        gate.wait_open(Operation::CreateGuest, start + 10 * SEC)
            .await
            .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn callers_whose_deadline_falls_inside_the_closure_return_at_once() {
        let gate = BackoffGate::new();
        let start = Instant::now();
        gate.close_for(Operation::CreateGuest, start, 120 * SEC);
        let wait = gate
            .wait_open(Operation::CreateGuest, start + 10 * SEC)
            .await
            .unwrap_err();
        assert!(wait > 119 * SEC && wait <= 120 * SEC, "{wait:?}");
        // Generous: only shows the call did not sleep through the closure.
        assert!(start.elapsed() < 5 * SEC);
    }
}
