//! The request journal behind `GET /__admin/requests`: bounded in entries and in bytes, oldest
//! first, credentials redacted, bodies truncated.
//!
//! It holds the requests the emulator received (`inbound`) and the calls it made to identity
//! providers (`outbound`). Entries are shared as `Arc`s, so listing the journal copies pointers under
//! its lock and serializes outside it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::http::header;
use domain::genesys::OAUTH_TOKEN_PATH;
use domain::webmessaging::TOKEN_PATHS;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What replaces a redacted credential.
pub const REDACTED: &str = "[redacted]";
/// Bytes of a request body kept in its journal entry; the rest is cut off and marked.
pub const JOURNAL_BODY_MAX_BYTES: usize = 16 * 1024;
/// Bytes counted for an entry besides its strings (the struct, map nodes, allocation headers).
const ENTRY_OVERHEAD_BYTES: usize = 256;
/// Form fields whose values never reach the journal.
const SECRET_FORM_FIELDS: [&str; 4] = ["client_secret", "code", "code_verifier", "refresh_token"];
/// JSON members of the web-messaging token routes' bodies whose values never reach the journal.
const SECRET_JSON_MEMBERS: [&str; 4] = ["code", "idToken", "codeVerifier", "refreshToken"];

/// How a body's secrets are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Redaction {
    /// The body holds none.
    None,
    /// An `application/x-www-form-urlencoded` body: [`SECRET_FORM_FIELDS`].
    Form,
    /// A token route's JSON body: [`SECRET_JSON_MEMBERS`] at any depth.
    Json,
}

/// Whether an entry is a request the emulator received or one it sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestDirection {
    /// A request to the emulator.
    #[default]
    Inbound,
    /// A call the emulator made to an identity provider.
    Outbound,
}

/// One request the emulator received on a non-admin path (or sent to an identity provider), with
/// the status it answered (or got).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// Sequence number, increasing in order of arrival (or of sending).
    pub id: u64,
    /// When the request arrived (or was sent).
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// `inbound` or `outbound`.
    #[serde(default)]
    pub direction: RequestDirection,
    /// HTTP method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// The full URL called, on outbound entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Status answered; 0 when a `connection: reset` fault dropped the connection instead, or when
    /// an outbound call got no answer (unreachable, timed out).
    pub status: u16,
    /// Headers by lowercased name (repeated headers joined with `, `); `Authorization` keeps only
    /// its scheme.
    pub headers: BTreeMap<String, String>,
    /// The body as text (lossy UTF-8), at most [`JOURNAL_BODY_MAX_BYTES`] of it; a form's
    /// `client_secret`, `code`, `code_verifier` and `refresh_token` are redacted.
    pub body: String,
    /// The body was longer than [`JOURNAL_BODY_MAX_BYTES`] and was cut.
    #[serde(default)]
    pub body_truncated: bool,
    /// Length of the whole body as sent, in bytes.
    #[serde(default)]
    pub body_length: usize,
}

