//! `HOST[:PORT]` as the command line spells a server: `host`, `host:16514`, `192.0.2.1:16514`,
//! `[::1]:16514`, `[::1]` or a bare `::1`.

use std::net::Ipv6Addr;

use crate::ui::CliError;

/// libvirt's TLS port.
pub const LIBVIRT_TLS_PORT: u16 = 16514;

/// `HOST`, `HOST:PORT`, a bare IPv6 address, or `[IPv6]` / `[IPv6]:PORT`. The host itself is
/// checked by the store (which names what is wrong with it).
pub fn parse(target: &str) -> Result<(String, Option<u16>), CliError> {
    let bad = |why: &str| {
        CliError(format!(
            "{target:?}: {why}; write HOST, HOST:PORT or [IPv6]:PORT, e.g. host.example.com:16514 \
             or [2001:db8::1]:16514"
        ))
    };
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("the '[' has no matching ']'"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("only :PORT may follow ']'"))?,
            ),
        };
        if inside
            .split('%')
            .next()
            .unwrap_or("")
            .parse::<Ipv6Addr>()
            .is_err()
        {
            return Err(bad("brackets hold an IPv6 address only"));
        }
        (format!("[{inside}]"), port)
    } else if target.matches(':').count() > 1 {
        if target
            .split('%')
            .next()
            .unwrap_or("")
            .parse::<Ipv6Addr>()
            .is_err()
        {
            return Err(bad(
                "not an IPv6 address (with a port, put the address in brackets)",
            ));
        }
        (target.to_owned(), None)
    } else {
        match target.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (target.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) => {
                return Err(bad(
                    "port 0 is not a port (leave the port out for any port)",
                ))
            }
            Ok(n) => Some(n),
            Err(_) => return Err(bad(&format!("{p:?} is not a port number (1-65535)"))),
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn spellings() {
        assert_eq!(parse("host").unwrap(), ("host".into(), None));
        assert_eq!(parse("host:16514").unwrap(), ("host".into(), Some(16514)));
        assert_eq!(parse("[::1]:99").unwrap(), ("[::1]".into(), Some(99)));
        assert_eq!(parse("[::1]").unwrap(), ("[::1]".into(), None));
        assert_eq!(
            parse("[fe80::1%eth0]:7").unwrap(),
            ("[fe80::1%eth0]".into(), Some(7))
        );
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
            "a:b:c",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
