//! TLS to a real HTTPS listener on 127.0.0.1 whose certificate a private test CA signed: the
//! client succeeds when it trusts that CA (given directly, or through `SSL_CERT_FILE`) and fails
//! with a certificate error when it trusts only the public roots.
//!
//! The fixtures were made once with OpenSSL (P-256, valid for a century, the CA's key discarded):
//! `tests/fixtures/test-ca.pem` is the CA, `server-cert.pem` and `server-key.pem` the listener's
//! certificate (`subjectAltName=IP:127.0.0.1`, `extendedKeyUsage=serverAuth`) and PKCS#8 key.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use domain::genesys::OAUTH_TOKEN_PATH;
use genesys_client::{
    Endpoints, GenesysApi, GenesysClient, GenesysConfig, GenesysError, GenesysShared, NoopObserver,
    RetrySettings, TrustSource, TrustStore,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

const TOKEN_BODY: &str = r#"{"access_token":"tls-test-token","token_type":"bearer","expires_in":86399}"#;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A one-request-per-connection HTTPS responder on its own thread, answering every request with
/// a canned token and reporting each request line it read. Connections whose handshake the
/// client refuses report nothing.
struct HttpsResponder {
    address: SocketAddr,
    requests: mpsc::Receiver<String>,
}

impl HttpsResponder {
    fn start() -> Self {
        let certificates = CertificateDer::pem_file_iter(fixture("server-cert.pem"))
            .expect("the server certificate fixture exists")
            .collect::<Result<Vec<_>, _>>()
            .expect("the server certificate fixture is PEM");
        let key = PrivateKeyDer::from_pem_file(fixture("server-key.pem")).expect("the key fixture is PEM");
        let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .expect("the fixture key matches its certificate");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let address = listener.local_addr().unwrap();
        let (sender, requests) = mpsc::channel();
        // The thread outlives the test, blocked in accept; the process ends it.
        thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                // A stalled client must not wedge the responder for the next test step.
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
                let connection = ServerConnection::new(Arc::clone(&config)).expect("a server connection");
                let mut stream = StreamOwned::new(connection, tcp);
                let Ok(request_line) = read_request(&mut stream) else {
                    continue;
                };
                // Reported before answering, so the client cannot see the answer first.
                if sender.send(request_line).is_err() {
                    return;
                }
                let _ = answer(&mut stream);
            }
        });
        Self { address, requests }
    }

    fn base_url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// Request lines received so far.
    fn received(&self) -> Vec<String> {
        self.requests.try_iter().collect()
    }
}

type TlsStream = StreamOwned<ServerConnection, std::net::TcpStream>;

/// Reads one HTTP/1.1 request (head and `content-length` body); returns its request line.
fn read_request(stream: &mut TlsStream) -> std::io::Result<String> {
    let mut reader = BufReader::new(&mut *stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body)?;
    Ok(request_line.trim_end().to_owned())
}

/// Answers with the canned token and closes the TLS session.
fn answer(stream: &mut TlsStream) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{TOKEN_BODY}",
        TOKEN_BODY.len()
    )?;
    stream.conn.send_close_notify();
    stream.flush()
}

fn config(responder: &HttpsResponder) -> GenesysConfig {
    GenesysConfig {
        endpoints: Endpoints::from_urls(&responder.base_url(), None).expect("a valid URL"),
        client_id: "tls-client".to_owned(),
        client_secret: "tls-secret".to_owned().into(),
        retry: RetrySettings {
            max_attempts: 2,
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_millis(100),
            ..RetrySettings::default()
        },
        max_connections_per_worker: 4,
        allowance: genesys_client::AllowanceSettings::default(),
    }
}

#[actix_rt::test]
async fn trusting_the_private_ca_the_token_is_fetched_over_tls() {
    let responder = HttpsResponder::start();
    let trust = TrustStore::from_pem_file(&fixture("test-ca.pem")).expect("the CA fixture loads");
    let shared = GenesysShared::with_trust_store(config(&responder), Arc::new(NoopObserver), trust);
    let client = GenesysClient::new(shared);

    let status = client.fetch_token().await.expect("the token is fetched over TLS");

    assert_eq!(status.expires_in, Duration::from_secs(86399));
    assert!(client.status().token.held);
    assert_eq!(
        responder.received(),
        [format!("POST {OAUTH_TOKEN_PATH} HTTP/1.1")]
    );
}

#[actix_rt::test]
async fn trusting_only_the_public_roots_the_private_certificate_is_refused() {
    let responder = HttpsResponder::start();
    let shared =
        GenesysShared::with_trust_store(config(&responder), Arc::new(NoopObserver), TrustStore::compiled());
    let client = GenesysClient::new(shared);

    let error = client
        .fetch_token()
        .await
        .expect_err("an unknown issuer is refused");

    let GenesysError::Transport { message, .. } = &error else {
        panic!("a transport error expected, got {error:?}");
    };
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    assert!(!client.status().token.held);
    assert!(responder.received().is_empty(), "no request passed the handshake");
}

/// Set in the child process that [`ssl_cert_file_names_the_trusted_ca`] starts.
const CHILD_MARKER: &str = "GENESYS_CLIENT_TLS_CHILD";

#[test]
fn ssl_cert_file_names_the_trusted_ca() {
    // The environment is process-wide: the check runs in a child with SSL_CERT_FILE set, so no
    // other test of this binary sees it.
    if std::env::var_os(CHILD_MARKER).is_some() {
        return ssl_cert_file_check();
    }
    let output = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([
            "--exact",
            "ssl_cert_file_names_the_trusted_ca",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MARKER, "1")
        .env("SSL_CERT_FILE", fixture("test-ca.pem"))
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the check ran in the child:\n{stdout}"
    );
}

fn ssl_cert_file_check() {
    actix_rt::System::new().block_on(async {
        let responder = HttpsResponder::start();
        let shared = GenesysShared::new(config(&responder), Arc::new(NoopObserver));
        assert_eq!(
            shared.trust_store().source(),
            &TrustSource::CertFile(fixture("test-ca.pem"))
        );
        let client = GenesysClient::new(shared);
        client
            .fetch_token()
            .await
            .expect("the CA from SSL_CERT_FILE is trusted");
        assert_eq!(responder.received().len(), 1);
    });
}
