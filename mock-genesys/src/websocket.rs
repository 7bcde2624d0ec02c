//! The web-messaging WebSocket, `/v1?deploymentId=<id>`: the upgrade's checks, then one session task
//! per connection on the actix runtime answering `configureSession`,
//! `configureAuthenticatedSession`, `getJwt` and `onMessage` with Genesys' envelopes.
//!
//! Bounded: connections open at once (`max_websockets`), message and frame size
//! (`websocket_max_message_bytes`), and idle time (`websocket_idle_timeout_seconds`; the server pings
//! so that a live browser, which answers pings by itself, stays connected).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use domain::genesys::error_codes as genesys_codes;
use domain::webmessaging::{
    DEPLOYMENT_ID_QUERY, Direction, JwtResponse, MessageChannel, MessageType, SESSION_AUTHENTICATION_FAILED,
    SESSION_TOKEN_MAX_CHARS, SessionResponse, StructuredMessage, WebMessagingEnvelope, WebMessagingRequest,
    error_codes,
};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::correlation::correlation_id;
use crate::error_body::genesys_error;
use crate::journal::JournalEntry;
use crate::pipeline::{Intercepted, fault_and_latency};
use crate::sessions::{AuthSession, StoreFull};
use crate::state::{MockState, WebSocketSlot, lock};
use crate::webmessaging::{Admitted, admit_deployment, authenticate, issue_messaging_jwt, jwt_lifetime};

/// Custom attribute bytes a message may carry, as the session response announces.
const MAX_CUSTOM_DATA_BYTES: u32 = 2_048;

/// `GET /v1?deploymentId=<id>`: fault and latency as any route, then the upgrade's checks.
pub(crate) async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<MockState>,
) -> HttpResponse {
    let id = state.next_request_id();
    let received_at = OffsetDateTime::now_utc();
    let correlation_id = correlation_id(&req);
    let response = match fault_and_latency(&req, &state, &correlation_id).await {
        Some(Intercepted::Reset) => {
            let entry = JournalEntry::record(id, received_at, &req, &[], 0);
            return crate::pipeline::reset(&req, &state, entry, &correlation_id);
        }
        Some(Intercepted::Answer(response)) => response,
        None => open(&req, body, state.clone().into_inner(), &correlation_id),
    };
    let status = response.status().as_u16();
    state.journal(JournalEntry::record(id, received_at, &req, &[], status));
    tracing::debug!(path = req.path(), status, %correlation_id, "WebSocket upgrade answered");
    response
}

fn open(req: &HttpRequest, body: web::Payload, state: Arc<MockState>, correlation_id: &str) -> HttpResponse {
    let deployment_id = serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .unwrap_or_default()
        .into_iter()
        .find_map(|(key, value)| (key == DEPLOYMENT_ID_QUERY).then_some(value));
    let Some(deployment_id) = deployment_id.filter(|id| !id.is_empty()) else {
        return genesys_error(
            StatusCode::BAD_REQUEST,
            genesys_codes::BAD_REQUEST,
            "The deploymentId query parameter is required",
            correlation_id,
        );
    };
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let Admitted { deployment, window } =
        match admit_deployment(&deployment_id, origin, &state, correlation_id) {
            Ok(admitted) => admitted,
            Err(refused) => return refused.response,
        };
    let mut response = match state.open_websocket() {
        None => genesys_error(
            StatusCode::SERVICE_UNAVAILABLE,
            error_codes::WEBSOCKET_LIMIT_REACHED,
            format!(
                "The emulator holds {} WebSockets (max_websockets); close some and retry",
                state.limits.max_websockets
            ),
            correlation_id,
        ),
        Some(slot) => match actix_ws::handle(req, body) {
            Ok((response, session, messages)) => {
                let connection = Connection {
                    state: Arc::clone(&state),
                    deployment_id: deployment.public.id.clone(),
                    configured: None,
                };
                actix_web::rt::spawn(run(connection, session, messages, slot));
                response
            }
            Err(e) => genesys_error(
                StatusCode::BAD_REQUEST,
                genesys_codes::BAD_REQUEST,
                format!("Not a WebSocket upgrade: {e}"),
                correlation_id,
            ),
        },
    };
    if let Some(window) = window {
        window.add_headers(&mut response);
    }
    response
}

/// What the session token of a configured connection stands for.
enum Visitor {
    /// `configureSession`: a pseudonymous visitor of this conversation.
    Anonymous { sub: String, conversation_id: String },
    /// `configureAuthenticatedSession`: the visitor of an exchanged session.
    Authenticated { session_id: String },
}

struct Configured {
    token: String,
    visitor: Visitor,
}

/// One WebSocket's state.
struct Connection {
    state: Arc<MockState>,
    deployment_id: String,
    configured: Option<Configured>,
}

