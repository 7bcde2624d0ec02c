use std::time::{Duration, Instant};

use domain::oidc::IdTokenClaims;
use jsonwebtoken::{DecodingKey, Validation};
use secrecy::SecretString;

use super::*;

const CLIENT: &str = "genesys-local";
const SECRET: &str = "genesys-local-secret";
const REDIRECT: &str = "http://localhost:8080/";
const NOW: i64 = 1_800_000_000;

fn key(file: &str) -> Arc<RsaSigningKey> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config/dev-keys")
        .join(file);
    Arc::new(RsaSigningKey::from_pem(&std::fs::read(path).unwrap()).unwrap())
}

fn settings() -> OidcSettings {
    OidcSettings {
        issuer: "https://chat.example.com".into(),
        signing_key: key("oidc-signing.pem"),
        previous_keys: vec![key("oidc-signing-previous.pem")],
        next_keys: Vec::new(),
        client_id: CLIENT.into(),
        client_secret: SecretString::from(SECRET),
        redirect_uris: vec![REDIRECT.into()],
        code_ttl: Duration::from_secs(60),
        access_token_ttl: Duration::from_secs(900),
        id_token_ttl: Duration::from_secs(300),
        refresh_token_ttl: Duration::from_secs(86_400),
        max_redeemed_codes: 100,
        max_refresh_records: 100,
    }
}

fn provider() -> OidcProvider {
    OidcProvider::new(&settings(), Instant::now())
}

fn provider_with_secret(secret: &str) -> OidcProvider {
    let settings = OidcSettings {
        client_secret: SecretString::from(secret),
        ..settings()
    };
    OidcProvider::new(&settings, Instant::now())
}

fn identity() -> Identity {
    Identity {
        sub: "user-42".into(),
        email: Some("ada@example.com".into()),
        given_name: Some("Ada".into()),
        family_name: Some("Lovelace".into()),
        auth_time: NOW - 10,
    }
}

const VERIFIER: &str = "a-code-verifier-of-at-least-forty-three-characters-0123";

fn code(provider: &OidcProvider, now: i64) -> String {
    provider.mint_code(
        CodeRequest {
            client_id: CLIENT.into(),
            redirect_uri: REDIRECT.into(),
            code_challenge: s256_challenge(VERIFIER),
            nonce: Some("nonce-1".into()),
            scope: DEFAULT_SCOPE.into(),
            identity: identity(),
        },
        now,
    )
}

fn redeem(
    provider: &OidcProvider,
    code: &str,
    redirect: &str,
    verifier: &str,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    provider.token(
        Grant::AuthorizationCode {
            code: code.into(),
            redirect_uri: Some(redirect.into()),
            code_verifier: Some(verifier.into()),
        },
        now,
        Instant::now(),
    )
}

fn id_claims(provider: &OidcProvider, id_token: &str) -> IdTokenClaims {
    jose::install_provider();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let jwks = provider.jwks(Instant::now());
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the kid is published");
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[CLIENT]);
    validation.set_issuer(&["https://chat.example.com"]);
    // The test's fixed clock is far from now; the signature and claims are what is checked.
    validation.validate_exp = false;
    jsonwebtoken::decode::<IdTokenClaims>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

#[test]
fn a_code_redeems_once_for_tokens_whose_id_token_verifies_against_the_jwks() {
    let provider = provider();
    let code = code(&provider, NOW);
    let tokens = redeem(&provider, &code, REDIRECT, VERIFIER, NOW + 5).unwrap();
    assert_eq!(tokens.expires_in, 900);
    assert!(tokens.refresh_token.is_some(), "offline_access was granted");
    let claims = id_claims(&provider, tokens.id_token.as_deref().unwrap());
    assert_eq!(claims.sub, "user-42");
    assert_eq!(claims.nonce.as_deref(), Some("nonce-1"));
    assert_eq!(claims.email.as_deref(), Some("ada@example.com"));
    assert_eq!(
        (claims.given_name.as_deref(), claims.family_name.as_deref()),
        (Some("Ada"), Some("Lovelace"))
    );
    assert_eq!(claims.exp, NOW + 5 + 300);
    assert!(!code.contains("user-42"), "a code reveals nothing");

    let again = redeem(&provider, &code, REDIRECT, VERIFIER, NOW + 6).unwrap_err();
    assert_eq!((again.status, again.error), (400, "invalid_grant"));
    assert!(again.description.contains("used already"), "{again:?}");
}

