//! The identity bridge end to end, over real HTTP and WebSockets: the service as the OpenID
//! Connect provider of the emulator's Genesys, the stock-Messenger path (a code from
//! `/api/webmessaging/auth-code`, exchanged by Genesys) and the web-messaging guest token, then an
//! authenticated WebSocket session; and every refusal, each checked to have issued nothing.

mod common;

use std::time::Duration;

use awc::BoxedSocket;
use awc::ws::{Codec, Frame, Message};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::identity::*;
use common::*;
use domain::oidc::{DISCOVERY_PATH, IdTokenClaims};
use domain::webmessaging::OAUTH_EXCHANGE_PATH;
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mock_genesys::{DEFAULT_DEPLOYMENT_ID, MockServer, RequestDirection};
use serde_json::{Value, json};

type Socket = actix_codec::Framed<BoxedSocket, Codec>;

/// The emulator, whose default deployment trusts the service at `issuer`, and the service.
struct Stack {
    mock: MockServer,
    app: TestApp,
    issuer: String,
}

async fn start(extra: &[(&str, &str)]) -> Stack {
    let mock = emulator();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    mock.put_deployment(deployment(&issuer, "Active", &[ALLOWED_ORIGIN]));
    let port_text = port.to_string();
    let websocket = format!("ws://127.0.0.1:{}/v1", mock.port());
    let mut env = vec![
        ("PORT", port_text.as_str()),
        ("APP__OIDC__ISSUER", issuer.as_str()),
        ("APP__WEB_MESSAGING__WEBSOCKET_URL", websocket.as_str()),
        ("APP__WEB_MESSAGING__DEPLOYMENT_CACHE_SECONDS", "1"),
    ];
    env.extend_from_slice(extra);
    let app = spawn_app(settings_for(&mock.base_url(), &env)).await;
    Stack { mock, app, issuer }
}

async fn web_messaging_mode(extra: &[(&str, &str)]) -> Stack {
    let mut env = vec![("APP__GUEST__UPSTREAM", "web-messaging")];
    env.extend_from_slice(extra);
    start(&env).await
}

async fn post(stack: &Stack, path: &str, session: Option<&str>, origin: Option<&str>, body: Value) -> Answer {
    let mut request = http()
        .post(format!("{}{path}", stack.app.address))
        .insert_header(("content-type", "application/json"));
    if let Some(origin) = origin {
        request = request.insert_header(("origin", origin));
    }
    if let Some(session) = session {
        request = request.insert_header(("authorization", format!("Bearer {session}")));
    }
    send(request, Some(body.to_string())).await
}

async fn auth_code(stack: &Stack, session: Option<&str>) -> Answer {
    post(
        stack,
        "/api/webmessaging/auth-code",
        session,
        Some(ALLOWED_ORIGIN),
        json!({}),
    )
    .await
}

async fn guest_token(stack: &Stack, session: Option<&str>, body: Value) -> Answer {
    post(
        stack,
        "/api/webchat/guest-token",
        session,
        Some(ALLOWED_ORIGIN),
        body,
    )
    .await
}

/// Genesys' code exchange, as the Messenger calls it from the page.
async fn exchange(stack: &Stack, oauth: Value) -> Answer {
    let request = http()
        .post(format!("{}{OAUTH_EXCHANGE_PATH}", stack.mock.base_url()))
        .insert_header(("content-type", "application/json"))
        .insert_header(("origin", ALLOWED_ORIGIN));
    send(
        request,
        Some(json!({"deploymentId": DEFAULT_DEPLOYMENT_ID, "oauth": oauth}).to_string()),
    )
    .await
}

fn messenger_oauth(code: &Answer) -> Value {
    json!({
        "code": code.body["authCode"], "redirectUri": code.body["redirectUri"],
        "nonce": code.body["nonce"], "codeVerifier": code.body["codeVerifier"],
    })
}

