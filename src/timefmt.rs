//! Time in the library: [`UnixSeconds`], the clock, and times for people
//! (`2026-11-23 10:00:00 UTC`) and for files (`2026-11-23T10:00:00Z`).

/// Seconds since the Unix epoch (negative before 1970), the time unit of the whole library.
pub type UnixSeconds = i64;

/// Formats seconds since the epoch as a UTC date and time.
pub fn utc(t: UnixSeconds) -> String {
    civil(t, ' ', " UTC").unwrap_or_else(|| format!("{t} seconds since 1970"))
}

/// Formats seconds since the epoch as RFC 3339 in UTC, to the second: `2026-11-23T10:00:00Z`,
/// the form for what files record (the known-servers store's `added`). `None` outside the
/// years 0000 to 9999, which RFC 3339 cannot write.
pub fn rfc3339(t: UnixSeconds) -> Option<String> {
    civil(t, 'T', "Z")
}

/// `YYYY-MM-DD`, `between`, `hh:mm:ss`, `suffix`; `None` outside the years 0000 to 9999.
fn civil(t: UnixSeconds, between: char, suffix: &str) -> Option<String> {
    let dt = time::OffsetDateTime::from_unix_timestamp(t).ok()?;
    (0..=9999).contains(&dt.year()).then(|| {
        format!(
            "{:04}-{:02}-{:02}{between}{:02}:{:02}:{:02}{suffix}",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        )
    })
}

/// The system clock in seconds since the epoch.
pub fn now() -> UnixSeconds {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as UnixSeconds,
        Err(e) => -(e.duration().as_secs() as UnixSeconds),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_795_000_000), "2026-11-18 11:06:40 UTC");
        // Beyond what the time crate or four digits can write: said as a number.
        assert_eq!(
            super::utc(i64::MIN),
            format!("{} seconds since 1970", i64::MIN)
        );
    }

    #[test]
    fn formats_rfc3339_in_utc() {
        assert_eq!(super::rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339(1_795_428_000).unwrap(),
            "2026-11-23T10:00:00Z"
        );
        assert_eq!(super::rfc3339(-1).unwrap(), "1969-12-31T23:59:59Z");
        // The last second of 9999, and the years RFC 3339 cannot write.
        assert_eq!(
            super::rfc3339(253_402_300_799).unwrap(),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(super::rfc3339(253_402_300_800), None);
        assert_eq!(super::rfc3339(-62_167_219_201), None);
        assert_eq!(super::rfc3339(i64::MIN), None);
    }
}
