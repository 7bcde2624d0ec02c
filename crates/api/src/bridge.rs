//! The identity bridge at run time: the OpenID Connect provider, the site-session verifier and the
//! Genesys web deployment as last read, shared by every worker; and the steps the routes take with
//! them (who the visitor is, a code on the visitor's behalf, the deployment's verdict).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use actix_web::http::header;
use domain::webmessaging::{DeploymentStatus, WebDeployment};
use genesys_client::{GenesysApi, GenesysError};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::oidc::{CodeRequest, DEFAULT_SCOPE, Identity, OidcProvider, random_token, s256_challenge};
use crate::settings::WebMessagingSettings;
use crate::site_session::{Rejection, SiteSessions};

/// What the Genesys deployment looked like when last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentReading {
    /// Read: its status and allowed domains.
    Found(WebDeployment),
    /// Genesys says there is no such deployment.
    Missing,
    /// It could not be read (Genesys failed, or refused this client); the error's kind.
    Unreadable(&'static str),
}

impl DeploymentReading {
    /// Why web messaging cannot work with this reading, for readiness; `None` when it can (or the
    /// reading says nothing either way).
    pub fn unready_reason(&self, deployment_id: &str) -> Option<String> {
        match self {
            Self::Found(d) if d.status != DeploymentStatus::Active => Some(format!(
                "the Genesys web deployment {deployment_id} is {:?}, not Active",
                d.status
            )),
            Self::Missing => Some(format!(
                "the Genesys web deployment {deployment_id} does not exist (check web_messaging.deployment_id)"
            )),
            _ => None,
        }
    }
}

struct Reading {
    reading: DeploymentReading,
    read_at: Instant,
}

/// The deployment, read through the client with its token, retries and allowance, and kept for
/// `web_messaging.deployment_cache_seconds`.
pub struct DeploymentCache {
    deployment_id: String,
    ttl: Duration,
    last: Mutex<Option<Reading>>,
    reading: tokio::sync::Mutex<()>,
}

impl DeploymentCache {
    fn new(deployment_id: String, ttl: Duration) -> Self {
        Self {
            deployment_id,
            ttl,
            last: Mutex::new(None),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self) -> Option<DeploymentReading> {
        let last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.as_ref()
            .filter(|r| r.read_at.elapsed() < self.ttl)
            .map(|r| r.reading.clone())
    }

    /// The last reading, however old (readiness reads this; it never calls Genesys).
    pub fn last_known(&self) -> Option<DeploymentReading> {
        let last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.as_ref().map(|r| r.reading.clone())
    }

    /// Reads the deployment now and keeps the reading.
    pub async fn refresh(&self, genesys: &dyn GenesysApi) -> DeploymentReading {
        let reading = match genesys.get_deployment(&self.deployment_id).await {
            Ok(deployment) => DeploymentReading::Found(deployment),
            Err(GenesysError::Rejected { status: 404, .. }) => DeploymentReading::Missing,
            Err(e) => {
                tracing::error!(
                    error = %e,
                    deployment_id = %self.deployment_id,
                    "cannot read the Genesys web deployment (does the OAuth client have webDeployments:deployment:view?)"
                );
                DeploymentReading::Unreadable(e.kind())
            }
        };
        // A failed read keeps an earlier good one: the deployment did not change because Genesys hiccuped.
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let keep_earlier = matches!(reading, DeploymentReading::Unreadable(_))
            && last
                .as_ref()
                .is_some_and(|r| matches!(r.reading, DeploymentReading::Found(_)));
        if !keep_earlier {
            *last = Some(Reading {
                reading: reading.clone(),
                read_at: Instant::now(),
            });
        }
        reading
    }

    /// A reading no older than the cache lifetime: the cached one, or one read now (one read at
    /// a time, whatever the number of callers).
    pub async fn current(&self, genesys: &dyn GenesysApi) -> DeploymentReading {
        if let Some(reading) = self.fresh() {
            return reading;
        }
        let _one_read = self.reading.lock().await;
        if let Some(reading) = self.fresh() {
            return reading;
        }
        self.refresh(genesys).await
    }

    /// How often the keeper reads it again.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// Everything web messaging needs at run time. `Send + Sync`; one per process.
pub struct IdentityBridge {
    /// The Genesys web deployment.
    pub deployment_id: String,
    /// The Messenger's WebSocket, handed to custom widgets.
    pub websocket_url: String,
    /// Whether visitors who are not signed in get a pseudonymous session.
    pub allow_anonymous: bool,
    /// The OpenID Connect provider.
    pub provider: OidcProvider,
    /// The site-session verifier.
    pub sessions: SiteSessions,
    /// The deployment as last read.
    pub deployment: DeploymentCache,
}

/// A code minted for a visitor, with what the Messenger (or the exchange) passes along with it.
#[derive(Clone)]
pub struct MintedCode {
    /// The authorization code.
    pub code: String,
    /// The redirect URI it is bound to.
    pub redirect_uri: String,
    /// The nonce the ID token will carry.
    pub nonce: String,
    /// The PKCE verifier whose challenge it is bound to.
    pub code_verifier: String,
}

impl std::fmt::Debug for MintedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedCode")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// The seconds since the epoch now.
pub fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The site session a request carries: `Authorization: Bearer`, else the configured cookie.
fn session_token<'a>(req: &'a HttpRequest, cookie_name: &str) -> Option<&'a str> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    bearer.or_else(|| {
        req.headers()
            .get_all(header::COOKIE)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|line| line.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == cookie_name)
            .map(|(_, value)| value.trim_matches('"'))
            .filter(|value| !value.is_empty())
    })
}

