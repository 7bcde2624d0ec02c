//! Property tests of the API's boundaries: which origins configuration accepts, what every refusal
//! renders as, and whether the OpenAPI document describes the fields as the validators judge them.
//! For every input, the verdict of an independent oracle (a plain predicate written from the
//! documented rule), and never a panic.
//!
//! Deterministic: a fixed seed and case count, no regression files. `PROPTEST_RNG_SEED=<n>` and
//! `PROPTEST_CASES=<n>` explore further locally.

use std::net::Ipv6Addr;
use std::sync::LazyLock;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use api::error::{ApiError, NOT_READY_RETRY_AFTER, problem_response, retry_after_secs};
use api::openapi::ApiDoc;
use api::settings::AllowedOrigin;
use domain::api::{ErrorCode, PROBLEM_JSON};
use domain::{CustomerId, FieldViolation, LanguageTag, QueueId};
use genesys_client::GenesysError;
use proptest::prelude::*;
use proptest::strategy::LazyJust;
use proptest::test_runner::{Config, RngSeed};
use serde_json::Value;
use utoipa::OpenApi;
use uuid::Uuid;

fn config(cases: u32) -> Config {
    let default = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            cases
        },
        rng_seed: match default.rng_seed {
            RngSeed::Random => RngSeed::Fixed(0x6f72_6967_696e),
            chosen => chosen,
        },
        failure_persistence: None,
        ..default
    }
}

/// Unicode's White_Space property, the characters `str::trim` removes.
const WHITE_SPACE: &[char] = &[
    '\u{9}', '\u{A}', '\u{B}', '\u{C}', '\u{D}', ' ', '\u{85}', '\u{A0}', '\u{1680}', '\u{2000}', '\u{2001}',
    '\u{2002}', '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}', '\u{2009}',
    '\u{200A}', '\u{2028}', '\u{2029}', '\u{202F}', '\u{205F}', '\u{3000}',
];

// ---------------------------------------------------------------------------------------------
// Allowed origins

/// A host name as browsers write it in `Origin`: dot-separated labels of 1 to 63 letters, digits
/// or inner hyphens (IPv4 addresses included), at most 253 characters.
fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The documented rule: `http(s)://host[:port]` (scheme in any case, white space around it
/// ignored), the host a host name or a bracketed IPv6 address, the port 1 to 65535 in plain digits
/// and not the scheme's default; no path, query, fragment, user or wildcard.
fn is_allowed_origin(raw: &str) -> bool {
    let origin = raw.trim_matches(|c| WHITE_SPACE.contains(&c));
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    let (host, port) = match rest.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((address, after)) if address.parse::<Ipv6Addr>().is_ok() => {
                (&rest[..address.len() + 2], after)
            }
            _ => return false,
        },
        None => rest.split_at(rest.find(':').unwrap_or(rest.len())),
    };
    let host_ok = host.starts_with('[') || is_host_name(host);
    let port_ok = match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => {
            !digits.is_empty()
                && !digits.starts_with('0')
                && digits.len() <= 5
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits
                    .parse::<u32>()
                    .is_ok_and(|p| p <= 65535 && p != default_port)
        }
    };
    host_ok && port_ok
}

fn scheme() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec!["http", "https", "HTTP", "Https"]).prop_map(String::from),
        1 => prop::sample::select(vec!["ftp", "ws", "", "http:", "https ", "htt"]).prop_map(String::from),
    ]
}

fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?"
}

fn valid_host() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(label(), 1..4).prop_map(|labels| labels.join(".")),
        1 => any::<[u8; 4]>().prop_map(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
        1 => any::<u128>().prop_map(|n| format!("[{}]", Ipv6Addr::from(n))),
        1 => Just("localhost".to_owned()),
    ]
}

/// Hosts with a character no host name has, or none at all.
fn broken_host() -> impl Strategy<Value = String> {
    (
        valid_host(),
        prop::sample::select(vec!["/", "?", "#", "@", " ", "*", "_", "%", "é", "\t", "\\"]),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(host, bad, at)| {
            let i = at.index(host.len() + 1);
            let i = (0..=i).rev().find(|&i| host.is_char_boundary(i)).unwrap_or(0);
            format!("{}{bad}{}", &host[..i], &host[i..])
        })
        .boxed()
        .prop_union(Just(String::new()).boxed())
}

