//! The streaming decoder: bytes received so far in, one transaction (or "need more") out.
//!
//! Contract: [`decode`] never panics, never reads past `input`, and never
//! allocates. Its answer for a prefix of a valid stream is always either the
//! same complete transaction or [`Decoded::Partial`], so a caller may feed
//! bytes in any chunking and see the same transactions and the same error.
//! Errors are detected as early as the bytes allow: an unknown tag at the
//! first byte, a bad length as soon as the two length bytes are in.

use core::num::NonZeroUsize;

use nom::bytes::streaming::take;
use nom::error::{ErrorKind, ParseError};
use nom::number::streaming::{le_u16, le_u8};
use nom::{IResult, Needed};

use crate::wire::{Tag, Transaction, HEADER_LEN};

/// Longest payload accepted for each tag; a longer field is rejected, never truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Limits {
    /// Longest NAME payload.
    pub name: u16,
    /// Longest PASSWORD payload.
    pub password: u16,
    /// Longest MESSAGE payload.
    pub message: u16,
}

impl Limits {
    /// Everything the wire can express (65535 for every tag).
    pub const WIRE: Limits = Limits {
        name: u16::MAX,
        password: u16::MAX,
        message: u16::MAX,
    };

    /// The std server's defaults from PROTOCOL.md: names and passwords up to 255, messages up to 65535.
    pub const STD: Limits = Limits {
        name: 255,
        password: 255,
        message: u16::MAX,
    };

    /// Limits from capacities in bytes, clamped to what the wire can express.
    pub const fn from_capacities(name: usize, password: usize, message: usize) -> Limits {
        Limits {
            name: clamp(name),
            password: clamp(password),
            message: clamp(message),
        }
    }

    /// The longest payload accepted for `tag` (0 for CLOSE, which has none).
    pub const fn max_len(&self, tag: Tag) -> u16 {
        match tag {
            Tag::Name => self.name,
            Tag::Password => self.password,
            Tag::Message => self.message,
            Tag::Close => 0,
        }
    }

    /// The longest transaction these limits accept, header included: the
    /// smallest receive buffer that can hold any acceptable transaction.
    pub const fn max_frame(&self) -> usize {
        let mut max = self.name;
        if self.password > max {
            max = self.password;
        }
        if self.message > max {
            max = self.message;
        }
        HEADER_LEN + max as usize
    }
}

const fn clamp(capacity: usize) -> u16 {
    if capacity > u16::MAX as usize {
        u16::MAX
    } else {
        capacity as u16
    }
}

/// A protocol error found in the bytes themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// The first byte is not a tag (0x00 or 0x05..=0xFF).
    UnknownTag(u8),
    /// The length field is zero.
    ZeroLength(Tag),
    /// The length field exceeds the limit for this tag.
    TooLong {
        /// The transaction's tag.
        tag: Tag,
        /// The length announced on the wire.
        length: u16,
        /// The limit for this tag.
        max: u16,
    },
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::UnknownTag(byte) => write!(f, "unknown tag 0x{byte:02x}"),
            FrameError::ZeroLength(tag) => write!(f, "{tag} with zero length"),
            FrameError::TooLong { tag, length, max } => {
                write!(f, "{tag} of {length} bytes exceeds the limit of {max}")
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// What the decoder made of the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use = "a complete transaction must be handled, a partial one awaited"]
pub enum Decoded<'a> {
    /// A whole transaction, borrowing its payload from the input.
    Complete {
        /// The transaction.
        transaction: Transaction<'a>,
        /// How many input bytes it occupied.
        consumed: usize,
    },
    /// The input is a valid but unfinished transaction.
    Partial {
        /// At least this many more bytes are needed.
        needed: NonZeroUsize,
    },
}

/// Decode the transaction at the start of `input` under `limits`.
///
/// ```
/// use msglog_core::{decode, Decoded, Limits, Transaction};
/// // The original Python client's NAME transaction.
/// let bytes = b"\x01\x06\x00MyUser";
/// assert_eq!(
///     decode(bytes, &Limits::STD),
///     Ok(Decoded::Complete { transaction: Transaction::Name(b"MyUser"), consumed: 9 })
/// );
/// ```
pub fn decode<'a>(input: &'a [u8], limits: &Limits) -> Result<Decoded<'a>, FrameError> {
    match transaction(input, limits) {
        Ok((rest, transaction)) => Ok(Decoded::Complete {
            transaction,
            consumed: input.len() - rest.len(),
        }),
        Err(nom::Err::Incomplete(needed)) => Ok(Decoded::Partial {
            needed: match needed {
                Needed::Size(n) => n,
                Needed::Unknown => NonZeroUsize::MIN,
            },
        }),
        Err(nom::Err::Error(Failure::Frame(e)) | nom::Err::Failure(Failure::Frame(e))) => Err(e),
        // Streaming byte parsers only fail with `Incomplete`; this arm keeps
        // the decoder total without a panic path.
        Err(nom::Err::Error(Failure::Parser) | nom::Err::Failure(Failure::Parser)) => {
            Ok(Decoded::Partial {
                needed: NonZeroUsize::MIN,
            })
        }
    }
}