async fn run(
    mut connection: Connection,
    mut session: Session,
    messages: actix_ws::MessageStream,
    _slot: WebSocketSlot,
) {
    let limits = connection.state.limits;
    let mut messages = messages
        .max_frame_size(limits.websocket_max_message_bytes)
        .aggregate_continuations()
        .max_continuation_size(limits.websocket_max_message_bytes);
    let idle = limits.websocket_idle_timeout;
    // Three pings per idle period: a live peer's pongs always arrive in time.
    let mut heartbeat = actix_web::rt::time::interval(idle / 3);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    let close_reason = loop {
        tokio::select! {
            message = messages.recv() => {
                let Some(message) = message else { break None };
                last_heard = Instant::now();
                let replies = match message {
                    Ok(AggregatedMessage::Text(text)) => connection.answer(&text),
                    Ok(AggregatedMessage::Binary(_)) => {
                        vec![error_envelope(400, "Binary messages are not supported; send JSON text")]
                    }
                    Ok(AggregatedMessage::Ping(bytes)) => {
                        if session.pong(&bytes).await.is_err() {
                            break None;
                        }
                        Vec::new()
                    }
                    Ok(AggregatedMessage::Pong(_)) => Vec::new(),
                    Ok(AggregatedMessage::Close(reason)) => break reason,
                    Err(e) => {
                        tracing::debug!(error = %e, "WebSocket protocol error");
                        break Some(CloseReason {
                            code: CloseCode::Size,
                            description: Some(format!(
                                "protocol error or message over {} bytes",
                                limits.websocket_max_message_bytes
                            )),
                        });
                    }
                };
                for reply in replies {
                    if session.text(reply).await.is_err() {
                        return;
                    }
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() >= idle {
                    break Some(CloseReason {
                        code: CloseCode::Away,
                        description: Some(format!("idle for {} s", idle.as_secs())),
                    });
                }
                if session.ping(b"").await.is_err() {
                    return;
                }
            }
        }
    };
    let _ = session.close(close_reason).await;
}

fn error_envelope(code: u16, explanation: impl Into<String>) -> String {
    envelope_text(&WebMessagingEnvelope::error(code, explanation))
}

fn envelope_text<T: Serialize>(envelope: &T) -> String {
    serde_json::to_string(envelope).unwrap_or_else(|_| error_envelope(500, "The answer could not be encoded"))
}

impl Connection {
    /// The envelopes answering one text message, in order.
    fn answer(&mut self, text: &str) -> Vec<String> {
        let request = match serde_json::from_str::<WebMessagingRequest>(text) {
            Ok(request) => request,
            Err(e) => return vec![error_envelope(400, describe_unreadable(text, &e))],
        };
        let token = request.token();
        if token.is_empty() || token.chars().count() > SESSION_TOKEN_MAX_CHARS {
            return vec![error_envelope(
                400,
                format!("token must hold 1 to {SESSION_TOKEN_MAX_CHARS} characters"),
            )];
        }
        let reply = match request {
            WebMessagingRequest::ConfigureSession {
                token, deployment_id, ..
            } => self.configure(token, &deployment_id, None),
            WebMessagingRequest::ConfigureAuthenticatedSession {
                token,
                deployment_id,
                data,
                ..
            } => self.configure(token, &deployment_id, Some(&data.code)),
            WebMessagingRequest::GetJwt { token } => Some(self.jwt(&token)),
            WebMessagingRequest::OnMessage { token, message } => match self.check_token(&token) {
                Err(refusal) => Some(refusal),
                Ok(_) if message.message_type != MessageType::Text => None,
                Ok(_) => match message.text.filter(|text| !text.is_empty()) {
                    Some(text) => Some(self.agent_reply(&text)),
                    None => Some(error_envelope(400, "A Text message needs a text")),
                },
            },
        };
        reply.into_iter().collect()
    }

    fn configure(&mut self, token: String, deployment_id: &str, jwt: Option<&str>) -> Option<String> {
        if !deployment_id.eq_ignore_ascii_case(&self.deployment_id) {
            return Some(error_envelope(
                400,
                "deploymentId does not match the deployment this WebSocket was opened for",
            ));
        }
        let authenticated = match jwt {
            Some(jwt) => match authenticate(&self.state, jwt, Some(&self.deployment_id)) {
                Some((claims, _)) => Some(claims.sid),
                None => {
                    self.configured = None;
                    return Some(error_envelope(401, SESSION_AUTHENTICATION_FAILED));
                }
            },
            None => None,
        };
        let retention = Duration::from_secs(self.state.runtime().refresh_token_ttl_seconds);
        let touched = lock(&self.state.sessions).touch_session_token(&token, retention, Instant::now());
        let (sub, new_session) = match touched {
            Ok(touched) => touched,
            Err(StoreFull) => {
                return Some(error_envelope(
                    503,
                    "The emulator's session store is full (max_sessions)",
                ));
            }
        };
        let visitor = match authenticated {
            Some(session_id) => Visitor::Authenticated { session_id },
            None => Visitor::Anonymous {
                sub,
                conversation_id: Uuid::new_v4().to_string(),
            },
        };
        self.configured = Some(Configured { token, visitor });
        Some(envelope_text(&WebMessagingEnvelope::session(SessionResponse {
            connected: true,
            new_session,
            read_only: false,
            max_custom_data_bytes: MAX_CUSTOM_DATA_BYTES,
        })))
    }

    /// Whether `token` is the configured session's: `Ok` with the authenticated session, still live,
    /// when there is one; `Err` with the refusal envelope otherwise.
    fn check_token(&mut self, token: &str) -> Result<Option<AuthSession>, String> {
        let Some(configured) = &self.configured else {
            return Err(error_envelope(
                400,
                "The session is not configured: send configureSession or configureAuthenticatedSession first",
            ));
        };
        if configured.token != token {
            return Err(error_envelope(403, "token does not match the configured session"));
        }
        let Visitor::Authenticated { session_id } = &configured.visitor else {
            return Ok(None);
        };
        match lock(&self.state.sessions).live(session_id) {
            Some(session) => Ok(Some(session.clone())),
            None => {
                // Revoked or expired since it was configured.
                self.configured = None;
                Err(error_envelope(401, SESSION_AUTHENTICATION_FAILED))
            }
        }
    }

    fn jwt(&mut self, token: &str) -> String {
        let authenticated = match self.check_token(token) {
            Ok(authenticated) => authenticated,
            Err(refusal) => return refusal,
        };
        let messaging_ttl = self.state.runtime().messaging_jwt_ttl_seconds;
        let (sub, session_id, ttl) = match (authenticated, self.configured.as_ref().map(|c| &c.visitor)) {
            (Some(session), _) => {
                let ttl = jwt_lifetime(messaging_ttl, session.provider_ttl);
                (session.sub, session.id, ttl)
            }
            (None, Some(Visitor::Anonymous { sub, conversation_id })) => (
                sub.clone(),
                conversation_id.clone(),
                jwt_lifetime(messaging_ttl, None),
            ),
            (None, _) => return error_envelope(401, SESSION_AUTHENTICATION_FAILED),
        };
        let (jwt, exp) = issue_messaging_jwt(&self.state, &sub, &self.deployment_id, &session_id, ttl);
        envelope_text(&WebMessagingEnvelope::jwt(JwtResponse { jwt, exp }))
    }

    fn agent_reply(&self, text: &str) -> String {
        let id = Uuid::new_v4().to_string();
        let reply = self.state.runtime().agent_reply.replace("{text}", text);
        envelope_text(&WebMessagingEnvelope::message(StructuredMessage {
            id: id.clone(),
            message_type: MessageType::Text,
            text: Some(reply),
            direction: Direction::Outbound,
            channel: Some(MessageChannel {
                time: OffsetDateTime::now_utc(),
                message_id: Some(id),
            }),
        }))
    }
}

/// Why a text message is not an action, without echoing what it holds.
fn describe_unreadable(text: &str, error: &serde_json::Error) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return "The message is not JSON".to_owned();
    };
    match value.get("action").and_then(serde_json::Value::as_str) {
        None => "The message has no action".to_owned(),
        Some(action @ ("configureSession" | "configureAuthenticatedSession" | "getJwt" | "onMessage")) => {
            format!("Invalid {action} message: {}", field_problem(error))
        }
        Some(_) => "Unknown action; this emulator answers configureSession, configureAuthenticatedSession, \
                    getJwt and onMessage"
            .to_owned(),
    }
}

/// serde's explanation without the position suffix it appends.
fn field_problem(error: &serde_json::Error) -> String {
    let text = error.to_string();
    text.split(" at line ").next().unwrap_or(&text).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(text: &str) -> String {
        let error = serde_json::from_str::<WebMessagingRequest>(text).unwrap_err();
        describe_unreadable(text, &error)
    }

    #[test]
    fn unreadable_messages_are_described_without_their_content() {
        assert_eq!(parse_error("secret-ish garbage"), "The message is not JSON");
        assert_eq!(parse_error(r#"{"token": "t"}"#), "The message has no action");
        assert!(parse_error(r#"{"action": "dropTables", "token": "t"}"#).starts_with("Unknown action"));
        let missing = parse_error(r#"{"action": "getJwt"}"#);
        assert_eq!(missing, "Invalid getJwt message: missing field `token`");
    }
}
