//! Time in the library: [`UnixSeconds`], the clock, and times for people
//! (`2026-11-23 10:00:00 UTC`).

/// Seconds since the Unix epoch (negative before 1970), the time unit of the whole library.
pub type UnixSeconds = i64;

/// Formats seconds since the epoch as a UTC date and time.
pub fn utc(t: UnixSeconds) -> String {
    match time::OffsetDateTime::from_unix_timestamp(t) {
        Ok(dt) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        ),
        Err(_) => format!("{t} seconds since 1970"),
    }
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
    }
}

/// Formats seconds since the epoch as RFC 3339 in UTC, to the second: `2026-11-23T10:00:00Z`,
/// the form for what files record (the known-servers store's `added`). `None` outside the
/// years 0000 to 9999, which RFC 3339 cannot write.
pub fn rfc3339(t: UnixSeconds) -> Option<String> {
    let dt = time::OffsetDateTime::from_unix_timestamp(t).ok()?;
    (0..=9999).contains(&dt.year()).then(|| {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        )
    })
}

#[cfg(test)]
mod rfc3339_tests {
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
