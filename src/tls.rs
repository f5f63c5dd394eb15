//! TLS on the listener (rustls): the certificate chain and key from PEM files, HTTP/2 and
//! HTTP/1.1 offered by ALPN, and the files read again on reload, so a renewed certificate
//! is served without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// Where the certificate and key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// Why the certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    /// The key file holds no usable private key.
    #[error("{0} holds no PEM private key")]
    NoKey(PathBuf),
    /// The key is of a kind rustls cannot sign with, or does not match.
    #[error("the key in {path} cannot be used: {reason}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

/// Reads the PEM certificates of a file; a file without one is an error.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(chain)
}

/// Reads and checks the certificate chain and key.
pub fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates(&files.cert_file)?;
    let key_pem = read(&files.key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey(files.key_file.clone()))?;
    let provider = tokio_rustls::rustls::crypto::ring::default_provider();
    let bad = |reason: String| TlsError::BadKey { path: files.key_file.clone(), reason };
    let signing = provider.key_provider.load_private_key(key).map_err(|e| bad(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| bad(e.to_string()))?;
    Ok(Arc::new(certified))
}

/// The certificate being served; [`CertStore::replace`] swaps it for new handshakes.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Serves `key`.
    pub fn new(key: Arc<CertifiedKey>) -> Arc<CertStore> {
        Arc::new(CertStore { current: RwLock::new(key) })
    }

    /// Serves `key` from the next handshake on; connections already open keep theirs.
    pub fn replace(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = key;
    }

    /// A TLS acceptor offering HTTP/2 and HTTP/1.1, with this store's certificate.
    pub fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let builder = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_no_client_auth().with_cert_resolver(self.clone()));
        let mut config = match builder {
            Ok(config) => config,
            // The ring provider supports the default versions; this cannot be taken.
            Err(_) => tokio_rustls::rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_cert_resolver(self.clone()),
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// How a server's certificate was refused by deskgate's TLS client (to PostgreSQL, Redis).
#[derive(Debug)]
pub enum CertificateRefusal {
    /// Signed by no CA deskgate trusts.
    Untrusted(rustls::Error),
    /// Not valid for the name deskgate connected to.
    NameMismatch(rustls::Error),
    /// Refused for another reason (expired, revoked, malformed...).
    Other(rustls::Error),
}

/// The certificate refusal under a failed connection's error, if that is what it was.
pub fn certificate_refusal(error: &(dyn std::error::Error + 'static)) -> Option<CertificateRefusal> {
    use rustls::CertificateError as E;
    let rustls::Error::InvalidCertificate(e) = rustls_error(error)? else {
        return None;
    };
    let source = rustls::Error::InvalidCertificate(e.clone());
    Some(match e {
        E::UnknownIssuer | E::BadSignature => CertificateRefusal::Untrusted(source),
        E::NotValidForName | E::NotValidForNameContext { .. } => CertificateRefusal::NameMismatch(source),
        _ => CertificateRefusal::Other(source),
    })
}

/// The TLS error under an error, through the I/O errors a handshake is wrapped in and the
/// shared errors clients keep.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(tls) = tls_itself(err) {
            return Some(tls);
        }
        next = err.source();
    }
    None
}

/// `err` itself as a TLS error, looking inside the wrappers whose `source` skips what they
/// wrap.
fn tls_itself<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(shared) = err.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>() {
        let inner: &(dyn std::error::Error + 'static) = shared.as_ref();
        return rustls_error(inner);
    }
    let io = err.downcast_ref::<std::io::Error>()?;
    let inner: &(dyn std::error::Error + 'static) = io.get_ref()?;
    rustls_error(inner)
}
