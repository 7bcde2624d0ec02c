//! Property tests of the retry arithmetic: `Retry-After` parsing for any header value and any
//! clock, and the bounds of backoff and the retry policy. Nothing here may panic.
//!
//! Deterministic: a fixed seed and case count, no regression files. `PROPTEST_RNG_SEED=<n>` and
//! `PROPTEST_CASES=<n>` explore further locally.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use genesys_client::{Backoff, Decision, GiveUp, LONGEST_RETRY_AFTER, RetryPolicy, parse_retry_after};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use time::OffsetDateTime;

fn config(cases: u32) -> Config {
    let default = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            cases
        },
        rng_seed: match default.rng_seed {
            RngSeed::Random => RngSeed::Fixed(0x7265_7472_7920),
            chosen => chosen,
        },
        failure_persistence: None,
        ..default
    }
}

/// 9999-12-31T23:59:59Z, the last instant an HTTP-date can name.
const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// Any instant an HTTP-date can name, to the nanosecond.
fn instant() -> impl Strategy<Value = SystemTime> {
    (0..=LAST_HTTP_DATE, 0..1_000_000_000u32)
        .prop_map(|(secs, nanos)| UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Mostly near `now`, so both sides of it and of the one-day cap are covered.
fn date_near(now: SystemTime) -> impl Strategy<Value = u64> {
    let now = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    prop_oneof![
        3 => (-200_000i64..=200_000).prop_map(move |d| now.saturating_add_signed(d).min(LAST_HTTP_DATE)),
        1 => 0..=LAST_HTTP_DATE,
    ]
}

/// RFC 9110's optional white space around a field value.
fn ows() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", " ", "\t", "  ", " \t "])
}

/// The wait an HTTP-date for `at` asks for at `now`: none if it has passed, at most a day.
fn wait_until(at: u64, now: SystemTime) -> Duration {
    (UNIX_EPOCH + Duration::from_secs(at))
        .duration_since(now)
        .unwrap_or(Duration::ZERO)
        .min(LONGEST_RETRY_AFTER)
}

/// The obsolete asctime form, `Sun Nov  6 08:49:37 1994`, which RFC 9110 still requires reading.
fn asctime(at: u64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(i64::try_from(at).unwrap()).unwrap();
    let weekday = &t.weekday().to_string()[..3];
    let month = &t.month().to_string()[..3];
    format!(
        "{weekday} {month} {:>2} {:02}:{:02}:{:02} {}",
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.year()
    )
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn any_retry_after_value_is_read_without_panic_and_within_a_day(
        value in prop_oneof![any::<String>(), "[0-9 ,:A-Za-z-]{0,40}", "[0-9]{15,40}"],
        now in instant(),
    ) {
        if let Some(wait) = parse_retry_after(&value, now) {
            prop_assert!(wait <= LONGEST_RETRY_AFTER, "{:?} for {:?}", wait, value);
        }
    }

    #[test]
    fn a_retry_after_is_read_exactly_when_it_is_delta_seconds_or_an_http_date(
        value in prop_oneof![any::<String>(), "[ \t]{0,2}[0-9]{0,25}[ \ta.-]{0,2}", "[A-Za-z0-9 ,:-]{20,32}"],
        now in instant(),
    ) {
        let trimmed = value.trim();
        let is_delta_seconds = !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit());
        // The date grammar (RFC 9110's three forms) is httpdate's; what is pinned here is what
        // parse_retry_after adds: trimming, delta-seconds, past dates and the cap.
        let is_http_date = httpdate::parse_http_date(trimmed).is_ok();
        prop_assert_eq!(parse_retry_after(&value, now).is_some(), is_delta_seconds || is_http_date, "for {:?}", value);
    }

    #[test]
    fn delta_seconds_wait_that_long_up_to_a_day(
        seconds in prop_oneof![0..=100_000u64, any::<u64>()],
        (before, after) in (ows(), ows()),
        now in instant(),
    ) {
        let value = format!("{before}{seconds}{after}");
        prop_assert_eq!(
            parse_retry_after(&value, now),
            Some(Duration::from_secs(seconds).min(LONGEST_RETRY_AFTER))
        );
    }

    #[test]
    fn digit_strings_beyond_u64_wait_a_day(digits in "[1-9][0-9]{20,60}", now in instant()) {
        prop_assert_eq!(parse_retry_after(&digits, now), Some(LONGEST_RETRY_AFTER));
    }

    #[test]
    fn an_http_date_waits_until_then_and_a_past_one_not_at_all(
        (now, at) in instant().prop_flat_map(|now| (Just(now), date_near(now))),
        (before, after) in (ows(), ows()),
    ) {
        let expected = Some(wait_until(at, now));
        let imf_fixdate = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(at));
        prop_assert_eq!(parse_retry_after(&format!("{before}{imf_fixdate}{after}"), now), expected, "{}", imf_fixdate);
        let asctime = asctime(at);
        prop_assert_eq!(parse_retry_after(&asctime, now), expected, "{}", asctime);
        if UNIX_EPOCH + Duration::from_secs(at) <= now {
            prop_assert_eq!(expected, Some(Duration::ZERO));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Backoff and the retry policy

fn short_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        3 => (0..20_000u64).prop_map(Duration::from_millis),
        1 => any::<u64>().prop_map(Duration::from_millis),
    ]
}

