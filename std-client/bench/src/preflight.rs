//! One connection before the run, with the client library: a closed port,
//! an address that does not answer or a refused login ends the benchmark
//! at once, with one line, instead of a table of failures. With `--tls`
//! it does the handshake too, so that a certificate the client does not
//! accept is one line as well.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use msglog_client::{Connection, Credentials, Error, Options, Stage, TlsConnector};

use crate::tls;

fn options(timeout: Duration, tls: Option<&tls::Settings>) -> Options {
    Options {
        connect_timeout: Some(timeout),
        io_timeout: Some(timeout),
        window: 2,
        tls: tls.map(|settings| {
            TlsConnector::new(Arc::clone(&settings.config))
                .server_name(settings.name.to_str().into_owned())
        }),
    }
}

/// Connect to `addr` (and do the TLS handshake) and close (raw mode: a raw
/// server sees a client that sent nothing).
pub fn connect(
    addr: SocketAddr,
    timeout: Duration,
    tls: Option<&tls::Settings>,
) -> Result<(), String> {
    let options = options(timeout, tls);
    let stream = msglog_client::connect(addr, &options).map_err(|e| explain(addr, "", &e))?;
    if let Some(connector) = &options.tls {
        connector
            .handshake(stream, None)
            .map_err(|e| explain(addr, "", &e))?;
    }
    Ok(())
}

/// Connect to `addr`, log in as `user` and close (framed mode).
pub fn login(
    addr: SocketAddr,
    user: &str,
    password: &[u8],
    timeout: Duration,
    tls: Option<&tls::Settings>,
) -> Result<(), String> {
    let credentials = Credentials::new(user, password);
    let mut connection = Connection::open(addr, &credentials, &options(timeout, tls))
        .map_err(|e| explain(addr, user, &e))?;
    // Any answer to CLOSE ends the session cleanly; nothing to report.
    let _ = connection.close();
    Ok(())
}

fn explain(addr: SocketAddr, user: &str, error: &Error) -> String {
    match error {
        Error::Connect { source, .. } => format!("cannot connect to {addr}: {source}"),
        Error::Rejected { stage: Stage::Name } => {
            format!("the server at {addr} rejected the user name '{user}'")
        }
        Error::Rejected { .. } => {
            format!("the server at {addr} rejected the password of user '{user}'")
        }
        Error::InvalidName => format!("'{user}' is not a valid user name"),
        Error::Timeout => format!("{addr} did not answer the login in time (--timeout)"),
        Error::Tls(failure) => format!("TLS with {addr} failed: {failure}"),
        other => format!("cannot log in at {addr}: {other}"),
    }
}
