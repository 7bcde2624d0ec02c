//! Where Genesys is and how patiently to talk to it.

use std::time::Duration;

use secrecy::SecretString;

use crate::allowance::AllowanceSettings;

/// The two Genesys hosts: the Platform API and the OAuth login host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// API base, e.g. `https://api.mypurecloud.com` (no trailing slash).
    pub api_base: String,
    /// Login base, e.g. `https://login.mypurecloud.com` (no trailing slash).
    pub login_base: String,
}

/// A Genesys endpoint setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A URL that is not `http(s)://host[:port][/path]`.
    #[error("{setting}: {value:?} is not an http:// or https:// URL")]
    InvalidUrl {
        /// The setting's name.
        setting: &'static str,
        /// The rejected value.
        value: String,
    },
    /// A region domain with characters a host name cannot hold.
    #[error("region: {0:?} is not a Genesys region domain such as mypurecloud.ie or usw2.pure.cloud")]
    InvalidRegion(String),
}

impl Endpoints {
    /// `https://api.<domain>` and `https://login.<domain>` for a region domain such as
    /// `mypurecloud.ie` or `usw2.pure.cloud`.
    pub fn from_region(domain: &str) -> Result<Self, ConfigError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let valid = !domain.is_empty()
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            return Err(ConfigError::InvalidRegion(domain));
        }
        Ok(Self {
            api_base: format!("https://api.{domain}"),
            login_base: format!("https://login.{domain}"),
        })
    }

    /// Endpoints from an API base URL and an optional login URL. Without one, the login URL is
    /// the API URL with its host's leading `api.` replaced by `login.`; a host without `api.`
    /// (such as the emulator on `localhost`) serves both.
    pub fn from_urls(api_base: &str, login_base: Option<&str>) -> Result<Self, ConfigError> {
        let api_base = normalize_url(api_base, "GENESYS_BASE_URL")?;
        let login_base = match login_base {
            Some(login) => normalize_url(login, "GENESYS_LOGIN_URL")?,
            None => derive_login(&api_base).unwrap_or_else(|| api_base.clone()),
        };
        Ok(Self { api_base, login_base })
    }
}

fn normalize_url(raw: &str, setting: &'static str) -> Result<String, ConfigError> {
    let trimmed = raw.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') && !host.contains(char::is_whitespace) => {
            Ok(trimmed.to_owned())
        }
        _ => Err(ConfigError::InvalidUrl {
            setting,
            value: raw.to_owned(),
        }),
    }
}

fn derive_login(api_base: &str) -> Option<String> {
    let (scheme, rest) = api_base.split_once("://")?;
    let host = rest.strip_prefix("api.")?;
    Some(format!("{scheme}://login.{host}"))
}

/// How long to wait and how often to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySettings {
    /// Total time one operation may take, all attempts and waits included.
    pub budget: Duration,
    /// Time one HTTP attempt may take.
    pub attempt_timeout: Duration,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff step when Genesys gives no `Retry-After`.
    pub backoff_base: Duration,
    /// Largest backoff step.
    pub backoff_cap: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            max_attempts: 4,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(8),
        }
    }
}

/// Everything the client needs to reach Genesys.
#[derive(Debug, Clone)]
pub struct GenesysConfig {
    /// How much of Genesys' per-client allowance this process may spend.
    pub allowance: AllowanceSettings,
    /// The API and login hosts.
    pub endpoints: Endpoints,
    /// The confidential OAuth client id.
    pub client_id: String,
    /// The OAuth client secret; only ever sent in the token request's `Authorization`.
    pub client_secret: SecretString,
    /// Timeouts, attempts and backoff.
    pub retry: RetrySettings,
    /// Most connections awc keeps per worker.
    pub max_connections_per_worker: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_domain_gives_api_and_login_hosts() {
        for domain in ["mypurecloud.ie", "usw2.pure.cloud", "mypurecloud.com.au"] {
            let e = Endpoints::from_region(domain).unwrap();
            assert_eq!(e.api_base, format!("https://api.{domain}"));
            assert_eq!(e.login_base, format!("https://login.{domain}"));
        }
    }

    #[test]
    fn region_must_be_a_domain() {
        for bad in ["", "ie", "https://api.mypurecloud.ie", "my purecloud.ie", "a..b"] {
            assert!(Endpoints::from_region(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn login_url_is_derived_from_an_api_host() {
        let e = Endpoints::from_urls("https://api.mypurecloud.de/", None).unwrap();
        assert_eq!(e.api_base, "https://api.mypurecloud.de");
        assert_eq!(e.login_base, "https://login.mypurecloud.de");
    }

    #[test]
    fn an_explicit_login_url_wins_and_plain_http_is_allowed_for_the_emulator() {
        let e = Endpoints::from_urls("http://127.0.0.1:8081", Some("http://127.0.0.1:8081")).unwrap();
        assert_eq!(e.login_base, "http://127.0.0.1:8081");
    }

    #[test]
    fn a_host_without_api_prefix_serves_login_too() {
        let e = Endpoints::from_urls("http://localhost:8081", None).unwrap();
        assert_eq!(e.login_base, "http://localhost:8081");
        assert!(matches!(
            Endpoints::from_urls("ftp://x", None),
            Err(ConfigError::InvalidUrl { .. })
        ));
    }
}
