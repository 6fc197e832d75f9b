//! TLS (feature `tls`, on by default): [`TlsConnector`], the client side's
//! trust and identity, and [`TlsStream`], a TLS session over a
//! `TcpStream` as a [`Transport`]. rustls 0.23 with the ring provider;
//! the system's roots come from `rustls-native-certs` (README.md, "TLS",
//! says why these).
//!
//! Set [`Options::tls`](crate::Options::tls) and every [`Connection`](crate::Connection),
//! [`Delivery`](crate::Delivery) and [`ConnectionTable`](crate::ConnectionTable)
//! made with those options speaks TLS:
//!
//! ```no_run
//! use msglog_client::{Connection, Credentials, Options, TlsConnector};
//!
//! let tls = TlsConnector::with_ca_file("ca.pem")?.server_name("logs.example.com");
//! let options = Options { tls: Some(tls), ..Options::default() };
//! let credentials = Credentials::new("alice", "secret");
//! let mut connection = Connection::open("logs.example.com:6514", &credentials, &options)?;
//! connection.send(b"over TLS")?;
//! connection.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
#[cfg(unix)]
use std::os::fd::{AsFd, BorrowedFd};
#[cfg(windows)]
use std::os::windows::io::{AsSocket, BorrowedSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, ClientConfig, ClientConnection, RootCertStore};

use crate::transport::{peek, Peeked};
use crate::{Error, Transport};

/// TLS bytes a connection may queue for the socket at once: large raw-mode
/// writes go out in few system calls.
const SEND_BUFFER: usize = 256 * 1024;

/// Why the TLS settings could not be built from their files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A file cannot be read, is not PEM, or holds nothing usable.
    #[error("cannot use the TLS {what} {path}: {problem}")]
    File {
        /// `CA file`, `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The system has no trusted roots this client can read.
    #[error("no trusted CA certificates found on this system ({0}); use a CA file")]
    NoSystemRoots(String),
    /// rustls refused the client certificate and key.
    #[error("the client certificate and key cannot be used: {0}")]
    ClientCertificate(String),
}

/// Why a TLS handshake or a TLS record failed, in a few words a user can
/// act on; see [`Error::Tls`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server's certificate does not chain to a trusted CA.
    #[error("the server's certificate is not signed by a trusted CA (unknown issuer)")]
    UnknownIssuer,
    /// The server's certificate is not for the name asked for.
    #[error("the server's certificate is not valid for {expected} (name mismatch{presented})")]
    NameMismatch {
        /// The name checked (`'host'`, or `the name asked for`).
        expected: String,
        /// `; it is for ...`, or nothing.
        presented: String,
    },
    /// The server's certificate has expired.
    #[error("the server's certificate has expired")]
    Expired,
    /// The server's certificate is not valid yet.
    #[error("the server's certificate is not valid yet")]
    NotYetValid,
    /// The server's certificate is unusable for another reason.
    #[error("the server's certificate was refused: {0}")]
    BadCertificate(String),
    /// The server refused this client's certificate (or its absence).
    #[error("the server refused the client certificate ({0})")]
    ClientCertificateRefused(String),
    /// The server ended the session with another alert.
    #[error("the server sent the TLS alert {0}")]
    Alert(String),
    /// What came back is not TLS (a plaintext server?), or broke the protocol.
    #[error("the server does not speak TLS as expected: {0}")]
    Protocol(String),
}

impl TlsFailure {
    fn of(error: &rustls::Error) -> TlsFailure {
        match error {
            rustls::Error::InvalidCertificate(certificate) => match certificate {
                CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
                CertificateError::NotValidForName => TlsFailure::NameMismatch {
                    expected: "the name asked for".into(),
                    presented: String::new(),
                },
                CertificateError::NotValidForNameContext {
                    expected,
                    presented,
                } => TlsFailure::NameMismatch {
                    expected: format!("'{}'", expected.to_str()),
                    presented: if presented.is_empty() {
                        String::new()
                    } else {
                        format!("; it is for {}", presented.join(", "))
                    },
                },
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsFailure::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    TlsFailure::NotYetValid
                }
                other => TlsFailure::BadCertificate(format!("{other:?}")),
            },
            rustls::Error::AlertReceived(alert) => match alert {
                AlertDescription::BadCertificate
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateRevoked
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnknownCA
                | AlertDescription::AccessDenied
                | AlertDescription::CertificateRequired => {
                    TlsFailure::ClientCertificateRefused(format!("alert {alert:?}"))
                }
                other => TlsFailure::Alert(format!("{other:?}")),
            },
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                TlsFailure::Protocol(format!("{error} (a plaintext server?)"))
            }
            other => TlsFailure::Protocol(other.to_string()),
        }
    }

    /// The TLS failure an `io::Error` from rustls carries, if it is one.
    pub(crate) fn in_io(error: &io::Error) -> Option<TlsFailure> {
        let inner = error.get_ref()?;
        if let Some(failure) = inner.downcast_ref::<TlsFailure>() {
            return Some(failure.clone());
        }
        inner.downcast_ref::<rustls::Error>().map(TlsFailure::of)
    }
}

