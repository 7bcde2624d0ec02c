//! Web deployments: from the settings file (`[[deployments]]`) and `PUT /__admin/deployments/{id}`,
//! with the OpenID Connect integration Genesys redeems authorization codes through.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use domain::webmessaging::{DEPLOYMENTS_PATH_PREFIX, DeploymentStatus, WebDeployment};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::journal::REDACTED;

/// Most deployments the emulator holds; `PUT /__admin/deployments/{id}` refuses a new one beyond.
pub const MAX_DEPLOYMENTS: usize = 1_000;
/// Longest accepted `allowedDomains` list.
const MAX_ALLOWED_DOMAINS: usize = 100;
/// Longest accepted string in a deployment (name, domain, URI, credential).
const MAX_FIELD_CHARS: usize = 2_048;

/// The default deployment's id.
pub const DEFAULT_DEPLOYMENT_ID: &str = "7f6e5d4c-3b2a-4190-8a7b-6c5d4e3f2a1b";

/// What Genesys' "OpenID Connect Messenger Configuration" integration holds: the identity provider
/// it redeems codes at, and the client it authenticates as there.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationConfig {
    /// The provider's discovery document (`.../.well-known/openid-configuration`).
    pub discovery_uri: String,
    /// The client id at the provider; ID tokens must name it in `aud`.
    pub client_id: String,
    /// The client's secret. Never logged, never listed.
    pub client_secret: String,
}

impl fmt::Debug for AuthenticationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticationConfig")
            .field("discovery_uri", &self.discovery_uri)
            .field("client_id", &self.client_id)
            .field("client_secret", &REDACTED)
            .finish()
    }
}

/// A web deployment the emulator serves, as the settings file spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// Deployment id (a UUID).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Lifecycle state; only `Active` deployments serve the token routes and the WebSocket.
    #[serde(default = "active")]
    pub status: DeploymentStatus,
    /// Every origin may use it.
    #[serde(default)]
    pub allow_all_domains: bool,
    /// The origins that may use it (see `WebDeployment::allows_origin`).
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// The OpenID Connect integration; without it the code exchange is refused.
    #[serde(default)]
    pub authentication: Option<AuthenticationConfig>,
}

fn active() -> DeploymentStatus {
    DeploymentStatus::Active
}

impl DeploymentConfig {
    /// The default deployment: "Local demo", Active, the local demo's origins, and the API's local
    /// OpenID Connect client as its identity provider (public test values).
    pub fn local_demo() -> Self {
        Self {
            id: DEFAULT_DEPLOYMENT_ID.to_owned(),
            name: "Local demo".to_owned(),
            status: DeploymentStatus::Active,
            allow_all_domains: false,
            allowed_domains: vec![
                "http://localhost:8080".to_owned(),
                "http://127.0.0.1:8080".to_owned(),
            ],
            authentication: Some(AuthenticationConfig {
                discovery_uri: "http://localhost:3000/.well-known/openid-configuration".to_owned(),
                client_id: "genesys-local".to_owned(),
                client_secret: "genesys-local-secret".to_owned(),
            }),
        }
    }

    /// The deployment as `GET /api/v2/webdeployments/deployments/{id}` answers it.
    pub fn web_deployment(&self) -> WebDeployment {
        WebDeployment {
            id: self.id.clone(),
            name: self.name.clone(),
            description: None,
            allow_all_domains: self.allow_all_domains,
            allowed_domains: self.allowed_domains.clone(),
            status: self.status,
            self_uri: Some(format!("{DEPLOYMENTS_PATH_PREFIX}{}", self.id)),
        }
    }