#[test]
fn a_code_is_bound_to_its_redirect_uri_verifier_lifetime_and_client() {
    let provider = provider();
    for (redirect, verifier, now, expected) in [
        (
            "http://localhost:8080/other",
            VERIFIER,
            NOW,
            "redirect_uri does not match",
        ),
        (
            REDIRECT,
            "another-code-verifier-of-at-least-forty-three-characters",
            NOW,
            "does not match the code_challenge",
        ),
        (REDIRECT, "short", NOW, "a valid code_verifier"),
        (REDIRECT, VERIFIER, NOW + 60, "expired"),
    ] {
        let code = code(&provider, NOW);
        let refused = redeem(&provider, &code, redirect, verifier, now).unwrap_err();
        assert_eq!(refused.error, "invalid_grant", "{expected}");
        assert!(refused.description.contains(expected), "{refused:?}");
        if now < NOW + 60 {
            // A failed attempt spends the code: no second guess.
            let retry = redeem(&provider, &code, REDIRECT, VERIFIER, now).unwrap_err();
            assert!(retry.description.contains("used already"), "{retry:?}");
        }
    }
    let garbage = redeem(&provider, "v1.not-a-code", REDIRECT, VERIFIER, NOW).unwrap_err();
    assert_eq!(garbage.error, "invalid_grant");
}

#[test]
fn any_replica_holding_the_key_redeems_a_code() {
    let minted_here = code(&provider(), NOW);
    let another_replica = provider();
    assert!(redeem(&another_replica, &minted_here, REDIRECT, VERIFIER, NOW + 1).is_ok());
    let mut other = settings();
    other.signing_key = key("oidc-signing-previous.pem");
    other.previous_keys = Vec::new();
    let foreign = OidcProvider::new(&other, Instant::now());
    assert_eq!(
        redeem(&foreign, &code(&provider(), NOW), REDIRECT, VERIFIER, NOW + 1)
            .unwrap_err()
            .error,
        "invalid_grant"
    );
}

#[test]
fn the_client_authenticates_one_way_with_its_secret() {
    let provider = provider();
    let basic = |id: &str, secret: &str| {
        let header = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        ClientAuthentication {
            basic: basic_credentials(Some(&header)).unwrap(),
            ..ClientAuthentication::default()
        }
    };
    let post = ClientAuthentication {
        form_id: Some(CLIENT.into()),
        form_secret: Some(SECRET.into()),
        ..ClientAuthentication::default()
    };
    assert!(provider.authenticate(&basic(CLIENT, SECRET)).is_ok());
    assert!(provider.authenticate(&post).is_ok());
    let wrong = provider.authenticate(&basic(CLIENT, "wrong-secret")).unwrap_err();
    assert_eq!(
        (wrong.status, wrong.error, wrong.basic_challenge),
        (401, "invalid_client", true)
    );
    assert!(!wrong.description.contains("wrong-secret"));
    assert_eq!(
        provider
            .authenticate(&basic("someone", SECRET))
            .unwrap_err()
            .error,
        "invalid_client"
    );
    assert_eq!(
        provider
            .authenticate(&ClientAuthentication::default())
            .unwrap_err()
            .status,
        401
    );
    let both = ClientAuthentication {
        form_id: Some(CLIENT.into()),
        ..basic(CLIENT, SECRET)
    };
    assert_eq!(provider.authenticate(&both).unwrap_err().error, "invalid_request");
}

#[test]
fn basic_credentials_are_read_as_sent_and_form_decoded() {
    let header = format!("Basic {}", STANDARD.encode("genesys%2Dlocal:sec%3Aret+1"));
    let read = basic_credentials(Some(&header)).unwrap().unwrap();
    assert_eq!(read.as_sent, ("genesys%2Dlocal".into(), "sec%3Aret+1".into()));
    assert_eq!(read.form_decoded, ("genesys-local".into(), "sec:ret 1".into()));
    // Not valid form encoding: read as sent only.
    let header = format!("Basic {}", STANDARD.encode("id:100%"));
    let read = basic_credentials(Some(&header)).unwrap().unwrap();
    assert_eq!(read.form_decoded, read.as_sent);
    assert!(
        !format!("{read:?}").contains("100%"),
        "the secret stays out of Debug"
    );
    assert_eq!(basic_credentials(Some("Bearer x")).unwrap(), None);
    assert_eq!(basic_credentials(None).unwrap(), None);
    assert!(basic_credentials(Some("Basic !!!")).is_err());
}

#[test]
fn a_secret_with_plus_ampersand_or_percent_works_encoded_or_not_and_no_tail_is_dropped() {
    let secret = "a+b&c=d%2Fe==";
    let provider = provider_with_secret(secret);
    let basic = |id: &str, secret: &str| ClientAuthentication {
        basic: basic_credentials(Some(&format!(
            "Basic {}",
            STANDARD.encode(format!("{id}:{secret}"))
        )))
        .unwrap(),
        ..ClientAuthentication::default()
    };
    let form_encoded: String = serde_urlencoded::to_string([("v", secret)]).unwrap()[2..].to_owned();
    assert_ne!(form_encoded, secret);
    assert!(provider.authenticate(&basic(CLIENT, secret)).is_ok(), "as it is");
    assert!(
        provider.authenticate(&basic(CLIENT, &form_encoded)).is_ok(),
        "form-encoded"
    );
    for wrong in ["a+b", "a b&c=d/e==", "a+b&c=d%2Fe==&x=1", "a"] {
        assert!(provider.authenticate(&basic(CLIENT, wrong)).is_err(), "{wrong:?}");
    }
}

