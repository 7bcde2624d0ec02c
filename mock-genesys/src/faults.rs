//! Injected faults: `POST /__admin/faults` replaces or delays the answers to matching requests.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Longest accepted fault delay: five minutes (enough to outlast any client timeout).
const MAX_DELAY_MS: u64 = 300_000;
/// Most faults active at once; `POST /__admin/faults` refuses more.
pub const MAX_FAULTS: usize = 1_000;

/// How a fault breaks the connection instead of answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionFault {
    /// Drop the TCP connection without any response.
    Reset,
    /// Answer 200 `application/json` with a body that is not valid JSON.
    Malformed,
}

/// Body of `POST /__admin/faults`.
///
/// A fault answers instead of the emulator when it has a `status`, `body`, `retryAfter` or
/// `connection` (status defaulting to 503); with only `delayMs` it delays the normal answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    /// Exact request path (no query string), or `*` for every non-admin path.
    pub path: String,
    /// Only requests with this method (any case); every method when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// How many matching requests it applies to; 0 = until deleted; absent = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// Status to answer, with a Genesys error body unless `body` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Value of a `Retry-After` header on the answer (a string such as `"5"`; a number is accepted).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "string_or_number"
    )]
    pub retry_after: Option<String>,
    /// JSON body to answer instead of the Genesys error body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Delay before the answer, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Break the connection instead of answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionFault>,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(u64),
    }
    Ok(Option::<Raw>::deserialize(d)?.map(|raw| match raw {
        Raw::Text(text) => text,
        Raw::Number(n) => n.to_string(),
    }))
}

impl FaultSpec {
    /// Checks the spec, describing the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.path != "*" && !self.path.starts_with('/') {
            return Err(format!("path must be `*` or start with `/`, got {:?}", self.path));
        }
        if self.path.starts_with(crate::ADMIN_PREFIX) {
            return Err("faults cannot target the /__admin paths".to_owned());
        }
        if let Some(method) = &self.method
            && actix_web::http::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).is_err()
        {
            return Err(format!("method {method:?} is not an HTTP method"));
        }
        if let Some(status) = self.status
            && !(200..=599).contains(&status)
        {
            return Err(format!("status must be between 200 and 599, got {status}"));
        }
        if let Some(retry_after) = &self.retry_after
            && actix_web::http::header::HeaderValue::from_str(retry_after).is_err()
        {
            return Err("retryAfter is not a valid header value".to_owned());
        }
        if self.delay_ms.is_some_and(|ms| ms > MAX_DELAY_MS) {
            return Err(format!("delayMs must be at most {MAX_DELAY_MS}"));
        }
        if self.connection.is_some()
            && (self.status.is_some() || self.body.is_some() || self.retry_after.is_some())
        {
            return Err("connection cannot be combined with status, body or retryAfter".to_owned());
        }
        Ok(())
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        (self.path == "*" || self.path == path)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    }

    fn action(&self) -> FaultAction {
        let delay = Duration::from_millis(self.delay_ms.unwrap_or(0));
        let answer = match self.connection {
            Some(ConnectionFault::Reset) => Some(FaultAnswer::Reset),
            Some(ConnectionFault::Malformed) => Some(FaultAnswer::Malformed),
            None if self.status.is_some() || self.body.is_some() || self.retry_after.is_some() => {
                Some(FaultAnswer::Respond {
                    status: self.status.unwrap_or(503),
                    retry_after: self.retry_after.clone(),
                    body: self.body.clone(),
                })
            }
            None => None,
        };
        FaultAction { delay, answer }
    }
}

/// What a matched fault does to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FaultAction {
    pub(crate) delay: Duration,
    /// `None`: delay only, then the normal answer.
    pub(crate) answer: Option<FaultAnswer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FaultAnswer {
    Reset,
    Malformed,
    Respond {
        status: u16,
        retry_after: Option<String>,
        body: Option<Value>,
    },
}

/// An active fault as `GET /__admin/faults` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveFault {
    /// Id to delete it by.
    pub id: String,
    /// The fault as posted.
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// Matches left; `null` when it lasts until deleted.
    pub remaining: Option<u32>,
}

/// The fault list holds [`MAX_FAULTS`] already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FaultListFull;

/// The active faults, oldest first; the oldest matching one applies.
#[derive(Default)]
pub(crate) struct FaultList {
    faults: Vec<ActiveFault>,
    next_id: u64,
}