impl IdentityBridge {
    /// The bridge `settings` describe, started now.
    pub fn new(settings: &WebMessagingSettings) -> Self {
        Self {
            deployment_id: settings.deployment_id.clone(),
            websocket_url: settings.websocket_url.clone(),
            allow_anonymous: settings.allow_anonymous,
            provider: OidcProvider::new(&settings.oidc, Instant::now()),
            sessions: SiteSessions::new(settings.site_session.clone()),
            deployment: DeploymentCache::new(settings.deployment_id.clone(), settings.deployment_cache),
        }
    }

    /// The visitor of the request's site session: `Ok(None)` when it carries none (or sessions
    /// are not verified here), `Err` when it carries one that fails.
    pub async fn signed_in(
        &self,
        req: &HttpRequest,
        genesys: &dyn GenesysApi,
        metrics: &Metrics,
    ) -> Result<Option<Identity>, ApiError> {
        if !self.sessions.verifies() {
            return Ok(None);
        }
        let Some(token) = session_token(req, &self.sessions.settings().cookie_name) else {
            return Ok(None);
        };
        self.sessions
            .verify(token, genesys, unix_now())
            .await
            .map(Some)
            .map_err(|rejection| {
                metrics.site_session_rejected(rejection.as_str());
                if rejection == Rejection::KeysUnavailable {
                    // Not the visitor's doing: signing in again would not help.
                    tracing::warn!("site sessions cannot be checked: the site's keys are unavailable");
                    return ApiError::Unready(
                        "the site's sign-in keys cannot be read right now; retry shortly".to_owned(),
                    );
                }
                tracing::info!(reason = rejection.as_str(), "site session refused");
                ApiError::SiteSessionInvalid(rejection.detail())
            })
    }

    /// Who the visitor is: a verified site session, else (when allowed) a pseudonym. A session
    /// that is presented but fails never falls back to anonymous.
    pub async fn visitor(
        &self,
        req: &HttpRequest,
        genesys: &dyn GenesysApi,
        metrics: &Metrics,
    ) -> Result<Identity, ApiError> {
        match self.signed_in(req, genesys, metrics).await? {
            Some(identity) => Ok(identity),
            None if self.allow_anonymous => Ok(Identity::anonymous(unix_now())),
            None => {
                metrics.site_session_rejected("missing");
                Err(ApiError::NotSignedIn)
            }
        }
    }

    /// The redirect URI for a caller at `origin`: the configured one on that origin, else the first.
    pub fn redirect_uri_for(&self, origin: Option<&str>) -> String {
        let uris = self.provider.redirect_uris();
        origin
            .and_then(|origin| {
                uris.iter().find(|uri| {
                    uri.strip_prefix(origin)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                })
            })
            .unwrap_or(&uris[0])
            .clone()
    }

    /// A code of this provider for `identity`, with its PKCE verifier and nonce.
    pub fn mint_code(&self, identity: Identity, origin: Option<&str>) -> MintedCode {
        let code_verifier = random_token(32);
        let nonce = random_token(16);
        let redirect_uri = self.redirect_uri_for(origin);
        let code = self.provider.mint_code(
            CodeRequest {
                client_id: self.provider.client_id().to_owned(),
                redirect_uri: redirect_uri.clone(),
                code_challenge: s256_challenge(&code_verifier),
                nonce: Some(nonce.clone()),
                scope: DEFAULT_SCOPE.to_owned(),
                identity,
            },
            unix_now(),
        );
        MintedCode {
            code,
            redirect_uri,
            nonce,
            code_verifier,
        }
    }

    /// The deployment's verdict on a caller at `origin`: active and allowing it, or the refusal.
    pub async fn check_deployment(
        &self,
        origin: Option<&str>,
        genesys: &dyn GenesysApi,
    ) -> Result<(), ApiError> {
        match self.deployment.current(genesys).await {
            DeploymentReading::Found(deployment) => {
                if deployment.status != DeploymentStatus::Active {
                    return Err(ApiError::DeploymentInactive(status_name(deployment.status)));
                }
                match origin {
                    Some(origin) if !deployment.allows_origin(origin) => Err(ApiError::OriginNotAllowed),
                    _ => Ok(()),
                }
            }
            DeploymentReading::Missing => {
                tracing::error!(deployment_id = %self.deployment_id, "the Genesys web deployment does not exist");
                Err(ApiError::DeploymentUnavailable)
            }
            DeploymentReading::Unreadable(_) => Err(ApiError::DeploymentUnavailable),
        }
    }
}

fn status_name(status: DeploymentStatus) -> &'static str {
    match status {
        DeploymentStatus::Pending => "pending",
        DeploymentStatus::Active => "active",
        DeploymentStatus::Inactive => "inactive",
        DeploymentStatus::Error => "in error",
        DeploymentStatus::Deleting => "being deleted",
        DeploymentStatus::OutdatedSdkVersion => "on an outdated SDK version",
    }
}