/// Hosts only a careless configuration would list: empty labels, hyphens at a label's edge,
/// unbracketed IPv6, lone brackets, overlong labels.
fn odd_host() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "..", ".", "a..b", ".a", "a.", "-", "-a", "a-", "a.-b", "::1", "a:b:c", "[", "]", "[::1", "::1]",
            "[zz]", "a[b]", "[]",
        ])
        .prop_map(String::from),
        (64..80usize).prop_map(|n| "a".repeat(n)),
    ]
}

fn port() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        4 => (1..=65535u32).prop_map(|p| format!(":{p}")),
        2 => prop::sample::select(vec![":80", ":443", ":0", ":65536", ":99999", ":", ":8a", ":-1"]).prop_map(String::from),
    ]
}

/// Ports written in ways browsers never send them.
fn odd_port() -> impl Strategy<Value = String> {
    prop::sample::select(vec![":+8080", ":08080", ":00443", ":+1"]).prop_map(String::from)
}

fn suffix() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        6 => Just(""),
        1 => prop::sample::select(vec!["/", "/path", "?q=1", "#top", "/*"]),
    ]
}

fn padding() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(String::new()),
        1 => prop::sample::select(WHITE_SPACE.to_vec()).prop_map(String::from),
    ]
}

fn origin_from(
    host: impl Strategy<Value = String>,
    port: impl Strategy<Value = String>,
) -> impl Strategy<Value = String> {
    (padding(), scheme(), host, port, suffix(), padding()).prop_map(
        |(before, scheme, host, port, suffix, after)| {
            format!("{before}{scheme}://{host}{port}{suffix}{after}")
        },
    )
}

fn assert_round_trips(raw: &str, origin: &AllowedOrigin) -> Result<(), TestCaseError> {
    let expected = raw.trim().to_ascii_lowercase();
    prop_assert_eq!(origin.as_str(), expected.as_str());
    prop_assert_eq!(&origin.as_str().parse::<AllowedOrigin>().unwrap(), origin);
    Ok(())
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn origins_are_accepted_exactly_as_scheme_host_and_port(
        raw in prop_oneof![
            4 => origin_from(valid_host(), port()),
            1 => origin_from(broken_host(), port()),
        ]
    ) {
        let parsed = raw.parse::<AllowedOrigin>();
        prop_assert_eq!(parsed.is_ok(), is_allowed_origin(&raw), "for {:?}: {:?}", raw, parsed);
        if let Ok(origin) = parsed {
            assert_round_trips(&raw, &origin)?;
        }
    }

    #[test]
    fn any_text_is_judged_without_panic_and_what_passes_is_an_origin(
        raw in prop_oneof![any::<String>(), "(http|https|HTTP|ftp)://[a-zA-Z0-9.:\\[\\]@/?#*+ -]{0,20}"]
    ) {
        if let Ok(origin) = raw.parse::<AllowedOrigin>() {
            assert_round_trips(&raw, &origin)?;
            let text = origin.as_str();
            let (scheme, rest) = text.split_once("://").unwrap();
            prop_assert!(scheme == "http" || scheme == "https", "{}", text);
            prop_assert!(!rest.is_empty() && !rest.contains(['/', '?', '#', '@', '*']), "{}", text);
            prop_assert!(!rest.contains(WHITE_SPACE), "{}", text);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Host names no browser sends and ports written with a sign or leading zeros are refused:
    /// such an entry would silently never match.
    #[test]
    fn odd_hosts_and_ports_are_refused(
        raw in prop_oneof![origin_from(odd_host(), port()), origin_from(valid_host(), odd_port())]
    ) {
        let parsed = raw.parse::<AllowedOrigin>();
        prop_assert_eq!(parsed.is_ok(), is_allowed_origin(&raw), "for {:?}: {:?}", raw, parsed);
    }
}

// ---------------------------------------------------------------------------------------------
// Problem responses

/// Upstream text carrying a marker, to see whether it leaks into what the caller reads.
fn upstream_text() -> impl Strategy<Value = String> {
    "[ -~]{0,12}".prop_map(|s| format!("{s}UPSTREAM-INTERNAL"))
}

fn correlation_id() -> impl Strategy<Value = Option<String>> {
    prop::option::of(upstream_text())
}

/// Any wait, the longest included.
fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        6 => (0..200_000u64).prop_map(Duration::from_millis),
        2 => (0..u64::MAX, 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n)),
        1 => Just(Duration::from_secs(u64::MAX)),
    ]
}

