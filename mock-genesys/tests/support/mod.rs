//! Helpers shared by the HTTP tests: a started emulator and a real HTTP client.

#![allow(dead_code)]

pub mod idp;
pub mod web;

use std::time::Duration;

use awc::Client;
use awc::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mock_genesys::{MockServer, MockSettings};
use serde_json::{Value, json};

pub const SUPPORT_QUEUE: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
pub const SALES_QUEUE: &str = "0f8e2c7a-3b1d-4c5e-9a6f-112233445566";
pub const GUESTS: &str = "/api/v2/webchat/instances/guests";

/// An emulator on a random port and a client to talk to it.
pub struct Harness {
    pub server: MockServer,
    pub client: Client,
}

/// What a test needs from an answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: awc::http::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

pub fn guest_body() -> Value {
    json!({"routing": {"queueId": SUPPORT_QUEUE}, "attributes": {"customerId": "c-1"}})
}

impl Harness {
    pub fn start() -> Self {
        Self::with(MockSettings::default())
    }

    pub fn with(settings: MockSettings) -> Self {
        // awc builds its TLS config eagerly, which needs a process-wide rustls provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // jsonwebtoken is built without a backend: the tests verify tokens through jose's ring provider.
        jose::install_provider();
        let server = MockServer::start(settings).expect("mock starts");
        let client = Client::builder()
            .disable_redirects()
            .timeout(Duration::from_secs(30))
            .finish();
        Self { server, client }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    pub async fn send(&self, request: awc::ClientRequest, body: Option<&[u8]>) -> Reply {
        let mut response = match body {
            Some(body) => request.send_body(body.to_vec()).await,
            None => request.send().await,
        }
        .expect("request succeeds");
        let body = response.body().limit(64 << 20).await.expect("body").to_vec();
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path)), None).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.client.delete(self.url(path)), None).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let request = self
            .client
            .post(self.url(path))
            .insert_header(("Content-Type", "application/json"));
        self.send(request, Some(body.to_string().as_bytes())).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Reply {
        let request = self
            .client
            .put(self.url(path))
            .insert_header(("Content-Type", "application/json"));
        self.send(request, Some(body.to_string().as_bytes())).await
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Reply {
        let request = self
            .client
            .patch(self.url(path))
            .insert_header(("Content-Type", "application/json"));
        self.send(request, Some(body.to_string().as_bytes())).await
    }

    /// `POST /oauth/token` with Basic credentials.
    pub async fn token_reply(&self, id: &str, secret: &str) -> Reply {
        let request = self
            .client
            .post(self.url("/oauth/token"))
            .insert_header(("Authorization", basic(id, secret)))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
        self.send(request, Some(b"grant_type=client_credentials")).await
    }

    /// A fresh access token of `local-client`.
    pub async fn token(&self) -> String {
        self.token_of("local-client", "local-secret").await
    }

    pub async fn token_of(&self, id: &str, secret: &str) -> String {
        let reply = self.token_reply(id, secret).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// `POST` of a JSON body with a bearer token.
    pub async fn post_bearer(&self, path: &str, token: &str, body: &Value) -> Reply {
        let request = self
            .client
            .post(self.url(path))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .insert_header(("Content-Type", "application/json"));
        self.send(request, Some(body.to_string().as_bytes())).await
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> Reply {
        let request = self
            .client
            .get(self.url(path))
            .insert_header(("Authorization", format!("Bearer {token}")));
        self.send(request, None).await
    }

    pub async fn create_guest(&self, token: &str) -> Reply {
        self.post_bearer(GUESTS, token, &guest_body()).await
    }

    /// `POST /__admin/faults`, returning the new id.
    pub async fn add_fault(&self, fault: Value) -> String {
        let reply = self.post_json("/__admin/faults", &fault).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()["id"].as_str().unwrap().to_owned()
    }

    /// `GET /__admin/requests`, optionally filtered by path.
    pub async fn journal(&self, path: Option<&str>) -> Vec<Value> {
        let url = match path {
            Some(path) => format!("/__admin/requests?path={path}"),
            None => "/__admin/requests".to_owned(),
        };
        let reply = self.get(&url).await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.json()["requests"].as_array().unwrap().clone()
    }
}

/// Asserts the Genesys error shape and returns the body.
pub fn assert_genesys_error(reply: &Reply, status: u16, code: &str) -> Value {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["details"].is_array() && body["errors"].is_array(), "{body}");
    let correlation = reply.header("inin-correlation-id").expect("correlation id");
    assert_eq!(
        body["contextId"], correlation,
        "contextId equals the correlation id"
    );
    body
}
