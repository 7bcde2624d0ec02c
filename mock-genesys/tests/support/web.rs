//! A web-messaging test bench: the emulator, a test identity provider, a deployment that redeems
//! its codes, and a WebSocket client.

use std::time::Duration;

use awc::BoxedSocket;
use awc::ws::{Codec, Frame, Message};
use futures_util::{SinkExt, StreamExt};
use mock_genesys::MockSettings;
use serde_json::{Value, json};

use super::idp::{CLIENT_ID, CLIENT_SECRET, IdentityProvider, REDIRECT_URI};
use super::{Harness, Reply};

pub const EXCHANGE: &str = "/api/v2/webdeployments/token/oauthcodegrantjwtexchange";
pub const REFRESH: &str = "/api/v2/webdeployments/token/refresh";
pub const REVOKE: &str = "/api/v2/webdeployments/token/revoke";
/// The deployment every bench creates through the admin API.
pub const DEPLOYMENT: &str = "0b8c9e2f-0a11-4a51-9a35-6f1c1f4e3d7e";
/// The origin the bench's deployment allows.
pub const SHOP: &str = "https://shop.example.com";
pub const VERIFIER: &str = "a-pkce-verifier-of-at-least-forty-three-characters-0123456789";
pub const NONCE: &str = "n-0S6_WzA2Mj";
/// How long any single wait of a test may take before it fails instead of hanging.
pub const STEP_DEADLINE: Duration = Duration::from_secs(10);

pub type Socket = actix_codec::Framed<BoxedSocket, Codec>;

/// The emulator with a deployment whose identity provider is a running test provider.
pub struct Bench {
    pub h: Harness,
    pub idp: IdentityProvider,
}

impl Bench {
    pub async fn start() -> Self {
        Self::with(MockSettings::default()).await
    }

    pub async fn with(settings: MockSettings) -> Self {
        let h = Harness::with(settings);
        let idp = IdentityProvider::start();
        let bench = Self { h, idp };
        let reply = bench.put_deployment(DEPLOYMENT, bench.deployment_body()).await;
        assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
        bench
    }

    /// The bench deployment's `PUT /__admin/deployments/{id}` body.
    pub fn deployment_body(&self) -> Value {
        json!({
            "name": "Shop",
            "allowedDomains": [SHOP, "*.example.org"],
            "authentication": {
                "discoveryUri": self.idp.discovery_url(),
                "clientId": CLIENT_ID,
                "clientSecret": CLIENT_SECRET,
            }
        })
    }

    pub async fn put_deployment(&self, id: &str, body: Value) -> Reply {
        self.h
            .put_json(&format!("/__admin/deployments/{id}"), &body)
            .await
    }

    /// A fresh code of the test provider for `sub`, with the bench's verifier and nonce.
    pub fn code(&self, sub: &str) -> String {
        self.idp.mint_code(sub, VERIFIER, Some(NONCE))
    }

    /// The exchange body the Messenger would send for `code`.
    pub fn exchange_body(code: &str) -> Value {
        json!({
            "deploymentId": DEPLOYMENT,
            "oauth": {"code": code, "redirectUri": REDIRECT_URI, "codeVerifier": VERIFIER, "nonce": NONCE}
        })
    }

    pub async fn exchange(&self, body: &Value) -> Reply {
        self.post(EXCHANGE, body, Some(SHOP)).await
    }

