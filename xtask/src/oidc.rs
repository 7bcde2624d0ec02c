//! `oidc`: the API's OpenID Connect provider, checked by an independent client.
//!
//! Authlib's OAuth 2.0 client and joserfc (pinned with everything they pull in by
//! `xtask/oidc/requirements.txt`, in a virtual environment under `target/`) run
//! `xtask/oidc/conformance.py` against the running API: discovery, the authorization redirect with
//! PKCE, the code grant with `client_secret_basic` and `client_secret_post`, a code from the
//! Messenger's auth-code route, refresh with rotation, userinfo, the refusals, and every ID token
//! validated against the published JWKS. Any failed check fails the task.

use crate::local::{self, ORIGIN};
use crate::process::{self, Result, cmd, root, target_dir};
use crate::python;

/// The relying party the run registers with the provider; local values, no secret of anyone's.
const CLIENT_ID: &str = "conformance-client";
const CLIENT_SECRET: &str = "conformance-client-secret";
/// One of `config/local.toml`'s `oidc.redirect_uris`.
const REDIRECT_URI: &str = "http://localhost:8080/";
/// The site sessions the local configuration trusts (`config/local.toml`, `[site_session]`).
const SITE_KEY_FILE: &str = "config/dev-keys/site-session-hs256.key";
const SITE_ISSUER: &str = "http://localhost:8080";
const SITE_AUDIENCE: &str = "guest-token-api";

/// The `oidc` task.
pub fn oidc() -> Result {
    process::catch_interrupt();
    let work = target_dir().join("oidc");
    let requirements = root().join("xtask/oidc/requirements.txt");
    let venv = python::virtual_environment(&work, &requirements, "python")?;
    let stack = local::start(|api, address| {
        // The issuer is where the provider answers, so the client can follow its discovery.
        api.env("APP__OIDC__ISSUER", format!("http://{address}"))
            .env("APP__OIDC__CLIENT_ID", CLIENT_ID)
            .env("APP__OIDC__CLIENT_SECRET", CLIENT_SECRET)
            .env("APP__SITE_SESSION__ISSUER", SITE_ISSUER)
            .env("APP__SITE_SESSION__AUDIENCE", SITE_AUDIENCE)
            .env("APP__RATE_LIMIT__PER_SECOND", "1000")
            .env("APP__RATE_LIMIT__BURST", "1000");
    })?;
    let mut check = cmd(venv.join("bin").join("python"), &[]);
    check
        .arg(root().join("xtask/oidc/conformance.py"))
        .env("OIDC_ISSUER", format!("http://{}", stack.api))
        .env("OIDC_CLIENT_ID", CLIENT_ID)
        .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("OIDC_REDIRECT_URI", REDIRECT_URI)
        .env("PAGE_ORIGIN", ORIGIN)
        .env("SITE_KEY_FILE", root().join(SITE_KEY_FILE))
        .env("SITE_ISSUER", SITE_ISSUER)
        .env("SITE_AUDIENCE", SITE_AUDIENCE)
        // Warnings are errors: a deprecated call in the client is found here, not in a year.
        .env("PYTHONWARNINGS", "error");
    process::run(&mut check)
        .map_err(|e| format!("{e}: the OpenID Connect provider failed a check (see above)"))
}
