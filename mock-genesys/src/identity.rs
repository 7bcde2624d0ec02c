//! Redeeming an authorization code at a deployment's identity provider, as Genesys does: discovery,
//! then the token endpoint, then the JWKS, then every check of the ID token.
//!
//! Each worker has its own awc client (awc is not `Send`), without redirects, and each call has a
//! deadline (`identity_provider_timeout_ms`). Every call is journaled as `outbound`, credentials,
//! codes and tokens redacted. Error messages name the step and what went wrong, never a secret, a
//! code or a token.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use domain::oidc::{
    AUTHORIZATION_CODE_GRANT, CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, ErrorResponse, IdTokenClaims,
    ProviderMetadata, TokenRequest, TokenResponse, error_codes as oauth_errors,
};
use domain::webmessaging::{OAuthRequestParameters, error_codes};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::deployments::AuthenticationConfig;
use crate::journal::JournalEntry;
use crate::state::MockState;

/// Largest identity-provider answer read (discovery documents and JWKS are a few KiB).
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// Clock skew tolerated on an ID token's `exp`, `nbf` and `auth_time`.
const CLOCK_LEEWAY_SECONDS: u64 = 30;
/// The algorithms an ID token may be signed with: asymmetric only (no `none`, no HMAC).
const ID_TOKEN_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The HTTP client a worker calls identity providers with.
pub(crate) struct IdentityProviderClient {
    http: awc::Client,
    timeout: Duration,
}

impl IdentityProviderClient {
    /// A client with `timeout` for each call (connect, send and read included), no redirects, and
    /// the system's (or else the compiled-in) certificate authorities for `https` providers.
    pub(crate) fn new(timeout: Duration) -> Self {
        let connector = awc::Connector::new()
            .rustls_0_23(tls_config())
            .timeout(timeout)
            .handshake_timeout(timeout);
        let http = awc::Client::builder()
            .connector(connector)
            .timeout(timeout)
            .disable_redirects()
            .finish();
        Self { http, timeout }
    }
}

/// One rustls configuration for the process: loading the system's roots is the slow part.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        // Err means another provider is installed already, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }))
}

/// Why a code (or ID token) could not be turned into a visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExchangeError {
    /// The discovery document could not be read; says why.
    Discovery(String),
    /// The token endpoint failed for a reason other than the code or the client; says why.
    Token(String),
    /// The token endpoint answered `invalid_client`.
    ClientRejected,
    /// The token endpoint answered `invalid_grant`.
    InvalidGrant,
    /// The JWKS could not be read; says why.
    Jwks(String),
    /// The ID token failed a check; names which.
    IdToken(String),
}

impl ExchangeError {
    /// The status, Genesys code and message the exchange answers with.
    pub(crate) fn answer(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::Discovery(why) => (
                StatusCode::BAD_GATEWAY,
                error_codes::IDP_DISCOVERY_FAILED,
                format!("The identity provider's discovery document could not be read: {why}"),
            ),
            Self::Token(why) => (
                StatusCode::BAD_GATEWAY,
                error_codes::IDP_TOKEN_FAILED,
                format!("The identity provider's token endpoint did not redeem the code: {why}"),
            ),
            Self::ClientRejected => (
                StatusCode::BAD_GATEWAY,
                error_codes::IDP_CLIENT_REJECTED,
                "The identity provider refused the deployment's OpenID Connect client (invalid_client): \
                 check the integration's client id and secret"
                    .to_owned(),
            ),
            Self::InvalidGrant => (
                StatusCode::BAD_REQUEST,
                error_codes::AUTHORIZATION_CODE_INVALID,
                "The identity provider refused the authorization code (invalid_grant): it was already \
                 used, has expired, or does not match the redirect URI or code verifier"
                    .to_owned(),
            ),
            Self::Jwks(why) => (
                StatusCode::BAD_GATEWAY,
                error_codes::IDP_JWKS_FAILED,
                format!("The identity provider's signing keys (JWKS) could not be read: {why}"),
            ),
            Self::IdToken(why) => (
                StatusCode::UNAUTHORIZED,
                error_codes::ID_TOKEN_INVALID,
                format!("The ID token was refused: {why}"),
            ),
        }
    }
}

