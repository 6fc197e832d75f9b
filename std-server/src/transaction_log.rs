//! The lines of `transactions.log`: one per connection event and per
//! transaction, in the format of PROTOCOL.md ("`transactions.log` format").
//!
//! Lines are built from structured values into a caller's buffer (no
//! formatting machinery per line); the journal (`journal.rs`) writes them.

use msglog_core::{Reject, Tag};

use crate::text::{push_hex_byte, push_quoted, push_u64};

/// Why a connection ended (`event=close reason=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// CLOSE received and answered.
    Close,
    /// The peer closed; `partial` bytes of an unfinished transaction were dropped.
    Eof { partial: usize },
    /// Frame or idle timeout.
    Timeout,
    /// Answered 0xFF.
    Rejected,
    /// A socket error (the text is logged as `error="..."`).
    Error,
    /// The server is stopping.
    Shutdown,
    /// Over `--max-connections` (or out of file descriptors): closed at once.
    Overload,
    /// The TLS handshake failed or did not finish in time, or a TLS record
    /// was bad (the text is logged as `error="..."`).
    Tls,
}

impl CloseReason {
    fn as_str(self) -> &'static str {
        match self {
            CloseReason::Close => "close",
            CloseReason::Eof { .. } => "eof",
            CloseReason::Timeout => "timeout",
            CloseReason::Rejected => "rejected",
            CloseReason::Error => "error",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Overload => "overload",
            CloseReason::Tls => "tls",
        }
    }
}

/// One line's content after the timestamp and connection fields.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Line<'a> {
    /// The connection is served: at accept, or on a TLS listener once the
    /// handshake completed.
    Open { tls: Option<TlsFields<'a>> },
    Transaction {
        /// The tag byte as received (an unknown one is shown as `0xNN`).
        tag: u8,
        /// The announced length, `None` when none was read (CLOSE, a tag
        /// rejected at once). Never shown for PASSWORD: a password's length
        /// is a secret too.
        len: Option<u16>,
        /// `None` for `ok`.
        reject: Option<Reject>,
        /// The name, on NAME lines only.
        name: Option<&'a [u8]>,
    },
    Close {
        reason: CloseReason,
        error: Option<&'a str>,
    },
}

/// What the open line of a TLS connection adds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TlsFields<'a> {
    /// `1.2` or `1.3`.
    pub(crate) version: &'a str,
    /// The client certificate's subject.
    pub(crate) subject: Option<&'a str>,
}

/// The `conn=ID peer=ADDR` fields of a connection, formatted once.
pub(crate) fn connection_fields(id: u64, peer: std::net::SocketAddr) -> Box<[u8]> {
    let mut out = Vec::with_capacity(48);
    out.extend_from_slice(b"conn=");
    push_u64(&mut out, id);
    out.extend_from_slice(b" peer=");
    out.extend_from_slice(peer.to_string().as_bytes());
    out.into_boxed_slice()
}

