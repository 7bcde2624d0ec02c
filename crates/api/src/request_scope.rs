//! What the service learns about the request being served on this task: its id, and the upstream
//! attempts and Genesys correlation id that the request's log line reports. The request-context
//! middleware opens the scope; the error renderer and the upstream observer read and fill it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use actix_web::http::header::{HeaderMap, HeaderName};
use uuid::Uuid;

/// The request-id header, read from callers and set on every response.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-supplied request id that is kept.
const MAX_REQUEST_ID_CHARS: usize = 128;

tokio::task_local! {
    static CURRENT: Rc<RequestScope>;
}

/// One request's scope.
#[derive(Debug)]
pub struct RequestScope {
    request_id: String,
    upstream_attempts: Cell<u32>,
    correlation_id: RefCell<Option<String>>,
}

impl RequestScope {
    /// A scope for the request `request_id`, with nothing learnt yet.
    pub fn new(request_id: String) -> Rc<Self> {
        Rc::new(Self {
            request_id,
            upstream_attempts: Cell::new(0),
            correlation_id: RefCell::new(None),
        })
    }

    /// Runs `future` inside `scope`.
    pub async fn run<F: Future>(scope: Rc<Self>, future: F) -> F::Output {
        CURRENT.scope(scope, future).await
    }

    /// HTTP attempts sent to Genesys for this request.
    pub fn upstream_attempts(&self) -> u32 {
        self.upstream_attempts.get()
    }

    /// The correlation id of Genesys' last answer, if any.
    pub fn correlation_id(&self) -> Option<String> {
        self.correlation_id.borrow().clone()
    }
}

/// The caller's `X-Request-ID` if it is sane (1 to 128 of `[A-Za-z0-9._-]`), else a new UUID.
pub fn request_id_from(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_CHARS
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned)
}

/// The id of the request being served on this task (a fresh UUID outside any request).
pub fn current_request_id() -> String {
    CURRENT
        .try_with(|c| c.request_id.clone())
        .unwrap_or_else(|_| Uuid::new_v4().to_string())
}

/// Counts one upstream HTTP attempt against the current request, if there is one.
pub fn note_upstream_attempt() {
    let _ = CURRENT.try_with(|c| c.upstream_attempts.set(c.upstream_attempts.get() + 1));
}

/// Remembers Genesys' correlation id for the current request's log line.
pub fn note_correlation_id(id: &str) {
    let _ = CURRENT.try_with(|c| *c.correlation_id.borrow_mut() = Some(id.to_owned()));
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn with_id(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_str(id).unwrap());
        headers
    }

    #[test]
    fn keeps_a_sane_caller_request_id() {
        assert_eq!(request_id_from(&with_id("abc-123_X.y")), "abc-123_X.y");
        let max = "a".repeat(128);
        assert_eq!(request_id_from(&with_id(&max)), max);
    }

    #[test]
    fn replaces_an_insane_request_id_with_a_uuid() {
        for bad in [
            "",
            "has space",
            "semi;colon",
            "ünïcode",
            &"a".repeat(129),
            "<script>",
        ] {
            let Ok(value) = HeaderValue::from_str(bad) else {
                continue;
            };
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID_HEADER, value);
            let id = request_id_from(&headers);
            assert!(Uuid::try_parse(&id).is_ok(), "{bad:?} -> {id:?}");
        }
        assert!(Uuid::try_parse(&request_id_from(&HeaderMap::new())).is_ok());
    }

    #[actix_rt::test]
    async fn notes_reach_the_scope_of_the_current_request_only() {
        let scope = RequestScope::new("r-1".to_owned());
        RequestScope::run(scope.clone(), async {
            note_upstream_attempt();
            note_upstream_attempt();
            note_correlation_id("corr-9");
            assert_eq!(current_request_id(), "r-1");
        })
        .await;
        assert_eq!(scope.upstream_attempts(), 2);
        assert_eq!(scope.correlation_id().as_deref(), Some("corr-9"));
        // Outside any request: nothing to note, and a fresh id.
        note_upstream_attempt();
        assert!(Uuid::try_parse(&current_request_id()).is_ok());
    }
}
