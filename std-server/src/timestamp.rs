//! RFC 3339 UTC timestamps with milliseconds (`2026-11-23T09:01:21.123Z`),
//! formatted without allocation and cached: an event loop updates the clock
//! once per iteration and stamps every line of that iteration with it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of a formatted timestamp.
pub(crate) const LEN: usize = 24;

/// The current time as RFC 3339 text, recomputed only when the millisecond changes.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    text: [u8; LEN],
    millis: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock showing the current time.
    pub(crate) fn new() -> Self {
        let mut clock = Clock {
            text: [0; LEN],
            millis: u64::MAX,
        };
        clock.update(SystemTime::now());
        clock
    }

    /// Move the clock to `now` (a clock before 1970 shows 1970).
    pub(crate) fn update(&mut self, now: SystemTime) {
        let millis = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        if millis != self.millis {
            self.millis = millis;
            self.text = format_millis(millis);
        }
    }

    /// The timestamp text.
    pub(crate) fn text(&self) -> &[u8] {
        &self.text
    }
}

/// Format milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn format_millis(millis: u64) -> [u8; LEN] {
    let secs = millis / 1000;
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    put_digits(&mut out[0..4], year.min(9999));
    put_digits(&mut out[5..7], month);
    put_digits(&mut out[8..10], day);
    put_digits(&mut out[11..13], of_day / 3600);
    put_digits(&mut out[14..16], of_day % 3600 / 60);
    put_digits(&mut out[17..19], of_day % 60);
    put_digits(&mut out[20..23], millis % 1000);
    out
}

/// Write `value` as decimal digits right-aligned in `out`, zero-padded.
fn put_digits(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// (year, month, day) of the proleptic Gregorian calendar for a count of
/// days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(millis: u64) -> String {
        String::from_utf8(format_millis(millis).to_vec()).unwrap()
    }

    #[test]
    fn known_instants() {
        assert_eq!(text(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(text(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(text(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(text(1_795_424_481_123), "2026-11-23T09:01:21.123Z");
        assert_eq!(text(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(text(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn every_day_of_four_centuries_is_consecutive() {
        let (mut year, mut month, mut day) = civil_from_days(0);
        for days in 1..146_097 * 2 {
            let next = civil_from_days(days);
            let month_len = match month {
                2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let expected = if day < month_len {
                (year, month, day + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
            assert_eq!(next, expected, "day {days}");
            (year, month, day) = next;
        }
    }
}