    /// Checks every field, naming the first bad one under `prefix` (`deployments[0]` in the file).
    pub(crate) fn validate(&self, prefix: &str) -> Result<(), (String, String)> {
        let bad = |field: &str, reason: String| Err((format!("{prefix}{field}"), reason));
        if Uuid::parse_str(&self.id).is_err() {
            return bad("id", format!("must be a UUID, got {:?}", self.id));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > MAX_FIELD_CHARS {
            return bad("name", format!("must hold 1 to {MAX_FIELD_CHARS} characters"));
        }
        if self.allowed_domains.len() > MAX_ALLOWED_DOMAINS {
            return bad(
                "allowed_domains",
                format!("must hold at most {MAX_ALLOWED_DOMAINS} entries"),
            );
        }
        for (i, domain) in self.allowed_domains.iter().enumerate() {
            if domain.trim().is_empty() || domain.len() > MAX_FIELD_CHARS {
                return bad(&format!("allowed_domains[{i}]"), "must not be empty".to_owned());
            }
        }
        if let Some(auth) = &self.authentication {
            let uri = auth.discovery_uri.as_str();
            if !(uri.starts_with("http://") || uri.starts_with("https://")) || uri.len() > MAX_FIELD_CHARS {
                return bad(
                    "authentication.discovery_uri",
                    format!("must be an http:// or https:// URL, got {uri:?}"),
                );
            }
            if auth.client_id.is_empty() || auth.client_id.len() > MAX_FIELD_CHARS {
                return bad("authentication.client_id", "must not be empty".to_owned());
            }
            if auth.client_secret.is_empty() || auth.client_secret.len() > MAX_FIELD_CHARS {
                return bad("authentication.client_secret", "must not be empty".to_owned());
            }
        }
        Ok(())
    }
}

/// `authentication` of `PUT /__admin/deployments/{id}`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AuthenticationSpec {
    discovery_uri: String,
    client_id: String,
    client_secret: String,
}

/// Body of `PUT /__admin/deployments/{id}`: absent fields take their defaults (the deployment is
/// replaced whole, not patched).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DeploymentSpec {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<DeploymentStatus>,
    #[serde(default)]
    allow_all_domains: Option<bool>,
    #[serde(default)]
    allowed_domains: Option<Vec<String>>,
    #[serde(default)]
    authentication: Option<AuthenticationSpec>,
}

impl DeploymentSpec {
    /// The deployment `id` this body describes; the name defaults to the id, the status to Active.
    pub(crate) fn into_config(self, id: &str) -> DeploymentConfig {
        DeploymentConfig {
            id: id.to_owned(),
            name: self.name.unwrap_or_else(|| id.to_owned()),
            status: self.status.unwrap_or(DeploymentStatus::Active),
            allow_all_domains: self.allow_all_domains.unwrap_or(false),
            allowed_domains: self.allowed_domains.unwrap_or_default(),
            authentication: self.authentication.map(|a| AuthenticationConfig {
                discovery_uri: a.discovery_uri,
                client_id: a.client_id,
                client_secret: a.client_secret,
            }),
        }
    }
}

/// A deployment as `GET /__admin/deployments` lists it: camelCase, the secret redacted.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeploymentListing<'a> {
    #[serde(flatten)]
    deployment: &'a WebDeployment,
    authentication: Option<AuthenticationListing<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthenticationListing<'a> {
    discovery_uri: &'a str,
    client_id: &'a str,
    client_secret: &'static str,
}

impl<'a> DeploymentListing<'a> {
    pub(crate) fn of(deployment: &'a Deployment) -> Self {
        Self {
            deployment: &deployment.public,
            authentication: deployment
                .config
                .authentication
                .as_ref()
                .map(|a| AuthenticationListing {
                    discovery_uri: &a.discovery_uri,
                    client_id: &a.client_id,
                    client_secret: REDACTED,
                }),
        }
    }
}

/// Why `PUT /__admin/deployments/{id}` refused a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PutError {
    /// A field is invalid: its name and what is wrong.
    Invalid(String, String),
    /// [`MAX_DEPLOYMENTS`] are held already and this one is new.
    Full,
}

/// A held deployment with its public view, built once (origin checks read it on every request).
#[derive(Debug)]
pub(crate) struct Deployment {
    pub(crate) config: DeploymentConfig,
    pub(crate) public: WebDeployment,
}

impl Deployment {
    fn new(config: DeploymentConfig) -> Arc<Self> {
        let public = config.web_deployment();
        Arc::new(Self { config, public })
    }
}

/// The deployments by id, in id order for stable listings.
#[derive(Default)]
pub(crate) struct Deployments {
    by_id: BTreeMap<String, Arc<Deployment>>,
}

impl Deployments {
    pub(crate) fn new(configs: &[DeploymentConfig]) -> Self {
        Self {
            by_id: configs
                .iter()
                .map(|c| (c.id.to_ascii_lowercase(), Deployment::new(c.clone())))
                .collect(),
        }
    }

