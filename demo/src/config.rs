//! The page's run-time settings, as `GET /config.json` serves them, and the Content-Security-Policy
//! they imply.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use uuid::Uuid;

/// Where the page finds the guest-token API unless told otherwise (its published port).
pub const DEFAULT_API_BASE_URL: &str = "http://localhost:3000";
/// Where the page finds the second API instance, the one in `web-messaging` mode (custom widgets).
pub const DEFAULT_MESSAGING_API_BASE_URL: &str = "http://localhost:3001";
/// Where the page finds Genesys (the emulator's published port) unless told otherwise.
pub const DEFAULT_GENESYS_BASE_URL: &str = "http://localhost:8081";
/// Genesys' web-messaging WebSocket (the emulator's, locally) unless told otherwise.
pub const DEFAULT_WEBSOCKET_URL: &str = "ws://localhost:8081/v1";
/// The emulator's "Support" queue, the seed's example.
pub const DEFAULT_QUEUE_ID: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
/// The emulator's default web-messaging deployment.
pub const DEFAULT_DEPLOYMENT_ID: &str = "7f6e5d4c-3b2a-4190-8a7b-6c5d4e3f2a1b";

/// An absolute `http` or `https` URL without user info, query or fragment: the base the page puts
/// paths after. Its origin goes verbatim into a header, so only plain URL characters are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// Lowercase scheme and host, no trailing slash.
    url: String,
    /// Length of the `scheme://host[:port]` prefix of `url`.
    origin_len: usize,
}

impl BaseUrl {
    /// Parses `raw`, e.g. `http://localhost:3000` or `https://chat.example.com/guest/`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::parse_with_schemes(raw, ["http", "https"])
    }

    /// Parses `raw` as a URL of one of two `schemes` (the plain one first, then the TLS one).
    fn parse_with_schemes(raw: &str, schemes: [&str; 2]) -> Result<Self, String> {
        let [plain, tls] = schemes;
        let invalid = |why: &str| format!("{raw:?} is not a usable base URL: {why}");
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or_else(|| invalid(&format!("expected {plain}://host[:port][/path]")))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != plain && scheme != tls {
            return Err(invalid(&format!("the scheme must be {plain} or {tls}")));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = split_host_port(authority).map_err(|why| invalid(&why))?;
        if let Some(port) = port
            && !port.parse::<u16>().is_ok_and(|p| p > 0)
        {
            return Err(invalid("the port must be a number from 1 to 65535"));
        }
        let path_ok = path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b));
        if !path_ok {
            return Err(invalid(
                "the path may hold only letters, digits and -._~/% (no query, fragment or spaces)",
            ));
        }
        let origin = match port {
            Some(port) => format!("{scheme}://{}:{port}", host.to_ascii_lowercase()),
            None => format!("{scheme}://{}", host.to_ascii_lowercase()),
        };
        let origin_len = origin.len();
        Ok(BaseUrl {
            url: origin + path.trim_end_matches('/'),
            origin_len,
        })
    }

    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// `scheme://host[:port]`, as a browser names the origin a request goes to.
    pub fn origin(&self) -> &str {
        &self.url[..self.origin_len]
    }
}

/// `host` and the optional port of an authority; the host is a DNS name, IPv4 or `[IPv6]`.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if authority.is_empty() {
        return Err("the host is missing".into());
    }
    if authority.contains('@') {
        return Err("user info is not allowed".into());
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']').ok_or("an IPv6 host needs its closing ]")? + 1;
        let (host, rest) = authority.split_at(end);
        let port = match rest {
            "" => None,
            _ => Some(
                rest.strip_prefix(':')
                    .ok_or("expected :port after the IPv6 host")?,
            ),
        };
        let inner = &host[1..host.len() - 1];
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err("the IPv6 host is malformed".into());
        }
        (host, port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err("the host may hold only letters, digits, - and .".into());
        }
        (host, port)
    };
    Ok((host, port))
}

impl FromStr for BaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl Serialize for BaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.url)
    }
}

/// An absolute `ws` or `wss` URL without user info, query or fragment: a WebSocket endpoint the
/// page opens with its own query (`?deploymentId=…`). Checked like [`BaseUrl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketUrl(BaseUrl);

impl WebSocketUrl {
    /// Parses `raw`, e.g. `ws://localhost:8081/v1` or `wss://webmessaging.mypurecloud.com/v1`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        BaseUrl::parse_with_schemes(raw, ["ws", "wss"]).map(WebSocketUrl)
    }

    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// `ws[s]://host[:port]`, the source a Content-Security-Policy names.
    pub fn origin(&self) -> &str {
        self.0.origin()
    }
}

impl FromStr for WebSocketUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for WebSocketUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for WebSocketUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// What the page needs to know at run time, served as `GET /config.json` (so the page needs no
/// rebuild to point elsewhere).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageConfig {
    /// The guest-token API, e.g. `http://localhost:3000`: the tutorial's guest token, and the
    /// code the Messenger has Genesys exchange (`/api/webmessaging/auth-code`).
    pub api_base_url: BaseUrl,
    /// The guest-token API in `web-messaging` mode, e.g. `http://localhost:3001`: the Genesys
    /// messaging JWT a custom widget gets from `/api/webchat/guest-token`.
    pub messaging_api_base_url: BaseUrl,
    /// Genesys, or the emulator locally: the code exchange and the revocation.
    pub genesys_base_url: BaseUrl,
    /// Genesys' web-messaging WebSocket, or the emulator's locally.
    pub web_socket_url: WebSocketUrl,
    /// The queue the guest-token flow asks for.
    pub queue_id: Uuid,
    /// The web-messaging deployment of the signed-in flow.
    pub deployment_id: Uuid,
}