/// The visitor an ID token vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Visitor {
    /// The ID token's `sub`.
    pub(crate) sub: String,
    /// The identity provider's access-token lifetime, when it issued one.
    pub(crate) access_token_ttl: Option<Duration>,
}

/// Redeems `oauth.code` (or checks `oauth.id_token`) at the deployment's identity provider.
pub(crate) async fn redeem(
    client: &IdentityProviderClient,
    state: &MockState,
    auth: &AuthenticationConfig,
    oauth: &OAuthRequestParameters,
) -> Result<Visitor, ExchangeError> {
    let metadata: ProviderMetadata = get_json(client, state, &auth.discovery_uri, "discovery document")
        .await
        .map_err(ExchangeError::Discovery)?;
    if let Some(iss) = &oauth.iss
        && *iss != metadata.issuer
    {
        return Err(ExchangeError::IdToken(format!(
            "issuer: the request names {iss:?}, the identity provider is {:?}",
            metadata.issuer
        )));
    }
    let (id_token, access_token_ttl) = match (&oauth.code, &oauth.id_token) {
        (Some(code), _) => {
            let tokens = redeem_code(client, state, auth, &metadata, code, oauth).await?;
            let id_token = tokens.id_token.ok_or_else(|| {
                ExchangeError::Token("the answer holds no id_token (was the openid scope granted?)".into())
            })?;
            (id_token, Some(Duration::from_secs(tokens.expires_in)))
        }
        (None, Some(id_token)) => (id_token.clone(), None),
        (None, None) => {
            return Err(ExchangeError::Token(
                "neither a code nor an ID token was given".into(),
            ));
        }
    };
    let keys = jwks(client, state, &metadata.jwks_uri).await?;
    let claims = check_id_token(&id_token, &metadata.issuer, &auth.client_id, oauth, &keys)?;
    Ok(Visitor {
        sub: claims.sub,
        access_token_ttl,
    })
}

async fn redeem_code(
    client: &IdentityProviderClient,
    state: &MockState,
    auth: &AuthenticationConfig,
    metadata: &ProviderMetadata,
    code: &str,
    oauth: &OAuthRequestParameters,
) -> Result<TokenResponse, ExchangeError> {
    let mut form = TokenRequest {
        grant_type: AUTHORIZATION_CODE_GRANT.to_owned(),
        code: Some(code.to_owned()),
        redirect_uri: Some(oauth.redirect_uri.clone()),
        code_verifier: oauth.code_verifier.clone(),
        ..TokenRequest::default()
    };
    let mut headers = vec![
        ("Content-Type", "application/x-www-form-urlencoded".to_owned()),
        ("Accept", "application/json".to_owned()),
    ];
    if metadata.supports_auth_method(CLIENT_SECRET_BASIC) {
        // RFC 6749 section 2.3.1: both parts are form-encoded before Basic encoding.
        let pair = format!(
            "{}:{}",
            form_encode(&auth.client_id),
            form_encode(&auth.client_secret)
        );
        headers.push(("Authorization", format!("Basic {}", STANDARD.encode(pair))));
    } else if metadata.supports_auth_method(CLIENT_SECRET_POST) {
        form.client_id = Some(auth.client_id.clone());
        form.client_secret = Some(auth.client_secret.clone());
    } else {
        return Err(ExchangeError::Discovery(
            "token_endpoint_auth_methods_supported offers neither client_secret_basic nor client_secret_post"
                .to_owned(),
        ));
    }
    let body = serde_urlencoded::to_string(&form)
        .map_err(|e| ExchangeError::Token(format!("the request could not be encoded: {e}")))?;
    let (status, answer) = call(
        client,
        state,
        Method::POST,
        &metadata.token_endpoint,
        &headers,
        body.into_bytes(),
    )
    .await
    .map_err(ExchangeError::Token)?;
    if status == StatusCode::OK {
        return serde_json::from_slice::<TokenResponse>(&answer).map_err(|_| {
            ExchangeError::Token("answered 200 with a body that is not a token response".into())
        });
    }
    match serde_json::from_slice::<ErrorResponse>(&answer) {
        Ok(error) if error.error == oauth_errors::INVALID_GRANT => Err(ExchangeError::InvalidGrant),
        Ok(error) if error.error == oauth_errors::INVALID_CLIENT => Err(ExchangeError::ClientRejected),
        // Only the standard code is repeated: a description could quote what was sent.
        Ok(error) => Err(ExchangeError::Token(format!(
            "answered {} {}",
            status.as_u16(),
            error_code_name(&error.error)
        ))),
        Err(_) => Err(ExchangeError::Token(format!("answered {}", status.as_u16()))),
    }
}

