use super::*;
use secrecy::ExposeSecret;

fn config_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn problems(pairs: &[(&str, &str)]) -> Vec<String> {
    Settings::load(&config_dir(), &env(pairs)).unwrap_err().0
}

#[test]
fn local_defaults_point_at_the_emulator() {
    let s = Settings::load(&config_dir(), &env(&[])).unwrap();
    assert_eq!(s.environment, "local");
    assert_eq!(s.genesys.endpoints.api_base, "http://localhost:8081");
    assert_eq!(s.genesys.endpoints.login_base, "http://localhost:8081");
    assert_eq!(s.genesys.client_id, "local-client");
    assert_eq!(s.server.port, 3000);
    assert_eq!(s.server.body_limit_bytes, 4096);
    assert_eq!(s.log.format, LogFormat::Text);
    assert!(
        s.cors
            .allowed_origins
            .iter()
            .any(|o| o.as_str() == "http://localhost:8080")
    );
    assert_eq!(s.guest.source_system, "embedded-widget");
}

#[test]
fn unknown_app_env_is_rejected_by_name() {
    let p = problems(&[("APP_ENV", "staging")]);
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("APP_ENV:"), "{p:?}");
}

#[test]
fn production_requires_credentials_from_the_environment_and_logs_json() {
    let p = problems(&[("APP_ENV", "production"), ("GENESYS_REGION", "mypurecloud.ie")]);
    assert!(p.iter().any(|l| l.contains("GENESYS_CLIENT_ID")), "{p:?}");
    assert!(p.iter().any(|l| l.contains("GENESYS_CLIENT_SECRET")), "{p:?}");

    let s = Settings::load(
        &config_dir(),
        &env(&[
            ("APP_ENV", "production"),
            ("GENESYS_REGION", "mypurecloud.ie"),
            ("GENESYS_CLIENT_ID", "prod-id"),
            ("GENESYS_CLIENT_SECRET", "prod-secret-value"),
            (
                "FRONTEND_ORIGIN",
                "https://www.example.com, https://shop.example.com",
            ),
        ]),
    )
    .unwrap();
    assert_eq!(s.log.format, LogFormat::Json);
    assert_eq!(s.genesys.endpoints.login_base, "https://login.mypurecloud.ie");
    assert_eq!(s.cors.allowed_origins.len(), 2);
    assert!(!format!("{s:?}").contains("prod-secret-value"));
}

#[test]
fn seed_variables_override_files_and_app_variables() {
    let s = Settings::load(
        &config_dir(),
        &env(&[
            ("APP__SERVER__PORT", "4000"),
            ("APP__RATE_LIMIT__BURST", "7"),
            (
                "APP__GUEST__ALLOWED_QUEUES",
                "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
            ),
            ("APP__RATE_LIMIT__TRUSTED_PROXIES", "10.0.0.0/8,192.168.1.1"),
            ("GENESYS_BASE_URL", "https://api.mypurecloud.de"),
            ("PORT", "5000"),
        ]),
    )
    .unwrap();
    assert_eq!(s.server.port, 5000);
    assert_eq!(s.rate_limit.burst, 7);
    assert_eq!(s.guest.allowed_queues.unwrap().len(), 1);
    assert_eq!(s.rate_limit.trusted_proxies.len(), 2);
    assert_eq!(s.genesys.endpoints.login_base, "https://login.mypurecloud.de");
}

#[test]
fn app_variables_set_list_settings() {
    let s = Settings::load(
        &config_dir(),
        &env(&[(
            "APP__CORS__ALLOWED_ORIGINS",
            "https://a.example, https://b.example:8443,",
        )]),
    )
    .unwrap();
    let origins: Vec<_> = s.cors.allowed_origins.iter().map(AllowedOrigin::as_str).collect();
    assert_eq!(origins, ["https://a.example", "https://b.example:8443"]);
}

#[test]
fn app_variables_keep_text_values_verbatim_even_when_they_look_like_numbers() {
    let s = Settings::load(
        &config_dir(),
        &env(&[
            ("APP__GENESYS__CLIENT_ID", "0123"),
            ("APP__GENESYS__CLIENT_SECRET", "1e5"),
            ("APP__GUEST__SOURCE_SYSTEM", "true"),
            ("APP__CORS__REQUIRE_ORIGIN", "true"),
        ]),
    )
    .unwrap();
    assert_eq!(s.genesys.client_id, "0123");
    assert_eq!(s.genesys.client_secret.expose_secret(), "1e5");
    assert_eq!(s.guest.source_system, "true");
    assert!(s.cors.require_origin);
}

