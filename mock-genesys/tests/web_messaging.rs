//! Genesys web messaging through real HTTP and real WebSockets on random loopback ports, against a
//! real (test) identity provider: the code exchange, refresh, revoke, the WebSocket's actions, the
//! outbound journal, CORS and the deployments' admin API.

mod support;

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mock_genesys::{DEFAULT_DEPLOYMENT_ID, MockSettings, RequestDirection};
use serde_json::{Value, json};
use support::idp::{CLIENT_SECRET, IdTokenFault, REDIRECT_URI, Step};
use support::web::*;
use support::*;

// ---- The happy path ----

#[actix_rt::test]
async fn a_code_becomes_an_authenticated_websocket_session_whose_text_gets_the_agent_echo() {
    let bench = Bench::start().await;
    let started = time::OffsetDateTime::now_utc().unix_timestamp();
    let (jwt, refresh_token) = bench.sign_in("visitor-42").await;
    assert_eq!(refresh_token.len(), 43);

    // The messaging JWT verifies with the emulator's published key and carries the visitor.
    let jwks: JwkSet = serde_json::from_value(bench.h.get("/__admin/jwks.json").await.json()).unwrap();
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    let key = DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[MockSettings::default().issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(&jwt, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "visitor-42");
    assert_eq!(claims["deploymentId"], DEPLOYMENT);
    let iat = claims["iat"].as_i64().unwrap();
    assert!(iat >= started);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - iat,
        900,
        "the provider's token lives longer"
    );
    assert!(claims["jti"].is_string() && claims["sid"].is_string());

    // The provider was called as Genesys calls it: Basic client authentication, PKCE, redirect URI.
    let calls = bench.idp.token_calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].authorization.as_deref().unwrap().starts_with("Basic "));
    assert_eq!(calls[0].form["grant_type"], "authorization_code");
    assert_eq!(calls[0].form["redirect_uri"], REDIRECT_URI);
    assert_eq!(calls[0].form["code_verifier"], VERIFIER);
    assert!(!calls[0].form.contains_key("client_secret"));

    let mut socket = bench.socket().await;
    let session = ask(&mut socket, configure_authenticated("session-1", &jwt)).await;
    assert_eq!(
        session,
        json!({"type": "response", "class": "SessionResponse", "code": 200,
               "body": {"connected": true, "newSession": true, "readOnly": false, "maxCustomDataBytes": 2048}})
    );
    let reply = ask(&mut socket, text_message("session-1", "hello")).await;
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["class"], "StructuredMessage");
    assert_eq!(reply["code"], 200);
    assert_eq!(reply["body"]["direction"], "Outbound");
    assert_eq!(reply["body"]["type"], "Text");
    assert_eq!(reply["body"]["text"], "echo: hello");
    assert!(reply["body"]["id"].is_string());

    let fresh = ask(&mut socket, json!({"action": "getJwt", "token": "session-1"})).await;
    assert_eq!(fresh["class"], "JwtResponse");
    let fresh_claims = support::web::claims(fresh["body"]["jwt"].as_str().unwrap());
    assert_eq!(fresh_claims["sub"], "visitor-42");
    assert_eq!(fresh_claims["sid"], claims["sid"], "the same session");
    assert_eq!(fresh["body"]["exp"], fresh_claims["exp"]);
}

#[actix_rt::test]
async fn a_deployment_configured_only_through_the_admin_api_redeems_its_providers_codes() {
    let settings = MockSettings {
        deployments: Vec::new(),
        ..MockSettings::default()
    };
    let h = Harness::with(settings);
    let idp = support::idp::IdentityProvider::start();
    let bench = Bench { h, idp };
    let code = bench.code("visitor-1");
    let before = bench.exchange(&Bench::exchange_body(&code)).await;
    assert_genesys_error(&before, 404, "not.found");
    assert_eq!(
        bench
            .put_deployment(DEPLOYMENT, bench.deployment_body())
            .await
            .status,
        201
    );
    let (jwt, _) = bench.sign_in("visitor-1").await;
    assert_eq!(claims(&jwt)["deploymentId"], DEPLOYMENT);
}