impl JournalEntry {
    /// An entry for a received request, with its credentials redacted and its body cut to size.
    pub(crate) fn record(
        id: u64,
        received_at: OffsetDateTime,
        req: &HttpRequest,
        body: &[u8],
        status: u16,
    ) -> Self {
        let headers = req
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()));
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let path = req.path();
        let redaction = if TOKEN_PATHS.contains(&path) {
            Redaction::Json
        } else if is_form || path == OAUTH_TOKEN_PATH {
            // A token request with a wrong content type is refused, but its secret must not show either.
            Redaction::Form
        } else {
            Redaction::None
        };
        let mut entry = Self::new(
            id,
            received_at,
            req.method().as_str(),
            path,
            headers,
            body,
            redaction,
        );
        entry.status = status;
        entry
    }

    /// An entry for a call to an identity provider, with its credentials redacted; `status` is 0
    /// until an answer arrives.
    pub(crate) fn outbound<'a>(
        id: u64,
        sent_at: OffsetDateTime,
        method: &str,
        url: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        body: &[u8],
    ) -> Self {
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
            .map_or("/", |path| path.split(['?', '#']).next().unwrap_or("/"));
        let mut entry = Self::new(id, sent_at, method, path, headers, body, Redaction::Form);
        entry.direction = RequestDirection::Outbound;
        entry.url = Some(url.to_owned());
        entry
    }

    fn new<'a>(
        id: u64,
        at: OffsetDateTime,
        method: &str,
        path: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        body: &[u8],
        redaction: Redaction,
    ) -> Self {
        let mut joined = BTreeMap::<String, String>::new();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            let value = if name == header::AUTHORIZATION.as_str() {
                redact_authorization(&String::from_utf8_lossy(value))
            } else {
                String::from_utf8_lossy(value).into_owned()
            };
            joined
                .entry(name)
                .and_modify(|all| {
                    all.push_str(", ");
                    all.push_str(&value);
                })
                .or_insert(value);
        }
        let redacted_json;
        let shown = match redaction {
            Redaction::Json if !body.is_empty() => {
                redacted_json = redact_json_secrets(body);
                redacted_json.as_bytes()
            }
            _ => body,
        };
        let kept = &shown[..shown.len().min(JOURNAL_BODY_MAX_BYTES)];
        let text = String::from_utf8_lossy(kept).into_owned();
        let text = match redaction {
            Redaction::Form => redact_form_secrets(text),
            Redaction::None | Redaction::Json => text,
        };
        Self {
            id,
            received_at: at,
            direction: RequestDirection::Inbound,
            method: method.to_owned(),
            path: path.to_owned(),
            url: None,
            status: 0,
            headers: joined,
            body: text,
            body_truncated: body.len() > JOURNAL_BODY_MAX_BYTES,
            body_length: body.len(),
        }
    }

    /// The memory this entry is charged in the journal's byte bound: its strings plus a fixed
    /// overhead.
    pub(crate) fn charged_bytes(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        ENTRY_OVERHEAD_BYTES
            + self.method.len()
            + self.path.len()
            + self.url.as_ref().map_or(0, String::len)
            + headers
            + self.body.len()
    }
}

/// `Basic abc==` -> `Basic [redacted]`; a value without a scheme is redacted whole.
fn redact_authorization(value: &str) -> String {
    match value.trim().split_once(' ') {
        Some((scheme, _)) => format!("{scheme} {REDACTED}"),
        None => REDACTED.to_owned(),
    }
}