#[test]
fn refresh_tokens_rotate_and_a_reused_one_ends_the_sign_in() {
    let provider = provider();
    let first = redeem(&provider, &code(&provider, NOW), REDIRECT, VERIFIER, NOW).unwrap();
    let refresh = |token: &str, now: i64| {
        provider.token(
            Grant::RefreshToken {
                refresh_token: token.into(),
            },
            now,
            Instant::now(),
        )
    };
    let second = refresh(first.refresh_token.as_deref().unwrap(), NOW + 100).unwrap();
    let claims = id_claims(&provider, second.id_token.as_deref().unwrap());
    assert_eq!((claims.sub.as_str(), claims.nonce), ("user-42", None));
    let third = refresh(second.refresh_token.as_deref().unwrap(), NOW + 200).unwrap();
    // The first one comes back: reuse ends the family, the newest token included.
    let reused = refresh(first.refresh_token.as_deref().unwrap(), NOW + 300).unwrap_err();
    assert!(reused.description.contains("used already"), "{reused:?}");
    let revoked = refresh(third.refresh_token.as_deref().unwrap(), NOW + 301).unwrap_err();
    assert!(revoked.description.contains("revoked"), "{revoked:?}");
    // Rotation never extends the sign-in.
    assert!(refresh(code_tokens_refresh(&provider).as_str(), NOW + 86_401).is_err());
}

fn code_tokens_refresh(provider: &OidcProvider) -> String {
    redeem(provider, &code(provider, NOW), REDIRECT, VERIFIER, NOW)
        .unwrap()
        .refresh_token
        .unwrap()
}

#[test]
fn userinfo_answers_for_a_live_access_token_only() {
    let provider = provider();
    let tokens = redeem(&provider, &code(&provider, NOW), REDIRECT, VERIFIER, NOW).unwrap();
    let (who, scope) = provider
        .userinfo(&tokens.access_token, NOW + 10, Instant::now())
        .unwrap();
    assert_eq!(who.sub, "user-42");
    assert!(scope.contains("email"));
    assert!(
        provider
            .userinfo(&tokens.access_token, NOW + 900, Instant::now())
            .is_none()
    );
    assert!(
        provider
            .userinfo(tokens.refresh_token.as_deref().unwrap(), NOW, Instant::now())
            .is_none()
    );
}

#[test]
fn the_single_use_record_is_bounded_and_refuses_when_full_of_live_codes() {
    let mut small = settings();
    small.max_redeemed_codes = 2;
    let provider = OidcProvider::new(&small, Instant::now());
    for _ in 0..2 {
        redeem(&provider, &code(&provider, NOW), REDIRECT, VERIFIER, NOW).unwrap();
    }
    let full = redeem(&provider, &code(&provider, NOW), REDIRECT, VERIFIER, NOW).unwrap_err();
    assert_eq!((full.status, full.error), (503, "temporarily_unavailable"));
    assert_eq!(provider.redeemed_codes(), 2);
    // Once the first ones expire there is room again.
    assert!(
        redeem(
            &provider,
            &code(&provider, NOW + 61),
            REDIRECT,
            VERIFIER,
            NOW + 61
        )
        .is_ok()
    );
}

#[test]
fn previous_keys_stay_in_the_jwks_while_their_tokens_may_live() {
    let started = Instant::now();
    let provider = OidcProvider::new(&settings(), started);
    assert_eq!(provider.jwks(started).keys.len(), 2);
    assert_eq!(provider.jwks(started + Duration::from_secs(901)).keys.len(), 1);
    // A next key is published from the start and for good, but signs nothing yet.
    let next = key("oidc-signing-previous.pem");
    let ahead = OidcProvider::new(
        &OidcSettings {
            previous_keys: Vec::new(),
            next_keys: vec![next.clone()],
            ..settings()
        },
        started,
    );
    let kids = |at: Instant| -> Vec<String> {
        ahead
            .jwks(at)
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect()
    };
    let current = key("oidc-signing.pem").kid().to_owned();
    assert_eq!(kids(started), [current.clone(), next.kid().to_owned()]);
    assert_eq!(kids(started + Duration::from_secs(86_400 * 30)).len(), 2);
    let tokens = redeem(&ahead, &code(&ahead, NOW), REDIRECT, VERIFIER, NOW).unwrap();
    let header = jsonwebtoken::decode_header(tokens.id_token.as_deref().unwrap()).unwrap();
    assert_eq!(header.kid.as_deref(), Some(current.as_str()));
    let discovery = provider.discovery();
    assert_eq!(discovery.token_endpoint, "https://chat.example.com/oidc/token");
    assert_eq!(discovery.code_challenge_methods_supported.unwrap(), ["S256"]);
}

#[test]
fn an_anonymous_identity_is_a_fresh_pseudonym() {
    let a = Identity::anonymous(NOW);
    let b = Identity::anonymous(NOW);
    assert!(a.sub.starts_with("anonymous-") && a.sub != b.sub);
    assert_eq!(a.email, None);
    assert!(!format!("{:?}", identity()).contains("ada@example.com"));
}
