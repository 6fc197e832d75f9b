//! TLS for the listeners (README.md, "TLS"): loading the certificate, key
//! and client CA into a rustls `ServerConfig` (again on SIGHUP), and
//! [`TlsLink`], one connection's TLS state as the event loops and raw mode
//! drive it: ciphertext in from the socket, plaintext out to the same
//! per-connection processing as a plaintext connection's bytes, and status
//! bytes encrypted into one record per flush.
//!
//! rustls 0.23 with the ring provider; TLS 1.2 and 1.3; stateless session
//! tickets. Nothing here parses TLS or does cryptography itself.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ProtocolVersion, RootCertStore, ServerConfig, ServerConnection};

use crate::config::Tls;

/// Why the TLS files could not be loaded (at start-up, or on SIGHUP, when
/// the files loaded before stay in force).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file cannot be read, or is not PEM.
    #[error("cannot read the TLS {what} {path}: {problem}")]
    Read {
        /// `certificate`, `key` or `client CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// A PEM file holds no item of the kind expected.
    #[error("the TLS {what} file {path} holds no {expected}")]
    Empty {
        /// `certificate`, `key` or `client CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What it should hold.
        expected: &'static str,
    },
    /// rustls refused the certificate and key (a key that is not the
    /// certificate's, an unsupported key type) or the client CA.
    #[error("the TLS {what} ({path}) cannot be used: {problem}")]
    Rejected {
        /// `certificate and key` or `client CA`.
        what: &'static str,
        /// The file at fault (the key file for a key problem).
        path: PathBuf,
        /// rustls's reason.
        problem: String,
    },
}

/// The crypto provider every TLS object of the server uses.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Load the certificate chain, key and client CA into a server
/// configuration: TLS 1.2 and 1.3, stateless session tickets (a fresh
/// ticket key each load, so a SIGHUP that changes the client CA also ends
/// the resumption of sessions admitted under the old one).
pub(crate) fn load(tls: &Tls) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates(&tls.cert, "certificate")?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| pem_error("key", &tls.key, e))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| rejected("certificate and key", &tls.key, e))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(path, "client CA")? {
                roots
                    .add(cert)
                    .map_err(|e| rejected("client CA", path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| rejected("client CA", path, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| rejected("certificate and key", &tls.key, e))?;
    config.ticketer = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| rejected("certificate and key", &tls.cert, e))?;
    Ok(Arc::new(config))
}

fn certificates(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(what, path, e))?;
    if chain.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_owned(),
            expected: "certificate (-----BEGIN CERTIFICATE-----)",
        });
    }
    Ok(chain)
}

fn pem_error(what: &'static str, path: &Path, error: rustls::pki_types::pem::Error) -> TlsError {
    use rustls::pki_types::pem::Error;
    match error {
        Error::NoItemsFound => TlsError::Empty {
            what,
            path: path.to_owned(),
            expected: if what == "key" {
                "private key (PKCS#8, PKCS#1 RSA or SEC1 EC, in PEM)"
            } else {
                "certificate (-----BEGIN CERTIFICATE-----)"
            },
        },
        Error::Io(e) => TlsError::Read {
            what,
            path: path.to_owned(),
            problem: e.to_string(),
        },
        other => TlsError::Read {
            what,
            path: path.to_owned(),
            problem: format!("not valid PEM ({other:?})"),
        },
    }
}

fn rejected(what: &'static str, path: &Path, error: impl fmt::Display) -> TlsError {
    TlsError::Rejected {
        what,
        path: path.to_owned(),
        problem: error.to_string(),
    }
}

/// What an established TLS connection says about itself, for the
/// `event=open` line and the NAME rule of `--tls-require-cert-name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Established {
    /// `1.2` or `1.3`.
    pub(crate) version: &'static str,
    /// The client certificate's subject (RFC 4514), if it sent one.
    pub(crate) subject: Option<Box<str>>,
    /// The names the client certificate proves: its DNS and URI subject
    /// alternative names and its subject's common names.
    pub(crate) names: Box<[Box<str>]>,
}