impl Default for PageConfig {
    fn default() -> Self {
        let url = |raw| BaseUrl::parse(raw).expect("the default URLs are valid");
        let id = |raw| Uuid::parse_str(raw).expect("the default ids are valid");
        PageConfig {
            api_base_url: url(DEFAULT_API_BASE_URL),
            messaging_api_base_url: url(DEFAULT_MESSAGING_API_BASE_URL),
            genesys_base_url: url(DEFAULT_GENESYS_BASE_URL),
            web_socket_url: WebSocketUrl::parse(DEFAULT_WEBSOCKET_URL).expect("the default URL is valid"),
            queue_id: id(DEFAULT_QUEUE_ID),
            deployment_id: id(DEFAULT_DEPLOYMENT_ID),
        }
    }
}

impl PageConfig {
    /// The page's Content-Security-Policy: its own scripts and styles only, and `connect-src` for
    /// exactly itself (`/config.json`, the stand-in login), both APIs, Genesys and its WebSocket.
    pub fn content_security_policy(&self) -> String {
        let mut connect = vec![
            "'self'".to_owned(),
            self.api_base_url.origin().to_owned(),
            self.messaging_api_base_url.origin().to_owned(),
            self.genesys_base_url.origin().to_owned(),
            // A ws: source does not cover http:, nor http: ws:, so the WebSocket needs its own.
            self.web_socket_url.origin().to_owned(),
        ];
        let mut seen = std::collections::HashSet::new();
        connect.retain(|source| seen.insert(source.clone()));
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src {}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            connect.join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_keeps_its_path_and_names_its_origin() {
        let url = BaseUrl::parse("HTTPS://Chat.Example.com:8443/guest/").unwrap();
        assert_eq!(url.as_str(), "https://chat.example.com:8443/guest");
        assert_eq!(url.origin(), "https://chat.example.com:8443");
        let local = BaseUrl::parse("http://localhost:3000").unwrap();
        assert_eq!(local.as_str(), "http://localhost:3000");
        assert_eq!(local.origin(), "http://localhost:3000");
        assert_eq!(
            BaseUrl::parse("http://[::1]:3000/").unwrap().origin(),
            "http://[::1]:3000"
        );
    }

    #[test]
    fn refuses_urls_that_could_break_out_of_a_header_or_are_not_http() {
        for raw in [
            "localhost:3000",
            "ftp://example.com",
            "http://",
            "http://a b",
            "http://example.com; script-src *",
            "http://example.com/'unsafe-inline'",
            "http://example.com/?x=1",
            "http://example.com/#top",
            "http://user:pass@example.com",
            "http://example.com:0",
            "http://example.com:99999",
            "http://example.com:",
            "http://[::1",
            "http://[nothex]:80",
        ] {
            let err = BaseUrl::parse(raw).expect_err(raw);
            assert!(err.contains("not a usable base URL"), "{err}");
        }
    }

    #[test]
    fn a_websocket_url_is_ws_or_wss_and_names_its_origin() {
        let url = WebSocketUrl::parse("WSS://WebMessaging.Example.com/v1").unwrap();
        assert_eq!(url.as_str(), "wss://webmessaging.example.com/v1");
        assert_eq!(url.origin(), "wss://webmessaging.example.com");
        assert_eq!(
            WebSocketUrl::parse("ws://localhost:8081/v1").unwrap().origin(),
            "ws://localhost:8081"
        );
        for raw in [
            "http://localhost:8081/v1",
            "ws://localhost:8081/v1?deploymentId=x",
            "ws://",
        ] {
            let err = WebSocketUrl::parse(raw).expect_err(raw);
            assert!(err.contains("not a usable base URL"), "{err}");
        }
        assert!(
            BaseUrl::parse("ws://localhost:8081").is_err(),
            "a base URL is http or https"
        );
    }

    #[test]
    fn config_json_names_the_fields_the_page_reads() {
        let json = serde_json::to_value(PageConfig::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "apiBaseUrl": "http://localhost:3000",
                "messagingApiBaseUrl": "http://localhost:3001",
                "genesysBaseUrl": "http://localhost:8081",
                "webSocketUrl": "ws://localhost:8081/v1",
                "queueId": DEFAULT_QUEUE_ID,
                "deploymentId": DEFAULT_DEPLOYMENT_ID,
            })
        );
    }

    #[test]
    fn the_policy_lets_the_page_connect_only_to_itself_both_apis_and_genesys() {
        let csp = PageConfig::default().content_security_policy();
        let connect = csp
            .split(';')
            .map(str::trim)
            .find_map(|d| d.strip_prefix("connect-src "))
            .unwrap();
        assert_eq!(
            connect,
            "'self' http://localhost:3000 http://localhost:3001 http://localhost:8081 ws://localhost:8081"
        );
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
        assert!(
            csp.contains("script-src 'self';") && !csp.contains("unsafe"),
            "{csp}"
        );
    }

    #[test]
    fn one_host_for_the_apis_and_genesys_is_listed_once() {
        let config = PageConfig {
            messaging_api_base_url: BaseUrl::parse("http://localhost:3000/messaging").unwrap(),
            genesys_base_url: BaseUrl::parse("http://localhost:3000/genesys").unwrap(),
            web_socket_url: WebSocketUrl::parse("ws://localhost:3000/genesys/v1").unwrap(),
            ..PageConfig::default()
        };
        let csp = config.content_security_policy();
        assert!(
            csp.contains("connect-src 'self' http://localhost:3000 ws://localhost:3000;"),
            "{csp}"
        );
    }
}