#[actix_rt::test]
async fn the_messaging_jwt_lives_no_longer_than_the_providers_access_token() {
    let bench = Bench::start().await;
    bench.idp.behave(|b| b.access_token_expires_in = 120);
    let (jwt, refresh_token) = bench.sign_in("v").await;
    let claims = claims(&jwt);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    // A refresh keeps the cap, and a shorter setting wins over the provider's lifetime.
    bench
        .h
        .patch_json("/__admin/settings", &json!({"messagingJwtTtlSeconds": 60}))
        .await;
    let refreshed = bench.refresh(&refresh_token).await.json();
    let claims = support::web::claims(refreshed["jwt"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60
    );
}

#[actix_rt::test]
async fn client_secret_post_is_used_when_the_provider_offers_only_post() {
    let bench = Bench::start().await;
    bench
        .idp
        .behave(|b| b.auth_methods = Some(vec!["client_secret_post"]));
    bench.sign_in("v").await;
    let call = &bench.idp.token_calls()[0];
    assert_eq!(call.authorization, None);
    assert_eq!(call.form["client_secret"], CLIENT_SECRET);
    assert_eq!(call.form["client_id"], support::idp::CLIENT_ID);
    bench
        .idp
        .behave(|b| b.auth_methods = Some(vec!["client_secret_basic", "client_secret_post"]));
    bench.sign_in("v").await;
    assert!(
        bench.idp.token_calls()[1].authorization.is_some(),
        "basic when both are offered"
    );
    bench
        .idp
        .behave(|b| b.auth_methods = Some(vec!["private_key_jwt"]));
    let reply = bench.exchange(&Bench::exchange_body(&bench.code("v"))).await;
    let error = assert_genesys_error(&reply, 502, "identity.provider.discovery.failed");
    assert!(
        error["message"].as_str().unwrap().contains("client_secret_basic"),
        "{error}"
    );
}

#[actix_rt::test]
async fn an_id_token_instead_of_a_code_is_checked_the_same_way() {
    let bench = Bench::start().await;
    // Obtain a genuine ID token from the provider, as a page using the implicit flow would hold.
    let id_token = {
        let code = bench.code("visitor-7");
        let form = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}&client_id={}&client_secret={CLIENT_SECRET}",
            urlencode(REDIRECT_URI),
            support::idp::CLIENT_ID
        );
        let request = bench
            .h
            .client
            .post(format!("{}/token", bench.idp.base_url()))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
        let reply = bench.h.send(request, Some(form.as_bytes())).await;
        reply.json()["id_token"].as_str().unwrap().to_owned()
    };
    let body = json!({"deploymentId": DEPLOYMENT,
                      "oauth": {"idToken": id_token, "redirectUri": REDIRECT_URI, "nonce": NONCE}});
    let reply = bench.exchange(&body).await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(claims(reply.json()["jwt"].as_str().unwrap())["sub"], "visitor-7");
    let wrong_nonce = json!({"deploymentId": DEPLOYMENT,
                             "oauth": {"idToken": id_token, "redirectUri": REDIRECT_URI, "nonce": "other"}});
    let error = assert_genesys_error(&bench.exchange(&wrong_nonce).await, 401, "id.token.invalid");
    assert!(error["message"].as_str().unwrap().contains("nonce"));
}

fn urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("x", value)]).unwrap()[2..].to_owned()
}

// ---- Every failure a user can meet ----

/// Exchanges a fresh code and returns the error body after checking status and code, and that no
/// secret, code or verifier shows in it.
async fn refused(bench: &Bench, status: u16, code: &str) -> String {
    let grant = bench.code("visitor");
    let reply = bench.exchange(&Bench::exchange_body(&grant)).await;
    let body = assert_genesys_error(&reply, status, code);
    let raw = String::from_utf8_lossy(&reply.body).into_owned();
    for secret in [grant.as_str(), CLIENT_SECRET, VERIFIER] {
        assert!(!raw.contains(secret), "{raw}");
    }
    body["message"].as_str().unwrap().to_owned()
}

#[actix_rt::test]
async fn an_id_token_failing_a_check_is_refused_naming_the_check() {
    let bench = Bench::start().await;
    for (fault, named) in [
        (IdTokenFault::WrongIssuer, "issuer"),
        (IdTokenFault::WrongAudience, "audience"),
        (IdTokenFault::WrongNonce, "nonce"),
        (IdTokenFault::Expired, "expired"),
        (IdTokenFault::BadSignature, "signature"),
        (IdTokenFault::UnknownKid, "signature"),
        (IdTokenFault::Hs256, "algorithm"),
    ] {
        bench.idp.behave(|b| b.id_token = fault);
        let message = refused(&bench, 401, "id.token.invalid").await;
        assert!(message.contains(named), "{fault:?}: {message}");
    }
    bench.idp.behave(|b| b.id_token = IdTokenFault::None);
    bench.sign_in("v").await;
    assert_eq!(
        bench.h.server.session_count(),
        1,
        "no refused exchange opened a session"
    );
}

