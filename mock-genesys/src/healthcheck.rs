//! The container health check: `GET /__admin/health` over a plain TCP stream (the image has no curl).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::settings::MockSettings;

/// Where the admin API of an emulator started with `settings` can be probed: the admin listener's
/// host and port (else the main listener's), a wildcard host replaced by loopback.
pub fn admin_address(settings: &MockSettings) -> (String, u16) {
    let host = settings.admin_host.as_deref().unwrap_or(&settings.host);
    let host = match host {
        "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "::1",
        other => other,
    };
    let port = match settings.admin_port {
        Some(port) => port,
        None => settings.port,
    };
    (host.to_owned(), port)
}

/// True if `GET /__admin/health` on `host:port` answers 200 within `timeout` (per step).
pub fn healthcheck(host: &str, port: u16, timeout: Duration) -> bool {
    probe(host, port, timeout).unwrap_or(false)
}

fn probe(host: &str, port: u16, timeout: Duration) -> std::io::Result<bool> {
    let mut last_error = None;
    for address in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(mut stream) => {
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))?;
                write!(
                    stream,
                    "GET {}/health HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n",
                    crate::ADMIN_PREFIX
                )?;
                // The status line fits well within the first read of a small answer.
                let mut head = [0u8; 64];
                let mut filled = 0;
                while filled < 12 {
                    let n = stream.read(&mut head[filled..])?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                let status_line = String::from_utf8_lossy(&head[..filled]);
                return Ok(status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200"));
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no address")))
}
