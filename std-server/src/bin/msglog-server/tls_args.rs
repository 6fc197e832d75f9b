//! The TLS flags (README.md, "TLS").

use std::path::PathBuf;

use clap::Args;
use msglog_server::Tls;

#[derive(Debug, Args)]
pub struct TlsArgs {
    /// TLS: PEM certificate chain (the server's certificate first, then the
    /// intermediates). With --tls-key, the server's port speaks TLS only,
    /// unless --tls-port puts TLS on a port of its own. Read again on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS: PEM private key of --tls-cert (RSA, ECDSA or Ed25519; PKCS#8,
    /// PKCS#1 or SEC1). Read again on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// TLS: require a client certificate chained to a CA of this PEM file.
    /// Read again on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// With --tls-client-ca: a session's NAME must equal a DNS or URI
    /// subject alternative name, or the subject CN, of its client
    /// certificate; another NAME is refused like a wrong password.
    #[arg(long, requires = "tls_client_ca")]
    pub tls_require_cert_name: bool,

    /// Serve TLS on PORT beside the plaintext port (framed mode), e.g. while
    /// old clients still need plaintext.
    #[arg(
        long,
        value_name = "PORT",
        requires = "tls_cert",
        conflicts_with = "raw"
    )]
    pub tls_port: Option<u16>,
}

impl TlsArgs {
    /// The library's TLS settings, if TLS is asked for.
    pub fn tls(&self) -> Option<Tls> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return None;
        };
        Some(Tls {
            client_ca: self.tls_client_ca.clone(),
            require_cert_name: self.tls_require_cert_name,
            port: self.tls_port,
            ..Tls::new(cert, key)
        })
    }
}
