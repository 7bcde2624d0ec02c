//! Property tests of the validators: for every input, the verdict an independent oracle (a plain
//! predicate written from the documented rule) gives, and never a panic.
//!
//! Deterministic: a fixed seed and case count, no regression files. `PROPTEST_RNG_SEED=<n>` and
//! `PROPTEST_CASES=<n>` explore further locally.

use std::collections::BTreeMap;

use domain::api::GuestTokenRequest;
use domain::{
    ATTRIBUTE_KEY_MAX_CHARS, ATTRIBUTE_VALUE_MAX_CHARS, Attributes, CUSTOMER_ID_MAX_CHARS, CustomerId,
    LANGUAGE_TAG_MAX_CHARS, LanguageTag, MAX_ATTRIBUTES, QueueId,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Map, Value, json};
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
            RngSeed::Random => RngSeed::Fixed(0x6775_6573_7420),
            chosen => chosen,
        },
        failure_persistence: None,
        ..default
    }
}

// ---------------------------------------------------------------------------------------------
// Oracles: the documented rules, written independently of the validators.

/// Unicode's White_Space property, the characters `str::trim` removes.
const WHITE_SPACE: &[char] = &[
    '\u{9}', '\u{A}', '\u{B}', '\u{C}', '\u{D}', ' ', '\u{85}', '\u{A0}', '\u{1680}', '\u{2000}', '\u{2001}',
    '\u{2002}', '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}', '\u{2009}',
    '\u{200A}', '\u{2028}', '\u{2029}', '\u{202F}', '\u{205F}', '\u{3000}',
];

/// Unicode's Cc category: C0 controls, DEL and C1 controls.
fn is_control_character(c: char) -> bool {
    matches!(u32::from(c), 0x00..=0x1F | 0x7F..=0x9F)
}

fn is_hyphenated_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A queue id is a UUID in its hyphenated spelling, any case, nothing around it: the braced,
/// `urn:uuid:` and bare-digit spellings, and white space, are refused.
fn is_queue_id(raw: &str) -> bool {
    is_hyphenated_uuid(raw)
}

/// RFC 5646's shape: a primary subtag of 2-3 or 5-8 letters, then subtags of 1-8 letters or
/// digits, joined by `-`; at most 35 characters in all.
fn is_language_tag(raw: &str) -> bool {
    if raw.chars().count() > LANGUAGE_TAG_MAX_CHARS {
        return false;
    }
    let parts: Vec<&str> = raw.split('-').collect();
    let letters = |s: &str| s.chars().all(|c| c.is_ascii_alphabetic());
    let alphanumeric = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric());
    let primary = parts[0];
    matches!(primary.chars().count(), 2 | 3 | 5..=8)
        && letters(primary)
        && parts[1..]
            .iter()
            .all(|p| (1..=8).contains(&p.chars().count()) && alphanumeric(p))
}

/// 1 to 128 characters, no control characters, no white space at either end.
fn is_customer_id(raw: &str) -> bool {
    let count = raw.chars().count();
    (1..=CUSTOMER_ID_MAX_CHARS).contains(&count)
        && !raw.chars().any(is_control_character)
        && !raw.starts_with(WHITE_SPACE)
        && !raw.ends_with(WHITE_SPACE)
}

/// Genesys' limits: at most 50 attributes, keys of 1 to 64 characters, values of at most 1024.
fn are_attributes(map: &BTreeMap<String, String>) -> bool {
    map.len() <= MAX_ATTRIBUTES
        && map.iter().all(|(k, v)| {
            (1..=ATTRIBUTE_KEY_MAX_CHARS).contains(&k.chars().count())
                && v.chars().count() <= ATTRIBUTE_VALUE_MAX_CHARS
        })
}