impl FaultList {
    pub(crate) fn add(&mut self, spec: FaultSpec) -> Result<String, FaultListFull> {
        if self.faults.len() >= MAX_FAULTS {
            return Err(FaultListFull);
        }
        self.next_id += 1;
        let id = format!("fault-{}", self.next_id);
        let remaining = match spec.times {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(1),
        };
        self.faults.push(ActiveFault {
            id: id.clone(),
            spec,
            remaining,
        });
        Ok(id)
    }

    /// The action of the oldest fault matching the request, counting it as used.
    pub(crate) fn take(&mut self, method: &str, path: &str) -> Option<FaultAction> {
        let index = self.faults.iter().position(|f| f.spec.matches(method, path))?;
        let fault = &mut self.faults[index];
        let action = fault.spec.action();
        if let Some(remaining) = &mut fault.remaining {
            *remaining -= 1;
            if *remaining == 0 {
                self.faults.remove(index);
            }
        }
        Some(action)
    }

    pub(crate) fn list(&self) -> Vec<ActiveFault> {
        self.faults.clone()
    }

    pub(crate) fn remove(&mut self, id: &str) -> bool {
        let before = self.faults.len();
        self.faults.retain(|f| f.id != id);
        self.faults.len() != before
    }

    pub(crate) fn clear(&mut self) {
        self.faults.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: Value) -> FaultSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_fault_applies_the_given_number_of_times_then_disappears() {
        let mut list = FaultList::default();
        list.add(spec(json!({"path": "/a", "status": 500, "times": 2})))
            .unwrap();
        assert!(list.take("GET", "/a").is_some());
        assert!(list.take("GET", "/a").is_some());
        assert!(list.take("GET", "/a").is_none());
        assert!(list.list().is_empty());
    }

    #[test]
    fn the_list_holds_at_most_max_faults() {
        let mut list = FaultList::default();
        for _ in 0..MAX_FAULTS {
            list.add(spec(json!({"path": "/a", "status": 500}))).unwrap();
        }
        assert_eq!(list.add(spec(json!({"path": "/a"}))), Err(FaultListFull));
        list.take("GET", "/a");
        assert!(
            list.add(spec(json!({"path": "/a"}))).is_ok(),
            "a used fault frees its place"
        );
    }

    #[test]
    fn times_zero_lasts_until_deleted() {
        let mut list = FaultList::default();
        let id = list
            .add(spec(json!({"path": "*", "status": 500, "times": 0})))
            .unwrap();
        for _ in 0..50 {
            assert!(list.take("POST", "/anything").is_some());
        }
        assert!(list.remove(&id));
        assert!(list.take("POST", "/anything").is_none());
    }

    #[test]
    fn method_and_path_must_both_match() {
        let mut list = FaultList::default();
        list.add(spec(json!({"path": "/a", "method": "post", "status": 500})))
            .unwrap();
        assert!(list.take("GET", "/a").is_none());
        assert!(list.take("POST", "/b").is_none());
        assert!(list.take("POST", "/a").is_some());
    }

    #[test]
    fn only_a_delay_keeps_the_normal_answer() {
        let action = spec(json!({"path": "/a", "delayMs": 30})).action();
        assert_eq!(action.delay, Duration::from_millis(30));
        assert_eq!(action.answer, None);
        let action = spec(json!({"path": "/a", "retryAfter": 3})).action();
        assert_eq!(
            action.answer,
            Some(FaultAnswer::Respond {
                status: 503,
                retry_after: Some("3".into()),
                body: None
            })
        );
    }

    #[test]
    fn rejects_fault_specs_that_could_not_apply_as_written() {
        for bad in [
            json!({"path": "a"}),
            json!({"path": "/__admin/health"}),
            json!({"path": "/a", "method": "NOT A METHOD"}),
            json!({"path": "/a", "status": 99}),
            json!({"path": "/a", "connection": "reset", "status": 500}),
            json!({"path": "/a", "connection": "malformed", "retryAfter": "5"}),
            json!({"path": "/a", "delayMs": 300_001}),
        ] {
            assert!(spec(bad.clone()).validate().is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<FaultSpec>(json!({"path": "/a", "stauts": 1})).is_err());
        assert!(serde_json::from_value::<FaultSpec>(json!({"path": "/a", "connection": "hang"})).is_err());
    }
}
