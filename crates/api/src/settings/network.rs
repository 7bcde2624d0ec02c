//! Network values of the settings: allowed browser origins, client networks (CIDR blocks, with
//! `ipnet`) and the rule for which hosts may be spoken to over plain HTTP.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// An allowed browser origin: `scheme://host[:port]`, lowercase, no path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowedOrigin(String);

impl AllowedOrigin {
    /// The origin as a browser sends it in `Origin`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AllowedOrigin {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let origin = raw.trim();
        if origin.contains('*') {
            return Err(format!("{origin:?}: wildcards are not allowed; list each origin"));
        }
        let (scheme, rest) = origin
            .split_once("://")
            .ok_or_else(|| format!("{origin:?}: must look like https://host[:port]"))?;
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(format!("{origin:?}: the scheme must be http or https")),
        };
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) || rest.contains(char::is_whitespace) {
            return Err(format!(
                "{origin:?}: must be scheme://host[:port] with no path, query or user"
            ));
        }
        // A bracketed IPv6 address, or a host name; then an optional port.
        let (host_ok, port) = match rest.strip_prefix('[') {
            Some(bracketed) => match bracketed.split_once(']') {
                Some((address, port)) => (address.parse::<std::net::Ipv6Addr>().is_ok(), port),
                None => (false, ""),
            },
            None => {
                let (host, port) = rest.split_at(rest.find(':').unwrap_or(rest.len()));
                (is_host_name(host), port)
            }
        };
        if !host_ok {
            return Err(format!(
                "{origin:?}: the host must be a host name (labels of letters, digits and '-') or a bracketed IPv6 address"
            ));
        }
        if let Some(digits) = port.strip_prefix(':') {
            // Browsers write the port in plain digits, without leading zeros.
            let number = Some(digits)
                .filter(|d| !d.is_empty() && d.len() <= 5 && !d.starts_with('0'))
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u32>().ok())
                .filter(|p| *p <= 65_535)
                .ok_or_else(|| format!("{origin:?}: the port must be a number from 1 to 65535"))?;
            if number == default_port {
                return Err(format!(
                    "{origin:?}: leave out the default port, browsers never send it"
                ));
            }
        } else if !port.is_empty() {
            return Err(format!("{origin:?}: must be scheme://host[:port]"));
        }
        Ok(Self(origin.to_ascii_lowercase()))
    }
}

/// A DNS host name (or dotted IPv4 address): labels of 1 to 63 letters, digits and `-`, not
/// starting or ending with `-`, 253 characters at most.
fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// An IP address or CIDR block such as `10.0.0.0/8` (IPv4-mapped IPv6 addresses count as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork(IpNet);

impl IpNetwork {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

impl FromStr for IpNetwork {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        let net = match raw.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => match raw.parse::<IpAddr>() {
                Ok(addr) => IpNet::from(addr),
                Err(_) if raw.contains('/') => {
                    return Err(format!(
                        "{raw:?}: not a CIDR block (the prefix length must be 0 to 32 for IPv4, 0 to 128 for IPv6)"
                    ));
                }
                Err(_) => return Err(format!("{raw:?}: not an IP address or CIDR block")),
            },
        };
        Ok(Self(canonical_net(net).trunc()))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) compare as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// `::ffff:10.0.0.0/104` is `10.0.0.0/8`.
fn canonical_net(net: IpNet) -> IpNet {
    match (canonical(net.addr()), net) {
        (IpAddr::V4(v4), IpNet::V6(v6)) if v6.prefix_len() >= 96 => {
            IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).unwrap_or(net)
        }
        _ => net,
    }
}

/// Whether a URL's `host` may be spoken to over plain `http://` in production: a loopback name
/// or address, or an IP address of a private range written as such. A DNS name, even one that
/// resolves privately, must use `https://`, since nothing guarantees where it resolves.
pub fn plain_http_allowed(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>().map(canonical) {
        Ok(IpAddr::V4(v4)) => v4.is_loopback() || v4.is_private(),
        // fc00::/7, the unique local addresses.
        Ok(IpAddr::V6(v6)) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        Err(_) => false,
    }
}

/// The host of an `http(s)://host[:port][/path]` URL (IPv6 literals keep their brackets), as a
/// browser reads it: a `\` ends the authority like a `/` (WHATWG URL), so
/// `http://evil.example\@10.0.0.1/` is `evil.example`, not the private address.
pub(crate) fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '\\', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if authority.starts_with('[') {
        return authority.find(']').map(|end| &authority[..=end]);
    }
    Some(authority.split(':').next().unwrap_or(authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_read_as_a_browser_reads_it() {
        for (url, host) in [
            ("http://10.0.0.1:8080/cb", "10.0.0.1"),
            ("http://user@10.0.0.1/", "10.0.0.1"),
            ("http://evil.example\\@10.0.0.1/cb", "evil.example"),
            ("http://evil.example?@10.0.0.1/", "evil.example"),
            ("http://[fd00::1]:80/", "[fd00::1]"),
        ] {
            assert_eq!(url_host(url), Some(host), "{url}");
        }
    }

    #[test]
    fn origins_must_be_exact_scheme_host_port() {
        for ok in [
            "https://www.example.com",
            "http://localhost:8080",
            "http://[::1]:3000",
            "HTTPS://A.example",
        ] {
            assert!(ok.parse::<AllowedOrigin>().is_ok(), "{ok}");
        }
        for bad in [
            "*",
            "https://*.example.com",
            "www.example.com",
            "https://example.com/",
            "https://example.com/path",
            "ftp://example.com",
            "https://example.com:0",
            "https://example.com:443",
            "https://user@example.com",
            "http://..",
            "http://-",
            "http://::1",
            "http://[zz]",
            "http://a:+8080",
            "http://a:08080",
        ] {
            assert!(bad.parse::<AllowedOrigin>().is_err(), "{bad}");
        }
    }

    #[test]
    fn networks_match_addresses_and_cidr_blocks() {
        let net: IpNetwork = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let one: IpNetwork = "fd00::1".parse().unwrap();
        assert!(one.contains("fd00::1".parse().unwrap()));
        assert!(!one.contains("fd00::2".parse().unwrap()));
        let host_bits_set: IpNetwork = "192.168.7.9/16".parse().unwrap();
        assert!(host_bits_set.contains("192.168.200.1".parse().unwrap()));
        let mapped: IpNetwork = "::ffff:10.0.0.0/104".parse().unwrap();
        assert!(mapped.contains("10.9.9.9".parse().unwrap()));
        for bad in ["10.0.0.0/33", "fd00::/129", "not-an-ip", "10.0.0.0/"] {
            assert!(bad.parse::<IpNetwork>().is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_http_is_allowed_to_loopback_and_private_addresses_written_as_such() {
        for ok in [
            "localhost",
            "127.0.0.1",
            "127.9.9.9",
            "[::1]",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "[fd12::1]",
        ] {
            assert!(plain_http_allowed(ok), "{ok}");
        }
        for bad in [
            "api.mypurecloud.com",
            "mock-genesys",
            "8.8.8.8",
            "172.32.0.1",
            "[2001:db8::1]",
            "localhost.example.com",
        ] {
            assert!(!plain_http_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn finds_the_host_of_a_url() {
        assert_eq!(url_host("http://10.0.0.1:8081/x"), Some("10.0.0.1"));
        assert_eq!(url_host("https://api.mypurecloud.ie"), Some("api.mypurecloud.ie"));
        assert_eq!(url_host("http://[::1]:3000"), Some("[::1]"));
        assert_eq!(url_host("http://user@host:1"), Some("host"));
        assert_eq!(url_host("no-scheme"), None);
    }
}