impl Established {
    fn of(conn: &ServerConnection) -> Established {
        let version = match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "1.3",
            Some(ProtocolVersion::TLSv1_2) => "1.2",
            _ => "?",
        };
        let leaf = conn.peer_certificates().and_then(|chain| chain.first());
        let (subject, names) = match leaf {
            Some(der) => certificate_identity(der),
            None => (None, Box::default()),
        };
        Established {
            version,
            subject,
            names,
        }
    }
}

/// The subject and the names of a (verified) client certificate.
fn certificate_identity(der: &CertificateDer<'_>) -> (Option<Box<str>>, Box<[Box<str>]>) {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return (None, Box::default());
    };
    let mut names: Vec<Box<str>> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) | GeneralName::URI(n) => names.push((*n).into()),
                _ => {}
            }
        }
    }
    for cn in cert.subject().iter_common_name() {
        if let Ok(text) = cn.as_str() {
            names.push(text.into());
        }
    }
    (
        Some(cert.subject().to_string().into_boxed_str()),
        names.into_boxed_slice(),
    )
}

/// A TLS failure (bad handshake, bad record, alert), as the `io::Error`
/// [`TlsLink::read`] returns: its text is the `error="..."` of the
/// `event=close reason=tls` line.
#[derive(Debug)]
pub(crate) struct TlsFailure(pub(crate) String);

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsFailure {}

impl TlsFailure {
    fn of(error: &rustls::Error, established: bool) -> io::Error {
        let text = match error {
            rustls::Error::InvalidMessage(_) if !established => {
                format!("not a TLS handshake ({error}): a plaintext client on a TLS port?")
            }
            other => other.to_string(),
        };
        io::Error::new(io::ErrorKind::InvalidData, TlsFailure(text))
    }

    /// Whether `error` is a TLS failure (not a socket error).
    pub(crate) fn is(error: &io::Error) -> bool {
        error
            .get_ref()
            .is_some_and(|inner| inner.is::<TlsFailure>())
    }
}