#[actix_rt::test]
async fn a_failing_identity_provider_step_answers_502_naming_the_step() {
    let bench = Bench::start().await;
    for (step, code, named) in [
        (Step::Discovery, "identity.provider.discovery.failed", "discovery"),
        (Step::Token, "identity.provider.token.failed", "token endpoint"),
        (Step::Jwks, "identity.provider.jwks.failed", "JWKS"),
    ] {
        bench.idp.behave(|b| b.garbage = Some(step));
        let message = refused(&bench, 502, code).await;
        assert!(
            message.contains(named) && message.contains("not a"),
            "{step:?}: {message}"
        );
        bench.idp.behave(|b| {
            b.garbage = None;
            b.status = Some((step, 500));
        });
        let message = refused(&bench, 502, code).await;
        assert!(message.contains("500"), "{step:?}: {message}");
        bench.idp.behave(|b| b.status = None);
    }
}

#[actix_rt::test]
async fn a_slow_identity_provider_times_out_at_each_step_without_holding_the_caller() {
    let bench = Bench::with(MockSettings {
        identity_provider_timeout_ms: 300,
        ..MockSettings::default()
    })
    .await;
    for (step, code) in [
        (Step::Discovery, "identity.provider.discovery.failed"),
        (Step::Token, "identity.provider.token.failed"),
        (Step::Jwks, "identity.provider.jwks.failed"),
    ] {
        bench
            .idp
            .behave(|b| b.slow = Some((step, Duration::from_secs(5))));
        let started = Instant::now();
        let message = refused(&bench, 502, code).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{step:?}: {:?}",
            started.elapsed()
        );
        assert!(message.contains("timed out after 300 ms"), "{step:?}: {message}");
        bench.idp.behave(|b| b.slow = None);
    }
}

#[actix_rt::test]
async fn an_unreachable_identity_provider_answers_502() {
    let mut bench = Bench::start().await;
    bench.idp.stop();
    let message = refused(&bench, 502, "identity.provider.discovery.failed").await;
    assert!(message.contains(&bench.idp.discovery_url()), "{message}");
}

#[actix_rt::test]
async fn a_reused_or_mismatched_code_is_refused_as_invalid() {
    let bench = Bench::start().await;
    let code = bench.code("visitor");
    assert_eq!(bench.exchange(&Bench::exchange_body(&code)).await.status, 200);
    let again = bench.exchange(&Bench::exchange_body(&code)).await;
    let error = assert_genesys_error(&again, 400, "authorization.code.invalid");
    assert!(error["message"].as_str().unwrap().contains("already"), "{error}");
    let mut wrong_verifier = Bench::exchange_body(&bench.code("visitor"));
    wrong_verifier["oauth"]["codeVerifier"] = json!("another-verifier-that-is-long-enough-0000000000000");
    assert_genesys_error(
        &bench.exchange(&wrong_verifier).await,
        400,
        "authorization.code.invalid",
    );
    let mut wrong_redirect = Bench::exchange_body(&bench.code("visitor"));
    wrong_redirect["oauth"]["redirectUri"] = json!("https://evil.example.com/callback");
    assert_genesys_error(
        &bench.exchange(&wrong_redirect).await,
        400,
        "authorization.code.invalid",
    );
}

#[actix_rt::test]
async fn a_wrong_integration_secret_answers_502_client_rejected() {
    let bench = Bench::start().await;
    let mut body = bench.deployment_body();
    body["authentication"]["clientSecret"] = json!("not-the-secret");
    assert_eq!(bench.put_deployment(DEPLOYMENT, body).await.status, 200);
    let message = refused(&bench, 502, "identity.provider.client.rejected").await;
    assert!(!message.contains("not-the-secret"), "{message}");
}

#[actix_rt::test]
async fn deployment_problems_are_refused_before_the_provider_is_called() {
    let bench = Bench::start().await;
    let unknown = json!({"deploymentId": "11111111-2222-4333-8444-555555555555",
                         "oauth": {"code": "c", "redirectUri": REDIRECT_URI}});
    assert_genesys_error(&bench.exchange(&unknown).await, 404, "not.found");

    let mut inactive = bench.deployment_body();
    inactive["status"] = json!("Inactive");
    bench.put_deployment(DEPLOYMENT, inactive).await;
    refused(&bench, 403, "deployment.not.active").await;

    let mut without_auth = bench.deployment_body();
    without_auth.as_object_mut().unwrap().remove("authentication");
    bench.put_deployment(DEPLOYMENT, without_auth).await;
    refused(&bench, 400, "deployment.authentication.not.configured").await;

    bench.put_deployment(DEPLOYMENT, bench.deployment_body()).await;
    let from_elsewhere = bench
        .post(
            EXCHANGE,
            &Bench::exchange_body(&bench.code("v")),
            Some("https://evil-example.com"),
        )
        .await;
    assert_genesys_error(&from_elsewhere, 403, "origin.not.allowed");
    assert!(from_elsewhere.header("access-control-allow-origin").is_none());
    assert!(
        bench.idp.token_calls().is_empty(),
        "no refusal reached the provider"
    );
    assert!(
        bench
            .h
            .server
            .requests_by(None, Some(RequestDirection::Outbound))
            .is_empty(),
        "not even its discovery document"
    );
}