fn retry_number() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0..12u32, 1 => any::<u32>()]
}

fn decision() -> impl Strategy<Value = Decision> {
    prop_oneof![
        Just(Decision::Done),
        Just(Decision::Fail),
        Just(Decision::RefreshToken),
        Just(Decision::Backoff),
        short_duration().prop_map(Decision::RetryAfter),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn backoff_waits_stay_under_a_ceiling_that_grows_to_the_cap(
        base in short_duration(),
        cap in short_duration(),
        retry in retry_number(),
        seed in any::<u64>(),
    ) {
        let mut backoff = Backoff::with_seed(base, cap, seed);
        let ceiling = backoff.ceiling(retry);
        prop_assert!(ceiling <= cap);
        prop_assert!(backoff.ceiling(retry.saturating_add(1)) >= ceiling);
        prop_assert_eq!(backoff.ceiling(1), base.min(cap));
        let delay = backoff.delay(retry);
        // Jitter draws whole milliseconds.
        prop_assert!(delay <= ceiling, "{:?} over {:?}", delay, ceiling);
    }

    #[test]
    fn the_policy_never_waits_past_the_budget_or_beyond_the_attempt_cap(
        max_attempts in 0..8u32,
        attempts_made in 0..10u32,
        decision in decision(),
        remaining in short_duration(),
        seed in any::<u64>(),
    ) {
        let backoff = Backoff::with_seed(Duration::from_millis(500), Duration::from_secs(8), seed);
        let mut policy = RetryPolicy::with_backoff(max_attempts, backoff);
        match policy.next_wait(decision, attempts_made, remaining) {
            Ok(wait) => {
                prop_assert!(matches!(decision, Decision::Backoff | Decision::RetryAfter(_)));
                prop_assert!(attempts_made < max_attempts.max(1));
                prop_assert!(wait < remaining);
                if let Decision::RetryAfter(asked) = decision {
                    prop_assert_eq!(wait, asked);
                }
            }
            Err(GiveUp::Final) => {
                prop_assert!(matches!(decision, Decision::Done | Decision::Fail | Decision::RefreshToken));
            }
            Err(GiveUp::AttemptsExhausted { .. }) => prop_assert!(attempts_made >= max_attempts.max(1)),
            Err(GiveUp::OverBudget { wait }) => {
                prop_assert!(attempts_made < max_attempts.max(1));
                prop_assert!(wait >= remaining);
            }
        }
    }
}