/// The first field of a request body to fix, in the order the API checks them; `None` if the
/// body is a valid request.
fn first_invalid_field(body: &Value) -> Option<&'static str> {
    let Some(object) = body.as_object() else {
        return Some("body");
    };
    let optional_string = |name: &str, valid: fn(&str) -> bool| match object.get(name) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => valid(s),
        Some(_) => false,
    };
    if !object
        .get("queueId")
        .and_then(Value::as_str)
        .is_some_and(is_queue_id)
    {
        Some("queueId")
    } else if !optional_string("language", is_language_tag) {
        Some("language")
    } else if !optional_string("customerId", is_customer_id) {
        Some("customerId")
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Characters that sit on the rules' edges, mixed with ordinary ones.
fn edgy_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        2 => proptest::char::range('A', 'Z'),
        2 => proptest::char::range('0', '9'),
        2 => prop::sample::select(vec!['-', '_', '.', ':', '{', '}', '/', '@', '*', '"', '\\']),
        2 => prop::sample::select(WHITE_SPACE.to_vec()),
        1 => prop::sample::select(vec!['\0', '\u{1}', '\u{1F}', '\u{7F}', '\u{80}', '\u{9F}']),
        1 => prop::sample::select(vec!['é', 'ß', 'ı', 'K', '\u{FEFF}', '\u{200B}', '中', '😀']),
        1 => any::<char>(),
    ]
}

fn edgy_string(max_chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(edgy_char(), 0..=max_chars).prop_map(|cs| cs.into_iter().collect())
}

/// One small change: delete, insert or replace a character.
fn mutated(base: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (base, any::<prop::sample::Index>(), edgy_char(), 0..4u8).prop_map(|(s, at, c, how)| {
        let mut chars: Vec<char> = s.chars().collect();
        let i = if chars.is_empty() {
            0
        } else {
            at.index(chars.len())
        };
        match how {
            0 if !chars.is_empty() => {
                chars.remove(i);
            }
            1 => chars.insert(i, c),
            2 if !chars.is_empty() => chars[i] = c,
            _ => {}
        }
        chars.into_iter().collect()
    })
}

fn random_case(s: &str, upper: &[bool]) -> String {
    s.chars()
        .zip(upper.iter().cycle())
        .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c })
        .collect()
}

/// A UUID in one of its spellings, in random case, sometimes padded with white space.
fn uuid_spelling() -> impl Strategy<Value = String> {
    (
        any::<u128>(),
        0..4u8,
        prop::collection::vec(any::<bool>(), 1..8),
        prop::option::weighted(0.2, prop::sample::select(WHITE_SPACE.to_vec())),
    )
        .prop_map(|(n, form, upper, pad)| {
            let uuid = Uuid::from_u128(n);
            let text = match form {
                0 => uuid.hyphenated().to_string(),
                1 => uuid.simple().to_string(),
                2 => uuid.braced().to_string(),
                _ => uuid.urn().to_string(),
            };
            let text = if form == 3 {
                // The `urn:uuid:` prefix itself is lowercase.
                format!("urn:uuid:{}", random_case(&text["urn:uuid:".len()..], &upper))
            } else {
                random_case(&text, &upper)
            };
            match pad {
                Some(c) => format!("{c}{text}{c}"),
                None => text,
            }
        })
}

fn language_like() -> impl Strategy<Value = String> {
    "[A-Za-z]{1,9}(-[A-Za-z0-9]{0,9}){0,6}"
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

fn customer_like() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => edgy_string(12),
        3 => padded_text(),
        1 => "[ -~]{120,135}",
        1 => prop::collection::vec(any::<char>(), 0..140).prop_map(|cs| cs.into_iter().collect::<String>()),
    ]
}