/// The claims of a JWT, unverified (the emulator's messaging JWT is verified by its WebSocket).
fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Times the service redeemed a code for Genesys: the emulator's outbound calls to `/oidc/token`.
fn redemptions(stack: &Stack) -> Vec<mock_genesys::JournalEntry> {
    stack
        .mock
        .requests_by(None, Some(RequestDirection::Outbound))
        .into_iter()
        .filter(|e| e.path.ends_with("/oidc/token"))
        .collect()
}

async fn metric(stack: &Stack, line_start: &str) -> f64 {
    metrics_text(&stack.app.address)
        .await
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn socket(stack: &Stack) -> Socket {
    let url = stack.mock.websocket_url(DEFAULT_DEPLOYMENT_ID);
    let (_, socket) = awc::Client::new()
        .ws(url)
        .origin(ALLOWED_ORIGIN)
        .connect()
        .await
        .expect("the WebSocket opens");
    socket
}

async fn ask(socket: &mut Socket, message: Value) -> Value {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
    loop {
        let frame = actix_rt::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an answer in time")
            .expect("the socket is open")
            .expect("a frame");
        match frame {
            Frame::Text(bytes) => return serde_json::from_slice(&bytes).unwrap(),
            Frame::Ping(bytes) => socket.send(Message::Pong(bytes)).await.unwrap(),
            _ => {}
        }
    }
}

/// Opens an authenticated session with `jwt`, sends a text and returns the agent's reply.
async fn chat(stack: &Stack, jwt: &str, text: &str) -> (Value, Value) {
    let mut socket = socket(stack).await;
    let token = uuid::Uuid::new_v4().to_string();
    let session = ask(
        &mut socket,
        json!({"action": "configureAuthenticatedSession", "token": token,
               "deploymentId": DEFAULT_DEPLOYMENT_ID, "data": {"code": jwt}}),
    )
    .await;
    if session["class"] != "SessionResponse" {
        return (session, Value::Null);
    }
    let reply = ask(
        &mut socket,
        json!({"action": "onMessage", "token": token, "message": {"type": "Text", "text": text}}),
    )
    .await;
    (session, reply)
}

#[actix_rt::test]
async fn a_signed_in_visitor_gets_a_genesys_messaging_jwt_that_opens_an_authenticated_session() {
    let stack = web_messaging_mode(&[]).await;
    let answer = guest_token(&stack, Some(&session(json!({}))), json!({})).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let jwt = answer.body["guestToken"].as_str().unwrap();
    assert_eq!(answer.body["guestId"], "user-42", "the guest is the site's user");
    assert_eq!(claims_of(jwt)["sub"], "user-42");
    assert_eq!(answer.body["deploymentId"], DEFAULT_DEPLOYMENT_ID);
    assert_eq!(
        answer.body["webSocketUrl"],
        format!("ws://127.0.0.1:{}/v1", stack.mock.port())
    );
    assert!(
        answer.body["refreshToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let ttl = answer.body["ttlSeconds"].as_u64().unwrap();
    assert!(
        ttl > 800 && ttl <= 900,
        "min(900 s, the access token's 900 s): {ttl}"
    );

    // Genesys redeemed the service's code at its token endpoint, credentials redacted.
    let redeemed = redemptions(&stack);
    assert_eq!(redeemed.len(), 1, "{redeemed:?}");
    assert_eq!(redeemed[0].status, 200);
    assert!(!redeemed[0].body.contains(CLIENT_SECRET));

    let (session, reply) = chat(&stack, jwt, "hello").await;
    assert_eq!(session["class"], "SessionResponse", "{session}");
    assert_eq!(session["body"]["connected"], true);
    assert_eq!(reply["body"]["text"], "echo: hello", "{reply}");

    assert_eq!(
        metric(&stack, "oidc_codes_issued_total{via=\"guest_token\"}").await,
        1.0
    );
    assert_eq!(
        metric(&stack, "genesys_exchanges_total{outcome=\"ok\"}").await,
        1.0
    );
    assert_eq!(
        metric(
            &stack,
            "oidc_token_requests_total{grant=\"authorization_code\",outcome=\"ok\"}"
        )
        .await,
        1.0
    );
}

#[actix_rt::test]
async fn the_stock_messenger_path_exchanges_a_code_from_auth_code() {
    let stack = start(&[]).await;
    let code = auth_code(&stack, Some(&session(json!({"sub": "user-7"})))).await;
    assert_eq!(code.status, 200, "{}", code.body);
    assert_eq!(code.body["redirectUri"], REDIRECT);
    assert!(code.body["codeVerifier"].as_str().unwrap().len() >= 43);
    let exchanged = exchange(&stack, messenger_oauth(&code)).await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.body);
    let jwt = exchanged.body["jwt"].as_str().unwrap();
    assert_eq!(claims_of(jwt)["sub"], "user-7");
    let (session, reply) = chat(&stack, jwt, "from the Messenger").await;
    assert_eq!(session["body"]["connected"], true, "{session}");
    assert_eq!(reply["body"]["text"], "echo: from the Messenger");
}

#[actix_rt::test]
async fn a_code_is_redeemed_once() {
    let stack = start(&[]).await;
    let code = auth_code(&stack, Some(&session(json!({})))).await;
    assert_eq!(exchange(&stack, messenger_oauth(&code)).await.status, 200);
    let again = exchange(&stack, messenger_oauth(&code)).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(again.body["code"], "authorization.code.invalid");
    assert!(again.body.get("jwt").is_none());
    let redeemed = redemptions(&stack);
    assert_eq!(
        redeemed.iter().map(|e| e.status).collect::<Vec<_>>(),
        [200, 400],
        "the provider refused the second redemption"
    );
}

/// Redeems at the service's token endpoint directly, as Genesys would.
async fn redeem(stack: &Stack, form: &[(&str, &str)], secret: &str) -> Answer {
    let request = http()
        .post(format!("{}/oidc/token", stack.app.address))
        .basic_auth(CLIENT_ID, secret)
        .insert_header(("content-type", "application/x-www-form-urlencoded"));
    send(request, Some(serde_urlencoded::to_string(form).unwrap())).await
}

#[actix_rt::test]
async fn a_code_is_bound_to_its_redirect_uri_and_verifier_and_the_client_to_its_secret() {
    let stack = start(&[]).await;
    let cases: [(&str, &str, &str, u16, &str); 3] = [
        (
            "http://localhost:8080/elsewhere",
            "right",
            CLIENT_SECRET,
            400,
            "invalid_grant",
        ),
        (REDIRECT, "wrong", CLIENT_SECRET, 400, "invalid_grant"),
        (REDIRECT, "right", "a-wrong-client-secret", 401, "invalid_client"),
    ];
    for (redirect, verifier, secret, status, error) in cases {
        let code = auth_code(&stack, Some(&session(json!({})))).await;
        let verifier = match verifier {
            "right" => code.body["codeVerifier"].as_str().unwrap().to_owned(),
            _ => "another-verifier-that-is-long-enough-to-be-valid-0123456789".to_owned(),
        };
        let answer = redeem(
            &stack,
            &[
                ("grant_type", "authorization_code"),
                ("code", code.body["authCode"].as_str().unwrap()),
                ("redirect_uri", redirect),
                ("code_verifier", &verifier),
            ],
            secret,
        )
        .await;
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (status, Some(error)),
            "{}",
            answer.body
        );
        assert!(answer.body.get("access_token").is_none() && answer.body.get("id_token").is_none());
        if status == 401 {
            assert!(answer.header("www-authenticate").unwrap().starts_with("Basic"));
        }
        assert!(!answer.body.to_string().contains(secret) || secret == CLIENT_SECRET);
    }
}

#[actix_rt::test]
async fn an_expired_code_is_refused() {
    let stack = start(&[("APP__OIDC__CODE_TTL_SECONDS", "1")]).await;
    let code = auth_code(&stack, Some(&session(json!({})))).await;
    let issued_at = unix_now();
    // The code lives one second: wait for the clock to pass it.
    let expired = eventually(Duration::from_secs(5), || async { unix_now() > issued_at + 1 }).await;
    assert!(expired);
    let answer = exchange(&stack, messenger_oauth(&code)).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["code"], "authorization.code.invalid");
    assert_eq!(redemptions(&stack)[0].status, 400);
}

