//! Validated newtypes: a value of one of these types has passed its checks.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Longest accepted BCP 47 language tag, in characters (RFC 5646 recommends supporting 35).
pub const LANGUAGE_TAG_MAX_CHARS: usize = 35;
/// Longest accepted customer id, in characters.
pub const CUSTOMER_ID_MAX_CHARS: usize = 128;
/// Most attributes a guest may carry.
pub const MAX_ATTRIBUTES: usize = 50;
/// Longest attribute key, in characters.
pub const ATTRIBUTE_KEY_MAX_CHARS: usize = 64;
/// Longest attribute value, in characters.
pub const ATTRIBUTE_VALUE_MAX_CHARS: usize = 1024;

/// One rejected field: which one (a JSON path such as `routing.queueId`) and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldViolation {
    /// JSON path of the offending field, e.g. `queueId` or `attributes.customerId`.
    pub field: String,
    /// What is wrong, phrased so that the caller knows how to fix it.
    pub message: String,
}

impl FieldViolation {
    /// A violation of `field` explained by `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same violation reported under a parent path (`routing` + `queueId` -> `routing.queueId`).
    pub fn under(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

/// A Genesys routing queue id: a UUID, written in its lowercase hyphenated form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(Uuid);

impl QueueId {
    /// Wraps an already parsed UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID inside.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// Parses `raw`, reporting a problem under the field name `field`. Only the hyphenated form
    /// (any case) is accepted, as an OpenAPI `format: uuid` says: no braces, `urn:uuid:` prefix,
    /// bare digits or surrounding white space.
    pub fn parse_field(raw: &str, field: &str) -> Result<Self, FieldViolation> {
        Some(raw)
            .filter(|raw| raw.len() == 36)
            .and_then(|raw| Uuid::try_parse(raw).ok())
            .map(Self)
            .ok_or_else(|| {
                FieldViolation::new(
                    field,
                    "must be a UUID such as a1b2c3d4-e5f6-7890-abcd-ef1234567890",
                )
            })
    }
}

impl FromStr for QueueId {
    type Err = FieldViolation;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse_field(raw, "queueId")
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl Serialize for QueueId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for QueueId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// A BCP 47 language tag such as `en-us`, stored lowercase as Genesys writes it.
///
/// The check is syntactic (RFC 5646 shape: a 2-3 or 5-8 letter primary subtag, then
/// alphanumeric subtags of 1-8 characters), not a registry lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LanguageTag(String);

impl LanguageTag {
    /// Parses `raw`, reporting a problem under the field name `field`.
    pub fn parse_field(raw: &str, field: &str) -> Result<Self, FieldViolation> {
        let invalid = |why: &str| {
            FieldViolation::new(
                field,
                format!("must be a BCP 47 language tag such as en-us ({why})"),
            )
        };
        if raw.is_empty() {
            return Err(invalid("it is empty"));
        }
        if raw.chars().count() > LANGUAGE_TAG_MAX_CHARS {
            return Err(invalid("at most 35 characters"));
        }
        let mut subtags = raw.split('-');
        let primary = subtags.next().unwrap_or_default();
        let primary_ok =
            matches!(primary.len(), 2..=3 | 5..=8) && primary.chars().all(|c| c.is_ascii_alphabetic());
        if !primary_ok {
            return Err(invalid("the first part must be 2 to 3 letters"));
        }
        if !subtags.all(|s| (1..=8).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric())) {
            return Err(invalid(
                "parts after the first are 1 to 8 letters or digits, joined by '-'",
            ));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    /// The tag, lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for LanguageTag {
    fn default() -> Self {
        Self("en-us".to_owned())
    }
}

impl FromStr for LanguageTag {
    type Err = FieldViolation;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse_field(raw, "language")
    }
}

impl fmt::Display for LanguageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for LanguageTag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LanguageTag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// The caller's customer reference: 1 to 128 printable characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomerId(String);

impl CustomerId {
    /// The id used when a caller gives none.
    pub const ANONYMOUS: &'static str = "anonymous";

    /// Parses `raw`, reporting a problem under the field name `field`.
    pub fn parse_field(raw: &str, field: &str) -> Result<Self, FieldViolation> {
        let count = raw.chars().count();
        if count == 0 || count > CUSTOMER_ID_MAX_CHARS {
            return Err(FieldViolation::new(
                field,
                format!("must be 1 to {CUSTOMER_ID_MAX_CHARS} characters long (got {count})"),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(FieldViolation::new(
                field,
                "must contain printable characters only (no control characters or line breaks)",
            ));
        }
        if raw.trim() != raw {
            return Err(FieldViolation::new(
                field,
                "must not start or end with white space",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for CustomerId {
    fn default() -> Self {
        Self(Self::ANONYMOUS.to_owned())
    }
}

impl FromStr for CustomerId {
    type Err = FieldViolation;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse_field(raw, "customerId")
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is wrong with one attribute: its key, its value, or both.
fn pair_violations(field: &str, key: &str, value: &str) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    let key_chars = key.chars().count();
    if key_chars == 0 || key_chars > ATTRIBUTE_KEY_MAX_CHARS {
        violations.push(FieldViolation::new(
            format!("{field}.{key}"),
            format!("attribute keys are 1 to {ATTRIBUTE_KEY_MAX_CHARS} characters long"),
        ));
    }
    if value.chars().count() > ATTRIBUTE_VALUE_MAX_CHARS {
        violations.push(FieldViolation::new(
            format!("{field}.{key}"),
            format!("attribute values are at most {ATTRIBUTE_VALUE_MAX_CHARS} characters long"),
        ));
    }
    violations
}

/// Guest attributes within Genesys' limits: at most 50 keys, keys of 1 to 64 characters,
/// values of at most 1024 characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attributes(BTreeMap<String, String>);

impl Attributes {
    /// Checks `map` against the limits, naming each offending key under `field`.
    pub fn parse_field(map: BTreeMap<String, String>, field: &str) -> Result<Self, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        if map.len() > MAX_ATTRIBUTES {
            violations.push(FieldViolation::new(
                field,
                format!("at most {MAX_ATTRIBUTES} attributes (got {})", map.len()),
            ));
        }
        for (key, value) in &map {
            violations.extend(pair_violations(field, key, value));
        }
        if violations.is_empty() {
            Ok(Self(map))
        } else {
            Err(violations)
        }
    }

    /// An empty set of attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces one attribute, refusing it if it would break a limit.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), FieldViolation> {
        // Only the new pair and the count can break a limit: the rest was checked already.
        let field = "attributes";
        if !self.0.contains_key(key) && self.0.len() >= MAX_ATTRIBUTES {
            return Err(FieldViolation::new(
                field,
                format!("at most {MAX_ATTRIBUTES} attributes (got {})", self.0.len() + 1),
            ));
        }
        if let Some(violation) = pair_violations(field, key, value).into_iter().next() {
            return Err(violation);
        }
        self.0.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    /// The attribute `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// All attributes, ordered by key.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(deserializer)?;
        Self::parse_field(map, "attributes").map_err(|v| serde::de::Error::custom(&v[0]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_id_accepts_a_uuid_and_prints_it_lowercase() {
        let id: QueueId = "A1B2C3D4-E5F6-7890-ABCD-EF1234567890".parse().unwrap();
        assert_eq!(id.to_string(), "a1b2c3d4-e5f6-7890-abcd-ef1234567890");
    }

    #[test]
    fn queue_id_rejects_non_uuids_naming_the_field() {
        for raw in [
            "",
            "queue-1",
            "a1b2c3d4-e5f6-7890-abcd-ef123456789",
            "../etc/passwd",
        ] {
            let err = QueueId::parse_field(raw, "routing.queueId").unwrap_err();
            assert_eq!(err.field, "routing.queueId", "for {raw:?}");
            assert!(err.message.contains("UUID"), "for {raw:?}");
        }
    }

    #[test]
    fn language_tag_accepts_common_tags_and_lowercases_them() {
        for (raw, want) in [
            ("en-us", "en-us"),
            ("en-US", "en-us"),
            ("fr", "fr"),
            ("zh-Hant-TW", "zh-hant-tw"),
            ("es-419", "es-419"),
        ] {
            assert_eq!(raw.parse::<LanguageTag>().unwrap().as_str(), want);
        }
    }

    #[test]
    fn language_tag_rejects_malformed_or_overlong_tags() {
        let too_long = format!("en-{}", "abcdefgh-".repeat(4));
        for raw in [
            "",
            "e",
            "englishlanguage",
            "en_us",
            "en--us",
            "en-",
            "12-us",
            "en-toolongsub",
            too_long.as_str(),
        ] {
            let err = raw.parse::<LanguageTag>().unwrap_err();
            assert_eq!(err.field, "language", "for {raw:?}");
        }
    }

    #[test]
    fn customer_id_accepts_printable_text_up_to_128_characters() {
        assert_eq!(
            "cust_99887766".parse::<CustomerId>().unwrap().as_str(),
            "cust_99887766"
        );
        assert!("é".repeat(128).parse::<CustomerId>().is_ok());
        assert_eq!(CustomerId::default().as_str(), "anonymous");
    }

    #[test]
    fn customer_id_rejects_empty_overlong_and_control_characters() {
        for raw in [
            String::new(),
            "x".repeat(129),
            "a\nb".to_owned(),
            "tab\there".to_owned(),
            " padded ".to_owned(),
        ] {
            let err = raw.parse::<CustomerId>().unwrap_err();
            assert_eq!(err.field, "customerId", "for {raw:?}");
        }
    }

    #[test]
    fn attributes_enforce_genesys_limits() {
        let ok: BTreeMap<_, _> = (0..50).map(|i| (format!("k{i}"), "v".repeat(1024))).collect();
        assert_eq!(Attributes::parse_field(ok, "attributes").unwrap().len(), 50);

        let too_many: BTreeMap<_, _> = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        let errs = Attributes::parse_field(too_many, "attributes").unwrap_err();
        assert_eq!(errs[0].field, "attributes");

        let long_key = BTreeMap::from([("k".repeat(65), "v".to_owned())]);
        let errs = Attributes::parse_field(long_key, "attributes").unwrap_err();
        assert!(errs[0].field.starts_with("attributes.k"));

        let long_value = BTreeMap::from([("note".to_owned(), "v".repeat(1025))]);
        let errs = Attributes::parse_field(long_value, "attributes").unwrap_err();
        assert_eq!(errs[0].field, "attributes.note");

        let empty_key = BTreeMap::from([(String::new(), "v".to_owned())]);
        assert!(Attributes::parse_field(empty_key, "attributes").is_err());
    }

    #[test]
    fn attributes_insert_refuses_a_value_over_the_limit_and_keeps_the_old_set() {
        let mut attrs = Attributes::new();
        attrs.insert("sourceSystem", "embedded-widget").unwrap();
        assert!(attrs.insert("big", &"v".repeat(1025)).is_err());
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs.get("sourceSystem"), Some("embedded-widget"));
    }

    #[test]
    fn attributes_insert_stops_at_fifty_keys_but_still_replaces_one() {
        let mut attrs = Attributes::new();
        for i in 0..50 {
            attrs.insert(&format!("k{i}"), "v").unwrap();
        }
        let err = attrs.insert("k50", "v").unwrap_err();
        assert_eq!(err.field, "attributes");
        assert!(err.message.contains("at most 50"), "{}", err.message);
        attrs.insert("k7", "replaced").unwrap();
        assert_eq!((attrs.len(), attrs.get("k7")), (50, Some("replaced")));
        let err = Attributes::new().insert("", "v").unwrap_err();
        assert_eq!(err.field, "attributes.");
    }
}
