//! The paced scenarios, counted in the emulator's journal: the Genesys allowance under three times
//! the load it allows, and access-token refreshes under steady load with a short token lifetime.

use std::time::{Duration, Instant};

use super::Plan;
use super::client::{self, PacedOutcome};
use super::report::{Bound, Section, Table, number};
use super::stack::{self, GUEST_PATH, JournalEntry, TOKEN_PATH, UNLIMITED, guest_token_request};
use super::stats::{percentile, ratio};
use crate::image::API;
use crate::process::{Result, Services};

/// Genesys' allowance as the emulator enforces it: requests per window.
const ALLOWANCE: u32 = 300;
const WINDOW_SECONDS: u32 = 60;
/// Three times the allowance.
const PRESSURE_RATE: f64 = 3.0 * ALLOWANCE as f64 / WINDOW_SECONDS as f64;
/// Access-token lifetime in the churn scenario.
const SHORT_TOKEN_TTL_SECONDS: u64 = 6;
/// Steady load of the churn scenario, in requests per second (low enough for the journal).
const CHURN_RATE: f64 = 100.0;
/// The emulator's default journal bound (`journal_limit`).
const JOURNAL_LIMIT: usize = 10_000;

/// How long before expiry the API refreshes a token of `lifetime`: max(60 s, 10 %), at most half.
/// Mirrors `genesys_client::refresh_margin` (not configurable).
pub fn refresh_margin(lifetime: Duration) -> Duration {
    Duration::from_secs(60).max(lifetime / 10).min(lifetime / 2)
}

/// Inbound entries only (the emulator also journals its own calls to identity providers).
fn inbound(entries: Vec<JournalEntry>) -> Vec<JournalEntry> {
    entries.into_iter().filter(|e| e.direction == "inbound").collect()
}

fn status_mix(outcome: &PacedOutcome) -> Table {
    let mut table = Table::new(&["Status", "Answers", "p50 ms", "p99 ms", "max ms"]);
    for (status, latencies) in &outcome.answers {
        let label = if *status == 0 {
            "no answer".to_owned()
        } else {
            status.to_string()
        };
        table.row(vec![
            label,
            latencies.len().to_string(),
            number(percentile(latencies, 50.0)),
            number(percentile(latencies, 99.0)),
            number(percentile(latencies, 100.0)),
        ]);
    }
    table
}

/// Three times the allowance offered for a window and more: how much of it becomes guest tokens.
pub fn allowance(plan: &Plan) -> Result<Section> {
    let mut services = Services::default();
    let emulator = stack::start_emulator(&mut services, &[])?;
    emulator.patch_settings(&format!(
        "{{\"rateLimit\": {{\"requests\": {ALLOWANCE}, \"windowSeconds\": {WINDOW_SECONDS}}}}}"
    ))?;
    // The API's own budget stays at its defaults (config/default.toml); only the per-IP limit,
    // which would refuse one client's load long before the budget, is off.
    let api = stack::start_api(
        &mut services,
        API.service,
        &emulator,
        &[("APP__RATE_LIMIT__ENABLED", "false")],
    )?;
    emulator.clear_journal()?;
    let seconds = plan.allowance_seconds;
    eprintln!("{PRESSURE_RATE} req/s to {} for {seconds} s", api.address);
    let outcome = client::paced(
        &api.address,
        &guest_token_request(),
        PRESSURE_RATE,
        Duration::from_secs(seconds.into()),
        16,
    );
    let journal = emulator.journal(None)?;
    let upstream = inbound(emulator.journal(Some(GUEST_PATH))?);
    let issued = outcome.count(201);
    let per_minute = issued as f64 * 60.0 / f64::from(seconds);
    let share = per_minute / f64::from(ALLOWANCE);
    let calls_per_token = ratio(upstream.len() as f64, issued as f64);
    let refused_upstream = upstream.iter().filter(|e| e.status == 429).count();
    let offered: u64 = outcome.answers.values().map(|l| l.len() as u64).sum();

    let mut section = Section::new(
        "Allowance pressure",
        format!(
            "Emulator rate limit {ALLOWANCE} per {WINDOW_SECONDS} s; the API with its default \
             upstream budget (genesys.requests_per_minute 300, budget_share 0.98, budget_burst 5), \
             per-IP limit off. A paced client offers {PRESSURE_RATE} req/s (3x the allowance) for \
             {seconds} s from 16 kept-alive connections; Genesys-side figures come from the \
             emulator's journal, cleared just before the load."
        ),
    );
    section.tables.push(status_mix(&outcome));
    let mut figures = Table::new(&["Figure", "Value"]);
    for (name, value) in [
        ("requests offered", offered as f64),
        ("guest tokens issued (201)", issued as f64),
        ("issued per minute", per_minute),
        ("guest-creation calls to Genesys", upstream.len() as f64),
        ("429s from Genesys", refused_upstream as f64),
        ("requests sent more than 100 ms late", outcome.late as f64),
    ] {
        figures.row(vec![name.to_owned(), number(value)]);
    }
    section.tables.push(figures);
    section.figure("offered", offered as f64);
    section.figure("issued", issued as f64);
    section.figure("issued_per_minute", per_minute);
    section.figure("upstream_guest_calls", upstream.len() as f64);
    section.figure("genesys_429", refused_upstream as f64);
    section.figure("caller_429", outcome.count(429) as f64);
    section.figure("caller_p50_ms", percentile(&outcome.latencies(), 50.0));
    section.figure("caller_p99_ms", percentile(&outcome.latencies(), 99.0));
    if journal.len() >= JOURNAL_LIMIT {
        section.notes.push(format!(
            "The journal held {} entries, its bound: older calls may be missing.",
            journal.len()
        ));
    }
    section.headline("guest tokens a minute / allowance", &[share]);
    section.headline("Genesys guest calls per issued token", &[calls_per_token]);
    section.headline(
        "429s from Genesys; callers answered 201 / 429",
        &[refused_upstream as f64, issued as f64, outcome.count(429) as f64],
    );
    section.goal("guest tokens per minute / allowance", share, Bound::AtLeast, 0.97);
    section.goal(
        "Genesys guest calls per issued token",
        calls_per_token,
        Bound::AtMost,
        1.01,
    );
    Ok(section)
}