#[actix_rt::test]
async fn a_forged_expired_or_foreign_site_session_issues_nothing() {
    let stack = web_messaging_mode(&[]).await;
    let none_alg = {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(
            json!({"iss": SITE_ISSUER, "aud": SITE_AUDIENCE, "sub": "user-42", "exp": unix_now() + 300})
                .to_string(),
        );
        format!("{header}.{claims}.")
    };
    let cases = [
        (
            "forged",
            session_with(json!({}), b"a-secret-the-site-never-had-0123456789"),
        ),
        (
            "expired",
            session(json!({"exp": unix_now() - 120, "iat": unix_now() - 600})),
        ),
        ("another issuer", session(json!({"iss": "https://evil.example"}))),
        ("another audience", session(json!({"aud": "some-other-app"}))),
        ("alg none", none_alg),
    ];
    for (what, token) in cases {
        for path in ["/api/webchat/guest-token", "/api/webmessaging/auth-code"] {
            let answer = post(&stack, path, Some(&token), Some(ALLOWED_ORIGIN), json!({})).await;
            answer.assert_problem(401, "site_session_invalid");
            assert!(answer.body.get("authCode").is_none(), "{what}");
        }
    }
    // No session at all, and anonymous visitors not allowed here.
    guest_token(&stack, None, json!({}))
        .await
        .assert_problem(401, "not_signed_in");
    assert!(redemptions(&stack).is_empty(), "nothing reached Genesys");
    assert_eq!(metric(&stack, "oidc_codes_issued_total").await, 0.0);
    assert!(metric(&stack, "site_session_rejections_total{reason=\"signature\"}").await >= 2.0);
    assert!(metric(&stack, "site_session_rejections_total{reason=\"expired\"}").await >= 2.0);
}

