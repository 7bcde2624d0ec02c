//! The shared 429 gate: once Genesys names a `Retry-After` for a route, every caller on every
//! worker holds back until it passes, instead of sending and collecting 429s of its own.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::observer::Operation;

/// One "closed until" instant per route. `Send + Sync`; one per process.
#[derive(Debug, Default)]
pub struct BackoffGate {
    closed_until: Mutex<[Option<Instant>; 3]>,
}

fn slot(route: Operation) -> usize {
    match route {
        Operation::FetchToken => 0,
        Operation::CreateGuest => 1,
        Operation::GetQueue => 2,
    }
}

/// What a caller must do before sending on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passage {
    /// The route is open: send now.
    Open,
    /// The route opens at this instant, within the caller's deadline: wait, then look again.
    WaitUntil(Instant),
    /// The route stays closed past the caller's deadline for this long: fail fast.
    ClosedBeyondDeadline(Duration),
}

impl BackoffGate {
    /// An open gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Closes `route` until `until`. A later instant wins over an earlier one; never reopens early.
    pub fn close_until(&self, route: Operation, until: Instant) {
        let mut slots = self.closed_until.lock().unwrap_or_else(|e| e.into_inner());
        let current = &mut slots[slot(route)];
        if current.is_none_or(|c| c < until) {
            *current = Some(until);
        }
    }

    /// When `route` opens again, if it is closed at `now`.
    pub fn closed_until(&self, route: Operation, now: Instant) -> Option<Instant> {
        let slots = self.closed_until.lock().unwrap_or_else(|e| e.into_inner());
        slots[slot(route)].filter(|until| *until > now)
    }

    /// What a caller with `deadline` must do at `now`. Pure apart from reading the gate.
    pub fn passage(&self, route: Operation, now: Instant, deadline: Instant) -> Passage {
        match self.closed_until(route, now) {
            None => Passage::Open,
            Some(until) if until <= deadline => Passage::WaitUntil(until),
            Some(until) => Passage::ClosedBeyondDeadline(until - now),
        }
    }

    /// Waits until `route` is open. `Err(wait)` at once, without waiting, if it stays closed past
    /// `deadline`: `wait` is how long it stays closed from now.
    pub async fn wait_open(&self, route: Operation, deadline: Instant) -> Result<(), Duration> {
        loop {
            match self.passage(route, Instant::now(), deadline) {
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

    #[test]
    fn an_untouched_gate_is_open_on_every_route() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        for route in [Operation::FetchToken, Operation::CreateGuest, Operation::GetQueue] {
            assert_eq!(gate.passage(route, now, now + SEC), Passage::Open);
        }
    }

    #[test]
    fn a_closed_route_makes_callers_wait_until_it_opens_and_leaves_other_routes_open() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        gate.close_until(Operation::CreateGuest, now + SEC);
        assert_eq!(
            gate.passage(Operation::CreateGuest, now, now + 10 * SEC),
            Passage::WaitUntil(now + SEC)
        );
        assert_eq!(
            gate.passage(Operation::GetQueue, now, now + 10 * SEC),
            Passage::Open
        );
        assert_eq!(
            gate.passage(Operation::FetchToken, now, now + 10 * SEC),
            Passage::Open
        );
    }

    #[test]
    fn a_route_closed_past_the_deadline_fails_fast_with_the_remaining_wait() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        gate.close_until(Operation::CreateGuest, now + 120 * SEC);
        assert_eq!(
            gate.passage(Operation::CreateGuest, now + 20 * SEC, now + 30 * SEC),
            Passage::ClosedBeyondDeadline(100 * SEC)
        );
    }

    #[test]
    fn the_route_reopens_once_the_instant_has_passed() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        gate.close_until(Operation::GetQueue, now + SEC);
        assert_eq!(
            gate.passage(Operation::GetQueue, now + SEC, now + 5 * SEC),
            Passage::Open
        );
        assert_eq!(gate.closed_until(Operation::GetQueue, now + 2 * SEC), None);
    }

    #[test]
    fn a_shorter_retry_after_never_reopens_the_gate_early() {
        let gate = BackoffGate::new();
        let now = Instant::now();
        gate.close_until(Operation::CreateGuest, now + 5 * SEC);
        gate.close_until(Operation::CreateGuest, now + SEC);
        assert_eq!(
            gate.closed_until(Operation::CreateGuest, now),
            Some(now + 5 * SEC)
        );
        gate.close_until(Operation::CreateGuest, now + 7 * SEC);
        assert_eq!(
            gate.closed_until(Operation::CreateGuest, now),
            Some(now + 7 * SEC)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn waiting_callers_are_held_until_the_gate_opens() {
        let gate = BackoffGate::new();
        let start = Instant::now();
        gate.close_until(Operation::CreateGuest, start + Duration::from_millis(300));
        gate.wait_open(Operation::CreateGuest, start + 10 * SEC)
            .await
            .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn callers_whose_deadline_falls_inside_the_closure_return_at_once() {
        let gate = BackoffGate::new();
        let start = Instant::now();
        gate.close_until(Operation::CreateGuest, start + 120 * SEC);
        let wait = gate
            .wait_open(Operation::CreateGuest, start + 10 * SEC)
            .await
            .unwrap_err();
        assert!(wait > 119 * SEC && wait <= 120 * SEC, "{wait:?}");
        // Generous: only shows the call did not sleep through the closure.
        assert!(start.elapsed() < 5 * SEC);
    }
}
