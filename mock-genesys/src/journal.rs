//! The request journal behind `GET /__admin/requests`: bounded, oldest first, credentials redacted.

use std::collections::{BTreeMap, VecDeque};

use actix_web::HttpRequest;
use actix_web::http::header;
use domain::genesys::OAUTH_TOKEN_PATH;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What replaces a redacted credential.
pub const REDACTED: &str = "[redacted]";

/// One request the emulator received on a non-admin path, with the status it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// Sequence number, increasing in order of arrival.
    pub id: u64,
    /// When the request arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// HTTP method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Status answered; 0 when a `connection: reset` fault dropped the connection instead.
    pub status: u16,
    /// Headers by lowercased name (repeated headers joined with `, `); `Authorization` keeps only
    /// its scheme.
    pub headers: BTreeMap<String, String>,
    /// The body as text (lossy UTF-8); a form's `client_secret` is redacted.
    pub body: String,
}

impl JournalEntry {
    /// An entry for `req` with its credentials redacted.
    pub(crate) fn record(
        id: u64,
        received_at: OffsetDateTime,
        req: &HttpRequest,
        body: &[u8],
        status: u16,
    ) -> Self {
        let mut headers = BTreeMap::<String, String>::new();
        for (name, value) in req.headers() {
            let value = if name == header::AUTHORIZATION {
                redact_authorization(value.to_str().unwrap_or_default())
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|joined| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert(value);
        }
        let body = String::from_utf8_lossy(body).into_owned();
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        // A token request with a wrong content type is refused, but its secret must not show either.
        let body = if is_form || req.path() == OAUTH_TOKEN_PATH {
            redact_form_secret(body)
        } else {
            body
        };
        Self {
            id,
            received_at,
            method: req.method().to_string(),
            path: req.path().to_owned(),
            status,
            headers,
            body,
        }
    }
}

/// `Basic abc==` -> `Basic [redacted]`; a value without a scheme is redacted whole.
fn redact_authorization(value: &str) -> String {
    match value.trim().split_once(' ') {
        Some((scheme, _)) => format!("{scheme} {REDACTED}"),
        None => REDACTED.to_owned(),
    }
}

/// Replaces the value of every `client_secret` field of a urlencoded form (however its name is
/// percent-encoded), keeping the rest as sent.
fn redact_form_secret(body: String) -> String {
    if !body.contains("secret") && !body.contains('%') {
        return body;
    }
    body.split('&')
        .map(|pair| {
            let key = pair.split_once('=').map_or(pair, |(key, _)| key);
            let decoded = serde_urlencoded::from_str::<Vec<(String, String)>>(key).unwrap_or_default();
            match decoded.first() {
                Some((name, _)) if name == "client_secret" => format!("{key}={REDACTED}"),
                _ => pair.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The newest `limit` entries, oldest first.
pub(crate) struct Journal {
    entries: VecDeque<JournalEntry>,
    limit: usize,
}

impl Journal {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            limit,
        }
    }

    /// Adds `entry` in order of its id (a delayed answer may be recorded after a later request's).
    pub(crate) fn push(&mut self, entry: JournalEntry) {
        let at = self.entries.partition_point(|e| e.id < entry.id);
        self.entries.insert(at, entry);
        while self.entries.len() > self.limit {
            self.entries.pop_front();
        }
    }

    pub(crate) fn entries(&self, path: Option<&str>) -> Vec<JournalEntry> {
        self.entries
            .iter()
            .filter(|e| path.is_none_or(|p| e.path == p))
            .cloned()
            .collect()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn entry(id: u64, path: &str) -> JournalEntry {
        let req = TestRequest::post().uri(path).to_http_request();
        JournalEntry::record(id, OffsetDateTime::UNIX_EPOCH, &req, b"", 200)
    }

    #[test]
    fn keeps_the_newest_entries_in_arrival_order() {
        let mut journal = Journal::new(3);
        for id in [1, 2, 4, 3, 5] {
            journal.push(entry(id, "/a"));
        }
        let ids: Vec<u64> = journal.entries(None).iter().map(|e| e.id).collect();
        assert_eq!(ids, [3, 4, 5]);
    }

    #[test]
    fn filters_by_exact_path() {
        let mut journal = Journal::new(10);
        journal.push(entry(1, "/oauth/token"));
        journal.push(entry(2, "/oauth/token/x"));
        assert_eq!(journal.entries(Some("/oauth/token")).len(), 1);
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
            redact_form_secret(body.to_owned()),
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
}