#[actix_rt::test]
async fn the_customer_id_never_becomes_the_visitor() {
    let stack = web_messaging_mode(&[("APP__WEB_MESSAGING__ALLOW_ANONYMOUS", "true")]).await;
    let anonymous = guest_token(&stack, None, json!({"customerId": "user-42"})).await;
    assert_eq!(anonymous.status, 201, "{}", anonymous.body);
    let sub = anonymous.body["guestId"].as_str().unwrap();
    assert!(sub.starts_with("anonymous-"), "{sub}");
    assert_eq!(
        claims_of(anonymous.body["guestToken"].as_str().unwrap())["sub"],
        sub
    );
    let signed_in = guest_token(
        &stack,
        Some(&session(json!({"sub": "alice"}))),
        json!({"customerId": "bob", "sub": "bob"}),
    )
    .await;
    assert_eq!(signed_in.body["guestId"], "alice", "{}", signed_in.body);
}

#[actix_rt::test]
async fn an_origin_the_deployment_does_not_allow_is_refused_before_any_code() {
    let stack =
        web_messaging_mode(&[("FRONTEND_ORIGIN", "http://localhost:8080,http://127.0.0.1:8080")]).await;
    for path in ["/api/webchat/guest-token", "/api/webmessaging/auth-code"] {
        // Allowed by the service's CORS list, not by the Genesys deployment.
        let answer = post(
            &stack,
            path,
            Some(&session(json!({}))),
            Some("http://127.0.0.1:8080"),
            json!({}),
        )
        .await;
        answer.assert_problem(403, "origin_not_allowed");
        // Not allowed by the service at all.
        post(
            &stack,
            path,
            Some(&session(json!({}))),
            Some("https://evil.example"),
            json!({}),
        )
        .await
        .assert_problem(403, "origin_not_allowed");
    }
    assert_eq!(metric(&stack, "oidc_codes_issued_total").await, 0.0);
    assert!(redemptions(&stack).is_empty());
}

