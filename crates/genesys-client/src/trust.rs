//! The certificate authorities the client trusts when it talks TLS to Genesys.
//!
//! In order: the PEM bundle named by `SSL_CERT_FILE`; else the system store as
//! `rustls-native-certs` finds it (`SSL_CERT_DIR`, or the OS bundle such as
//! `/etc/ssl/certs/ca-certificates.crt`); else the Mozilla roots compiled into the binary.
//! An operator behind a TLS-inspecting proxy, or with a private CA, adds its certificate to the
//! bundle that `SSL_CERT_FILE` names.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::{env, fmt, fs, io};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// The environment variable naming a PEM bundle of trusted CA certificates.
pub const CERT_FILE_VAR: &str = "SSL_CERT_FILE";

/// Where a [`TrustStore`]'s certificate authorities came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustSource {
    /// The PEM bundle at this path (`SSL_CERT_FILE`), and nothing else.
    CertFile(PathBuf),
    /// The system store as `rustls-native-certs` finds it: the directories of `SSL_CERT_DIR` if
    /// set, else the operating system's bundle.
    System,
    /// The Mozilla roots compiled into the binary (`webpki-roots`).
    Compiled,
}

impl fmt::Display for TrustSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CertFile(path) => write!(f, "{CERT_FILE_VAR}={}", path.display()),
            Self::System => f.write_str("the system certificate store"),
            Self::Compiled => f.write_str("the compiled-in Mozilla roots"),
        }
    }
}

/// Why a PEM bundle cannot serve as the trust store.
#[derive(Debug, thiserror::Error)]
pub enum TrustStoreError {
    /// The file could not be read (missing, a directory, no permission).
    #[error("cannot read the CA bundle {}: {source}", path.display())]
    Unreadable {
        /// The bundle's path.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A PEM section of the file is broken.
    #[error("the CA bundle {} is not valid PEM: {reason}", path.display())]
    Malformed {
        /// The bundle's path.
        path: PathBuf,
        /// What the PEM parser said.
        reason: String,
    },
    /// The file holds no `CERTIFICATE` section that parses as a CA certificate.
    #[error(
        "the CA bundle {} holds no usable certificate ({ignored} unparsable)",
        path.display()
    )]
    NoCertificates {
        /// The bundle's path.
        path: PathBuf,
        /// `CERTIFICATE` sections that were present but could not be parsed.
        ignored: usize,
    },
}

/// The certificate authorities the client trusts, where they came from, and what went wrong
/// on the way. Cheap to clone.
#[derive(Clone)]
pub struct TrustStore {
    roots: Arc<RootCertStore>,
    source: TrustSource,
    warnings: Vec<String>,
}