    /// The deployment `id` (any case, as UUIDs compare).
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Deployment>> {
        self.by_id.get(&id.to_ascii_lowercase()).cloned()
    }

    /// Creates or replaces a deployment; `Ok(true)` when it is new.
    pub(crate) fn put(&mut self, config: DeploymentConfig) -> Result<bool, PutError> {
        config
            .validate("")
            .map_err(|(field, reason)| PutError::Invalid(field, reason))?;
        let key = config.id.to_ascii_lowercase();
        let is_new = !self.by_id.contains_key(&key);
        if is_new && self.by_id.len() >= MAX_DEPLOYMENTS {
            return Err(PutError::Full);
        }
        self.by_id.insert(key, Deployment::new(config));
        Ok(is_new)
    }

    pub(crate) fn remove(&mut self, id: &str) -> bool {
        self.by_id.remove(&id.to_ascii_lowercase()).is_some()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Deployment>> {
        self.by_id.values().cloned().collect()
    }

    /// Whether any deployment allows `origin` (a CORS preflight names no deployment).
    pub(crate) fn any_allows_origin(&self, origin: &str) -> bool {
        self.by_id.values().any(|d| d.public.allows_origin(origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_put_body_replaces_the_whole_deployment_with_defaults() {
        let spec: DeploymentSpec =
            serde_json::from_value(json!({"allowedDomains": ["example.com"]})).unwrap();
        let config = spec.into_config("0b8c9e2f-0a11-4a51-9a35-6f1c1f4e3d7e");
        assert_eq!(config.name, "0b8c9e2f-0a11-4a51-9a35-6f1c1f4e3d7e");
        assert_eq!(config.status, DeploymentStatus::Active);
        assert!(!config.allow_all_domains);
        assert_eq!(config.authentication, None);
        assert!(serde_json::from_value::<DeploymentSpec>(json!({"allowedDomain": []})).is_err());
    }

    #[test]
    fn listings_and_debug_never_show_the_client_secret() {
        let demo = DeploymentConfig::local_demo();
        let listed = serde_json::to_value(DeploymentListing::of(&Deployment::new(demo.clone()))).unwrap();
        assert_eq!(listed["authentication"]["clientSecret"], REDACTED);
        assert_eq!(listed["authentication"]["clientId"], "genesys-local");
        assert_eq!(listed["allowedDomains"][0], "http://localhost:8080");
        assert_eq!(listed["status"], "Active");
        assert!(!format!("{demo:?}").contains("genesys-local-secret"));
    }

    #[test]
    fn refuses_invalid_deployments_naming_the_field() {
        let mut store = Deployments::default();
        let mut bad = DeploymentConfig::local_demo();
        bad.id = "not-a-uuid".into();
        assert!(matches!(store.put(bad), Err(PutError::Invalid(field, _)) if field == "id"));
        let mut bad = DeploymentConfig::local_demo();
        bad.authentication.as_mut().unwrap().discovery_uri = "ftp://idp".into();
        assert!(
            matches!(store.put(bad), Err(PutError::Invalid(field, _)) if field == "authentication.discovery_uri")
        );
        assert_eq!(store.put(DeploymentConfig::local_demo()), Ok(true));
        assert_eq!(store.put(DeploymentConfig::local_demo()), Ok(false));
        assert!(store.get(&DEFAULT_DEPLOYMENT_ID.to_uppercase()).is_some());
    }

    #[test]
    fn holds_at_most_max_deployments_but_still_replaces() {
        let mut store = Deployments::default();
        for i in 0..MAX_DEPLOYMENTS {
            let mut config = DeploymentConfig::local_demo();
            config.id = Uuid::from_u128(i as u128).to_string();
            assert_eq!(store.put(config), Ok(true));
        }
        let mut extra = DeploymentConfig::local_demo();
        extra.id = Uuid::from_u128(u128::MAX).to_string();
        assert_eq!(store.put(extra), Err(PutError::Full));
        let mut again = DeploymentConfig::local_demo();
        again.id = Uuid::from_u128(0).to_string();
        assert_eq!(store.put(again), Ok(false));
    }
}