/// The crypto provider of every TLS object of this crate: ring, with
/// AES-128-GCM offered first (as Go and most browsers do: as safe as
/// AES-256 here, and about a third faster for raw mode's gigabytes).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|suite| {
        !matches!(
            suite.suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    Arc::new(provider)
}

/// Where a client's TLS trust and identity come from, for
/// [`TlsConnector::from_files`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file of the CA certificates to trust; `None`: the system's.
    pub ca: Option<PathBuf>,
    /// PEM certificate chain to present to a server that asks for one.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

/// The TLS settings of a client: whom it trusts, the name the server's
/// certificate must have, and its own certificate if any. Cheap to clone
/// (the rustls configuration is shared, and with it the session cache that
/// lets reconnections resume instead of repeating the full handshake).
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Two connectors are equal when they share their rustls configuration.
impl PartialEq for TlsConnector {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.server_name == other.server_name
    }
}

impl Eq for TlsConnector {}

impl TlsConnector {
    /// A connector with a rustls configuration of the caller's.
    pub fn new(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector {
            config,
            server_name: None,
        }
    }

    /// Trust the system's CA certificates (`rustls-native-certs`: the
    /// operating system's store, or `SSL_CERT_FILE`/`SSL_CERT_DIR`).
    pub fn system_roots() -> Result<TlsConnector, TlsSetupError> {
        TlsConnector::from_files(&TlsFiles::default())
    }

    /// Trust the CA certificates of a PEM file (a private CA, or a
    /// self-signed server's own certificate), not the system's.
    pub fn with_ca_file(path: impl AsRef<Path>) -> Result<TlsConnector, TlsSetupError> {
        TlsConnector::from_files(&TlsFiles {
            ca: Some(path.as_ref().to_owned()),
            ..TlsFiles::default()
        })
    }