#[actix_rt::test]
async fn an_inactive_deployment_is_refused_and_reported_by_readiness() {
    let stack = web_messaging_mode(&[]).await;
    assert_eq!(
        guest_token(&stack, Some(&session(json!({}))), json!({}))
            .await
            .status,
        201
    );
    stack
        .mock
        .put_deployment(deployment(&stack.issuer, "Inactive", &[ALLOWED_ORIGIN]));
    let refused = eventually(Duration::from_secs(10), || async {
        guest_token(&stack, Some(&session(json!({}))), json!({}))
            .await
            .status
            == 503
    })
    .await;
    assert!(refused, "the cached deployment is read again");
    let answer = guest_token(&stack, Some(&session(json!({}))), json!({})).await;
    answer.assert_problem(503, "deployment_inactive");
    assert!(answer.header("retry-after").is_some());
    // The Messenger's path gets no code either once the service has read the deployment again
    // (until then Genesys refused the exchange itself): Genesys would refuse to redeem it.
    let read_again = eventually(Duration::from_secs(10), || async {
        auth_code(&stack, Some(&session(json!({})))).await.status == 503
    })
    .await;
    assert!(read_again, "the cached deployment is read again");
    let codes = metric(&stack, "oidc_codes_issued_total").await;
    auth_code(&stack, Some(&session(json!({}))))
        .await
        .assert_problem(503, "deployment_inactive");
    assert_eq!(
        metric(&stack, "oidc_codes_issued_total").await,
        codes,
        "no code minted"
    );
    assert_eq!(
        redemptions(&stack).len(),
        1,
        "only the first request reached the exchange"
    );
    let unready = eventually(Duration::from_secs(10), || async {
        let ready = get(&stack.app.address, "/readyz").await;
        ready.status == 503
            && ready.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("Inactive"))
    })
    .await;
    assert!(unready, "readiness reports the inactive deployment");
}

