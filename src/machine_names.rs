//! The names this machine is known by, for checking its server certificate against them:
//! clients may connect by the host name, its short form or the canonical (fully qualified)
//! name the resolver gives, so a certificate should name each.
//!
//! [`current`] asks the system ([`host_name`], then getaddrinfo with `AI_CANONNAME`, which may
//! query DNS); [`candidates`] is the pure part, which names follow from those answers.

use std::collections::HashSet;
use std::ffi::{CStr, CString};

/// The names that follow from the host name `host` and the resolver's canonical name for it:
/// `host`, its first label when it has several, then `canonical`; empty names dropped and
/// each name once, whatever its case.
pub fn candidates(host: &str, canonical: Option<&str>) -> Vec<String> {
    let mut names = vec![host.to_owned()];
    if let Some((short, _)) = host.split_once('.') {
        names.push(short.to_owned());
    }
    names.extend(canonical.map(str::to_owned));
    let mut seen = HashSet::new();
    names.retain(|n| !n.is_empty() && seen.insert(n.to_ascii_lowercase()));
    names
}

/// This machine's names ([`candidates`] of its host name); empty when it has no host name.
pub fn current() -> Vec<String> {
    let Some(host) = host_name() else {
        return Vec::new();
    };
    candidates(&host, canonical_name(&host).as_deref())
}

/// This machine's host name (gethostname(2)), or `None` when the system gives none. The one
/// call of it: the CLI names a new CA after it too.
pub fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length less one, so its last byte stays 0 and the
    // name is NUL-terminated even if gethostname truncates it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return None;
    }
    let host = CStr::from_bytes_until_nul(&buf).ok()?;
    Some(host.to_string_lossy().into_owned())
}

/// The canonical name the resolver gives `host` (getaddrinfo with AI_CANONNAME).
fn canonical_name(host: &str) -> Option<String> {
    let c_host = CString::new(host).ok()?;
    // SAFETY: zeroed addrinfo is a valid "no hints" value; fields set below.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C string, hints and out pointer; res is freed below on success.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: res is a valid list from getaddrinfo; ai_canonname, if set, is NUL-terminated.
    unsafe {
        let p = (*res).ai_canonname;
        let name = (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned());
        libc::freeaddrinfo(res);
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_name_and_canonical_name_follow_the_host_name() {
        assert_eq!(
            candidates("host.example.com", Some("host.example.com")),
            ["host.example.com", "host"]
        );
        assert_eq!(
            candidates("host", Some("host.example.com")),
            ["host", "host.example.com"]
        );
        assert_eq!(
            candidates("web.lan", Some("WEB.example.com")),
            ["web.lan", "web", "WEB.example.com"]
        );
    }

    #[test]
    fn each_name_once_whatever_its_case_and_none_empty() {
        assert_eq!(candidates("Host", Some("host")), ["Host"]);
        assert_eq!(candidates("", None), Vec::<String>::new());
        assert_eq!(candidates(".local", Some("")), [".local"]);
    }

    #[test]
    fn the_host_name_is_the_kernels() {
        // Linux keeps the name gethostname returns here too.
        let Ok(kernel) = std::fs::read_to_string("/proc/sys/kernel/hostname") else {
            return;
        };
        assert_eq!(host_name().as_deref(), Some(kernel.trim_end_matches('\n')));
    }

    #[test]
    fn this_machine_has_its_host_name_first() {
        // Whatever the resolver says, the host name itself comes first.
        let names = current();
        if let Some(host) = host_name().filter(|h| !h.is_empty()) {
            assert_eq!(names.first(), Some(&host));
        }
    }
}