    /// Trust and identity from files: TLS 1.2 and 1.3, session resumption on.
    pub fn from_files(files: &TlsFiles) -> Result<TlsConnector, TlsSetupError> {
        let mut roots = RootCertStore::empty();
        match &files.ca {
            Some(path) => {
                for cert in certificates(path, "CA file")? {
                    roots.add(cert).map_err(|e| TlsSetupError::File {
                        what: "CA file",
                        path: path.clone(),
                        problem: e.to_string(),
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    let why = match found.errors.first() {
                        Some(e) => e.to_string(),
                        None => "the store is empty".into(),
                    };
                    return Err(TlsSetupError::NoSystemRoots(why));
                }
            }
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsSetupError::ClientCertificate(e.to_string()))?
            .with_root_certificates(roots);
        let config = match (&files.client_cert, &files.client_key) {
            (Some(cert), Some(key)) => {
                let chain = certificates(cert, "certificate")?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsSetupError::File {
                    what: "key",
                    path: key.clone(),
                    problem: pem_problem(e),
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsSetupError::ClientCertificate(e.to_string()))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(TlsConnector::new(Arc::new(config)))
    }

    /// Check the server's certificate for `name` (a DNS name or an IP
    /// address). Without it, the host a connection is opened to is used
    /// where it is known ([`TlsConnector::handshake`]'s `host`), else the IP
    /// address connected to.
    pub fn server_name(mut self, name: impl Into<String>) -> TlsConnector {
        self.server_name = Some(name.into());
        self
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// TLS over a connected `tcp` stream: the handshake, within the
    /// stream's read and write timeouts. The server's certificate is checked
    /// for the connector's server name, else `host`, else the IP address of
    /// the peer. A failed check is [`Error::Tls`].
    pub fn handshake(&self, mut tcp: TcpStream, host: Option<&str>) -> Result<TlsStream, Error> {
        let name = match (&self.server_name, host) {
            (Some(name), _) => name.clone(),
            (None, Some(host)) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            (None, None) => tcp.peer_addr().map_err(Error::Io)?.ip().to_string(),
        };
        let server_name = ServerName::try_from(name.clone()).map_err(|_| {
            Error::Tls(TlsFailure::NameMismatch {
                expected: format!("'{name}', which is not a DNS name or an IP address"),
                presented: String::new(),
            })
        })?;
        let mut conn = ClientConnection::new(Arc::clone(&self.config), server_name)
            .map_err(|e| Error::Tls(TlsFailure::of(&e)))?;
        conn.set_buffer_limit(Some(SEND_BUFFER));
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut tcp) {
                return Err(Error::from_io(e));
            }
        }
        Ok(TlsStream {
            tls: rustls::StreamOwned::new(conn, tcp),
            peeked: None,
        })
    }
}

fn certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let file_error = |problem: String| TlsSetupError::File {
        what,
        path: path.to_owned(),
        problem,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error(pem_problem(e)))?;
    if chain.is_empty() {
        return Err(file_error("no certificate in it".into()));
    }
    Ok(chain)
}

fn pem_problem(error: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match error {
        Error::Io(e) => e.to_string(),
        Error::NoItemsFound => "nothing usable in it (PEM expected)".into(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// A TLS session over a `TcpStream`, as a [`Transport`]: what
/// [`TlsConnector::handshake`] returns, for a [`Connection`](crate::Connection)
/// ([`Connection::over`](crate::Connection::over)) or [`send_raw`](crate::send_raw).
pub struct TlsStream {
    tls: rustls::StreamOwned<ClientConnection, TcpStream>,
    /// A plaintext byte taken by `peek_byte`, returned by the next read.
    peeked: Option<u8>,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("socket", &self.tls.sock)
            .field("version", &self.tls.conn.protocol_version())
            .finish_non_exhaustive()
    }
}

impl TlsStream {
    /// The TCP socket.
    pub fn get_ref(&self) -> &TcpStream {
        &self.tls.sock
    }

    /// The rustls connection (negotiated version, cipher suite, the
    /// server's certificates).
    pub fn connection(&self) -> &ClientConnection {
        &self.tls.conn
    }
}

/// A TLS failure as the `io::Error` the drivers see; [`Error::from_io`]
/// turns it back into [`Error::Tls`].
fn tls_io(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TlsFailure::of(&error))
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let (Some(byte), Some(first)) = (self.peeked, buf.first_mut()) {
            *first = byte;
            self.peeked = None;
            return Ok(1);
        }
        self.tls.read(buf)
    }
}

impl TlsStream {
    /// A write failed because the server closed: an alert it sent first
    /// (a refused client certificate, say) explains why.
    fn explain(&mut self, error: io::Error) -> io::Error {
        if !matches!(
            error.kind(),
            io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
        ) {
            return error;
        }
        while let Ok(1..) = self.tls.conn.read_tls(&mut self.tls.sock) {
            if let Err(alert) = self.tls.conn.process_new_packets() {
                return tls_io(alert);
            }
        }
        error
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tls.write(buf).map_err(|e| self.explain(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tls.flush().map_err(|e| self.explain(e))
    }
}

#[cfg(unix)]
impl AsFd for TlsStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.tls.sock.as_fd()
    }
}

#[cfg(windows)]
impl AsSocket for TlsStream {
    fn as_socket(&self) -> BorrowedSocket<'_> {
        self.tls.sock.as_socket()
    }
}

impl Transport for TlsStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tls.sock.set_read_timeout(timeout)
    }

    fn peek_byte(&mut self) -> io::Result<Option<u8>> {
        if let Some(byte) = self.peeked {
            return Ok(Some(byte));
        }
        loop {
            // Plaintext decrypted already comes first.
            let mut byte = [0u8; 1];
            match self.tls.conn.reader().read(&mut byte) {
                Ok(1) => {
                    self.peeked = Some(byte[0]);
                    return Ok(Some(byte[0]));
                }
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection (close_notify)",
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            // Records (statuses, tickets, an alert, the close) on the socket?
            match peek(&self.tls.sock) {
                Peeked::Nothing => return Ok(None),
                Peeked::Closed(e) if e.kind() != io::ErrorKind::UnexpectedEof => return Err(e),
                // Bytes, or the end of stream, which rustls must see too.
                Peeked::Byte(_) | Peeked::Closed(_) => {
                    self.tls.conn.read_tls(&mut self.tls.sock)?;
                    self.tls.conn.process_new_packets().map_err(tls_io)?;
                }
            }
        }
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.tls.conn.send_close_notify();
        self.tls.flush()?;
        self.tls.sock.shutdown(Shutdown::Write)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tls.sock.peer_addr()
    }

    /// Clean only when the server's close_notify and then its TCP close
    /// arrive; a TCP close without close_notify is `UnexpectedEof`.
    fn read_to_close(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self.read(buffer)? {
            0 => self.tls.sock.read(buffer),
            n => Ok(n),
        }
    }
}
