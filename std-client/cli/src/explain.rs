//! Library errors as one-line reports with their exit codes.

use msglog_client::{Error, Stage, TlsFailure};

use crate::args::Settings;
use crate::exit::{CliError, Exit};

/// `error` as the command line's error; `message` is where the message the
/// error is about (the first not acknowledged) came from (`line 12`), if known.
pub fn explain(settings: &Settings, error: &Error, message: Option<&str>) -> CliError {
    let args = &settings.args;
    let host = &settings.host;
    let port = settings.port;
    let user = args.user.as_deref().unwrap_or_default();
    let what = |stage: &Stage| match (stage, message) {
        (Stage::Name, _) => format!("the user name '{user}'"),
        (Stage::Password, _) => format!("the password of user '{user}'"),
        (Stage::Message(_), Some(origin)) => format!("the message from {origin}"),
        (Stage::Message(i), None) => format!("message {}", i + 1),
        (Stage::Close, _) => "CLOSE".to_owned(),
    };
    let timeout = match args.timeout.0 {
        Some(t) => format!("{} s", t.as_secs_f64()),
        None => "the timeout".to_owned(),
    };
    let (exit, text) = match error {
        Error::Resolve(e) => (Exit::Resolve, format!("cannot resolve host '{host}': {e}")),
        Error::Connect { addr, source } => (
            Exit::Connect,
            format!("cannot connect to {host} port {port} ({addr}): {source}"),
        ),
        Error::Input(e) => (Exit::Input, format!("reading the input failed: {e}")),
        Error::Rejected {
            stage: stage @ (Stage::Name | Stage::Password),
        } => (Exit::Auth, format!("the server rejected {}", what(stage))),
        Error::Rejected { stage } => (
            Exit::Rejected,
            format!("the server rejected {}", what(stage)),
        ),
        Error::Disconnected { stage } => (
            Exit::Lost,
            format!(
                "the server closed the connection before acknowledging {}",
                what(stage)
            ),
        ),
        Error::Timeout => (
            Exit::Timeout,
            format!("timed out: the server did not answer or take data within {timeout}"),
        ),
        Error::Unconfirmed { sent } => (
            Exit::Timeout,
            format!(
                "sent {sent} bytes, but the server did not close the connection within {timeout}, \
                 so it has not confirmed receiving them"
            ),
        ),
        Error::Io(e) => (
            Exit::Lost,
            format!("connection to {host} port {port} lost: {e}"),
        ),
        Error::Lost { sent, source } => (
            Exit::Lost,
            format!(
                "connection to {host} port {port} lost after {sent} bytes were sent: {source}; \
                 the server did not confirm that it took every byte"
            ),
        ),
        Error::Answered { byte } => (
            Exit::Protocol,
            format!(
                "the server answered (0x{byte:02x}), but a raw server never sends a byte: \
                 is it a framed msglog server? use --user"
            ),
        ),
        Error::Protocol { byte, stage } => (
            Exit::Protocol,
            format!(
                "protocol error: the server answered {} with 0x{byte:02x}, not a status byte",
                what(stage)
            ),
        ),
        Error::Invalid(e) => (Exit::TooLong, format!("cannot send: {e}")),
        Error::InvalidName => (
            Exit::Usage,
            format!("invalid user name '{}': {error}", user.escape_debug()),
        ),
        Error::Tls(failure) => {
            let hint = match failure {
                TlsFailure::UnknownIssuer => "; give the CA that signed it with --ca FILE",
                TlsFailure::NameMismatch { .. } => {
                    "; connect by a name it is for, or give one with --tls-server-name"
                }
                TlsFailure::ClientCertificateRefused(_) if args.tls.cert.is_none() => {
                    "; the server requires one: --cert FILE --key FILE"
                }
                _ => "",
            };
            (
                Exit::Tls,
                format!("TLS with {host} port {port} failed: {failure}{hint}"),
            )
        }
        other => (Exit::Lost, other.to_string()),
    };
    CliError::new(exit, text)
}