impl fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustStore")
            .field("source", &self.source)
            .field("roots", &self.roots.len())
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl TrustStore {
    /// The store the environment asks for: `SSL_CERT_FILE`'s bundle if the variable is set and
    /// non-empty, else the system store, else the compiled-in roots. Never fails: an unusable
    /// `SSL_CERT_FILE` or an empty system store is logged as a warning (also kept in
    /// [`TrustStore::warnings`]) and the next source is used. Call [`TrustStore::from_pem_file`]
    /// instead to refuse to start on a broken bundle.
    pub fn from_env() -> Self {
        let cert_file = env::var_os(CERT_FILE_VAR)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from);
        let store = Self::resolve(cert_file.as_deref(), system_certificates);
        for warning in &store.warnings {
            tracing::warn!("{warning}");
        }
        tracing::info!(source = %store.source, roots = store.len(), "TLS trust store for Genesys");
        store
    }

    /// Exactly the CA certificates of the PEM bundle at `path`. Fails if the file cannot be read,
    /// is not valid PEM, or holds no parsable certificate; certificates that do not parse next to
    /// ones that do are skipped with a warning.
    pub fn from_pem_file(path: &Path) -> Result<Self, TrustStoreError> {
        let bytes = fs::read(path).map_err(|source| TrustStoreError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        let certificates = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| TrustStoreError::Malformed {
                path: path.to_owned(),
                reason: error.to_string(),
            })?;
        let mut roots = RootCertStore::empty();
        let (_, ignored) = roots.add_parsable_certificates(certificates);
        if roots.is_empty() {
            return Err(TrustStoreError::NoCertificates {
                path: path.to_owned(),
                ignored,
            });
        }
        let mut warnings = Vec::new();
        if ignored > 0 {
            warnings.push(format!(
                "{CERT_FILE_VAR}: skipped {ignored} unparsable certificate(s) in {}",
                path.display()
            ));
        }
        Ok(Self {
            roots: Arc::new(roots),
            source: TrustSource::CertFile(path.to_owned()),
            warnings,
        })
    }

    /// The Mozilla roots compiled into the binary, whatever the environment says.
    pub fn compiled() -> Self {
        Self {
            roots: Arc::new(RootCertStore::from_iter(
                webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
            )),
            source: TrustSource::Compiled,
            warnings: Vec::new(),
        }
    }

    /// Where the certificate authorities came from.
    pub fn source(&self) -> &TrustSource {
        &self.source
    }

    /// How many certificate authorities are trusted.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Whether no certificate authority is trusted (never true for a store built here).
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// What was skipped or fell back while building this store, one sentence each.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// A rustls client configuration trusting these authorities, offering HTTP/2 and HTTP/1.1
    /// by ALPN (as awc's own default does). Installs rustls' `ring` provider for the process
    /// unless one is installed already.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        install_crypto_provider();
        let mut config = ClientConfig::builder()
            .with_root_certificates(Arc::clone(&self.roots))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// The precedence of [`TrustStore::from_env`], with the system store behind `system` so that
    /// tests can stand in for the machine's.
    fn resolve(cert_file: Option<&Path>, system: impl FnOnce() -> SystemCertificates) -> Self {
        let mut warnings = Vec::new();
        if let Some(path) = cert_file {
            match Self::from_pem_file(path) {
                Ok(store) => return store,
                Err(error) => warnings.push(format!(
                    "{CERT_FILE_VAR} is set but unusable ({error}); falling back to the system \
                     certificate store"
                )),
            }
        }
        let found = system();
        let mut roots = RootCertStore::empty();
        let (_, ignored) = roots.add_parsable_certificates(found.certificates);
        if !roots.is_empty() {
            // Errors next to usable certificates (a stray file in SSL_CERT_DIR) are worth a note only.
            warnings.extend(
                found
                    .errors
                    .into_iter()
                    .map(|e| format!("system certificate store: {e}")),
            );
            if ignored > 0 {
                warnings.push(format!(
                    "system certificate store: skipped {ignored} unparsable certificate(s)"
                ));
            }
            return Self {
                roots: Arc::new(roots),
                source: TrustSource::System,
                warnings,
            };
        }
        let why = if found.errors.is_empty() {
            "it holds no usable certificate".to_owned()
        } else {
            found.errors.join("; ")
        };
        warnings.push(format!(
            "system certificate store unusable ({why}); trusting the compiled-in Mozilla roots"
        ));
        Self {
            warnings,
            ..Self::compiled()
        }
    }
}

/// What the system store yielded: certificates and, separately, what could not be read.
struct SystemCertificates {
    certificates: Vec<CertificateDer<'static>>,
    errors: Vec<String>,
}

/// The system store as `rustls-native-certs` loads it (it honours `SSL_CERT_FILE` and
/// `SSL_CERT_DIR`, and otherwise reads the OS bundle).
fn system_certificates() -> SystemCertificates {
    let found = rustls_native_certs::load_native_certs();
    SystemCertificates {
        certificates: found.certs,
        errors: found.errors.iter().map(ToString::to_string).collect(),
    }
}

