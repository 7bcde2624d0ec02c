//! The seed's environment variable names: the last layer, over `APP__<SECTION>__<KEY>`.
//!
//! Most of them set one key. `GENESYS_BASE_URL`, `GENESYS_LOGIN_URL` and `GENESYS_REGION` set the
//! Genesys URLs as a group (see [`super::sources`]).

use std::collections::HashMap;

/// The environment variables the service reads besides `APP__<SECTION>__<KEY>`, with what they set.
pub const SEED_VARIABLES: [(&str, &str); 11] = [
    (
        "APP_ENV",
        "which config/<APP_ENV>.toml to layer over default.toml: local (default), test or production",
    ),
    (
        "APP_CONFIG_DIR",
        "directory holding the TOML files (default: config); not read from .env",
    ),
    ("GENESYS_CLIENT_ID", "OAuth client id (genesys.client_id)"),
    (
        "GENESYS_CLIENT_SECRET",
        "OAuth client secret (genesys.client_secret); never printed",
    ),
    (
        "GENESYS_CLIENT_SECRET_FILE",
        "file holding the client secret; wins over GENESYS_CLIENT_SECRET",
    ),
    (
        "GENESYS_BASE_URL",
        "API base URL, e.g. https://api.mypurecloud.com (genesys.base_url); replaces a region and \
         a login URL of earlier layers",
    ),
    (
        "GENESYS_LOGIN_URL",
        "login base URL; derived from the base URL (api. -> login.) when unset; not with a region",
    ),
    (
        "GENESYS_REGION",
        "region domain such as mypurecloud.ie: sets both URLs (genesys.region); not with the URLs",
    ),
    (
        "FRONTEND_ORIGIN",
        "comma-separated allowed origins, e.g. https://www.example.com (cors.allowed_origins)",
    ),
    ("PORT", "listening port (server.port)"),
    (
        "RUST_LOG",
        "log filter, overrides log.level (e.g. info,api=debug)",
    ),
];

/// The seed's names that set exactly one key, as `(variable, key)`.
pub(super) const SINGLE_KEY_VARIABLES: [(&str, &str); 6] = [
    ("GENESYS_CLIENT_ID", "genesys.client_id"),
    ("GENESYS_CLIENT_SECRET", "genesys.client_secret"),
    ("GENESYS_CLIENT_SECRET_FILE", "genesys.client_secret_file"),
    ("FRONTEND_ORIGIN", "cors.allowed_origins"),
    ("PORT", "server.port"),
    ("RUST_LOG", "log.level"),
];

/// The variables of the Genesys URL group, in the order base, login, region.
pub(super) const URL_GROUP: [&str; 3] = ["GENESYS_BASE_URL", "GENESYS_LOGIN_URL", "GENESYS_REGION"];

/// The value `name` holds, if it is set and not blank. Secrets keep their spaces: they are the
/// operator's exact bytes; everything else is trimmed.
pub(super) fn value(env: &HashMap<String, String>, name: &str) -> Option<String> {
    let raw = env.get(name)?;
    if raw.trim().is_empty() {
        return None;
    }
    if name == "GENESYS_CLIENT_SECRET" {
        Some(raw.clone())
    } else {
        Some(raw.trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_that_sets_a_key_is_documented() {
        let documented: Vec<&str> = SEED_VARIABLES.iter().map(|(name, _)| *name).collect();
        for (name, _) in SINGLE_KEY_VARIABLES {
            assert!(documented.contains(&name), "{name} is not in SEED_VARIABLES");
        }
        for name in URL_GROUP {
            assert!(documented.contains(&name), "{name} is not in SEED_VARIABLES");
        }
    }

    #[test]
    fn blank_values_are_unset_and_only_secrets_keep_their_spaces() {
        let env: HashMap<String, String> = [
            ("PORT", " 3000 "),
            ("GENESYS_CLIENT_ID", "   "),
            ("GENESYS_CLIENT_SECRET", " s p "),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(value(&env, "PORT").as_deref(), Some("3000"));
        assert_eq!(value(&env, "GENESYS_CLIENT_ID"), None);
        assert_eq!(value(&env, "GENESYS_CLIENT_SECRET").as_deref(), Some(" s p "));
        assert_eq!(value(&env, "FRONTEND_ORIGIN"), None);
    }
}