#[actix_rt::test]
async fn the_provider_publishes_discovery_and_keys_that_verify_its_id_tokens() {
    let stack = start(&[]).await;
    let discovery = get(&stack.app.address, DISCOVERY_PATH).await;
    assert_eq!(discovery.body["issuer"], stack.issuer);
    assert_eq!(
        discovery.body["token_endpoint"],
        format!("{}/oidc/token", stack.issuer)
    );
    let jwks = get(&stack.app.address, "/oidc/jwks.json").await;
    let code = auth_code(&stack, Some(&session(json!({})))).await;
    let tokens = redeem(
        &stack,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.body["authCode"].as_str().unwrap()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", code.body["codeVerifier"].as_str().unwrap()),
        ],
        CLIENT_SECRET,
    )
    .await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(tokens.header("cache-control"), Some("no-store"));
    jose::install_provider();
    let id_token = tokens.body["id_token"].as_str().unwrap();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.body).unwrap();
    let kid = jsonwebtoken::decode_header(id_token).unwrap().kid.unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[&stack.issuer]);
    let claims = jsonwebtoken::decode::<IdTokenClaims>(
        id_token,
        &jsonwebtoken::DecodingKey::from_jwk(set.find(&kid).unwrap()).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(
        (claims.sub.as_str(), claims.nonce.as_ref()),
        ("user-42", code.body["nonce"].as_str().map(str::to_owned).as_ref())
    );
    let userinfo = send(
        http()
            .get(format!("{}/oidc/userinfo", stack.app.address))
            .bearer_auth(tokens.body["access_token"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(userinfo.body["sub"], "user-42");
    assert_eq!(userinfo.body["email"], "ada@example.com");
}

#[actix_rt::test]
async fn authorize_redirects_a_signed_in_visitor_with_a_code_and_others_to_the_login_page() {
    let stack = start(&[("APP__WEB_MESSAGING__ALLOW_ANONYMOUS", "false")]).await;
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        b"a-code-verifier-of-at-least-forty-three-characters-0123",
    ));
    let query = |prompt: &str| {
        serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile"),
            ("state", "xyz"),
            ("nonce", "n-1"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("prompt", prompt),
        ])
        .unwrap()
    };
    let authorize = |cookie: Option<String>, prompt: &'static str| {
        let mut request = http().get(format!("{}/oidc/authorize?{}", stack.app.address, query(prompt)));
        if let Some(cookie) = cookie {
            request = request.insert_header(("cookie", format!("other=1; site_session={cookie}")));
        }
        async move { send(request, None).await }
    };
    let signed_in = authorize(Some(session(json!({}))), "login").await;
    assert_eq!(signed_in.status, 302);
    let location = signed_in.header("location").unwrap();
    assert!(
        location.starts_with(&format!("{REDIRECT}?code=")) && location.ends_with("&state=xyz"),
        "{location}"
    );

    let anonymous = authorize(None, "login").await;
    assert!(
        anonymous
            .header("location")
            .unwrap()
            .starts_with("http://localhost:8080/?return_to=")
    );
    let silent = authorize(None, "none").await;
    assert_eq!(
        silent.header("location"),
        Some(
            "http://localhost:8080/?error=login_required&error_description=the+visitor+is+not+signed+in&state=xyz"
        )
    );
    // An unknown redirect URI is never redirected to.
    let bad = send(
        http().get(format!(
            "{}/oidc/authorize?{}",
            stack.app.address,
            query("login").replace("localhost%3A8080", "evil.example")
        )),
        None,
    )
    .await;
    bad.assert_problem(400, "invalid_request");
    assert!(bad.header("location").is_none());
    // A state too long to echo is refused here; a nonce too long to seal, at the redirect URI.
    let long = "n".repeat(513);
    let session_cookie = format!("site_session={}", session(json!({})));
    let with = |name: &str, value: &str| {
        let (state, nonce) = if name == "state" {
            (value, "n-1")
        } else {
            ("xyz", value)
        };
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .unwrap();
        http()
            .get(format!("{}/oidc/authorize?{query}", stack.app.address))
            .insert_header(("cookie", session_cookie.clone()))
    };
    let long_state = send(with("state", &long), None).await;
    long_state.assert_problem(400, "invalid_request");
    assert!(long_state.header("location").is_none());
    let long_nonce = send(with("nonce", &long), None).await;
    assert_eq!(long_nonce.status, 302);
    assert!(
        long_nonce
            .header("location")
            .is_some_and(|l| l.contains("error=invalid_request") && !l.contains("code=")),
        "{:?}",
        long_nonce.header("location")
    );
    let at_the_limit = send(with("nonce", &"n".repeat(512)), None).await;
    assert!(
        at_the_limit
            .header("location")
            .is_some_and(|l| l.contains("code="))
    );
}