/// Rounding a wait of `u64::MAX` seconds and a fraction up to whole seconds saturates instead of
/// overflowing (a panic in debug builds, `Retry-After: 1` in release).
#[test]
fn the_longest_possible_wait_renders_without_panic() {
    let error = ApiError::from(GenesysError::RateLimited {
        retry_after: Duration::MAX,
        correlation_id: None,
    });
    let response = error.to_problem_response("r");
    assert_eq!(header(&response, header::RETRY_AFTER), Some(u64::MAX.to_string()));
}

fn queue_id() -> impl Strategy<Value = QueueId> {
    any::<u128>().prop_map(|n| QueueId::from_uuid(Uuid::from_u128(n)))
}

fn genesys_error() -> impl Strategy<Value = GenesysError> {
    prop_oneof![
        (prop::collection::vec(upstream_text(), 0..3), correlation_id()).prop_map(
            |(details, correlation_id)| GenesysError::InvalidRequest {
                details,
                correlation_id
            }
        ),
        (queue_id(), correlation_id()).prop_map(|(queue_id, correlation_id)| GenesysError::UnknownQueue {
            queue_id,
            correlation_id
        }),
        (any::<u16>(), upstream_text(), correlation_id()).prop_map(|(status, reason, correlation_id)| {
            GenesysError::UpstreamAuth {
                status,
                reason,
                correlation_id,
            }
        }),
        (any_duration(), correlation_id()).prop_map(|(retry_after, correlation_id)| {
            GenesysError::RateLimited {
                retry_after,
                correlation_id,
            }
        }),
        (any::<u16>(), correlation_id()).prop_map(|(status, correlation_id)| GenesysError::Upstream {
            status,
            correlation_id
        }),
        correlation_id().prop_map(|correlation_id| GenesysError::Timeout { correlation_id }),
        (upstream_text(), correlation_id()).prop_map(|(message, correlation_id)| GenesysError::Transport {
            message,
            correlation_id
        }),
        (upstream_text(), correlation_id()).prop_map(|(message, correlation_id)| GenesysError::Decode {
            message,
            correlation_id
        }),
    ]
}

fn api_error() -> impl Strategy<Value = ApiError> {
    prop_oneof![
        3 => own_refusal(),
        2 => genesys_error().prop_map(ApiError::Upstream),
    ]
}

/// Every refusal that does not come from Genesys.
fn own_refusal() -> impl Strategy<Value = ApiError> {
    prop_oneof![
        (any::<String>(), any::<String>())
            .prop_map(|(field, message)| ApiError::InvalidRequest(FieldViolation::new(field, message))),
        any::<String>().prop_map(ApiError::BadPreflight),
        LazyJust::new(|| ApiError::OriginNotAllowed),
        LazyJust::new(|| ApiError::OriginRequired),
        queue_id().prop_map(ApiError::QueueNotAllowed),
        LazyJust::new(|| ApiError::NotFound),
        prop::sample::select(vec!["GET", "POST"]).prop_map(|allow| ApiError::MethodNotAllowed { allow }),
        any::<usize>().prop_map(|limit| ApiError::PayloadTooLarge { limit }),
        LazyJust::new(|| ApiError::UnsupportedMediaType),
        LazyJust::new(|| ApiError::UnreadableBody),
        any_duration().prop_map(|retry_after| ApiError::RateLimited { retry_after }),
        LazyJust::new(|| ApiError::NotReady),
        LazyJust::new(|| ApiError::ShuttingDown),
        LazyJust::new(|| ApiError::Internal),
    ]
}