#[test]
fn the_rate_may_be_a_fraction_but_not_zero() {
    let s = Settings::load(&config_dir(), &env(&[("APP__RATE_LIMIT__PER_SECOND", "0.25")])).unwrap();
    assert_eq!(s.rate_limit.per_second, 0.25);
    let p = problems(&[("APP__RATE_LIMIT__PER_SECOND", "0")]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("rate_limit.per_second:"), "{p:?}");
}

#[test]
fn a_wrong_log_format_names_the_setting() {
    let p = problems(&[("APP__LOG__FORMAT", "xml")]);
    assert_eq!(p, ["log.format: must be \"json\" or \"text\""]);
}

#[test]
fn a_region_replaces_the_urls_of_the_files() {
    let s = Settings::load(&config_dir(), &env(&[("GENESYS_REGION", "usw2.pure.cloud")])).unwrap();
    assert_eq!(s.genesys.endpoints.api_base, "https://api.usw2.pure.cloud");
    let p = problems(&[
        ("GENESYS_REGION", "usw2.pure.cloud"),
        ("GENESYS_BASE_URL", "https://x"),
    ]);
    assert!(p[0].contains("GENESYS_REGION"), "{p:?}");
}

#[test]
fn every_problem_is_reported_on_its_own_line_naming_the_setting() {
    let p = problems(&[
        ("FRONTEND_ORIGIN", "https://*.example.com,https://ok.example"),
        ("APP__RATE_LIMIT__TRUSTED_PROXIES", "not-an-ip"),
        ("APP__GUEST__DEFAULT_LANGUAGE", "english_us"),
        ("GENESYS_BASE_URL", "ftp://x"),
        ("GENESYS_CLIENT_SECRET_FILE", "/nonexistent/secret"),
    ]);
    assert_eq!(p.len(), 5, "{p:?}");
    assert!(p.iter().any(|l| l.starts_with("cors.allowed_origins")));
    assert!(p.iter().any(|l| l.starts_with("rate_limit.trusted_proxies")));
    assert!(p.iter().any(|l| l.starts_with("guest.default_language")));
    assert!(p.iter().any(|l| l.contains("GENESYS_BASE_URL")));
    assert!(p.iter().any(|l| l.contains("GENESYS_CLIENT_SECRET_FILE")));
}

#[test]
fn a_mistyped_value_names_the_key_without_echoing_it() {
    let p = problems(&[("APP__SERVER__WORKERS", "many-secret-ish")]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("server.workers"), "{p:?}");
    assert!(!p[0].contains("many-secret-ish"), "{p:?}");
}

