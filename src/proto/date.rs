//! The `Date` response field (RFC 9110 §6.6.1) in IMF-fixdate form (§5.6.7),
//! formatted at most once a second per thread.
//!
//! Reading the wall clock is the one input here that is not a byte slice; it
//! is a vDSO call, not I/O, and keeping it here (as hyper does) spares every
//! response writer a time parameter.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) const IMF_FIXDATE_LEN: usize = 29;

thread_local! {
    /// The second last formatted on this thread, and its text.
    static CACHED: Cell<(u64, [u8; IMF_FIXDATE_LEN])> = const { Cell::new((u64::MAX, [0; IMF_FIXDATE_LEN])) };
}

/// Appends the current time as an IMF-fixdate.
pub(crate) fn push_now(out: &mut Vec<u8>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let text = CACHED.with(|cached| {
        let (second, text) = cached.get();
        if second == now {
            return text;
        }
        let text = imf_fixdate(now);
        cached.set((now, text));
        text
    });
    out.extend_from_slice(&text);
}

/// `IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT` for seconds since the Unix epoch.
pub(crate) fn imf_fixdate(unix_secs: u64) -> [u8; IMF_FIXDATE_LEN] {
    const DAY_NAMES: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTH_NAMES: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = unix_secs / 86_400;
    let secs_of_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    // 1970-01-01 was a Thursday.
    out[..3].copy_from_slice(DAY_NAMES[(days % 7) as usize]);
    put_two_digits(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTH_NAMES[(month - 1) as usize]);
    // `year = 4DIGIT`: years past 9999 cannot be written; they are 9999's.
    let year = year.min(9999);
    put_two_digits(&mut out[12..14], year / 100);
    put_two_digits(&mut out[14..16], year % 100);
    put_two_digits(&mut out[17..19], secs_of_day / 3600);
    put_two_digits(&mut out[20..22], secs_of_day / 60 % 60);
    put_two_digits(&mut out[23..25], secs_of_day % 60);
    out
}

/// Year, month (1-12) and day (1-31) of a count of days since 1970-01-01, in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Count from 0000-03-01, so the leap day ends each 400-year era's year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn put_two_digits(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        // Checked against `date -u -d @SECONDS '+%a, %d %b %Y %H:%M:%S GMT'`.
        for (secs, text) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            // RFC 9110 §5.6.7's example.
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 GMT"),
            (1_709_251_200, "Fri, 01 Mar 2024 00:00:00 GMT"),
            (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT"),
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ] {
            assert_eq!(std::str::from_utf8(&imf_fixdate(secs)).unwrap(), text);
        }
    }

    #[test]
    fn every_day_follows_the_one_before() {
        // Day by day over four centuries: the day of month counts up or restarts at 1 with
        // the next month, and February has its 29th exactly in leap years.
        let mut previous = civil_from_days(0);
        for days in 1..146_097 {
            let (year, month, day) = civil_from_days(days);
            let (p_year, p_month, p_day) = previous;
            if day == 1 {
                let next_month = if p_month == 12 { 1 } else { p_month + 1 };
                assert_eq!((month, year), (next_month, p_year + u64::from(month == 1)));
                let leap = p_year % 4 == 0 && (p_year % 100 != 0 || p_year % 400 == 0);
                let month_days = [
                    31,
                    28 + u64::from(leap),
                    31,
                    30,
                    31,
                    30,
                    31,
                    31,
                    30,
                    31,
                    30,
                    31,
                ];
                assert_eq!(p_day, month_days[(p_month - 1) as usize], "{previous:?}");
            } else {
                assert_eq!((year, month, day), (p_year, p_month, p_day + 1));
            }
            previous = (year, month, day);
        }
    }

    #[test]
    fn now_is_an_imf_fixdate() {
        let mut out = Vec::new();
        push_now(&mut out);
        push_now(&mut out);
        assert_eq!(out.len(), 2 * IMF_FIXDATE_LEN);
        assert!(out.ends_with(b" GMT"));
    }
}