/// Installs rustls' `ring` crypto provider once per process; awc's TLS connector and
/// [`ClientConfig::builder`] need one.
pub(crate) fn install_crypto_provider() {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        // Err means another provider is already installed, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    /// A file in a fresh directory of its own, removed on drop.
    struct TempFile {
        dir: PathBuf,
        path: PathBuf,
    }

    impl TempFile {
        fn with(contents: &[u8]) -> Self {
            let dir = env::temp_dir().join(format!("genesys-client-trust-{}", uuid::Uuid::new_v4()));
            fs::create_dir(&dir).unwrap();
            let path = dir.join("bundle.pem");
            fs::write(&path, contents).unwrap();
            Self { dir, path }
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    fn no_system_store() -> SystemCertificates {
        SystemCertificates {
            certificates: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn system_store_with_the_test_ca() -> SystemCertificates {
        let certificates = CertificateDer::pem_file_iter(fixture("test-ca.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        SystemCertificates {
            certificates,
            errors: Vec::new(),
        }
    }

    #[test]
    fn the_cert_file_alone_is_trusted_when_it_is_usable() {
        let ca = fixture("test-ca.pem");
        let store = TrustStore::resolve(Some(&ca), || panic!("the system store is not consulted"));
        assert_eq!(store.source(), &TrustSource::CertFile(ca));
        assert_eq!(store.len(), 1);
        assert!(store.warnings().is_empty(), "{:?}", store.warnings());
    }

    #[test]
    fn every_certificate_of_a_bundle_is_trusted_and_other_sections_are_ignored() {
        let ca = fs::read(fixture("test-ca.pem")).unwrap();
        let server = fs::read(fixture("server-cert.pem")).unwrap();
        let key = fs::read(fixture("server-key.pem")).unwrap();
        let bundle = TempFile::with(&[ca, key, server].concat());
        let store = TrustStore::from_pem_file(&bundle.path).unwrap();
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn a_missing_cert_file_falls_back_to_the_system_store_naming_the_path() {
        let missing = env::temp_dir().join(format!("no-such-bundle-{}.pem", uuid::Uuid::new_v4()));
        let store = TrustStore::resolve(Some(&missing), system_store_with_the_test_ca);
        assert_eq!(store.source(), &TrustSource::System);
        assert_eq!(store.len(), 1);
        let [warning] = store.warnings() else {
            panic!("one warning expected: {:?}", store.warnings())
        };
        assert!(warning.contains("SSL_CERT_FILE"), "{warning}");
        assert!(warning.contains(&missing.display().to_string()), "{warning}");
        assert!(warning.contains("cannot read"), "{warning}");
    }

    #[test]
    fn an_empty_cert_file_is_refused_and_falls_back() {
        let empty = TempFile::with(b"");
        assert!(matches!(
            TrustStore::from_pem_file(&empty.path),
            Err(TrustStoreError::NoCertificates { ignored: 0, .. })
        ));
        let store = TrustStore::resolve(Some(&empty.path), system_store_with_the_test_ca);
        assert_eq!(store.source(), &TrustSource::System);
        assert!(
            store.warnings()[0].contains("holds no usable certificate"),
            "{:?}",
            store.warnings()
        );
        assert!(store.warnings()[0].contains(&empty.path.display().to_string()));
    }

    #[test]
    fn a_file_of_text_without_pem_sections_holds_no_certificate() {
        let garbage = TempFile::with(b"this is not a certificate\n\x00\xff binary noise\n");
        let error = TrustStore::from_pem_file(&garbage.path).unwrap_err();
        assert!(matches!(error, TrustStoreError::NoCertificates { .. }), "{error}");
    }

    #[test]
    fn a_broken_pem_section_is_reported_as_malformed() {
        let broken =
            TempFile::with(b"-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n");
        let error = TrustStore::from_pem_file(&broken.path).unwrap_err();
        assert!(matches!(error, TrustStoreError::Malformed { .. }), "{error}");
        assert!(
            error.to_string().contains(&broken.path.display().to_string()),
            "{error}"
        );
    }

    #[test]
    fn a_certificate_section_that_is_not_a_certificate_is_counted_as_unparsable() {
        // Valid base64 of bytes that are no DER certificate.
        let bogus =
            TempFile::with(b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n");
        let error = TrustStore::from_pem_file(&bogus.path).unwrap_err();
        assert!(
            matches!(error, TrustStoreError::NoCertificates { ignored: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn without_a_cert_file_the_system_store_is_used() {
        let store = TrustStore::resolve(None, system_store_with_the_test_ca);
        assert_eq!(store.source(), &TrustSource::System);
        assert_eq!(store.len(), 1);
        assert!(store.warnings().is_empty());
    }

    #[test]
    fn an_empty_system_store_falls_back_to_the_compiled_roots() {
        let store = TrustStore::resolve(None, no_system_store);
        assert_eq!(store.source(), &TrustSource::Compiled);
        assert_eq!(store.len(), webpki_roots::TLS_SERVER_ROOTS.len());
        assert!(
            store.warnings()[0].contains("compiled-in Mozilla roots"),
            "{:?}",
            store.warnings()
        );
    }

    #[test]
    fn system_store_errors_are_reported_when_falling_back_to_the_compiled_roots() {
        let unreadable = || SystemCertificates {
            certificates: Vec::new(),
            errors: vec!["failed to read /etc/ssl/certs: permission denied".to_owned()],
        };
        let missing = env::temp_dir().join(format!("no-such-bundle-{}.pem", uuid::Uuid::new_v4()));
        let store = TrustStore::resolve(Some(&missing), unreadable);
        assert_eq!(store.source(), &TrustSource::Compiled);
        assert_eq!(store.warnings().len(), 2, "{:?}", store.warnings());
        assert!(store.warnings()[1].contains("permission denied"));
    }

    #[test]
    fn a_client_config_offers_h2_and_http1_by_alpn() {
        let store = TrustStore::from_pem_file(&fixture("test-ca.pem")).unwrap();
        let config = store.client_config();
        assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    }
}
