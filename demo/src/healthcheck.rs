//! `demo-server healthcheck`: the container health check for an image without a shell or curl.
//! A plain HTTP/1.1 `GET /healthz` over `std::net::TcpStream` with short timeouts.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Whether `GET http://127.0.0.1:<port>/healthz` answers 200 within `timeout` (per step).
pub fn probe(port: u16, timeout: Duration) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, timeout) else {
        return false;
    };
    if stream.set_read_timeout(Some(timeout)).is_err() || stream.set_write_timeout(Some(timeout)).is_err() {
        return false;
    }
    let request = format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    // "HTTP/1.1 200" is all that matters; it arrives in the first bytes.
    let mut head = [0u8; 32];
    let mut filled = 0;
    while filled < 12 {
        match stream.read(&mut head[filled..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => filled += n,
        }
    }
    let status_line = String::from_utf8_lossy(&head[..filled]);
    status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200")
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    fn answer_once(answer: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            let (mut connection, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = connection.read(&mut request);
            let _ = connection.write_all(answer.as_bytes());
        });
        port
    }

    #[test]
    fn healthy_only_on_200() {
        let ok = answer_once("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n");
        assert!(probe(ok, Duration::from_secs(5)));
        let broken = answer_once("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
        assert!(!probe(broken, Duration::from_secs(5)));
    }

    #[test]
    fn unhealthy_when_nothing_listens() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(!probe(port, Duration::from_millis(500)));
    }
}
