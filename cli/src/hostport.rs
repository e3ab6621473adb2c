//! `HOST[:PORT]` as the command line spells a server: `host`, `host:16514`, `192.0.2.1:16514`,
//! `[::1]:16514`, `[::1]` or a bare `::1`.

use crate::ui::CliError;

/// libvirt's TLS port.
pub const LIBVIRT_TLS_PORT: u16 = 16514;

/// Splits `text` into a host (IPv6 without brackets) and its port, if one is given.
pub fn parse(text: &str) -> Result<(String, Option<u16>), CliError> {
    let bad = |why: &str| {
        CliError(format!(
            "\"{text}\": {why} (expected HOST[:PORT], [IPV6]:PORT)"
        ))
    };
    if text.is_empty() {
        return Err(bad("an empty host"));
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| bad("'[' without ']'"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("brackets hold an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(port(
                p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?,
                &bad,
            )?),
        };
        return Ok((host.to_owned(), port));
    }
    if text.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((text.to_owned(), None));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, Some(port(p, &bad)?)),
        None => (text, None),
    };
    if host.is_empty() || host.contains(':') {
        return Err(bad("not a host name or address"));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(bad("a host name has no spaces, control characters or '/'"));
    }
    Ok((host.to_owned(), port))
}

fn port(text: &str, bad: &dyn Fn(&str) -> CliError) -> Result<u16, CliError> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(bad("the port is a number from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn spellings() {
        assert_eq!(parse("host").unwrap(), ("host".into(), None));
        assert_eq!(parse("host:16514").unwrap(), ("host".into(), Some(16514)));
        assert_eq!(parse("[::1]:99").unwrap(), ("::1".into(), Some(99)));
        assert_eq!(parse("[::1]").unwrap(), ("::1".into(), None));
        assert_eq!(parse("::1").unwrap(), ("::1".into(), None));
        assert_eq!(parse("10.0.0.1:5").unwrap(), ("10.0.0.1".into(), Some(5)));
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "host:",
            "host:0",
            "host:65536",
            "host:x",
            "[::1",
            "[host]:1",
            "[::1]x",
            ":16514",
            "a b",
            "a/b:1",
            "a:b:c",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