#[actix_rt::test]
async fn malformed_exchange_bodies_name_the_field() {
    let bench = Bench::start().await;
    for (body, field) in [
        (json!({"oauth": {"code": "c", "redirectUri": "r"}}), "body"),
        (
            json!({"deploymentId": DEPLOYMENT, "oauth": {"redirectUri": "r"}}),
            "oauth.code",
        ),
        (
            json!({"deploymentId": DEPLOYMENT, "oauth": {"code": "c", "redirectUri": ""}}),
            "oauth.redirectUri",
        ),
        (json!("not an object"), "body"),
    ] {
        let reply = bench.exchange(&body).await;
        let error = assert_genesys_error(&reply, 400, "bad.request");
        assert_eq!(error["details"][0]["fieldName"], field, "{body}");
    }
}

// ---- Refresh and revoke ----

#[actix_rt::test]
async fn a_refresh_token_gives_a_new_jwt_of_the_same_session() {
    let bench = Bench::start().await;
    let (jwt, refresh_token) = bench.sign_in("visitor-9").await;
    let reply = bench.refresh(&refresh_token).await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let refreshed = reply.json()["jwt"].as_str().unwrap().to_owned();
    assert_ne!(refreshed, jwt);
    let (old, new) = (claims(&jwt), claims(&refreshed));
    assert_eq!(
        (new["sub"].clone(), new["sid"].clone()),
        (old["sub"].clone(), old["sid"].clone())
    );
    assert_ne!(new["jti"], old["jti"]);
    let mut socket = bench.socket().await;
    let session = ask(&mut socket, configure_authenticated("s", &refreshed)).await;
    assert_eq!(session["code"], 200, "{session}");

    assert_genesys_error(&bench.refresh("a-guess").await, 401, "refresh.token.invalid");
    let other_deployment = json!({"refreshToken": refresh_token, "deploymentId": DEFAULT_DEPLOYMENT_ID});
    let reply = bench.post(REFRESH, &other_deployment, None).await;
    assert_genesys_error(&reply, 401, "refresh.token.invalid");
}