fn body_of(response: HttpResponse) -> Value {
    let bytes = response
        .into_body()
        .try_into_bytes()
        .unwrap_or_else(|_| panic!("problem bodies are in memory"));
    serde_json::from_slice(&bytes).expect("problem bodies are JSON")
}

/// What the body of a problem for `code` must hold, member by member.
fn check_problem_body(
    body: &Value,
    code: ErrorCode,
    detail: &str,
    request_id: &str,
) -> Result<(), TestCaseError> {
    let members = body.as_object().expect("a JSON object");
    let mut names: Vec<&str> = members.keys().map(String::as_str).collect();
    names.sort_unstable();
    prop_assert_eq!(names, ["code", "detail", "requestId", "status", "title", "type"]);
    prop_assert_eq!(&body["type"], &Value::from(code.type_uri()));
    prop_assert_eq!(&body["title"], code.title());
    prop_assert_eq!(&body["status"], &Value::from(code.status()));
    prop_assert_eq!(&body["detail"], detail);
    prop_assert_eq!(&body["code"], code.as_str());
    prop_assert_eq!(&body["requestId"], request_id);
    Ok(())
}

fn header(response: &HttpResponse, name: header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("visible ASCII").to_owned())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn every_refusal_renders_as_the_problem_of_its_code(error in api_error(), request_id in any::<String>()) {
        let code = error.code();
        let response = error.to_problem_response(&request_id);
        prop_assert_eq!(response.status().as_u16(), code.status());
        prop_assert_eq!(error.status_code(), response.status());
        prop_assert_eq!(header(&response, header::CONTENT_TYPE), Some(PROBLEM_JSON.to_owned()));
        prop_assert_eq!(header(&response, header::CACHE_CONTROL), Some("no-store".to_owned()));

        let retry_after = header(&response, header::RETRY_AFTER);
        prop_assert_eq!(retry_after.is_some(), matches!(code.status(), 429 | 503), "{:?}", retry_after);
        if let Some(seconds) = retry_after {
            let seconds: u64 = seconds.parse().expect("whole seconds");
            prop_assert!(seconds >= 1);
            let asked = match &error {
                ApiError::RateLimited { retry_after } | ApiError::Upstream(GenesysError::RateLimited { retry_after, .. }) => *retry_after,
                _ => NOT_READY_RETRY_AFTER,
            };
            prop_assert_eq!(seconds, retry_after_secs(asked));
        }
        prop_assert_eq!(
            header(&response, header::ALLOW).is_some(),
            matches!(error, ApiError::MethodNotAllowed { .. })
        );

        let detail = error.to_string();
        if matches!(error, ApiError::Upstream(_)) {
            prop_assert!(!detail.contains("UPSTREAM-INTERNAL"), "upstream internals leak: {}", detail);
        }
        check_problem_body(&body_of(response), code, &detail, &request_id)?;
    }

    #[test]
    fn outside_a_request_a_refusal_carries_a_fresh_request_id(error in api_error()) {
        let response = error.error_response();
        prop_assert_eq!(response.status(), error.status_code());
        let body = body_of(response);
        let request_id = body["requestId"].as_str().unwrap_or_default();
        prop_assert!(Uuid::try_parse(request_id).is_ok(), "{}", request_id);
    }

    #[test]
    fn a_problem_response_carries_its_code_status_and_retry_after(
        code in prop::sample::select(ErrorCode::ALL.to_vec()),
        detail in any::<String>(),
        retry_after in prop::option::of(any_duration()),
        request_id in "[A-Za-z0-9._-]{1,128}",
    ) {
        let response = problem_response(code, &detail, retry_after, &request_id);
        prop_assert_eq!(response.status().as_u16(), code.status());
        prop_assert_eq!(
            header(&response, header::RETRY_AFTER),
            retry_after.map(|wait| retry_after_secs(wait).to_string())
        );
        check_problem_body(&body_of(response), code, &detail, &request_id)?;
    }
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI document against the validators

/// The constraints the OpenAPI document puts on one string property of the request body.
struct StringSchema {
    pattern: regex::Regex,
    min_length: usize,
    max_length: usize,
}