/// Ciphertext read from the socket ahead of rustls (see
/// [`TlsLink::read_staged`]).
pub(crate) struct Staging {
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Staging {
    pub(crate) fn new(size: usize) -> Staging {
        Staging {
            buffer: vec![0; size].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Hand rustls what is staged, reading the socket first if nothing is;
    /// like `read_tls`: `Ok(0)` at the end of the stream.
    fn feed(&mut self, conn: &mut ServerConnection, socket: &mut impl Read) -> io::Result<usize> {
        if self.start == self.end {
            let n = socket.read(&mut self.buffer)?;
            if n == 0 {
                return conn.read_tls(&mut io::empty());
            }
            (self.start, self.end) = (0, n);
        }
        let taken = conn.read_tls(&mut &self.buffer[self.start..self.end])?;
        self.start += taken;
        Ok(taken)
    }
}

/// One connection's TLS state.
pub(crate) struct TlsLink {
    conn: ServerConnection,
    /// The leading bytes of the connection's unsent statuses that are
    /// encrypted already and wait in `conn` for the socket.
    encrypted: usize,
    established: bool,
    /// An error met after plaintext was read, for the next read.
    pending: Option<io::Error>,
}

impl fmt::Debug for TlsLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsLink")
            .field("established", &self.established)
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

impl TlsLink {
    pub(crate) fn new(config: Arc<ServerConfig>) -> Result<TlsLink, rustls::Error> {
        Ok(TlsLink {
            conn: ServerConnection::new(config)?,
            encrypted: 0,
            established: false,
            pending: None,
        })
    }

    /// Once, right after the handshake completed: what it established.
    pub(crate) fn take_established(&mut self) -> Option<Established> {
        if self.established || self.conn.is_handshaking() {
            return None;
        }
        self.established = true;
        Some(Established::of(&self.conn))
    }

    /// Whether TLS records wait to be written (handshake, alerts, tickets,
    /// encrypted statuses).
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Read from `socket` and decrypt into `buf`, as far as the socket has
    /// bytes and `buf` room: like a socket read, `Ok(0)` is the client's end
    /// (its close_notify), `WouldBlock` that nothing (more) is there, and
    /// `UnexpectedEof` a TCP close without close_notify. A TLS failure is
    /// an `InvalidData` error holding a [`TlsFailure`]; its alert is then
    /// queued for [`flush`](Self::flush).
    pub(crate) fn read(&mut self, socket: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        self.read_via(socket, buf, None)
    }

    /// [`read`](Self::read) through `staging` (raw mode's one client): a
    /// socket read fills it whole, and rustls takes its records from there,
    /// a few system calls per megabyte instead of one per 4 KiB.
    pub(crate) fn read_staged(
        &mut self,
        socket: &mut impl Read,
        buf: &mut [u8],
        staging: &mut Staging,
    ) -> io::Result<usize> {
        self.read_via(socket, buf, Some(staging))
    }

    fn read_via(
        &mut self,
        socket: &mut impl Read,
        buf: &mut [u8],
        mut staging: Option<&mut Staging>,
    ) -> io::Result<usize> {
        if let Some(error) = self.pending.take() {
            return Err(error);
        }
        let mut filled = 0;
        loop {
            let room = &mut buf[filled..];
            if room.is_empty() {
                return Ok(filled);
            }
            match self.conn.reader().read(room) {
                Ok(0) => return Ok(filled),
                Ok(n) => {
                    filled += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return self.after(filled, e),
            }
            let read = match staging.as_deref_mut() {
                None => self.conn.read_tls(socket),
                Some(staging) => staging.feed(&mut self.conn, socket),
            };
            match read {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.after(filled, e),
            }
            if let Err(e) = self.conn.process_new_packets() {
                let error = TlsFailure::of(&e, self.established);
                return self.after(filled, error);
            }
        }
    }

    /// `filled` bytes were read before `error`: those first.
    fn after(&mut self, filled: usize, error: io::Error) -> io::Result<usize> {
        if filled == 0 {
            return Err(error);
        }
        if error.kind() != io::ErrorKind::WouldBlock {
            self.pending = Some(error);
        }
        Ok(filled)
    }

    /// Write what TLS has queued, then encrypt `unsent` (the connection's
    /// unsent statuses, all of them into one record where they fit) and
    /// write it: how many bytes of `unsent` reached the socket, and the
    /// error that stopped it (`None` when done or when it would block).
    pub(crate) fn flush(
        &mut self,
        socket: &mut impl Write,
        unsent: &[u8],
    ) -> (usize, Option<io::Error>) {
        let mut flushed = 0;
        loop {
            while self.conn.wants_write() {
                match self.conn.write_tls(socket) {
                    Ok(0) => return (flushed, Some(io::ErrorKind::WriteZero.into())),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (flushed, None),
                    Err(e) => return (flushed, Some(e)),
                }
            }
            flushed += std::mem::take(&mut self.encrypted);
            let rest = unsent.get(flushed..).unwrap_or_default();
            if rest.is_empty() || !self.established {
                return (flushed, None);
            }
            match self.conn.writer().write(rest) {
                Ok(0) => return (flushed, None),
                Ok(n) => self.encrypted = n,
                Err(e) => return (flushed, Some(e)),
            }
        }
    }

    /// End the TLS session cleanly (close_notify), best effort, before the
    /// socket is shut down. Nothing after a failed handshake.
    pub(crate) fn close_notify(&mut self, socket: &mut impl Write) {
        if !self.established {
            let _ = self.flush(socket, &[]);
            return;
        }
        self.conn.send_close_notify();
        let _ = self.flush(socket, &[]);
    }

    /// Whether every record queued has been written.
    pub(crate) fn is_flushed(&self) -> bool {
        !self.conn.wants_write()
    }
}
