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