/// The served document, generated once.
static DOCUMENT: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap());
static LANGUAGE: LazyLock<StringSchema> = LazyLock::new(|| StringSchema::of("language"));
static CUSTOMER_ID: LazyLock<StringSchema> = LazyLock::new(|| StringSchema::of("customerId"));

impl StringSchema {
    fn of(property: &str) -> Self {
        let schema = &DOCUMENT["components"]["schemas"]["GuestTokenRequest"]["properties"][property];
        let number = |name: &str| {
            schema
                .get(name)
                .and_then(Value::as_u64)
                .map(|n| usize::try_from(n).unwrap())
        };
        Self {
            pattern: regex::Regex::new(schema["pattern"].as_str().expect("a pattern")).unwrap(),
            min_length: number("minLength").unwrap_or(0),
            max_length: number("maxLength").expect("a maxLength"),
        }
    }

    /// JSON Schema counts lengths in characters (code points).
    fn accepts(&self, value: &str) -> bool {
        (self.min_length..=self.max_length).contains(&value.chars().count()) && self.pattern.is_match(value)
    }
}

fn edgy_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => proptest::char::range('a', 'z'),
        2 => proptest::char::range('A', 'Z'),
        2 => proptest::char::range('0', '9'),
        1 => prop::sample::select(vec!['-', '_', ' ', '\t', '\n', '\0', '\u{7F}', '\u{85}', '\u{A0}', '\u{2003}', '\u{3000}', '\u{FEFF}', 'é', '😀']),
        1 => any::<char>(),
    ];
    prop::collection::vec(c, 0..40).prop_map(|cs| cs.into_iter().collect())
}

/// Ordinary text with white space, or a control character, at one end or both.
fn padded_text() -> impl Strategy<Value = String> {
    let edge = prop_oneof![
        3 => prop::sample::select(WHITE_SPACE.to_vec()),
        1 => prop::sample::select(vec!['\0', '\u{1F}', '\u{7F}', '\u{9F}', '\u{FEFF}', '\u{200B}', 'x']),
    ];
    (
        prop::option::of(edge.clone()),
        "[a-zA-Z0-9 ._-]{0,8}",
        prop::option::of(edge),
    )
        .prop_map(|(before, core, after)| before.into_iter().chain(core.chars()).chain(after).collect())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn the_documented_language_is_exactly_what_the_service_accepts(
        raw in prop_oneof![edgy_text(), "[A-Za-z]{1,9}(-[A-Za-z0-9]{0,9}){0,6}", any::<String>()]
    ) {
        prop_assert_eq!(LANGUAGE.accepts(&raw), raw.parse::<LanguageTag>().is_ok(), "for {:?}", raw);
    }

    #[test]
    fn the_documented_customer_id_is_exactly_what_the_service_accepts(
        raw in prop_oneof![edgy_text(), padded_text(), "[ -~]{120,135}", any::<String>()]
    ) {
        prop_assert_eq!(CUSTOMER_ID.accepts(&raw), raw.parse::<CustomerId>().is_ok(), "for {:?}", raw);
    }

    #[test]
    fn every_uuid_the_document_allows_is_a_queue_id_the_service_accepts(n in any::<u128>(), upper in any::<bool>()) {
        let text = Uuid::from_u128(n).hyphenated().to_string();
        let text = if upper { text.to_ascii_uppercase() } else { text };
        prop_assert!(text.parse::<QueueId>().is_ok());
    }
}

/// Every character of the Basic Multilingual Plane (where all white space and control characters
/// are) and a sample of the others, each alone, at either end and inside.
#[test]
fn the_documented_customer_id_agrees_with_the_service_on_every_character() {
    let astral = (0x1_0000..=u32::from(char::MAX)).step_by(251);
    for c in (0..0x1_0000).chain(astral).filter_map(char::from_u32) {
        for raw in [
            format!("{c}"),
            format!("{c}ab"),
            format!("ab{c}"),
            format!("a{c}b"),
        ] {
            assert_eq!(
                CUSTOMER_ID.accepts(&raw),
                raw.parse::<CustomerId>().is_ok(),
                "for {raw:?} (U+{:04X})",
                u32::from(c)
            );
        }
    }
}