#[test]
fn the_secret_file_wins_and_loses_its_trailing_newline() {
    let dir = std::env::temp_dir().join(format!("api-secret-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    std::fs::write(&file, "from-file\n").unwrap();
    let s = Settings::load(
        &config_dir(),
        &env(&[("GENESYS_CLIENT_SECRET_FILE", file.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(s.genesys.client_secret.expose_secret(), "from-file");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_empty_secret_file_is_a_problem() {
    let dir = std::env::temp_dir().join(format!("api-secret-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    std::fs::write(&file, "\n").unwrap();
    let p = problems(&[("GENESYS_CLIENT_SECRET_FILE", file.to_str().unwrap())]);
    std::fs::remove_dir_all(dir).unwrap();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("genesys.client_secret_file") && p[0].ends_with("is empty"),
        "{p:?}"
    );
}

#[test]
fn dotenv_fills_gaps_but_never_overrides_the_real_environment() {
    let dir = std::env::temp_dir().join(format!("api-dotenv-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(".env");
    std::fs::write(&path, "PORT=1111\nGENESYS_CLIENT_ID=from-dotenv\n").unwrap();
    let merged = environment_with_dotenv(env(&[("PORT", "2222")]), &path).unwrap();
    assert_eq!(merged["PORT"], "2222");
    assert_eq!(merged["GENESYS_CLIENT_ID"], "from-dotenv");
    let missing = environment_with_dotenv(env(&[]), &dir.join("absent")).unwrap();
    assert!(missing.is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

/// A configuration directory of its own: `default.toml` is the shipped one with `replaced`
/// lines (`key = value`, matched by key at the start of a line), and `test.toml` holds `test_toml`.
struct ConfigDir(std::path::PathBuf);

impl ConfigDir {
    fn new(replaced: &[(&str, String)], test_toml: &str) -> Self {
        let dir = Self(std::env::temp_dir().join(format!("api-config-{}", uuid::Uuid::new_v4())));
        std::fs::create_dir_all(&dir.0).unwrap();
        dir.rewrite_default(replaced);
        dir.write_test_toml(test_toml);
        dir
    }

    fn rewrite_default(&self, replaced: &[(&str, String)]) {
        let shipped = std::fs::read_to_string(config_dir().join("default.toml")).unwrap();
        let default: Vec<String> = shipped
            .lines()
            .map(|line| {
                replaced
                    .iter()
                    .find(|(key, _)| line.starts_with(&format!("{key} = ")))
                    .map_or_else(|| line.to_owned(), |(key, value)| format!("{key} = {value}"))
            })
            .collect();
        std::fs::write(self.0.join("default.toml"), default.join("\n")).unwrap();
    }

    fn write_test_toml(&self, text: &str) {
        std::fs::write(self.0.join("test.toml"), text).unwrap();
    }

    fn load(&self, pairs: &[(&str, &str)]) -> Result<Settings, ConfigProblems> {
        let mut env = env(pairs);
        env.insert("APP_ENV".to_owned(), "test".to_owned());
        Settings::load(&self.0, &env)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What every layering row starts from: a valid `default.toml` with values no row uses.
fn baseline() -> Vec<(&'static str, String)> {
    vec![
        ("base_url", "\"https://api.baseline.example\"".to_owned()),
        ("client_id", "\"baseline-id\"".to_owned()),
        (
            "client_secret_file",
            "\"\"\nclient_secret = \"baseline-secret\"".to_owned(),
        ),
    ]
}

/// The baseline with `key` set to `value` (TOML) in `default.toml`, or unset there when `None`.
fn default_layer(key: &str, value: Option<String>) -> Vec<(&'static str, String)> {
    let secret_line = |secret: &str| format!("\nclient_secret = {secret}");
    let mut lines = baseline();
    match (key, value) {
        // The shipped file has no client_secret line: it rides on the secret file's line.
        ("client_secret", Some(value)) => {
            lines.retain(|(k, _)| *k != "client_secret_file");
            lines.push(("client_secret_file", format!("\"\"{}", secret_line(&value))));
        }
        ("client_secret_file", Some(value)) => {
            lines.retain(|(k, _)| *k != "client_secret_file");
            lines.push((
                "client_secret_file",
                format!("{value}{}", secret_line("\"baseline-secret\"")),
            ));
        }
        // A region and the baseline's base URL in one file would clash.
        ("region", value) => {
            lines.retain(|(k, _)| *k != "base_url");
            match value {
                Some(value) => lines.push(("region", value)),
                None => lines.push(("base_url", quoted("https://api.baseline.example"))),
            }
        }
        ("base_url", value) => {
            lines.retain(|(k, _)| *k != "base_url");
            if let Some(value) = value {
                lines.push(("base_url", value));
            }
        }
        (other, Some(value)) => {
            let key = TWO_SOURCE_KEYS.iter().find(|k| k.key == other).unwrap().key;
            lines.retain(|(k, _)| *k != key);
            lines.push((key, value));
        }
        (_, None) => {}
    }
    lines
}

/// A key with two sources (an `APP__` variable and a seed name) and how each layer spells it.
struct TwoSourceKey {
    section: &'static str,
    key: &'static str,
    app: &'static str,
    seed: &'static str,
    /// The value layer `layer` sets, as an environment variable carries it.
    value: fn(&ConfigDir, &str) -> String,
    /// The same value in TOML.
    toml: fn(&str) -> String,
    /// What the settings hold when `layer` won.
    expected: fn(&str) -> String,
    read: fn(&Settings) -> String,
}

fn quoted(value: &str) -> String {
    format!("{value:?}")
}

fn layer_port(layer: &str) -> String {
    match layer {
        "default" => "4001",
        "file" => "4002",
        "app" => "4003",
        _ => "4004",
    }
    .to_owned()
}

const TWO_SOURCE_KEYS: [TwoSourceKey; 9] = [
    TwoSourceKey {
        section: "genesys",
        key: "client_id",
        app: "APP__GENESYS__CLIENT_ID",
        seed: "GENESYS_CLIENT_ID",
        value: |_, layer| format!("id-{layer}"),
        toml: quoted,
        expected: |layer| format!("id-{layer}"),
        read: |s| s.genesys.client_id.clone(),
    },
    TwoSourceKey {
        section: "genesys",
        key: "client_secret",
        app: "APP__GENESYS__CLIENT_SECRET",
        seed: "GENESYS_CLIENT_SECRET",
        value: |_, layer| format!("secret-{layer}"),
        toml: quoted,
        expected: |layer| format!("secret-{layer}"),
        read: |s| s.genesys.client_secret.expose_secret().to_owned(),
    },
    TwoSourceKey {
        section: "genesys",
        key: "client_secret_file",
        app: "APP__GENESYS__CLIENT_SECRET_FILE",
        seed: "GENESYS_CLIENT_SECRET_FILE",
        value: |dir, layer| dir.file(&format!("secret-{layer}"), &format!("from-file-{layer}\n")),
        toml: quoted,
        expected: |layer| format!("from-file-{layer}"),
        read: |s| s.genesys.client_secret.expose_secret().to_owned(),
    },
    TwoSourceKey {
        section: "genesys",
        key: "base_url",
        app: "APP__GENESYS__BASE_URL",
        seed: "GENESYS_BASE_URL",
        value: |_, layer| format!("https://api.{layer}.example"),
        toml: quoted,
        expected: |layer| format!("https://api.{layer}.example"),
        read: |s| s.genesys.endpoints.api_base.clone(),
    },
    TwoSourceKey {
        section: "genesys",
        key: "login_url",
        app: "APP__GENESYS__LOGIN_URL",
        seed: "GENESYS_LOGIN_URL",
        value: |_, layer| format!("https://sso.{layer}.example"),
        toml: quoted,
        expected: |layer| format!("https://sso.{layer}.example"),
        read: |s| s.genesys.endpoints.login_base.clone(),
    },
    TwoSourceKey {
        section: "genesys",
        key: "region",
        app: "APP__GENESYS__REGION",
        seed: "GENESYS_REGION",
        value: |_, layer| format!("{layer}.pure.cloud"),
        toml: quoted,
        expected: |layer| format!("https://api.{layer}.pure.cloud"),
        read: |s| s.genesys.endpoints.api_base.clone(),
    },
    TwoSourceKey {
        section: "cors",
        key: "allowed_origins",
        app: "APP__CORS__ALLOWED_ORIGINS",
        seed: "FRONTEND_ORIGIN",
        value: |_, layer| format!("https://{layer}.example,https://www.{layer}.example"),
        toml: |value| {
            let entries: Vec<String> = value.split(',').map(quoted).collect();
            format!("[{}]", entries.join(", "))
        },
        expected: |layer| format!("https://{layer}.example,https://www.{layer}.example"),
        read: |s| {
            let origins: Vec<&str> = s.cors.allowed_origins.iter().map(AllowedOrigin::as_str).collect();
            origins.join(",")
        },
    },
    TwoSourceKey {
        section: "server",
        key: "port",
        app: "APP__SERVER__PORT",
        seed: "PORT",
        value: |_, layer| layer_port(layer),
        toml: |value| value.to_owned(),
        expected: layer_port,
        read: |s| s.server.port.to_string(),
    },
    TwoSourceKey {
        section: "log",
        key: "level",
        app: "APP__LOG__LEVEL",
        seed: "RUST_LOG",
        value: |_, layer| format!("info,{layer}=debug"),
        toml: quoted,
        expected: |layer| format!("info,{layer}=debug"),
        read: |s| s.log.level.clone(),
    },
];

#[test]
fn the_last_layer_that_sets_a_key_wins_for_every_key_with_two_sources() {
    const LAYERS: [&str; 4] = ["default", "file", "app", "seed"];
    for key in &TWO_SOURCE_KEYS {
        // Every combination of layers setting the key (bit i = LAYERS[i]).
        for mask in 1u8..16 {
            let sets = |i: usize| mask & (1 << i) != 0;
            // Values that live in files (secret files) need the directory first.
            let dir = ConfigDir::new(&baseline(), "");
            let value = |layer: &str| (key.value)(&dir, layer);
            let replaced = default_layer(key.key, sets(0).then(|| (key.toml)(&value("default"))));
            dir.rewrite_default(&replaced);
            let file_layer = if sets(1) {
                format!(
                    "[{}]\n{} = {}\n",
                    key.section,
                    key.key,
                    (key.toml)(&value("file"))
                )
            } else {
                String::new()
            };
            dir.write_test_toml(&file_layer);
            let mut vars = Vec::new();
            if sets(2) {
                vars.push((key.app, value("app")));
            }
            if sets(3) {
                vars.push((key.seed, value("seed")));
            }
            let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let winner = (0..4).rev().find(|i| sets(*i)).map(|i| LAYERS[i]).unwrap();
            let settings = dir
                .load(&pairs)
                .unwrap_or_else(|p| panic!("{} with layers {mask:04b}: {p}", key.key));
            assert_eq!(
                (key.read)(&settings),
                (key.expected)(winner),
                "{}: with layers {:?} the {winner} layer must win",
                key.key,
                (0..4).filter(|i| sets(*i)).map(|i| LAYERS[i]).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn production_refuses_an_empty_origin_list() {
    let p = problems(&[
        ("APP_ENV", "production"),
        ("GENESYS_REGION", "mypurecloud.ie"),
        ("GENESYS_CLIENT_ID", "prod-id"),
        ("GENESYS_CLIENT_SECRET", "prod-secret"),
    ]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("cors.allowed_origins (FRONTEND_ORIGIN): must list"),
        "{p:?}"
    );
}

/// A production configuration that loads, with `overrides` in place of its values.
fn production_with(overrides: &[(&str, &str)]) -> Result<Settings, super::ConfigProblems> {
    let mut vars = env(&[
        ("APP_ENV", "production"),
        ("GENESYS_REGION", "mypurecloud.ie"),
        ("GENESYS_CLIENT_ID", "prod-id"),
        ("GENESYS_CLIENT_SECRET", "prod-secret-value"),
        ("FRONTEND_ORIGIN", "https://www.example.com"),
    ]);
    vars.extend(env(overrides));
    Settings::load(&config_dir(), &vars)
}

#[test]
fn production_refuses_a_plain_http_page_origin_unless_loopback_or_a_private_address() {
    let p = production_with(&[(
        "FRONTEND_ORIGIN",
        "https://www.example.com,http://www.example.com",
    )])
    .unwrap_err()
    .0;
    assert_eq!(
        p,
        [
            "cors.allowed_origins (FRONTEND_ORIGIN): http://www.example.com is plain http:// in \
          production; list the page's https:// origin (anyone on a visitor's network could act as \
          this one)"
        ]
    );
    for accepted in ["http://localhost:8080", "http://10.0.0.5:8080"] {
        production_with(&[("FRONTEND_ORIGIN", accepted)]).unwrap_or_else(|p| panic!("{accepted}: {p}"));
    }
    // Outside production, a plain http:// page is fine.
    Settings::load(
        &config_dir(),
        &env(&[("FRONTEND_ORIGIN", "http://www.example.com")]),
    )
    .unwrap();
}

#[test]
fn production_refuses_plain_http_to_genesys_unless_loopback_or_a_private_address() {
    let production = |url: &str| production_with(&[("GENESYS_REGION", ""), ("GENESYS_BASE_URL", url)]);
    for refused in [
        "http://api.mypurecloud.com",
        "http://mock-genesys:8081",
        "http://8.8.8.8",
    ] {
        let p = production(refused).unwrap_err().0;
        assert!(
            p.iter()
                .any(|l| l.starts_with("genesys.base_url (GENESYS_BASE_URL)") && l.contains("https://")),
            "{refused}: {p:?}"
        );
        assert!(!p.join("\n").contains("prod-secret-value"));
    }
    for accepted in [
        "https://api.mypurecloud.com",
        "http://127.0.0.1:8081",
        "http://localhost:8081",
        "http://10.0.3.4:8081",
        "http://[::1]:8081",
    ] {
        production(accepted).unwrap_or_else(|p| panic!("{accepted}: {p}"));
    }
    // Outside production, the emulator's compose name is fine.
    Settings::load(
        &config_dir(),
        &env(&[("GENESYS_BASE_URL", "http://mock-genesys:8081")]),
    )
    .unwrap();
}

#[test]
fn a_login_url_with_a_region_is_refused_instead_of_dropped() {
    let p = problems(&[
        ("GENESYS_REGION", "mypurecloud.ie"),
        ("GENESYS_LOGIN_URL", "https://login.example.com"),
    ]);
    assert_eq!(
        p,
        ["GENESYS_REGION and GENESYS_LOGIN_URL: set one of them (a region sets both URLs)"]
    );
    let dir = ConfigDir::new(
        &baseline(),
        "[genesys]\nregion = \"mypurecloud.de\"\nbase_url = \"\"\n",
    );
    let p = dir
        .load(&[("GENESYS_LOGIN_URL", "https://login.example.com")])
        .unwrap_err()
        .0;
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("GENESYS_LOGIN_URL and genesys.region in "),
        "{p:?}"
    );
}

#[test]
fn a_login_url_from_a_file_does_not_survive_a_later_base_url() {
    let dir = ConfigDir::new(
        &baseline(),
        "[genesys]\nbase_url = \"https://api.old.example\"\nlogin_url = \"https://login.old.example\"\n",
    );
    let s = dir
        .load(&[("GENESYS_BASE_URL", "https://api.mypurecloud.de")])
        .unwrap();
    assert_eq!(s.genesys.endpoints.api_base, "https://api.mypurecloud.de");
    assert_eq!(s.genesys.endpoints.login_base, "https://login.mypurecloud.de");
    // A login URL of the same layer as the base stays.
    let s = dir
        .load(&[
            ("GENESYS_BASE_URL", "https://api.mypurecloud.de"),
            ("GENESYS_LOGIN_URL", "https://sso.mypurecloud.de"),
        ])
        .unwrap();
    assert_eq!(s.genesys.endpoints.login_base, "https://sso.mypurecloud.de");
}

#[test]
fn an_app_variable_region_replaces_the_base_url_of_the_environment_file() {
    // config/local.toml sets base_url; the region of a later layer takes over both URLs.
    let s = Settings::load(&config_dir(), &env(&[("APP__GENESYS__REGION", "mypurecloud.ie")])).unwrap();
    assert_eq!(s.genesys.endpoints.api_base, "https://api.mypurecloud.ie");
    assert_eq!(s.genesys.endpoints.login_base, "https://login.mypurecloud.ie");
}

#[test]
fn the_listening_port_follows_the_same_layers_as_the_service() {
    let dir = ConfigDir::new(&baseline(), "[server]\nport = 4321\n");
    let mut vars = env(&[("APP_ENV", "test")]);
    assert_eq!(listening_port(&dir.0, &vars), Some(4321));
    vars.insert("APP__SERVER__PORT".to_owned(), "4322".to_owned());
    assert_eq!(listening_port(&dir.0, &vars), Some(4322));
    vars.insert("PORT".to_owned(), "4323".to_owned());
    assert_eq!(listening_port(&dir.0, &vars), Some(4323));
    assert_eq!(listening_port(Path::new("/nonexistent"), &env(&[])), None);
}

/// The workspace's test-only keys of the jose crate.
fn jose_fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../jose/tests/fixtures")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn web_messaging_is_off_without_a_deployment_and_on_in_the_local_files() {
    let off = Settings::load(&config_dir(), &env(&[("APP__WEB_MESSAGING__DEPLOYMENT_ID", "")])).unwrap();
    assert!(off.web_messaging.is_none());
    let local = Settings::load(&config_dir(), &env(&[])).unwrap();
    let wm = local.web_messaging.expect("on in local.toml");
    assert_eq!(wm.deployment_id, "7f6e5d4c-3b2a-4190-8a7b-6c5d4e3f2a1b");
    assert_eq!(wm.oidc.issuer, "http://localhost:3000");
    assert_eq!(wm.oidc.signing_key.kid(), DEVELOPMENT_KEY_IDS[0]);
    assert!(matches!(
        wm.site_session.verification,
        SessionVerification::Secret(_)
    ));
    assert_eq!(wm.site_session.algorithms, [jsonwebtoken::Algorithm::HS256]);
    assert_eq!(local.guest.upstream, GuestUpstream::Tutorial);
    let shown = format!("{:?}", wm.oidc);
    assert!(!shown.contains("genesys-local-secret"), "{shown}");
}

#[test]
fn the_committed_development_keys_are_the_ones_production_refuses() {
    for (file, kid) in [
        ("oidc-signing.pem", DEVELOPMENT_KEY_IDS[0]),
        ("oidc-signing-previous.pem", DEVELOPMENT_KEY_IDS[1]),
    ] {
        let pem = std::fs::read(config_dir().join("dev-keys").join(file)).unwrap();
        assert_eq!(jose::RsaSigningKey::from_pem(&pem).unwrap().kid(), kid, "{file}");
    }
}

#[test]
fn the_websocket_url_comes_from_the_region() {
    let s = Settings::load(
        &config_dir(),
        &env(&[
            ("GENESYS_REGION", "mypurecloud.ie"),
            ("APP__WEB_MESSAGING__WEBSOCKET_URL", ""),
        ]),
    )
    .unwrap();
    assert_eq!(
        s.web_messaging.unwrap().websocket_url,
        "wss://webmessaging.mypurecloud.ie/v1"
    );
    let p = problems(&[("APP__WEB_MESSAGING__WEBSOCKET_URL", "")]);
    assert!(
        p[0].starts_with("web_messaging.websocket_url: must be set"),
        "{p:?}"
    );
}

#[test]
fn each_identity_bridge_mistake_is_one_line_naming_its_setting() {
    let weak = jose_fixture("test-only-rsa-1024.pkcs8.pem");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("APP__OIDC__SIGNING_KEY_FILE", "")],
            "oidc.signing_key_file: must name",
        ),
        (
            vec![("APP__OIDC__SIGNING_KEY_FILE", "/nonexistent/key.pem")],
            "oidc.signing_key_file: cannot read",
        ),
        (
            vec![("APP__OIDC__SIGNING_KEY_FILE", &weak)],
            "at least 2048 are required",
        ),
        (vec![("APP__OIDC__ISSUER", "")], "oidc.issuer: must be set"),
        (
            vec![("APP__OIDC__ISSUER", "chat.example.com")],
            "oidc.issuer: \"chat.example.com\" must be an absolute",
        ),
        (
            vec![("APP__OIDC__REDIRECT_URIS", "/relative/page")],
            "oidc.redirect_uris: \"/relative/page\" must be an absolute",
        ),
        (
            vec![("APP__OIDC__REDIRECT_URIS", "")],
            "oidc.redirect_uris: list at least one",
        ),
        (
            vec![("APP__OIDC__CLIENT_SECRET", "short")],
            "oidc.client_secret: must be at least 16",
        ),
        (
            vec![("APP__OIDC__CODE_TTL_SECONDS", "0")],
            "oidc.code_ttl_seconds: must be from 1",
        ),
        (
            vec![
                ("APP__SITE_SESSION__SECRET_FILE", ""),
                ("APP__WEB_MESSAGING__ALLOW_ANONYMOUS", "false"),
            ],
            "site_session: set jwks_url or secret_file",
        ),
        (
            vec![(
                "APP__SITE_SESSION__JWKS_URL",
                "https://login.example.com/jwks.json",
            )],
            "site_session.jwks_url and site_session.secret_file: set one",
        ),
        (
            vec![
                ("APP__SITE_SESSION__SECRET_FILE", ""),
                (
                    "APP__SITE_SESSION__JWKS_URL",
                    "https://login.example.com/jwks.json",
                ),
                ("APP__SITE_SESSION__ALGORITHMS", "RS256,HS256"),
            ],
            "site_session.algorithms: with jwks_url, no HS256",
        ),
        (
            vec![("APP__SITE_SESSION__ALGORITHMS", "none")],
            "site_session.algorithms: \"none\" is not one of",
        ),
        (
            vec![("APP__SITE_SESSION__ISSUER", "")],
            "site_session.issuer: must be set",
        ),
        (
            vec![("APP__WEB_MESSAGING__DEPLOYMENT_ID", "my-deployment")],
            "web_messaging.deployment_id: \"my-deployment\" must be",
        ),
        (
            vec![("APP__GUEST__UPSTREAM", "genesys")],
            "guest.upstream: \"genesys\" must be",
        ),
        (
            vec![
                ("APP__WEB_MESSAGING__DEPLOYMENT_ID", ""),
                ("APP__GUEST__UPSTREAM", "web-messaging"),
            ],
            "guest.upstream: \"web-messaging\" needs web_messaging.deployment_id",
        ),
    ];
    for (vars, expected) in cases {
        let p = problems(&vars);
        assert_eq!(p.len(), 1, "{vars:?}: {p:?}");
        assert!(p[0].contains(expected), "{vars:?}: {p:?}");
    }
}

#[test]
fn production_refuses_an_insecure_or_published_identity_bridge() {
    let dir = std::env::temp_dir().join(format!("api-prod-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("client-secret");
    std::fs::write(&secret_file, "a-production-client-secret\n").unwrap();
    let own_key = jose_fixture("test-only-rsa-2048.pkcs8.pem");
    let session_secret = dir.join("session-secret");
    std::fs::write(&session_secret, "x".repeat(40)).unwrap();
    let base = |overrides: &[(&'static str, String)]| {
        let mut vars: Vec<(&str, String)> = vec![
            ("APP_ENV", "production".into()),
            ("GENESYS_REGION", "mypurecloud.ie".into()),
            ("GENESYS_CLIENT_ID", "prod-id".into()),
            ("GENESYS_CLIENT_SECRET", "prod-secret-value".into()),
            ("FRONTEND_ORIGIN", "https://www.example.com".into()),
            (
                "APP__WEB_MESSAGING__DEPLOYMENT_ID",
                "7f6e5d4c-3b2a-4190-8a7b-6c5d4e3f2a1b".into(),
            ),
            ("APP__OIDC__ISSUER", "https://chat.example.com".into()),
            ("APP__OIDC__SIGNING_KEY_FILE", own_key.clone()),
            ("APP__OIDC__CLIENT_ID", "genesys".into()),
            (
                "APP__OIDC__CLIENT_SECRET_FILE",
                secret_file.to_str().unwrap().into(),
            ),
            ("APP__OIDC__REDIRECT_URIS", "https://www.example.com/".into()),
            (
                "APP__SITE_SESSION__SECRET_FILE",
                session_secret.to_str().unwrap().into(),
            ),
            ("APP__SITE_SESSION__ISSUER", "https://www.example.com".into()),
            ("APP__SITE_SESSION__AUDIENCE", "chat".into()),
        ];
        for (k, v) in overrides {
            vars.retain(|(name, _)| name != k);
            vars.push((k, v.clone()));
        }
        let map: HashMap<String, String> = vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        Settings::load(&config_dir(), &map)
    };
    let ok = base(&[]).unwrap();
    assert_eq!(
        ok.web_messaging.unwrap().websocket_url,
        "wss://webmessaging.mypurecloud.ie/v1"
    );
    let dev_key = config_dir()
        .join("dev-keys/oidc-signing.pem")
        .to_str()
        .unwrap()
        .to_owned();
    for (overrides, expected) in [
        (
            vec![("APP__OIDC__ISSUER", "http://chat.example.com".to_owned())],
            "oidc.issuer: http://chat.example.com is plain http:// in production",
        ),
        (
            vec![("APP__OIDC__SIGNING_KEY_FILE", dev_key)],
            "is a published development key",
        ),
        (
            vec![
                ("APP__OIDC__CLIENT_SECRET_FILE", String::new()),
                ("APP__OIDC__CLIENT_SECRET", "inline-secret-value".into()),
            ],
            "oidc.client_secret: in production, give the secret in a file",
        ),
        (
            vec![("APP__OIDC__REDIRECT_URIS", "http://www.example.com/".to_owned())],
            "oidc.redirect_uris: http://www.example.com/ is plain http://",
        ),
        (
            vec![(
                "APP__WEB_MESSAGING__WEBSOCKET_URL",
                "ws://webmessaging.example.com/v1".to_owned(),
            )],
            "plain ws:// in production",
        ),
        (
            vec![(
                "APP__SITE_SESSION__SECRET_FILE",
                config_dir()
                    .join("dev-keys/site-session-hs256.key")
                    .to_str()
                    .unwrap()
                    .to_owned(),
            )],
            "is the published development secret",
        ),
    ] {
        let p = base(&overrides).unwrap_err().0;
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains(expected), "{p:?}");
        assert!(!p[0].contains("inline-secret-value"));
    }
    std::fs::remove_dir_all(dir).unwrap();
}