/// Append one line (with its `\n`).
pub(crate) fn push_line(out: &mut Vec<u8>, timestamp: &[u8], connection: &[u8], line: Line<'_>) {
    out.extend_from_slice(timestamp);
    out.push(b' ');
    out.extend_from_slice(connection);
    match line {
        Line::Open { tls } => {
            out.extend_from_slice(b" event=open");
            if let Some(tls) = tls {
                out.extend_from_slice(b" tls=");
                out.extend_from_slice(tls.version.as_bytes());
                if let Some(subject) = tls.subject {
                    out.extend_from_slice(b" subject=");
                    push_quoted(out, subject.as_bytes());
                }
            }
        }
        Line::Transaction {
            tag,
            len,
            reject,
            name,
        } => {
            out.extend_from_slice(b" tag=");
            match Tag::from_byte(tag) {
                Some(tag) => out.extend_from_slice(tag.as_str().as_bytes()),
                None => push_hex_byte(out, tag),
            }
            out.extend_from_slice(b" len=");
            match len {
                Some(len) if tag != Tag::Password.as_byte() => push_u64(out, u64::from(len)),
                _ => out.push(b'-'),
            }
            out.extend_from_slice(b" outcome=");
            match reject {
                None => out.extend_from_slice(b"ok"),
                Some(reject) => out.extend_from_slice(reject.code().as_bytes()),
            }
            if let Some(name) = name {
                out.extend_from_slice(b" name=");
                push_quoted(out, name);
            }
        }
        Line::Close { reason, error } => {
            out.extend_from_slice(b" event=close reason=");
            out.extend_from_slice(reason.as_str().as_bytes());
            if let CloseReason::Eof { partial } = reason {
                if partial > 0 {
                    out.extend_from_slice(b" partial=");
                    push_u64(out, partial as u64);
                }
            }
            if let Some(error) = error {
                out.extend_from_slice(b" error=");
                push_quoted(out, error.as_bytes());
            }
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use msglog_core::FrameError;

    const TS: &[u8] = b"2026-11-23T09:01:21.123Z";

    fn line(line: Line<'_>) -> String {
        let fields = connection_fields(17, "127.0.0.1:50312".parse().unwrap());
        let mut out = Vec::new();
        push_line(&mut out, TS, &fields, line);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn protocol_md_examples() {
        assert_eq!(
            line(Line::Open { tls: None }),
            "2026-11-23T09:01:21.123Z conn=17 peer=127.0.0.1:50312 event=open\n"
        );
        assert_eq!(
            line(Line::Open {
                tls: Some(TlsFields {
                    version: "1.3",
                    subject: Some("CN=device-7, O=Acme \"labs\"")
                })
            }),
            "2026-11-23T09:01:21.123Z conn=17 peer=127.0.0.1:50312 event=open tls=1.3 subject=\"CN=device-7, O=Acme \\\"labs\\\"\"\n"
        );
        assert_eq!(
            line(Line::Close {
                reason: CloseReason::Tls,
                error: Some("received fatal alert: UnknownCA")
            }),
            "2026-11-23T09:01:21.123Z conn=17 peer=127.0.0.1:50312 event=close reason=tls error=\"received fatal alert: UnknownCA\"\n"
        );
        assert_eq!(
            line(Line::Transaction {
                tag: 1,
                len: Some(6),
                reject: None,
                name: Some(b"MyUser")
            }),
            "2026-11-23T09:01:21.123Z conn=17 peer=127.0.0.1:50312 tag=NAME len=6 outcome=ok name=\"MyUser\"\n"
        );
        assert_eq!(
            line(Line::Transaction {
                tag: 2,
                len: Some(8),
                reject: None,
                name: None
            }),
            "2026-11-23T09:01:21.123Z conn=17 peer=127.0.0.1:50312 tag=PASSWORD len=- outcome=ok\n"
        );
        let name_too_long = Reject::Frame(FrameError::TooLong {
            tag: Tag::Name,
            length: 300,
            max: 255,
        });
        assert_eq!(
            line(Line::Transaction {
                tag: 1,
                len: Some(300),
                reject: Some(name_too_long),
                name: None
            }),
            "2026-11-23T09:01:21.123Z conn=17 peer=127.0.0.1:50312 tag=NAME len=300 outcome=too-long\n"
        );
        let too_long = Reject::Frame(FrameError::TooLong {
            tag: Tag::Message,
            length: 65535,
            max: 1000,
        });
        assert_eq!(
            line(Line::Transaction {
                tag: 3,
                len: Some(65535),
                reject: Some(too_long),
                name: None
            }),
            "2026-11-23T09:01:21.123Z conn=17 peer=127.0.0.1:50312 tag=MESSAGE len=65535 outcome=too-long\n"
        );
        assert_eq!(
            line(Line::Close {
                reason: CloseReason::Rejected,
                error: None
            }),
            "2026-11-23T09:01:21.123Z conn=17 peer=127.0.0.1:50312 event=close reason=rejected\n"
        );
    }

    #[test]
    fn password_lines_never_show_the_length() {
        let too_long = Reject::Frame(FrameError::TooLong {
            tag: Tag::Password,
            length: 300,
            max: 255,
        });
        for (len, reject, outcome) in [
            (Some(21), None, "ok"),
            (None, Some(Reject::AuthenticationFailed), "auth-failed"),
            (Some(300), Some(too_long), "too-long"),
        ] {
            assert!(line(Line::Transaction {
                tag: 2,
                len,
                reject,
                name: None
            })
            .ends_with(&format!("tag=PASSWORD len=- outcome={outcome}\n")));
        }
    }

    #[test]
    fn unknown_tags_partial_eof_and_errors() {
        assert!(line(Line::Transaction {
            tag: 0x7f,
            len: None,
            reject: Some(Reject::Frame(FrameError::UnknownTag(0x7f))),
            name: None
        })
        .ends_with("tag=0x7f len=- outcome=unknown-tag\n"));
        assert!(line(Line::Close {
            reason: CloseReason::Eof { partial: 3 },
            error: None
        })
        .ends_with("event=close reason=eof partial=3\n"));
        assert!(line(Line::Close {
            reason: CloseReason::Eof { partial: 0 },
            error: None
        })
        .ends_with("event=close reason=eof\n"));
        assert!(line(Line::Close {
            reason: CloseReason::Error,
            error: Some("reset \"x\"")
        })
        .ends_with("event=close reason=error error=\"reset \\\"x\\\"\"\n"));
    }
}