/// An OAuth error code fit to repeat: the registered ones as they are, anything else unnamed.
fn error_code_name(code: &str) -> &str {
    let known = [
        oauth_errors::INVALID_REQUEST,
        oauth_errors::UNAUTHORIZED_CLIENT,
        oauth_errors::UNSUPPORTED_GRANT_TYPE,
        oauth_errors::INVALID_SCOPE,
        "access_denied",
        "server_error",
        "temporarily_unavailable",
    ];
    known
        .into_iter()
        .find(|k| *k == code)
        .unwrap_or("(an unregistered OAuth error)")
}

fn form_encode(value: &str) -> String {
    serde_urlencoded::to_string([("", value)])
        .map(|pair| pair.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// The provider's keys that jsonwebtoken understands; others (other key types) are skipped.
async fn jwks(
    client: &IdentityProviderClient,
    state: &MockState,
    uri: &str,
) -> Result<Vec<Jwk>, ExchangeError> {
    let set: serde_json::Value = get_json(client, state, uri, "JWKS")
        .await
        .map_err(ExchangeError::Jwks)?;
    let keys = set
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| ExchangeError::Jwks("the answer is not a JWKS (no keys array)".into()))?;
    Ok(keys
        .iter()
        .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
        .collect())
}

/// Every check Genesys makes on the ID token; the error names the first that failed.
pub(crate) fn check_id_token(
    token: &str,
    issuer: &str,
    client_id: &str,
    oauth: &OAuthRequestParameters,
    keys: &[Jwk],
) -> Result<IdTokenClaims, ExchangeError> {
    let refuse = |why: String| Err(ExchangeError::IdToken(why));
    let Some(alg) = header_alg(token) else {
        return refuse("malformed: not a JWT".into());
    };
    let Some(&algorithm) = ID_TOKEN_ALGORITHMS.iter().find(|a| format!("{a:?}") == alg) else {
        return refuse(format!(
            "algorithm: {alg:?} is not allowed (only asymmetric signatures, never none or HMAC)"
        ));
    };
    let header = match jsonwebtoken::decode_header(token) {
        Ok(header) => header,
        Err(_) => return refuse("malformed: the header cannot be read".into()),
    };
    let Some(kid) = header.kid else {
        return refuse("signature: the header names no key (kid)".into());
    };
    let Some(jwk) = keys
        .iter()
        .find(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
    else {
        return refuse(format!("signature: the provider's JWKS has no key {kid:?}"));
    };
    if let Some(key_algorithm) = jwk.common.key_algorithm
        && format!("{key_algorithm:?}") != alg
    {
        return refuse(format!(
            "algorithm: key {kid:?} is for {key_algorithm:?}, the token says {alg}"
        ));
    }
    let Ok(key) = DecodingKey::from_jwk(jwk) else {
        return refuse(format!("signature: key {kid:?} cannot be used"));
    };
    let mut validation = Validation::new(algorithm);
    validation.leeway = CLOCK_LEEWAY_SECONDS;
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = match jsonwebtoken::decode::<IdTokenClaims>(token, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => return refuse(describe(e.kind(), issuer)),
    };
    if let Some(nonce) = &oauth.nonce
        && claims.nonce.as_deref() != Some(nonce.as_str())
    {
        return refuse("nonce: the token's nonce is not the one sent".into());
    }
    if let Some(max_age) = oauth.max_age {
        let Some(auth_time) = claims.auth_time else {
            return refuse("auth_time: maxAge was sent but the token has no auth_time".into());
        };
        let age = OffsetDateTime::now_utc()
            .unix_timestamp()
            .saturating_sub(auth_time);
        if age > i64::try_from(max_age.saturating_add(CLOCK_LEEWAY_SECONDS)).unwrap_or(i64::MAX) {
            return refuse(format!(
                "auth_time: the visitor signed in {age} s ago, more than maxAge {max_age} s"
            ));
        }
    }
    Ok(claims)
}

/// The header's `alg` as written, read before jsonwebtoken (which cannot parse `none`).
fn header_alg(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let json: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    json.get("alg")?.as_str().map(str::to_owned)
}

fn describe(kind: &ErrorKind, issuer: &str) -> String {
    match kind {
        ErrorKind::InvalidSignature => "signature: it does not verify with the provider's key".into(),
        ErrorKind::ExpiredSignature => "expired: its exp has passed".into(),
        ErrorKind::ImmatureSignature => "not yet valid: its nbf is in the future".into(),
        ErrorKind::InvalidIssuer => format!("issuer: its iss is not the provider's issuer {issuer:?}"),
        ErrorKind::InvalidAudience => "audience: its aud does not name the integration's client id".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim: {claim}"),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => {
            "algorithm: it does not match the provider's key".into()
        }
        _ => "malformed: its claims cannot be read".into(),
    }
}

async fn get_json<T: DeserializeOwned>(
    client: &IdentityProviderClient,
    state: &MockState,
    uri: &str,
    what: &str,
) -> Result<T, String> {
    let headers = [("Accept", "application/json".to_owned())];
    let (status, body) = call(client, state, Method::GET, uri, &headers, Vec::new()).await?;
    if status != StatusCode::OK {
        return Err(format!("GET {uri} answered {}", status.as_u16()));
    }
    serde_json::from_slice(&body).map_err(|_| format!("GET {uri} answered a body that is not a {what}"))
}

/// One journaled call: the answer's status and body, or why there is none.
async fn call(
    client: &IdentityProviderClient,
    state: &MockState,
    method: Method,
    url: &str,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> Result<(StatusCode, Bytes), String> {
    let mut entry = JournalEntry::outbound(
        state.next_request_id(),
        OffsetDateTime::now_utc(),
        method.as_str(),
        url,
        headers.iter().map(|(name, value)| (*name, value.as_bytes())),
        &body,
    );
    let mut request = client.http.request(method.clone(), url);
    for (name, value) in headers {
        request = request.insert_header((*name, value.as_str()));
    }
    let timed_out = || format!("{method} {url} timed out after {} ms", client.timeout.as_millis());
    let exchange = async {
        let mut response = request.send_body(body).await.map_err(|e| match e {
            // awc's own deadline (the same as ours) can strike first.
            awc::error::SendRequestError::Timeout => timed_out(),
            other => format!("{method} {url} failed: {other}"),
        })?;
        let answer = response
            .body()
            .limit(MAX_ANSWER_BYTES)
            .await
            .map_err(|e| format!("{method} {url} failed: {e}"))?;
        Ok::<_, String>((response.status(), answer))
    };
    let outcome = match actix_web::rt::time::timeout(client.timeout, exchange).await {
        Ok(outcome) => outcome,
        Err(_) => Err(timed_out()),
    };
    if let Ok((status, _)) = &outcome {
        entry.status = status.as_u16();
    }
    state.journal(entry);
    if let Err(why) = &outcome {
        tracing::info!(%method, url, error = %why, "identity provider call failed");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_what_basic_auth_would_confuse() {
        assert_eq!(form_encode("genesys-local"), "genesys-local");
        assert_eq!(form_encode("a:b c&d"), "a%3Ab+c%26d");
    }

    #[test]
    fn only_registered_oauth_codes_are_repeated() {
        assert_eq!(error_code_name("unauthorized_client"), "unauthorized_client");
        assert_eq!(error_code_name("secret=hunter2"), "(an unregistered OAuth error)");
    }

    #[test]
    fn alg_none_and_hmac_are_refused_before_any_key_is_looked_up() {
        let oauth = OAuthRequestParameters::default();
        for alg in ["none", "HS256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"k"}}"#));
            let token = format!("{header}.e30.");
            let error = check_id_token(&token, "i", "c", &oauth, &[]).unwrap_err();
            assert!(
                matches!(&error, ExchangeError::IdToken(why) if why.starts_with("algorithm")),
                "{error:?}"
            );
        }
    }
}