    /// A successful exchange for `sub`: `(jwt, refresh token)`.
    pub async fn sign_in(&self, sub: &str) -> (String, String) {
        let reply = self.exchange(&Self::exchange_body(&self.code(sub))).await;
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        let body = reply.json();
        (
            body["jwt"].as_str().unwrap().to_owned(),
            body["refreshToken"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn post(&self, path: &str, body: &Value, origin: Option<&str>) -> Reply {
        let mut request = self
            .h
            .client
            .post(self.h.url(path))
            .insert_header(("Content-Type", "application/json"));
        if let Some(origin) = origin {
            request = request.insert_header(("Origin", origin));
        }
        self.h.send(request, Some(body.to_string().as_bytes())).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        let body = json!({"refreshToken": refresh_token, "deploymentId": DEPLOYMENT});
        self.post(REFRESH, &body, Some(SHOP)).await
    }

    pub async fn revoke(&self, jwt: &str) -> Reply {
        let request = self
            .h
            .client
            .delete(self.h.url(REVOKE))
            .insert_header(("Authorization", format!("Bearer {jwt}")))
            .insert_header(("Origin", SHOP));
        self.h.send(request, None).await
    }

    /// Opens the deployment's WebSocket from `origin`; `Err` holds the status of a refused upgrade.
    pub async fn connect(&self, deployment: &str, origin: Option<&str>) -> Result<Socket, u16> {
        let mut request = self.h.client.ws(self.h.server.websocket_url(deployment));
        if let Some(origin) = origin {
            request = request.origin(origin);
        }
        let connected = actix_web::rt::time::timeout(STEP_DEADLINE, request.connect())
            .await
            .expect("the upgrade answers in time");
        match connected {
            Ok((_, socket)) => Ok(socket),
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status.as_u16()),
            Err(e) => panic!("the upgrade failed: {e}"),
        }
    }

    /// Opens the bench deployment's WebSocket from the shop.
    pub async fn socket(&self) -> Socket {
        self.connect(DEPLOYMENT, Some(SHOP))
            .await
            .expect("the upgrade succeeds")
    }
}

pub async fn send(socket: &mut Socket, message: &Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("the message is sent");
}

/// The next JSON envelope (pings answered, pongs skipped), within [`STEP_DEADLINE`].
pub async fn receive(socket: &mut Socket) -> Value {
    loop {
        let frame = actix_web::rt::time::timeout(STEP_DEADLINE, socket.next())
            .await
            .expect("an envelope arrives in time")
            .expect("the socket is open")
            .expect("a valid frame");
        match frame {
            Frame::Text(bytes) => return serde_json::from_slice(&bytes).expect("a JSON envelope"),
            Frame::Ping(bytes) => socket.send(Message::Pong(bytes)).await.unwrap(),
            Frame::Pong(_) => {}
            other => panic!("expected a text envelope, got {other:?}"),
        }
    }
}

/// Sends `message` and returns the envelope answering it.
pub async fn ask(socket: &mut Socket, message: Value) -> Value {
    send(socket, &message).await;
    receive(socket).await
}

/// The close frame the server ends the socket with, within [`STEP_DEADLINE`] (pings unanswered).
pub async fn closed(socket: &mut Socket) -> Option<awc::ws::CloseReason> {
    loop {
        let frame = actix_web::rt::time::timeout(STEP_DEADLINE, socket.next())
            .await
            .expect("the socket closes in time");
        match frame {
            Some(Ok(Frame::Close(reason))) => return reason,
            Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => {}
            None | Some(Err(_)) => return None,
            Some(Ok(other)) => panic!("expected the socket to close, got {other:?}"),
        }
    }
}

pub fn configure_authenticated(token: &str, jwt: &str) -> Value {
    json!({"action": "configureAuthenticatedSession", "token": token, "deploymentId": DEPLOYMENT,
           "data": {"code": jwt}})
}

pub fn configure_anonymous(token: &str) -> Value {
    json!({"action": "configureSession", "token": token, "deploymentId": DEPLOYMENT})
}

pub fn text_message(token: &str, text: &str) -> Value {
    json!({"action": "onMessage", "token": token, "message": {"type": "Text", "text": text}})
}

/// The claims of a JWT, unchecked (the tests check signatures separately).
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Waits until `condition` holds, checking every few milliseconds, for at most [`STEP_DEADLINE`].
pub async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + STEP_DEADLINE;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
}
