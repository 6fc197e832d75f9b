//! Durations on a command line: `250ms`, `2s`, `1.5s`, `5m`, `1h`, `1h 30m`
//! (any unit of [`humantime`]: `us`, `ms`, `s`, `min`, `h`, `d`, ...), or a
//! bare number, which is seconds.

use std::borrow::Cow;
use std::time::Duration;

/// Whether a duration of zero is a valid value (a timeout of zero usually
/// is not; a warm-up of zero is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    /// `0`, `0s`, `0ms` are valid.
    Allowed,
    /// `0` is refused with [`DurationError::Zero`].
    Rejected,
}

/// Why a text is not a duration. The messages are written for a command
/// line's error line (`invalid value '5x' for '--grace <DURATION>': ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Not a number followed by a unit.
    #[error("`{text}` is not a duration (examples: 200ms, 2s, 5m)")]
    NotADuration {
        /// The text, trimmed.
        text: String,
    },
    /// A number followed by something that is not a unit.
    #[error("unknown unit `{unit}` in `{text}` (use ms, s, m or h)")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The text, trimmed.
        text: String,
    },
    /// Too long for a `Duration`, or finer than a nanosecond.
    #[error("`{text}` is out of range")]
    OutOfRange {
        /// The text, trimmed.
        text: String,
    },
    /// Zero, where the caller said [`Zero::Rejected`].
    #[error("a duration must be positive")]
    Zero,
}

/// Parse a duration as people write it on a command line (see the module
/// documentation); surrounding whitespace is ignored.
///
/// ```
/// use std::time::Duration;
/// use msglog_std::{parse_duration, Zero};
///
/// assert_eq!(parse_duration("250ms", Zero::Rejected), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1.5", Zero::Rejected), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_duration("0", Zero::Allowed), Ok(Duration::ZERO));
/// assert!(parse_duration("0s", Zero::Rejected).is_err());
/// ```
pub fn parse_duration(text: &str, zero: Zero) -> Result<Duration, DurationError> {
    let text = text.trim();
    let mut spans = normalize(text);
    if !spans.is_empty() && spans.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // A bare number is seconds.
        spans.to_mut().push('s');
    }
    let duration = humantime::parse_duration(&spans)
        .or_else(|e| fraction_of_a_unit(&spans).ok_or(e))
        .map_err(|e| match e {
            humantime::DurationError::UnknownUnit { unit, .. } if !unit.is_empty() => {
                DurationError::UnknownUnit {
                    unit: after_the_number(text).to_owned(),
                    text: text.to_owned(),
                }
            }
            humantime::DurationError::NumberOverflow => DurationError::OutOfRange {
                text: text.to_owned(),
            },
            _ => DurationError::NotADuration {
                text: text.to_owned(),
            },
        })?;
    if duration.is_zero() && zero == Zero::Rejected {
        return Err(DurationError::Zero);
    }
    Ok(duration)
}

/// What follows the leading number: the unit an error names (all of it,
/// as msglog's messages always did: `e99h` in `1e99h`).
fn after_the_number(text: &str) -> &str {
    let start = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    text[start..].trim()
}