// ---------------------------------------------------------------------------------------------
// QueueId

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn queue_id_accepts_exactly_the_uuid_spellings(raw in prop_oneof![
        uuid_spelling(),
        mutated(uuid_spelling()),
        edgy_string(40),
        any::<String>(),
    ]) {
        prop_assert_eq!(raw.parse::<QueueId>().is_ok(), is_queue_id(&raw), "for {:?}", raw);
    }

    #[test]
    fn an_accepted_queue_id_prints_lowercase_hyphenated_and_reads_back(
        raw in (any::<u128>(), prop::collection::vec(any::<bool>(), 1..8))
            .prop_map(|(n, upper)| random_case(&Uuid::from_u128(n).hyphenated().to_string(), &upper))
    ) {
        let id: QueueId = raw.parse().unwrap();
        let printed = id.to_string();
        prop_assert!(is_hyphenated_uuid(&printed) && printed == printed.to_ascii_lowercase(), "{}", printed);
        prop_assert_eq!(printed.parse::<QueueId>().unwrap(), id);
        prop_assert_eq!(printed, raw.to_ascii_lowercase());
    }

    #[test]
    fn a_refused_queue_id_names_the_field_it_was_read_from(raw in edgy_string(40)) {
        if let Err(violation) = QueueId::parse_field(&raw, "routing.queueId") {
            prop_assert_eq!(violation.field, "routing.queueId");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// LanguageTag

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn language_tag_accepts_exactly_the_rfc5646_shape(raw in prop_oneof![
        language_like(),
        mutated(language_like()),
        edgy_string(40),
        any::<String>(),
    ]) {
        prop_assert_eq!(raw.parse::<LanguageTag>().is_ok(), is_language_tag(&raw), "for {:?}", raw);
    }

    #[test]
    fn an_accepted_language_tag_is_kept_lowercase_and_reads_back(raw in language_like()) {
        if let Ok(tag) = raw.parse::<LanguageTag>() {
            prop_assert_eq!(tag.as_str(), raw.to_ascii_lowercase());
            prop_assert_eq!(tag.as_str().parse::<LanguageTag>().unwrap(), tag.clone());
            let json = serde_json::to_value(&tag).unwrap();
            prop_assert_eq!(serde_json::from_value::<LanguageTag>(json).unwrap(), tag);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CustomerId

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn customer_id_accepts_exactly_printable_unpadded_text_of_1_to_128_characters(raw in prop_oneof![
        customer_like(),
        mutated(customer_like()),
        any::<String>(),
    ]) {
        let parsed = raw.parse::<CustomerId>();
        prop_assert_eq!(parsed.is_ok(), is_customer_id(&raw), "for {:?}", raw);
        match parsed {
            Ok(id) => prop_assert_eq!(id.as_str(), raw.as_str()),
            Err(violation) => prop_assert_eq!(violation.field, "customerId"),
        }
    }
}

/// Every character of the Basic Multilingual Plane (where all white space and control characters
/// are) and a sample of the others, each alone, at either end and inside.
#[test]
fn customer_id_judges_every_character_by_the_rule() {
    let astral = (0x1_0000..=u32::from(char::MAX)).step_by(251);
    for c in (0..0x1_0000).chain(astral).filter_map(char::from_u32) {
        for raw in [
            format!("{c}"),
            format!("{c}ab"),
            format!("ab{c}"),
            format!("a{c}b"),
        ] {
            assert_eq!(
                raw.parse::<CustomerId>().is_ok(),
                is_customer_id(&raw),
                "for {raw:?} (U+{:04X})",
                u32::from(c)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Attributes

fn attribute_key() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        6 => "[A-Za-z0-9_]{1,10}",
        1 => "[a-z]{60,70}",
        1 => prop::collection::vec(any::<char>(), 63..=65).prop_map(|cs| cs.into_iter().collect::<String>()),
    ]
}

fn attribute_value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => edgy_string(16),
        1 => (1020..=1028usize).prop_map(|n| "v".repeat(n)),
        1 => (1023..=1025usize).prop_map(|n| "é".repeat(n)),
    ]
}

fn attribute_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop_oneof![
        4 => prop::collection::btree_map(attribute_key(), attribute_value(), 0..8),
        1 => (45..=55usize, attribute_value()).prop_map(|(n, v)| {
            (0..n).map(|i| (format!("k{i}"), v.clone())).collect()
        }),
    ]
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn attributes_accept_exactly_what_is_within_genesys_limits(map in attribute_map()) {
        let valid = are_attributes(&map);
        match Attributes::parse_field(map.clone(), "attributes") {
            Ok(attributes) => {
                prop_assert!(valid);
                prop_assert_eq!(attributes.as_map(), &map);
            }
            Err(violations) => {
                prop_assert!(!valid);
                prop_assert!(!violations.is_empty());
                for v in &violations {
                    prop_assert!(v.field == "attributes" || v.field.starts_with("attributes."), "{}", v.field);
                }
            }
        }
        let json = serde_json::to_value(&map).unwrap();
        prop_assert_eq!(serde_json::from_value::<Attributes>(json).is_ok(), valid);
    }

    #[test]
    fn inserting_an_attribute_keeps_the_limits_or_changes_nothing(
        map in prop::collection::btree_map("[a-z]{1,8}", "[a-z]{0,8}", 0..=MAX_ATTRIBUTES),
        key in attribute_key(),
        value in attribute_value(),
    ) {
        let mut attributes = Attributes::parse_field(map.clone(), "attributes").unwrap();
        let mut wanted = map.clone();
        wanted.insert(key.clone(), value.clone());
        let valid = are_attributes(&wanted);
        match attributes.insert(&key, &value) {
            Ok(()) => {
                prop_assert!(valid);
                prop_assert_eq!(attributes.as_map(), &wanted);
            }
            Err(_) => {
                prop_assert!(!valid);
                prop_assert_eq!(attributes.as_map(), &map);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GuestTokenRequest

/// A JSON value for one field: absent, or any of the kinds a caller might send.
fn field_value(
    valid: BoxedStrategy<String>,
    invalid: BoxedStrategy<String>,
) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Value::Null)),
        4 => valid.prop_map(|s| Some(Value::String(s))),
        2 => invalid.prop_map(|s| Some(Value::String(s))),
        1 => prop_oneof![
            any::<i64>().prop_map(|n| json!(n)),
            any::<bool>().prop_map(|b| json!(b)),
            Just(json!([])),
            Just(json!({})),
        ].prop_map(Some),
    ]
}

fn request_body() -> impl Strategy<Value = Value> {
    let object = (
        field_value(uuid_spelling().boxed(), mutated(uuid_spelling()).boxed()),
        field_value(language_like().boxed(), edgy_string(12).boxed()),
        field_value(customer_like().boxed(), edgy_string(6).boxed()),
        prop::collection::btree_map("[a-zA-Z]{1,8}", any::<i32>(), 0..3),
    )
        .prop_map(|(queue_id, language, customer_id, extra)| {
            let mut object: Map<String, Value> = extra.into_iter().map(|(k, v)| (k, json!(v))).collect();
            for (name, value) in [
                ("queueId", queue_id),
                ("language", language),
                ("customerId", customer_id),
            ] {
                if let Some(value) = value {
                    object.insert(name.to_owned(), value);
                }
            }
            Value::Object(object)
        });
    prop_oneof![
        8 => object,
        1 => Just(json!([])),
        1 => any::<String>().prop_map(Value::String),
        1 => Just(Value::Null),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn any_bytes_are_read_as_json_or_refused_as_body_and_never_panic(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            request_body().prop_map(|v| serde_json::to_vec(&v).unwrap()).prop_flat_map(|bytes| {
                mutated(Just(String::from_utf8_lossy(&bytes).into_owned()))
            }).prop_map(String::into_bytes),
        ]
    ) {
        let verdict = GuestTokenRequest::from_json_slice(&body);
        match serde_json::from_slice::<Value>(&body) {
            Err(_) => prop_assert_eq!(verdict.unwrap_err().field, "body"),
            Ok(value) => match first_invalid_field(&value) {
                None => prop_assert!(verdict.is_ok(), "{:?}", verdict),
                Some(field) => prop_assert_eq!(verdict.unwrap_err().field, field),
            },
        }
    }

    #[test]
    fn a_json_request_is_accepted_exactly_when_each_field_is_valid(body in request_body()) {
        let bytes = serde_json::to_vec(&body).unwrap();
        match (GuestTokenRequest::from_json_slice(&bytes), first_invalid_field(&body)) {
            (Ok(request), None) => {
                let field = |name: &str| body.get(name).and_then(Value::as_str);
                let queue_id = field("queueId").unwrap();
                prop_assert_eq!(request.queue_id, queue_id.parse::<QueueId>().unwrap());
                let language = field("language").map(str::to_ascii_lowercase);
                prop_assert_eq!(request.language.as_ref().map(LanguageTag::as_str), language.as_deref());
                prop_assert_eq!(request.customer_id.as_ref().map(CustomerId::as_str), field("customerId"));
            }
            (Err(violation), Some(field)) => prop_assert_eq!(violation.field, field),
            (verdict, expected) => prop_assert!(false, "{:?} for {} (expected a problem with {:?})", verdict, body, expected),
        }
    }
}