/// Replaces the value of every secret field of a urlencoded form ([`SECRET_FORM_FIELDS`], however
/// their names are percent-encoded), keeping the rest as sent.
fn redact_form_secrets(body: String) -> String {
    let mentions_secret = ["secret", "code", "token"].iter().any(|word| body.contains(word));
    if !mentions_secret && !body.contains('%') {
        return body;
    }
    body.split('&')
        .map(|pair| {
            let key = pair.split_once('=').map_or(pair, |(key, _)| key);
            let decoded = serde_urlencoded::from_str::<Vec<(String, String)>>(key).unwrap_or_default();
            match decoded.first() {
                Some((name, _)) if SECRET_FORM_FIELDS.contains(&name.as_str()) => format!("{key}={REDACTED}"),
                _ => pair.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A token route's JSON body with every secret member's value replaced; a body that is not JSON
/// is replaced whole, since nothing says where its secrets are.
fn redact_json_secrets(body: &[u8]) -> String {
    fn redact(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(members) => {
                for (name, member) in members.iter_mut() {
                    if SECRET_JSON_MEMBERS.contains(&name.as_str()) {
                        *member = serde_json::Value::from(REDACTED);
                    } else {
                        redact(member);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
            _ => {}
        }
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            redact(&mut value);
            value.to_string()
        }
        Err(_) => format!("{REDACTED} (not JSON)"),
    }
}

/// The newest entries, oldest first, within `limit` entries and `max_bytes` charged bytes.
pub(crate) struct Journal {
    entries: VecDeque<Arc<JournalEntry>>,
    limit: usize,
    max_bytes: usize,
    bytes: usize,
}

impl Journal {
    pub(crate) fn new(limit: usize, max_bytes: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            limit,
            max_bytes,
            bytes: 0,
        }
    }

    /// Adds `entry` in order of its id (a delayed answer may be recorded after a later request's),
    /// then drops the oldest entries until both bounds hold.
    pub(crate) fn push(&mut self, entry: JournalEntry) {
        self.bytes += entry.charged_bytes();
        let at = self.entries.partition_point(|e| e.id < entry.id);
        self.entries.insert(at, Arc::new(entry));
        while self.entries.len() > self.limit || self.bytes > self.max_bytes {
            let Some(oldest) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= oldest.charged_bytes();
        }
    }

    /// The matching entries, oldest first: a copy of pointers, not of entries.
    pub(crate) fn entries(
        &self,
        path: Option<&str>,
        direction: Option<RequestDirection>,
    ) -> Vec<Arc<JournalEntry>> {
        self.entries
            .iter()
            .filter(|e| path.is_none_or(|p| e.path == p) && direction.is_none_or(|d| e.direction == d))
            .cloned()
            .collect()
    }

    /// The bytes charged for the entries held (see [`JournalEntry::charged_bytes`]).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use domain::webmessaging::{OAUTH_EXCHANGE_PATH, REFRESH_PATH};

    fn entry(id: u64, path: &str) -> JournalEntry {
        let req = TestRequest::post().uri(path).to_http_request();
        JournalEntry::record(id, OffsetDateTime::UNIX_EPOCH, &req, b"", 200)
    }

    #[test]
    fn keeps_the_newest_entries_in_arrival_order() {
        let mut journal = Journal::new(3, usize::MAX);
        for id in [1, 2, 4, 3, 5] {
            journal.push(entry(id, "/a"));
        }
        let ids: Vec<u64> = journal.entries(None, None).iter().map(|e| e.id).collect();
        assert_eq!(ids, [3, 4, 5]);
    }

    #[test]
    fn filters_by_exact_path() {
        let mut journal = Journal::new(10, usize::MAX);
        journal.push(entry(1, "/oauth/token"));
        journal.push(entry(2, "/oauth/token/x"));
        assert_eq!(journal.entries(Some("/oauth/token"), None).len(), 1);
    }

    #[test]
    fn redacts_credentials_but_keeps_the_scheme_and_other_fields() {
        let req = TestRequest::post()
            .uri("/oauth/token?x=1")
            .insert_header(("Authorization", "Basic bG9jYWwtY2xpZW50OmxvY2FsLXNlY3JldA=="))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .to_http_request();
        let body = b"grant_type=client_credentials&client_id=c&client_secret=s3cr3t";
        let e = JournalEntry::record(1, OffsetDateTime::UNIX_EPOCH, &req, body, 200);
        assert_eq!(e.headers["authorization"], "Basic [redacted]");
        assert_eq!(
            e.body,
            "grant_type=client_credentials&client_id=c&client_secret=[redacted]"
        );
        assert_eq!(e.path, "/oauth/token");
        assert_eq!(redact_authorization("opaque"), "[redacted]");
    }

    #[test]
    fn redacts_a_percent_encoded_secret_field_and_a_token_request_that_is_not_a_form() {
        let body = "client_id=c&client%5Fsecret=s3cr3t&grant_type=client_credentials";
        assert_eq!(
            redact_form_secrets(body.to_owned()),
            "client_id=c&client%5Fsecret=[redacted]&grant_type=client_credentials"
        );
        let req = TestRequest::post()
            .uri("/oauth/token")
            .insert_header(("Content-Type", "text/plain"))
            .to_http_request();
        let e = JournalEntry::record(1, OffsetDateTime::UNIX_EPOCH, &req, b"client_secret=s3cr3t", 400);
        assert_eq!(e.body, "client_secret=[redacted]");
        let req = TestRequest::post().uri("/api/v2/x").to_http_request();
        let e = JournalEntry::record(
            1,
            OffsetDateTime::UNIX_EPOCH,
            &req,
            br#"{"note":"a&b=secret"}"#,
            200,
        );
        assert_eq!(e.body, r#"{"note":"a&b=secret"}"#, "other bodies stay as sent");
    }

    #[test]
    fn cuts_long_bodies_and_says_how_long_they_were() {
        let req = TestRequest::post().uri("/api/v2/x").to_http_request();
        let body = vec![b'a'; JOURNAL_BODY_MAX_BYTES + 10];
        let e = JournalEntry::record(1, OffsetDateTime::UNIX_EPOCH, &req, &body, 200);
        assert_eq!(e.body.len(), JOURNAL_BODY_MAX_BYTES);
        assert!(e.body_truncated);
        assert_eq!(e.body_length, JOURNAL_BODY_MAX_BYTES + 10);
        let short = JournalEntry::record(2, OffsetDateTime::UNIX_EPOCH, &req, b"{}", 200);
        assert!(!short.body_truncated);
        assert_eq!(short.body_length, 2);
    }

    #[test]
    fn stays_within_its_byte_bound_by_dropping_the_oldest() {
        let req = TestRequest::post().uri("/api/v2/x").to_http_request();
        let body = vec![b'a'; 64 * 1024];
        let one = JournalEntry::record(0, OffsetDateTime::UNIX_EPOCH, &req, &body, 200).charged_bytes();
        let mut journal = Journal::new(usize::MAX, 3 * one);
        for id in 1..=10 {
            journal.push(JournalEntry::record(
                id,
                OffsetDateTime::UNIX_EPOCH,
                &req,
                &body,
                200,
            ));
            assert!(journal.bytes() <= 3 * one);
        }
        let ids: Vec<u64> = journal.entries(None, None).iter().map(|e| e.id).collect();
        assert_eq!(ids, [8, 9, 10]);
        assert_eq!(journal.bytes(), 3 * one);
        journal.clear();
        assert_eq!(journal.bytes(), 0);
    }

    #[test]
    fn an_outbound_entry_keeps_the_url_and_redacts_credentials_and_codes() {
        let headers = [
            ("Authorization", b"Basic Z2VuZXN5czpzM2NyM3Q=".as_slice()),
            ("Content-Type", b"application/x-www-form-urlencoded".as_slice()),
        ];
        let body = b"grant_type=authorization_code&code=c0de&redirect_uri=https%3A%2F%2Fx&code_verifier=v3r&client_id=g&client_secret=s3c&refresh_token=r3f";
        let e = JournalEntry::outbound(
            5,
            OffsetDateTime::UNIX_EPOCH,
            "POST",
            "http://127.0.0.1:9/oidc/token?x=1",
            headers,
            body,
        );
        assert_eq!(e.direction, RequestDirection::Outbound);
        assert_eq!(e.url.as_deref(), Some("http://127.0.0.1:9/oidc/token?x=1"));
        assert_eq!(e.path, "/oidc/token");
        assert_eq!(e.headers["authorization"], "Basic [redacted]");
        assert_eq!(
            e.body,
            "grant_type=authorization_code&code=[redacted]&redirect_uri=https%3A%2F%2Fx&code_verifier=[redacted]&client_id=g&client_secret=[redacted]&refresh_token=[redacted]"
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["direction"], "outbound");
    }

    #[test]
    fn filters_by_direction() {
        let mut journal = Journal::new(10, usize::MAX);
        journal.push(entry(1, "/a"));
        journal.push(JournalEntry::outbound(
            2,
            OffsetDateTime::UNIX_EPOCH,
            "GET",
            "http://idp/b",
            [],
            b"",
        ));
        assert_eq!(journal.entries(None, Some(RequestDirection::Outbound))[0].id, 2);
        assert_eq!(journal.entries(None, Some(RequestDirection::Inbound))[0].id, 1);
        assert_eq!(journal.entries(Some("/b"), None).len(), 1);
    }

    #[test]
    fn token_route_bodies_keep_their_shape_but_not_their_secrets() {
        let req = TestRequest::post().uri(OAUTH_EXCHANGE_PATH).to_http_request();
        let body = br#"{"deploymentId":"d","oauth":{"code":"c0de","codeVerifier":"v3r","redirectUri":"r","idToken":"t0k"}}"#;
        let e = JournalEntry::record(1, OffsetDateTime::UNIX_EPOCH, &req, body, 200);
        let json: serde_json::Value = serde_json::from_str(&e.body).unwrap();
        assert_eq!(json["oauth"]["code"], REDACTED);
        assert_eq!(json["oauth"]["codeVerifier"], REDACTED);
        assert_eq!(json["oauth"]["idToken"], REDACTED);
        assert_eq!(json["oauth"]["redirectUri"], "r");
        assert_eq!(json["deploymentId"], "d");
        assert_eq!(e.body_length, body.len());
        let req = TestRequest::post().uri(REFRESH_PATH).to_http_request();
        let e = JournalEntry::record(
            2,
            OffsetDateTime::UNIX_EPOCH,
            &req,
            br#"{"refreshToken": "r3f"#,
            400,
        );
        assert_eq!(e.body, "[redacted] (not JSON)");
    }
}
