//! The encoder: a transaction's header, and whole transactions into a buffer.
//!
//! Writing to an `embedded_io::Write` is in `io.rs`, which builds on this
//! module (never the other way round).

use crate::wire::{Tag, Transaction, HEADER_LEN, MAX_PAYLOAD};

/// Why a transaction cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// The payload is empty; the wire has no zero-length fields.
    Empty(Tag),
    /// The payload is longer than the 65535 bytes a length field can express.
    TooLong {
        /// The transaction's tag.
        tag: Tag,
        /// The payload's length.
        length: usize,
    },
    /// The output buffer is smaller than the encoded transaction.
    BufferTooSmall {
        /// Bytes the encoded transaction needs.
        needed: usize,
    },
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EncodeError::Empty(tag) => write!(f, "{tag} payload is empty"),
            EncodeError::TooLong { tag, length } => {
                write!(f, "{tag} payload of {length} bytes exceeds {MAX_PAYLOAD}")
            }
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
        }
    }
}

impl core::error::Error for EncodeError {}

/// The bytes that precede a transaction's payload: the tag, and for every
/// tag but CLOSE, the little-endian length. Lets a caller send header and
/// payload in one vectored write without copying the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    bytes: [u8; HEADER_LEN],
    len: u8,
}

impl Header {
    /// The header bytes (1 for CLOSE, 3 otherwise).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl<'a> Transaction<'a> {
    /// The header of this transaction, after checking its payload length.
    pub fn header(&self) -> Result<Header, EncodeError> {
        let tag = self.tag();
        if tag == Tag::Close {
            return Ok(Header {
                bytes: [tag.as_byte(), 0, 0],
                len: 1,
            });
        }
        let payload = self.payload();
        if payload.is_empty() {
            return Err(EncodeError::Empty(tag));
        }
        let Ok(length) = u16::try_from(payload.len()) else {
            return Err(EncodeError::TooLong {
                tag,
                length: payload.len(),
            });
        };
        let [lo, hi] = length.to_le_bytes();
        Ok(Header {
            bytes: [tag.as_byte(), lo, hi],
            len: HEADER_LEN as u8,
        })
    }

    /// Bytes this transaction takes on the wire (header and payload).
    pub fn encoded_len(&self) -> usize {
        match self {
            Transaction::Close => 1,
            _ => HEADER_LEN + self.payload().len(),
        }
    }

    /// Encode into the front of `out`; returns the number of bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let header = self.header()?;
        let needed = self.encoded_len();
        let Some(dst) = out.get_mut(..needed) else {
            return Err(EncodeError::BufferTooSmall { needed });
        };
        let (head, body) = dst.split_at_mut(header.as_bytes().len());
        head.copy_from_slice(header.as_bytes());
        body.copy_from_slice(self.payload());
        Ok(needed)
    }
}
