//! The vocabulary of the wire: transaction tags, transactions and status bytes.

/// The first byte of every transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Tag {
    /// `0x01`: the user name.
    Name = 0x01,
    /// `0x02`: the password.
    Password = 0x02,
    /// `0x03`: one message.
    Message = 0x03,
    /// `0x04`: end of session; the single byte `04`, no length field.
    Close = 0x04,
}

impl Tag {
    /// The tag for a byte, or `None` for a byte that is not a tag.
    pub const fn from_byte(byte: u8) -> Option<Tag> {
        match byte {
            0x01 => Some(Tag::Name),
            0x02 => Some(Tag::Password),
            0x03 => Some(Tag::Message),
            0x04 => Some(Tag::Close),
            _ => None,
        }
    }

    /// The byte on the wire.
    pub const fn as_byte(self) -> u8 {
        self as u8
    }

    /// Upper-case name as used in PROTOCOL.md and in logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tag::Name => "NAME",
            Tag::Password => "PASSWORD",
            Tag::Message => "MESSAGE",
            Tag::Close => "CLOSE",
        }
    }
}

impl core::fmt::Display for Tag {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The server's one-byte answer to a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Status {
    /// `0x00`: accepted (for a MESSAGE: its record has been written).
    Accepted = 0x00,
    /// `0xFF`: rejected; the server closes the connection right after it.
    Rejected = 0xFF,
}

impl Status {
    /// The status for a byte, or `None` for any byte other than `00` and `FF`.
    pub const fn from_byte(byte: u8) -> Option<Status> {
        match byte {
            0x00 => Some(Status::Accepted),
            0xFF => Some(Status::Rejected),
            _ => None,
        }
    }

    /// The byte on the wire.
    pub const fn as_byte(self) -> u8 {
        self as u8
    }
}

/// One decoded (or to-be-encoded) transaction; payloads are borrowed, never copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Transaction<'a> {
    /// A NAME transaction carrying the raw name bytes (validated by the session, not the codec).
    Name(&'a [u8]),
    /// A PASSWORD transaction carrying opaque password bytes.
    Password(&'a [u8]),
    /// A MESSAGE transaction carrying one opaque message.
    Message(&'a [u8]),
    /// The bare CLOSE byte.
    Close,
}

impl<'a> Transaction<'a> {
    /// This transaction's tag.
    pub const fn tag(&self) -> Tag {
        match self {
            Transaction::Name(_) => Tag::Name,
            Transaction::Password(_) => Tag::Password,
            Transaction::Message(_) => Tag::Message,
            Transaction::Close => Tag::Close,
        }
    }

    /// The payload (empty for CLOSE).
    pub const fn payload(&self) -> &'a [u8] {
        match self {
            Transaction::Name(p) | Transaction::Password(p) | Transaction::Message(p) => p,
            Transaction::Close => &[],
        }
    }
}

/// Length of the header (tag and little-endian length) of a transaction that carries a payload.
pub const HEADER_LEN: usize = 3;

/// Largest payload the wire can express.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

/// Largest transaction the wire can express (header plus the largest payload).
pub const MAX_FRAME: usize = HEADER_LEN + MAX_PAYLOAD;

/// The default TCP port.
pub const DEFAULT_PORT: u16 = 5555;