/// nom's error type for this grammar; it never leaves this module.
#[derive(Debug)]
enum Failure {
    Frame(FrameError),
    Parser,
}

impl<I> ParseError<I> for Failure {
    fn from_error_kind(_input: I, _kind: ErrorKind) -> Self {
        Failure::Parser
    }

    fn append(_input: I, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

fn reject<T>(error: FrameError) -> IResult<&'static [u8], T, Failure> {
    Err(nom::Err::Failure(Failure::Frame(error)))
}

fn transaction<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> IResult<&'a [u8], Transaction<'a>, Failure> {
    let (rest, byte) = le_u8(input)?;
    let Some(tag) = Tag::from_byte(byte) else {
        return reject(FrameError::UnknownTag(byte));
    };
    if tag == Tag::Close {
        return Ok((rest, Transaction::Close));
    }
    let (rest, length) = le_u16(rest)?;
    let max = limits.max_len(tag);
    if length == 0 {
        return reject(FrameError::ZeroLength(tag));
    }
    if length > max {
        return reject(FrameError::TooLong { tag, length, max });
    }
    let (rest, payload) = take(length)(rest)?;
    let transaction = match tag {
        Tag::Name => Transaction::Name(payload),
        Tag::Password => Transaction::Password(payload),
        Tag::Message => Transaction::Message(payload),
        Tag::Close => Transaction::Close,
    };
    Ok((rest, transaction))
}

/// What the first bytes of a transaction announce, valid or not, complete
/// or not: what a server logs about a transaction that was rejected or
/// never finished (see [`peek_header`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Announced {
    /// The first byte as received, a tag or not.
    pub tag: u8,
    /// The length field, once both of its bytes are in; `None` for CLOSE and
    /// for a byte that is not a tag, which no length field follows.
    pub length: Option<u16>,
}

/// Read the tag byte and, once it has arrived, the length field at the
/// start of `input`, without judging them against any limit; `None` for
/// empty input. The layout is the decoder's own (tag, then little-endian
/// length), so a driver never does header arithmetic.
///
/// ```
/// use msglog_core::{peek_header, Announced};
/// let message = Announced { tag: 0x03, length: Some(300) };
/// assert_eq!(peek_header(b"\x03\x2c\x01hel"), Some(message));
/// assert_eq!(peek_header(b"\x03\x2c"), Some(Announced { tag: 0x03, length: None }));
/// assert_eq!(peek_header(b"\x04\x2c\x01"), Some(Announced { tag: 0x04, length: None }));
/// assert_eq!(peek_header(b""), None);
/// ```
pub fn peek_header(input: &[u8]) -> Option<Announced> {
    let (rest, tag) = le_u8::<_, Failure>(input).ok()?;
    let length = match Tag::from_byte(tag) {
        Some(Tag::Close) | None => None,
        Some(_) => le_u16::<_, Failure>(rest).ok().map(|(_, length)| length),
    };
    Some(Announced { tag, length })
}

/// Iterator over the complete transactions at the front of a buffer.
///
/// Stops at the first partial transaction (see [`Frames::consumed`]) or
/// yields the first error and then stops.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    input: &'a [u8],
    consumed: usize,
    limits: Limits,
    done: bool,
}

impl<'a> Frames<'a> {
    /// Iterate over the transactions in `input`.
    pub fn new(input: &'a [u8], limits: Limits) -> Self {
        Frames {
            input,
            consumed: 0,
            limits,
            done: false,
        }
    }

    /// Bytes taken by the transactions yielded so far; the rest is an unfinished transaction.
    pub fn consumed(&self) -> usize {
        self.consumed
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Transaction<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.input.get(self.consumed..).unwrap_or_default();
        match decode(rest, &self.limits) {
            Ok(Decoded::Complete {
                transaction,
                consumed,
            }) => {
                self.consumed += consumed;
                Some(Ok(transaction))
            }
            Ok(Decoded::Partial { .. }) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
