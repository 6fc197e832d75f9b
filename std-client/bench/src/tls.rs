//! `--tls`: a rustls client session per connection over the non-blocking
//! socket. Status bytes and messages go through it unchanged; the figures
//! of a TLS run count its handshakes (full or resumed).

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use mio::net::TcpStream;
use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, NamedGroup, RootCertStore};

use crate::failure::FailureKind;

/// TLS bytes a connection queues at once (raw mode writes 1 MiB chunks).
const SEND_BUFFER: usize = 256 * 1024;

/// What every TLS connection of a run shares.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Arc<ClientConfig>,
    pub name: ServerName<'static>,
}

impl Settings {
    /// Trust `ca` (PEM; else the system's roots), check the server's
    /// certificate for `name`; with `resume`, keep every session ticket so
    /// that a second run resumes its sessions (see `main`).
    pub fn new(ca: Option<&Path>, name: &str, resume: bool) -> Result<Settings, String> {
        let mut roots = RootCertStore::empty();
        match ca {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("cannot read --ca {}: {e:?}", path.display()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!(
                        "--ca {} holds no usable certificate",
                        path.display()
                    ));
                }
            }
            None => {
                let (added, _) =
                    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                if added == 0 {
                    return Err("no trusted CA certificates on this system; use --ca".into());
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = if resume {
            Resumption::store(Arc::new(Tickets::default()))
        } else {
            // Every handshake full: what a fleet of new clients costs.
            Resumption::disabled()
        };
        let name = ServerName::try_from(name.to_owned())
            .map_err(|_| format!("`{name}` is not a DNS name or an IP address"))?;
        Ok(Settings {
            config: Arc::new(config),
            name,
        })
    }
}

/// A session store that keeps every ticket (rustls's own keeps a few per
/// server): one per connection of the next run.
#[derive(Debug, Default)]
struct Tickets {
    tls13: Mutex<VecDeque<Tls13ClientSessionValue>>,
    tls12: Mutex<Option<Tls12ClientSessionValue>>,
    kx: Mutex<Option<NamedGroup>>,
}

impl ClientSessionStore for Tickets {
    fn set_kx_hint(&self, _: ServerName<'static>, group: NamedGroup) {
        *self.kx.lock().unwrap_or_else(|e| e.into_inner()) = Some(group);
    }

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        *self.kx.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_tls12_session(&self, _: ServerName<'static>, value: Tls12ClientSessionValue) {
        *self.tls12.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.tls12.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {
        *self.tls12.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn insert_tls13_ticket(&self, _: ServerName<'static>, value: Tls13ClientSessionValue) {
        self.tls13
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(value);
    }

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.tls13
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}

/// One connection's TLS session.
#[derive(Debug)]
pub struct Link {
    conn: ClientConnection,
}

impl Link {
    pub fn new(settings: &Settings) -> Result<Link, FailureKind> {
        let mut conn = ClientConnection::new(Arc::clone(&settings.config), settings.name.clone())
            .map_err(|_| FailureKind::Tls)?;
        conn.set_buffer_limit(Some(SEND_BUFFER));
        Ok(Link { conn })
    }

    /// Whether the handshake resumed a session.
    pub fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }

    /// Write what TLS has queued: `Ok(true)` when all of it went out.
    pub fn flush(&mut self, stream: &mut TcpStream) -> Result<bool, FailureKind> {
        while self.conn.wants_write() {
            match self.conn.write_tls(stream) {
                Ok(0) => return Err(FailureKind::Reset),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(FailureKind::Reset),
            }
        }
        Ok(true)
    }

    /// Like `socket::write`: plaintext bytes taken, `Ok(None)` when the
    /// socket would block (TLS records still queued).
    pub fn write(
        &mut self,
        stream: &mut TcpStream,
        bytes: &[u8],
    ) -> Result<Option<usize>, FailureKind> {
        if !self.flush(stream)? {
            return Ok(None);
        }
        let taken = self
            .conn
            .writer()
            .write(bytes)
            .map_err(|_| FailureKind::Tls)?;
        self.flush(stream)?;
        // Nothing taken: plaintext waits for the handshake (an event follows).
        Ok(Some(taken).filter(|&n| n > 0 || bytes.is_empty()))
    }

    /// Like a socket read: `Ok(0)` at the server's end (close_notify or
    /// a TCP close), `WouldBlock` when nothing (more) has arrived.
    pub fn read(&mut self, stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match self.conn.read_tls(stream) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // The alert goes out, best effort.
                let _ = self.flush(stream);
                return Err(io::Error::new(ErrorKind::InvalidData, e));
            }
            // The handshake's next flight, a key update.
            if self.flush(stream).is_err() {
                return Err(ErrorKind::ConnectionReset.into());
            }
        }
    }

    /// Queue close_notify and write it: `Ok(true)` when it went out.
    pub fn close(&mut self, stream: &mut TcpStream) -> Result<bool, FailureKind> {
        self.conn.send_close_notify();
        self.flush(stream)
    }
}

/// Reads through `link` when there is one.
pub fn read(stream: &mut TcpStream, link: Option<&mut Link>, buf: &mut [u8]) -> io::Result<usize> {
    match link {
        Some(link) => link.read(stream, buf),
        None => stream.read(buf),
    }
}

/// The TLS options.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    /// Connect over TLS (both modes); framed mode reports handshakes per second.
    #[arg(long)]
    pub tls: bool,

    /// Trust the CA certificates of this PEM file instead of the system's.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca: Option<std::path::PathBuf>,

    /// The name the server's certificate must be valid for [default: --host].
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub tls_server_name: Option<String>,

    /// Measure resumed handshakes: a first, unreported run opens as many
    /// connections to collect session tickets, and the reported run resumes
    /// them (without it every handshake is a full one).
    #[arg(long, requires = "tls")]
    pub tls_resume: bool,
}

impl TlsArgs {
    /// The run's TLS settings, if `--tls`.
    pub fn settings(&self, host: &str) -> Result<Option<Settings>, String> {
        if !self.tls {
            return Ok(None);
        }
        let name = self.tls_server_name.as_deref().unwrap_or(host);
        Settings::new(self.ca.as_deref(), name, self.tls_resume).map(Some)
    }
}