#[actix_rt::test]
async fn an_expired_refresh_token_stops_working() {
    let bench = Bench::start().await;
    bench
        .h
        .patch_json("/__admin/settings", &json!({"refreshTokenTtlSeconds": 1}))
        .await;
    let (_, refresh_token) = bench.sign_in("v").await;
    let deadline = Instant::now() + STEP_DEADLINE;
    loop {
        let reply = bench.refresh(&refresh_token).await;
        if reply.status == 401 {
            assert_genesys_error(&reply, 401, "refresh.token.invalid");
            break;
        }
        assert_eq!(reply.status, 200);
        assert!(Instant::now() < deadline, "the refresh token never expired");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn revoking_ends_the_refresh_token_and_every_jwt_of_the_session() {
    let bench = Bench::start().await;
    let (jwt, refresh_token) = bench.sign_in("visitor").await;
    let (other_jwt, other_refresh) = bench.sign_in("someone-else").await;
    let mut open_socket = bench.socket().await;
    assert_eq!(
        ask(&mut open_socket, configure_authenticated("open", &jwt)).await["code"],
        200
    );

    let reply = bench.revoke(&jwt).await;
    assert_eq!(reply.status, 204, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.header("access-control-allow-origin"), Some(SHOP));

    assert_genesys_error(&bench.refresh(&refresh_token).await, 401, "refresh.token.invalid");
    assert_genesys_error(&bench.revoke(&jwt).await, 401, "bad.credentials");
    let mut socket = bench.socket().await;
    let refused = ask(&mut socket, configure_authenticated("s", &jwt)).await;
    assert_eq!(
        refused,
        json!({"type": "response", "class": "string", "code": 401, "body": "Session authentication failed"})
    );
    // The socket configured before the revocation loses its session too.
    let refused = ask(&mut open_socket, text_message("open", "still there?")).await;
    assert_eq!(refused["code"], 401);
    // Another visitor's session is untouched.
    assert_eq!(bench.refresh(&other_refresh).await.status, 200);
    assert_eq!(
        ask(&mut socket, configure_authenticated("t", &other_jwt)).await["code"],
        200
    );
    assert_genesys_error(&bench.revoke("not-a-jwt").await, 401, "bad.credentials");
}

// ---- The WebSocket ----

#[actix_rt::test]
async fn an_anonymous_session_talks_without_any_jwt_and_resumes_by_its_token() {
    let bench = Bench::start().await;
    let token = uuid::Uuid::new_v4().to_string();
    let mut socket = bench.socket().await;
    let session = ask(&mut socket, configure_anonymous(&token)).await;
    assert_eq!(session["class"], "SessionResponse");
    assert_eq!(session["body"]["newSession"], true);
    assert_eq!(session["body"]["connected"], true);
    let reply = ask(&mut socket, text_message(&token, "anyone there?")).await;
    assert_eq!(reply["body"]["text"], "echo: anyone there?");
    let jwt = ask(&mut socket, json!({"action": "getJwt", "token": token})).await;
    assert_eq!(jwt["class"], "JwtResponse");
    let anonymous = claims(jwt["body"]["jwt"].as_str().unwrap());
    assert_eq!(anonymous["deploymentId"], DEPLOYMENT);
    // An anonymous JWT opens no authenticated session.
    let refused = ask(
        &mut socket,
        configure_authenticated(&token, jwt["body"]["jwt"].as_str().unwrap()),
    )
    .await;
    assert_eq!(refused["code"], 401);
    drop(socket);

    let mut again = bench.socket().await;
    let resumed = ask(&mut again, configure_anonymous(&token)).await;
    assert_eq!(resumed["body"]["newSession"], false);
    let jwt = ask(&mut again, json!({"action": "getJwt", "token": token})).await;
    assert_eq!(
        claims(jwt["body"]["jwt"].as_str().unwrap())["sub"],
        anonymous["sub"],
        "the same visitor"
    );
}

#[actix_rt::test]
async fn the_agent_reply_follows_the_setting() {
    let bench = Bench::start().await;
    bench
        .h
        .patch_json(
            "/__admin/settings",
            &json!({"agentReply": "Hi, I am Ada. You wrote: {text}"}),
        )
        .await;
    let mut socket = bench.socket().await;
    ask(&mut socket, configure_anonymous("t")).await;
    let reply = ask(&mut socket, text_message("t", "help")).await;
    assert_eq!(reply["body"]["text"], "Hi, I am Ada. You wrote: help");
}

#[actix_rt::test]
async fn actions_out_of_order_or_malformed_get_error_envelopes() {
    let bench = Bench::start().await;
    let mut socket = bench.socket().await;
    let early = ask(&mut socket, text_message("t", "hello")).await;
    assert_eq!(early["type"], "response");
    assert_eq!(early["class"], "string");
    assert_eq!(early["code"], 400);
    assert!(early["body"].as_str().unwrap().contains("configure"), "{early}");
    assert_eq!(
        ask(&mut socket, json!({"action": "getJwt", "token": "t"})).await["code"],
        400
    );
    assert_eq!(
        ask(&mut socket, json!({"action": "dropTables", "token": "t"})).await["code"],
        400
    );
    send(&mut socket, &json!("not an action")).await;
    assert_eq!(receive(&mut socket).await["code"], 400);
    let long = "x".repeat(2049);
    assert_eq!(ask(&mut socket, configure_anonymous(&long)).await["code"], 400);
    let mut other = configure_anonymous("t");
    other["deploymentId"] = json!(DEFAULT_DEPLOYMENT_ID);
    assert_eq!(
        ask(&mut socket, other).await["code"],
        400,
        "another deployment than the socket's"
    );
    assert_eq!(
        ask(&mut socket, configure_anonymous(&"y".repeat(2048))).await["code"],
        200
    );
    let foreign = ask(&mut socket, text_message("not-my-token", "hi")).await;
    assert_eq!(foreign["code"], 403);
}

#[actix_rt::test]
async fn a_jwt_of_another_deployment_or_expired_fails_session_authentication() {
    let bench = Bench::start().await;
    let (jwt, _) = bench.sign_in("v").await;
    let second = "22222222-3333-4444-8555-666666666666";
    bench.put_deployment(second, bench.deployment_body()).await;
    let mut socket = bench.connect(second, Some(SHOP)).await.unwrap();
    let mut configure = configure_authenticated("t", &jwt);
    configure["deploymentId"] = json!(second);
    assert_eq!(ask(&mut socket, configure).await["code"], 401);

    // A token signed by someone else with the same claims.
    let (head, rest) = jwt.split_once('.').unwrap();
    let (payload, _) = rest.split_once('.').unwrap();
    let forged = format!("{head}.{payload}.{}", "A".repeat(86));
    let mut socket = bench.socket().await;
    assert_eq!(
        ask(&mut socket, configure_authenticated("t", &forged)).await["code"],
        401
    );

    bench
        .h
        .patch_json("/__admin/settings", &json!({"messagingJwtTtlSeconds": 1}))
        .await;
    let (short, _) = bench.sign_in("v").await;
    let exp = claims(&short)["exp"].as_i64().unwrap();
    until("the JWT has expired", || {
        time::OffsetDateTime::now_utc().unix_timestamp() >= exp
    })
    .await;
    assert_eq!(
        ask(&mut socket, configure_authenticated("t", &short)).await["code"],
        401
    );
}

#[actix_rt::test]
async fn the_upgrade_refuses_unknown_deployments_foreign_origins_and_inactive_deployments() {
    let bench = Bench::start().await;
    assert_eq!(
        bench
            .connect("33333333-4444-4555-8666-777777777777", Some(SHOP))
            .await
            .err(),
        Some(404)
    );
    assert_eq!(
        bench
            .connect(DEPLOYMENT, Some("https://evil-example.com"))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        bench
            .connect(DEPLOYMENT, Some("https://shop.example.com:8443"))
            .await
            .err(),
        Some(403)
    );
    assert!(
        bench
            .connect(DEPLOYMENT, Some("https://a.example.org"))
            .await
            .is_ok(),
        "wildcard entry"
    );
    assert!(
        bench.connect(DEPLOYMENT, None).await.is_ok(),
        "non-browser clients send no Origin"
    );
    let mut inactive = bench.deployment_body();
    inactive["status"] = json!("Deleting");
    bench.put_deployment(DEPLOYMENT, inactive).await;
    assert_eq!(bench.connect(DEPLOYMENT, Some(SHOP)).await.err(), Some(403));
    let reply = bench.h.get("/v1").await;
    assert_genesys_error(&reply, 400, "bad.request");
    let upgrades = bench.h.journal(Some("/v1")).await;
    let statuses: Vec<u64> = upgrades.iter().map(|e| e["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [404, 403, 403, 101, 101, 403, 400]);
}

#[actix_rt::test]
async fn the_default_deployment_serves_the_local_demo_origins() {
    let h = Harness::start();
    let bench = Bench {
        h,
        idp: support::idp::IdentityProvider::start(),
    };
    for origin in ["http://localhost:8080", "http://127.0.0.1:8080"] {
        let mut socket = bench.connect(DEFAULT_DEPLOYMENT_ID, Some(origin)).await.unwrap();
        let mut configure = configure_anonymous("t");
        configure["deploymentId"] = json!(DEFAULT_DEPLOYMENT_ID);
        assert_eq!(ask(&mut socket, configure).await["code"], 200);
    }
    assert_eq!(
        bench
            .connect(DEFAULT_DEPLOYMENT_ID, Some("http://localhost:3000"))
            .await
            .err(),
        Some(403)
    );
}

// ---- Journal, CORS, deployments API, faults and rate limits on the new routes ----

#[actix_rt::test]
async fn outbound_calls_are_journaled_with_credentials_codes_and_tokens_redacted() {
    let bench = Bench::start().await;
    let code = bench.code("visitor");
    let reply = bench.exchange(&Bench::exchange_body(&code)).await;
    let jwt = reply.json()["jwt"].as_str().unwrap().to_owned();
    let refresh_token = reply.json()["refreshToken"].as_str().unwrap().to_owned();
    bench.refresh(&refresh_token).await;

    let outbound = bench.h.get("/__admin/requests?direction=outbound").await.json()["requests"]
        .as_array()
        .unwrap()
        .clone();
    let calls: Vec<(String, String, u64)> = outbound
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap().to_owned(),
                e["url"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let base = bench.idp.base_url();
    assert_eq!(
        calls,
        [
            ("GET".into(), bench.idp.discovery_url(), 200),
            ("POST".into(), format!("{base}/token"), 200),
            ("GET".into(), format!("{base}/jwks.json"), 200),
        ]
    );
    assert!(outbound.iter().all(|e| e["direction"] == "outbound"));
    let token_call = &outbound[1];
    assert_eq!(token_call["path"], "/token");
    assert_eq!(token_call["headers"]["authorization"], "Basic [redacted]");
    let body = token_call["body"].as_str().unwrap();
    assert!(
        body.contains("code=[redacted]") && body.contains("code_verifier=[redacted]"),
        "{body}"
    );
    assert!(body.contains("grant_type=authorization_code"), "{body}");

    let inbound = bench.h.get("/__admin/requests?direction=inbound").await.json()["requests"]
        .as_array()
        .unwrap()
        .clone();
    let paths: Vec<&str> = inbound.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, [EXCHANGE, REFRESH]);
    assert!(inbound.iter().all(|e| e["direction"] == "inbound"));
    let inbound_refresh = inbound[1]["body"].as_str().unwrap();
    assert!(!inbound_refresh.is_empty());

    let everything = bench.h.get("/__admin/requests").await;
    let raw = String::from_utf8_lossy(&everything.body);
    assert_eq!(everything.json()["requests"].as_array().unwrap().len(), 5);
    for secret in [code.as_str(), VERIFIER, CLIENT_SECRET, jwt.as_str()] {
        assert!(!raw.contains(secret), "the journal shows a secret");
    }
    let ids: Vec<u64> = everything.json()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    assert_genesys_error(
        &bench.h.get("/__admin/requests?direction=sideways").await,
        400,
        "bad.request",
    );
}

#[actix_rt::test]
async fn the_token_routes_answer_cors_for_the_deployments_origins() {
    let bench = Bench::start().await;
    let preflight = |origin: &'static str| {
        let request = bench
            .h
            .client
            .request(awc::http::Method::OPTIONS, bench.h.url(EXCHANGE))
            .insert_header(("Origin", origin))
            .insert_header(("Access-Control-Request-Method", "POST"))
            .insert_header(("Access-Control-Request-Headers", "content-type"));
        bench.h.send(request, None)
    };
    let allowed = preflight(SHOP).await;
    assert_eq!(allowed.status, 204);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(SHOP));
    assert!(
        allowed
            .header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert!(
        allowed
            .header("access-control-allow-headers")
            .unwrap()
            .contains("content-type")
    );
    assert!(allowed.body.is_empty());
    let default_deployments_origin = preflight("http://localhost:8080").await;
    assert_eq!(
        default_deployments_origin.status, 204,
        "any deployment's origin passes a preflight"
    );
    let refused = preflight("https://evil-example.com").await;
    assert_genesys_error(&refused, 403, "origin.not.allowed");
    assert!(refused.header("access-control-allow-origin").is_none());

    let reply = bench.exchange(&Bench::exchange_body(&bench.code("v"))).await;
    assert_eq!(reply.header("access-control-allow-origin"), Some(SHOP));
    assert!(
        reply
            .header("access-control-expose-headers")
            .unwrap()
            .contains("inin-correlation-id")
    );
    let failed = bench.exchange(&Bench::exchange_body("no-such-code")).await;
    assert_eq!(failed.status, 400);
    assert_eq!(
        failed.header("access-control-allow-origin"),
        Some(SHOP),
        "errors are readable too"
    );
    // The default deployment's origin may preflight, but this deployment does not allow it.
    let other = bench
        .post(
            EXCHANGE,
            &Bench::exchange_body(&bench.code("v")),
            Some("http://localhost:8080"),
        )
        .await;
    assert_genesys_error(&other, 403, "origin.not.allowed");
    assert!(other.header("access-control-allow-origin").is_none());
}

#[actix_rt::test]
async fn faults_latency_and_rate_limits_apply_to_the_new_routes() {
    let bench = Bench::start().await;
    bench.h.add_fault(json!({"path": EXCHANGE, "status": 503})).await;
    let faulted = bench.exchange(&Bench::exchange_body(&bench.code("v"))).await;
    assert_genesys_error(&faulted, 503, "service.unavailable");
    assert_eq!(faulted.header("access-control-allow-origin"), Some(SHOP));
    bench.h.add_fault(json!({"path": "/v1", "status": 503})).await;
    assert_eq!(bench.connect(DEPLOYMENT, Some(SHOP)).await.err(), Some(503));
    assert!(
        bench.connect(DEPLOYMENT, Some(SHOP)).await.is_ok(),
        "the fault was used up"
    );
    bench.h.add_fault(json!({"path": REFRESH, "delayMs": 300})).await;
    let started = Instant::now();
    assert_genesys_error(&bench.refresh("x").await, 401, "refresh.token.invalid");
    assert!(started.elapsed() >= Duration::from_millis(300));

    bench
        .h
        .patch_json(
            "/__admin/settings",
            &json!({"rateLimit": {"requests": 2, "windowSeconds": 60}}),
        )
        .await;
    let first = bench.refresh("x").await;
    assert_eq!(first.header("inin-ratelimit-count"), Some("1"));
    assert_eq!(first.header("inin-ratelimit-allowed"), Some("2"));
    bench.exchange(&Bench::exchange_body(&bench.code("v"))).await;
    let limited = bench.refresh("x").await;
    assert_genesys_error(&limited, 429, "too.many.requests.retry.after");
    assert!(limited.header("retry-after").is_some());
    assert_eq!(
        bench.connect(DEPLOYMENT, Some(SHOP)).await.err(),
        Some(429),
        "the upgrade counts too"
    );
    // Each deployment has its own window; the default one is untouched.
    let default = json!({"refreshToken": "x", "deploymentId": DEFAULT_DEPLOYMENT_ID});
    assert_eq!(bench.post(REFRESH, &default, None).await.status, 401);
}

#[actix_rt::test]
async fn a_client_with_the_view_permission_reads_a_deployment() {
    let h = Harness::start();
    let token = h.token().await;
    let path = format!("/api/v2/webdeployments/deployments/{DEFAULT_DEPLOYMENT_ID}");
    let reply = h.get_bearer(&path, &token).await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(
        reply.json(),
        json!({"id": DEFAULT_DEPLOYMENT_ID, "name": "Local demo", "allowAllDomains": false,
               "allowedDomains": ["http://localhost:8080", "http://127.0.0.1:8080"], "status": "Active",
               "selfUri": path})
    );
    assert_eq!(reply.header("inin-ratelimit-count"), Some("1"));
    let raw = String::from_utf8_lossy(&reply.body);
    assert!(!raw.contains("genesys-local-secret") && !raw.contains("authentication"));
    let unknown = h
        .get_bearer(
            "/api/v2/webdeployments/deployments/44444444-5555-4666-8777-888888888888",
            &token,
        )
        .await;
    assert_genesys_error(&unknown, 404, "not.found");
    assert_eq!(unknown.header("inin-ratelimit-count"), Some("2"));
    let no_scope = h.token_of("no-scope-client", "no-scope-secret").await;
    let forbidden = h.get_bearer(&path, &no_scope).await;
    let error = assert_genesys_error(&forbidden, 403, "missing.permissions");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("webDeployments:deployment:view")
    );
    assert_genesys_error(&h.get(&path).await, 401, "bad.credentials");
}

#[actix_rt::test]
async fn deployments_are_created_replaced_listed_without_secrets_deleted_and_reset() {
    let bench = Bench::start().await;
    let listed = bench.h.get("/__admin/deployments").await.json();
    let deployments = listed["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 2);
    let ours = deployments.iter().find(|d| d["id"] == DEPLOYMENT).unwrap();
    assert_eq!(ours["authentication"]["clientSecret"], "[redacted]");
    assert_eq!(ours["authentication"]["discoveryUri"], bench.idp.discovery_url());
    assert_eq!(ours["allowedDomains"], json!([SHOP, "*.example.org"]));
    let raw = String::from_utf8_lossy(&bench.h.get("/__admin/deployments").await.body).into_owned();
    assert!(!raw.contains(CLIENT_SECRET) && !raw.contains("genesys-local-secret"));

    let replaced = bench
        .put_deployment(DEPLOYMENT, json!({"allowAllDomains": true}))
        .await;
    assert_eq!(replaced.status, 200);
    assert_eq!(replaced.json()["name"], DEPLOYMENT, "replaced whole, not patched");
    assert_eq!(replaced.json()["authentication"], Value::Null);
    for (id, body, mentioned) in [
        ("not-a-uuid", json!({}), "id"),
        (DEPLOYMENT, json!({"status": "Sleeping"}), "Sleeping"),
        (DEPLOYMENT, json!({"allowedDomain": []}), "allowedDomain"),
        (
            DEPLOYMENT,
            json!({"authentication": {"discoveryUri": "ftp://x", "clientId": "c", "clientSecret": "s"}}),
            "authentication.discoveryUri",
        ),
    ] {
        let reply = bench.put_deployment(id, body.clone()).await;
        let error = assert_genesys_error(&reply, 400, "bad.request");
        assert!(
            error["message"].as_str().unwrap().contains(mentioned),
            "{body}: {error}"
        );
    }
    assert_eq!(
        bench
            .h
            .delete(&format!("/__admin/deployments/{DEPLOYMENT}"))
            .await
            .status,
        204
    );
    assert_genesys_error(
        &bench
            .h
            .delete(&format!("/__admin/deployments/{DEPLOYMENT}"))
            .await,
        404,
        "not.found",
    );

    bench.put_deployment(DEPLOYMENT, bench.deployment_body()).await;
    let (_, refresh_token) = bench.sign_in("v").await;
    assert_eq!(bench.h.post_json("/__admin/reset", &json!({})).await.status, 204);
    let after = bench.h.get("/__admin/deployments").await.json();
    let ids: Vec<&str> = after["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [DEFAULT_DEPLOYMENT_ID], "the start-up deployments are back");
    assert_eq!(bench.h.server.session_count(), 0, "sessions end with a reset");
    let stale = json!({"refreshToken": refresh_token, "deploymentId": DEFAULT_DEPLOYMENT_ID});
    assert_eq!(bench.post(REFRESH, &stale, None).await.status, 401);
}
