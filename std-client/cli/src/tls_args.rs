//! The TLS options (README.md, "TLS"), and the connector they make.

use std::path::PathBuf;

use clap::Args;
use msglog_client::{TlsConnector, TlsFiles};

use crate::exit::{CliError, Exit};

#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Speak TLS (both modes): the server's certificate must chain to --ca
    /// (else the system's CAs) and be valid for --tls-server-name (else HOST).
    #[arg(long)]
    pub tls: bool,

    /// Trust the CA certificates of this PEM file instead of the system's
    /// (a private CA, or a self-signed server's own certificate).
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca: Option<PathBuf>,

    /// The name the server's certificate must be valid for [default: HOST].
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub tls_server_name: Option<String>,

    /// Client certificate chain (PEM), for a server that requires one.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "key"])]
    pub cert: Option<PathBuf>,

    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
}

impl TlsArgs {
    /// The connector for `host`, if TLS is asked for.
    pub fn connector(&self, host: &str) -> Result<Option<TlsConnector>, CliError> {
        if !self.tls {
            return Ok(None);
        }
        let files = TlsFiles {
            ca: self.ca.clone(),
            client_cert: self.cert.clone(),
            client_key: self.key.clone(),
        };
        let connector = TlsConnector::from_files(&files)
            .map_err(|e| CliError::new(Exit::Tls, e.to_string()))?;
        let name = self.tls_server_name.as_deref().unwrap_or(host);
        Ok(Some(connector.server_name(
            name.trim_start_matches('[').trim_end_matches(']'),
        )))
    }
}
