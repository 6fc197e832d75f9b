//! A record in the stream (PROTOCOL.md, "The NATS stream"): the message
//! bytes as received as the payload, and headers saying who sent it, when,
//! through which front end and connection. Written by the publisher, read
//! back by `export`.

use async_nats::header::{HeaderMap, HeaderName, NATS_EXPECTED_STREAM, NATS_MESSAGE_ID};

/// The sender's name, percent-encoded (see [`encode_name`]).
pub(crate) const NAME: HeaderName = HeaderName::from_static("Msglog-Name");
/// The front end's id: its name and a random boot id.
pub(crate) const FRONT_END: HeaderName = HeaderName::from_static("Msglog-Front-End");
/// The connection's id within that front end's run.
pub(crate) const CONNECTION: HeaderName = HeaderName::from_static("Msglog-Connection");
/// The MESSAGE's number on its connection, from 1.
pub(crate) const SEQUENCE: HeaderName = HeaderName::from_static("Msglog-Sequence");
/// When the front end received it: RFC 3339 UTC with milliseconds.
pub(crate) const TIME: HeaderName = HeaderName::from_static("Msglog-Time");

/// What a record's headers are made of.
pub(crate) struct Origin<'a> {
    pub(crate) stream: &'a str,
    pub(crate) front_end: &'a str,
    pub(crate) connection: u64,
    pub(crate) sequence: u64,
    /// Already encoded with [`encode_name`].
    pub(crate) name: &'a str,
    pub(crate) time: &'a str,
}

/// The headers of a record: `Nats-Msg-Id` is `FRONT_END.CONNECTION.SEQUENCE`,
/// unique for ever (the front end id has a boot id), so JetStream drops a
/// retried publish of a record it already has.
pub(crate) fn headers(origin: &Origin<'_>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        NATS_MESSAGE_ID,
        message_id(origin.front_end, origin.connection, origin.sequence),
    );
    headers.insert(NATS_EXPECTED_STREAM, origin.stream);
    headers.insert(NAME, origin.name);
    headers.insert(FRONT_END, origin.front_end);
    headers.insert(CONNECTION, origin.connection.to_string());
    headers.insert(SEQUENCE, origin.sequence.to_string());
    headers.insert(TIME, origin.time);
    headers
}

/// `FRONT_END.CONNECTION.SEQUENCE`.
pub(crate) fn message_id(front_end: &str, connection: u64, sequence: u64) -> String {
    format!("{front_end}.{connection}.{sequence}")
}

/// A name as a header value: every byte that is not printable ASCII
/// (0x21..=0x7E), and `%`, becomes `%XX` (upper-case hex). Header values
/// are trimmed by readers and must not hold CR or LF; a name may begin or
/// end with a space, so this keeps it exact (`bob smith` is `bob%20smith`,
/// `é` is `%C3%A9`).
pub(crate) fn encode_name(name: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if (0x21..=0x7E).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
    out
}

/// The bytes [`encode_name`] encoded; `None` if `value` is not such an encoding.
pub(crate) fn decode_name(value: &str) -> Option<Vec<u8>> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            if hex.bytes().any(|c| c.is_ascii_lowercase()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if (0x21..=0x7E).contains(&b) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

/// Why a message of the stream is not a msglog record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotARecord {
    #[error("it has no Msglog-Name header")]
    NoName,
    #[error("its Msglog-Name header is not a percent-encoded name")]
    BadEncoding,
    #[error("its Msglog-Name header is not a name a client can log in with")]
    InvalidName,
}

/// The sender's name of a record, checked as a session name is
/// (PROTOCOL.md, decision 1), so that a message published by something
/// else cannot forge a `[name]: ` prefix in an export.
pub(crate) fn name_of(headers: Option<&HeaderMap>) -> Result<String, NotARecord> {
    let value = headers
        .and_then(|h| h.get(NAME))
        .ok_or(NotARecord::NoName)?;
    let bytes = decode_name(value.as_str()).ok_or(NotARecord::BadEncoding)?;
    msglog_core::valid_name(&bytes)
        .map(str::to_owned)
        .ok_or(NotARecord::InvalidName)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_their_encoding_whatever_their_spaces() {
        for name in [
            "alice",
            "bob smith",
            " lead",
            "trail ",
            "é€😀",
            "100%",
            "a:b=c",
        ] {
            let encoded = encode_name(name);
            assert!(
                encoded.bytes().all(|b| (0x21..=0x7E).contains(&b)),
                "{encoded}"
            );
            assert_eq!(decode_name(&encoded).unwrap(), name.as_bytes());
        }
        assert_eq!(encode_name("bob smith"), "bob%20smith");
        assert_eq!(encode_name("é"), "%C3%A9");
        assert_eq!(encode_name("100%"), "100%25");
        for bad in ["a b", "%4", "%zz", "%c3%a9", "tab\t"] {
            assert_eq!(decode_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_record_carries_its_origin_and_only_valid_names_read_back() {
        let headers = headers(&Origin {
            stream: "msglog",
            front_end: "fe1-00ff",
            connection: 7,
            sequence: 42,
            name: &encode_name("bob smith"),
            time: "2026-11-23T09:01:21.123Z",
        });
        // As a reader parses them: standard names are not custom ones.
        let get = |name: &str| {
            let name: HeaderName = name.parse().unwrap();
            headers.get(name).map(|v| v.as_str().to_owned())
        };
        assert_eq!(get("Nats-Msg-Id").as_deref(), Some("fe1-00ff.7.42"));
        assert_eq!(get("Nats-Expected-Stream").as_deref(), Some("msglog"));
        assert_eq!(get("Msglog-Front-End").as_deref(), Some("fe1-00ff"));
        assert_eq!(get("Msglog-Connection").as_deref(), Some("7"));
        assert_eq!(get("Msglog-Sequence").as_deref(), Some("42"));
        assert_eq!(
            get("Msglog-Time").as_deref(),
            Some("2026-11-23T09:01:21.123Z")
        );
        assert_eq!(name_of(Some(&headers)).unwrap(), "bob smith");
        let mut forged = HeaderMap::new();
        forged.insert(NAME, "admin%5D%3A%20x");
        assert_eq!(name_of(Some(&forged)), Err(NotARecord::InvalidName));
        assert_eq!(name_of(None), Err(NotARecord::NoName));
    }
}