/// The site identity provider's JWKS endpoint: answers `jwks`, or 503 while `down`, and counts
/// the requests it got.
struct SiteKeys {
    url: String,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SiteKeys {
    fn start(jwks: Value) -> SiteKeys {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering::SeqCst;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (count, is_down) = (served.clone(), down.clone());
        std::thread::spawn(move || {
            for mut connection in listener.incoming().map_while(Result::ok) {
                let mut request = [0u8; 4096];
                let _ = connection.read(&mut request);
                count.fetch_add(1, SeqCst);
                let (status, body) = if is_down.load(SeqCst) {
                    ("503 Service Unavailable", "{}".to_owned())
                } else {
                    ("200 OK", jwks.to_string())
                };
                let _ = connection.write_all(
                    format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        SiteKeys { url, served, down }
    }
}

fn jose_fixture(name: &str) -> Vec<u8> {
    std::fs::read(config_dir().join("../crates/jose/tests/fixtures").join(name)).unwrap()
}

#[actix_rt::test]
async fn with_a_jwks_only_the_sites_rs256_sessions_pass_and_its_public_key_is_no_hmac_secret() {
    let site_key = jose::RsaSigningKey::from_pem(&jose_fixture("test-only-rsa-2048.pkcs8.pem")).unwrap();
    let keys = SiteKeys::start(json!({"keys": [site_key.public_jwk()]}));
    let stack = web_messaging_mode(&[
        ("APP__SITE_SESSION__SECRET_FILE", ""),
        ("APP__SITE_SESSION__JWKS_URL", keys.url.as_str()),
        // Two key families listed: each token is checked against its own.
        ("APP__SITE_SESSION__ALGORITHMS", "ES256,RS256"),
    ])
    .await;
    let claims = json!({
        "iss": SITE_ISSUER, "aud": SITE_AUDIENCE, "sub": "rs-user",
        "iat": unix_now(), "exp": unix_now() + 300,
    });
    let genuine = site_key.sign(&claims).unwrap();
    let answer = guest_token(&stack, Some(&genuine), json!({})).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["guestId"], "rs-user");

    // The classic confusion: HS256 keyed with the site's public key, under the site's kid.
    let public_pem = jose_fixture("test-only-rsa-2048.public.pem");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(site_key.kid().to_owned());
    let confused = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&public_pem)).unwrap();
    let refused = guest_token(&stack, Some(&confused), json!({})).await;
    refused.assert_problem(401, "site_session_invalid");
    assert!(
        refused.body["detail"].as_str().unwrap().contains("algorithm"),
        "{}",
        refused.body
    );
    // Another RSA key under the same kid does not verify either.
    let other = jose::RsaSigningKey::from_pem(&jose_fixture("test-only-rsa-2048-other.pkcs8.pem")).unwrap();
    let forged_token = {
        let mut parts: Vec<String> = other
            .sign(&claims)
            .unwrap()
            .split('.')
            .map(str::to_owned)
            .collect();
        parts[0] = genuine.split('.').next().unwrap().to_owned();
        parts.join(".")
    };
    guest_token(&stack, Some(&forged_token), json!({}))
        .await
        .assert_problem(401, "site_session_invalid");
    assert_eq!(
        redemptions(&stack).len(),
        1,
        "only the genuine session reached Genesys"
    );
    assert_eq!(
        keys.served.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the site's keys were fetched once and cached"
    );
}

#[actix_rt::test]
async fn while_the_sites_keys_cannot_be_fetched_callers_are_refused_fast_not_queued_fetch_after_fetch() {
    let site_key = jose::RsaSigningKey::from_pem(&jose_fixture("test-only-rsa-2048.pkcs8.pem")).unwrap();
    let keys = SiteKeys::start(json!({"keys": [site_key.public_jwk()]}));
    keys.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let stack = web_messaging_mode(&[
        ("APP__SITE_SESSION__SECRET_FILE", ""),
        ("APP__SITE_SESSION__JWKS_URL", keys.url.as_str()),
    ])
    .await;
    let session = site_key
        .sign(&json!({
            "iss": SITE_ISSUER, "aud": SITE_AUDIENCE, "sub": "rs-user",
            "iat": unix_now(), "exp": unix_now() + 300,
        }))
        .unwrap();
    let visitors: Vec<_> = (0..20).map(|_| auth_code(&stack, Some(&session))).collect();
    for answer in futures_util::future::join_all(visitors).await {
        // Not the visitor's fault: "retry shortly", not "sign in again".
        answer.assert_problem(503, "not_ready");
        assert!(answer.header("retry-after").is_some());
        assert!(
            answer.body["detail"]
                .as_str()
                .unwrap()
                .contains("sign-in keys cannot be read"),
            "{}",
            answer.body
        );
    }
    // One fetch (with its retries of the 503) for all twenty, not one each.
    let fetches = keys.served.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=4).contains(&fetches),
        "{fetches} requests for the site's keys"
    );
    assert_eq!(metric(&stack, "oidc_codes_issued_total").await, 0.0);
}