/// Most entries of `times` (sorted seconds) inside any window shorter than `window`.
pub fn most_within(times: &[f64], window: f64) -> usize {
    let mut most = 0;
    let mut first = 0;
    for (last, &time) in times.iter().enumerate() {
        while time - times[first] >= window {
            first += 1;
        }
        most = most.max(last - first + 1);
    }
    most
}

/// A short access-token lifetime under steady load: one token request per refresh interval.
pub fn token_churn(plan: &Plan) -> Result<Section> {
    let mut services = Services::default();
    let emulator = stack::start_emulator(&mut services, &[("MOCK__RATE_LIMIT__ENABLED", "false")])?;
    // Before the API starts, so that its first token is already a short one.
    emulator.patch_settings(&format!("{{\"tokenTtlSeconds\": {SHORT_TOKEN_TTL_SECONDS}}}"))?;
    let api = stack::start_api(&mut services, API.service, &emulator, UNLIMITED)?;
    let lifetime = Duration::from_secs(SHORT_TOKEN_TTL_SECONDS);
    let interval = (lifetime - refresh_margin(lifetime)).as_secs_f64();
    let seconds = plan.churn_seconds;
    emulator.clear_journal()?;
    let started = Instant::now();
    let outcome = client::paced(
        &api.address,
        &guest_token_request(),
        CHURN_RATE,
        Duration::from_secs(seconds.into()),
        8,
    );
    let window = started.elapsed().as_secs_f64();
    let journal = emulator.journal(None)?;
    let tokens = inbound(emulator.journal(Some(TOKEN_PATH))?);
    let times: Vec<f64> = tokens.iter().map(|e| e.received_at).collect();
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let intervals = window / interval;
    let crowded = most_within(&times, 0.9 * interval);

    let mut section = Section::new(
        "Token churn",
        format!(
            "Emulator access-token lifetime {SHORT_TOKEN_TTL_SECONDS} s (tokenTtlSeconds, set before \
             the API starts); the API refreshes {} s before expiry (genesys-client's margin: max(60 \
             s, 10 %) capped at half the lifetime, not configurable), so one refresh is due every \
             {interval} s. {CHURN_RATE} req/s paced for {seconds} s; token requests counted in the \
             emulator's journal, cleared just before the load.",
            refresh_margin(lifetime).as_secs_f64()
        ),
    );
    section.tables.push(status_mix(&outcome));
    let shortest = gaps.iter().copied().fold(f64::NAN, f64::min);
    let longest = gaps.iter().copied().fold(f64::NAN, f64::max);
    let mut table = Table::new(&["Figure", "Value"]);
    for (name, value) in [
        ("window s", window),
        ("refresh intervals elapsed", intervals),
        ("token requests", tokens.len() as f64),
        (
            "token requests per interval",
            ratio(tokens.len() as f64, intervals),
        ),
        ("shortest gap between token requests s", shortest),
        ("longest gap s", longest),
    ] {
        table.row(vec![name.to_owned(), number(value)]);
    }
    section.tables.push(table);
    section.figure("token_requests", tokens.len() as f64);
    section.figure("intervals_elapsed", intervals);
    section.figure(
        "token_requests_per_interval",
        ratio(tokens.len() as f64, intervals),
    );
    section.figure("shortest_gap_s", shortest);
    section.figure("longest_gap_s", longest);
    section.figure(
        "caller_non_201",
        (outcome.latencies().len() as u64 - outcome.count(201)) as f64,
    );
    if journal.len() >= JOURNAL_LIMIT {
        section.notes.push(format!(
            "The journal held {} entries, its bound: token requests may be missing.",
            journal.len()
        ));
    }
    section.headline(
        "token requests / refresh intervals elapsed",
        &[tokens.len() as f64, intervals],
    );
    section.headline(
        "shortest / longest gap between token requests, s",
        &[shortest, longest],
    );
    section.goal(
        "token requests minus refresh intervals elapsed, absolute",
        (tokens.len() as f64 - intervals).abs(),
        Bound::AtMost,
        1.0,
    );
    section.goal(
        "most token requests within 0.9 refresh interval (stampede)",
        crowded as f64,
        Bound::AtMost,
        1.0,
    );
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_margin_matches_the_clients() {
        assert_eq!(refresh_margin(Duration::from_secs(6)), Duration::from_secs(3));
        assert_eq!(
            refresh_margin(Duration::from_secs(86_400)),
            Duration::from_secs(8_640)
        );
        assert_eq!(refresh_margin(Duration::from_secs(300)), Duration::from_secs(60));
    }

    #[test]
    fn counts_the_most_requests_inside_a_window() {
        assert_eq!(most_within(&[0.0, 3.0, 6.0, 9.0], 2.7), 1);
        assert_eq!(most_within(&[0.0, 3.0, 3.1, 3.2, 6.0], 2.7), 3);
        assert_eq!(most_within(&[], 2.7), 0);
    }

    #[test]
    fn the_pressure_is_three_times_the_allowance() {
        assert_eq!(PRESSURE_RATE, 15.0);
    }
}