/// `0.001h` (3.6 s): humantime takes a fraction of an hour (or a day)
/// only if it is a whole number of seconds; this is the fraction times the
/// unit, to the nanosecond. `None` unless `span` is one number with a
/// decimal point and a unit humantime knows.
fn fraction_of_a_unit(span: &str) -> Option<Duration> {
    let split = span.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = span.split_at(split);
    if !number.contains('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let unit = humantime::parse_duration(&format!("1{}", unit.trim_start())).ok()?;
    Duration::try_from_secs_f64(value * unit.as_secs_f64()).ok()
}

/// `.5s` as `0.5s` and `1.s` as `1s`: numbers with one decimal point at
/// an end, which humantime does not take but a float parser (and so msglog
/// before humantime) does.
fn normalize(text: &str) -> Cow<'_, str> {
    let is_number = |c: char| c.is_ascii_digit() || c == '.';
    let odd = |number: &str| {
        number.len() > 1
            && number.matches('.').count() == 1
            && (number.starts_with('.') || number.ends_with('.'))
    };
    if !text.split(|c: char| !is_number(c)).any(odd) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 1);
    let mut rest = text;
    while let Some(start) = rest.find(is_number) {
        let (before, from) = rest.split_at(start);
        let end = from.find(|c: char| !is_number(c)).unwrap_or(from.len());
        let (number, after) = from.split_at(end);
        out.push_str(before);
        match number {
            _ if !odd(number) => out.push_str(number),
            _ if number.starts_with('.') => {
                out.push('0');
                out.push_str(number);
            }
            _ => out.push_str(&number[..number.len() - 1]),
        }
        rest = after;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Result<Duration, DurationError> {
        Ok(Duration::from_millis(millis))
    }

    #[test]
    fn what_the_server_documents() {
        for zero in [Zero::Allowed, Zero::Rejected] {
            assert_eq!(parse_duration("250ms", zero), ms(250));
            assert_eq!(parse_duration("200ms", zero), ms(200));
            assert_eq!(parse_duration("2s", zero), ms(2000));
            assert_eq!(parse_duration("2", zero), ms(2000));
            assert_eq!(parse_duration("1.5s", zero), ms(1500));
            assert_eq!(parse_duration("1.5", zero), ms(1500));
            assert_eq!(parse_duration("5m", zero), ms(300_000));
            assert_eq!(parse_duration("5min", zero), ms(300_000));
            assert_eq!(parse_duration("1h", zero), ms(3_600_000));
            assert_eq!(parse_duration(" 2s\n", zero), ms(2000));
            assert_eq!(parse_duration("2 s", zero), ms(2000));
        }
    }

    #[test]
    fn what_the_load_generator_needs_too() {
        assert_eq!(parse_duration("0", Zero::Allowed), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s", Zero::Allowed), Ok(Duration::ZERO));
        assert_eq!(
            parse_duration("250us", Zero::Allowed),
            Ok(Duration::from_micros(250))
        );
        assert_eq!(parse_duration("1h 30m", Zero::Allowed), ms(5_400_000));
    }

    #[test]
    fn points_at_either_end_of_a_number() {
        assert_eq!(normalize("2s"), "2s");
        assert_eq!(normalize(".5s"), "0.5s");
        assert_eq!(normalize("1.s"), "1s");
        assert_eq!(normalize("1. h"), "1 h");
        assert_eq!(normalize("1h .5m"), "1h 0.5m");
        assert_eq!(normalize("1..5s"), "1..5s");
        assert_eq!(normalize("."), ".");
    }

    #[test]
    fn zero_only_where_allowed() {
        for text in ["0", "0s", "0ms", "0.0", "0h"] {
            assert_eq!(
                parse_duration(text, Zero::Rejected),
                Err(DurationError::Zero)
            );
            assert_eq!(parse_duration(text, Zero::Allowed), Ok(Duration::ZERO));
        }
    }

    #[test]
    fn errors_say_what_is_wrong_as_before() {
        let says = |text: &str| {
            parse_duration(text, Zero::Rejected)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            says("abc"),
            "`abc` is not a duration (examples: 200ms, 2s, 5m)"
        );
        assert_eq!(
            says("soon"),
            "`soon` is not a duration (examples: 200ms, 2s, 5m)"
        );
        assert_eq!(
            says("-1s"),
            "`-1s` is not a duration (examples: 200ms, 2s, 5m)"
        );
        assert_eq!(says(""), "`` is not a duration (examples: 200ms, 2s, 5m)");
        assert_eq!(says("5x"), "unknown unit `x` in `5x` (use ms, s, m or h)");
        assert_eq!(says("5 x"), "unknown unit `x` in `5 x` (use ms, s, m or h)");
        assert_eq!(
            says("1e99h"),
            "unknown unit `e99h` in `1e99h` (use ms, s, m or h)"
        );
        assert_eq!(
            says("99999999999999999999999s"),
            "`99999999999999999999999s` is out of range"
        );
        assert_eq!(says("0s"), "a duration must be positive");
    }

    /// The server's parser before humantime, kept as the oracle of what
    /// its flags must go on accepting.
    fn before_humantime(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let value: f64 = number.parse().map_err(|_| "not a duration".to_owned())?;
        let scale = match unit.trim() {
            "ms" => 0.001,
            "" | "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err("unknown unit".into()),
        };
        let duration =
            Duration::try_from_secs_f64(value * scale).map_err(|_| "out of range".to_owned())?;
        if duration.is_zero() {
            return Err("a duration must be positive".into());
        }
        Ok(duration)
    }

    #[test]
    fn everything_the_server_accepted_before_is_accepted_with_the_same_value() {
        let numbers = [
            "0", "1", "2", "7", "10", "30", "250", "600", "86400", "1.5", "0.5", "0.25", ".5",
            "1.", "2.50", "0.001", "3.14159", "12.",
        ];
        let units = ["", "ms", "s", "m", "min", "h", " s", " ms", "  h"];
        let mut checked = 0;
        for number in numbers {
            for unit in units {
                for padding in ["", " ", "\t"] {
                    let text = format!("{padding}{number}{unit}{padding}");
                    let Ok(before) = before_humantime(&text) else {
                        continue;
                    };
                    let now = parse_duration(&text, Zero::Rejected)
                        .unwrap_or_else(|e| panic!("`{text}` is refused now: {e}"));
                    let apart = now.abs_diff(before);
                    assert!(
                        apart <= Duration::from_micros(1),
                        "`{text}`: {now:?}, before {before:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 400, "{checked}");
        // And what it refused, it still refuses.
        for text in [
            "", "s", "abc", "5x", "-1s", "1e3", "0s", "0.0ms", "1..5s", "..5s", ".", ".s", "1.2.3s",
        ] {
            assert!(before_humantime(text).is_err(), "{text}");
            assert!(parse_duration(text, Zero::Rejected).is_err(), "{text}");
        }
    }
}
