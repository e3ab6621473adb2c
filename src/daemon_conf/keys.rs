//! The names libvirtd reads from its configuration file, and the type it reads each as.
//!
//! libvirt ignores a name it does not read, without a word: `tls_alowed_dn_list = [...]`
//! leaves every client of the CA free to connect, `tls_no_verify_cert = 1` and
//! `lsiten_tcp = 1` do nothing. This list lets a check say so, and name the key that was
//! probably meant ([`nearest_key`]).
//!
//! Where the list comes from: libvirt's augeas lens `src/remote/libvirtd.aug.in` (every key
//! of the sample libvirtd.conf, each with its type), checked against what
//! `daemonConfigLoadOptions` in `src/remote/remote_daemon_config.c` reads and how
//! (`virConfGetValueBool`, `...UInt`, `...Int`, `...String`, `...StringList`), as of libvirt
//! 12.5 (July 2026). virtproxyd and the modular daemons (virtqemud, ...) read their `.conf`
//! with the same code and the same lens (`@DAEMON_NAME@`); those without network listeners
//! leave out the TLS and TCP keys, which are still known names here.

/// How libvirtd reads a key, which decides what value it refuses to start with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `virConfGetValueString`: a quoted string.
    String,
    /// `virConfGetValueBool`: the integer 0 or 1.
    Bool,
    /// `virConfGetValueInt`: an integer that fits a C `int`.
    Int,
    /// `virConfGetValueUInt`: a non-negative integer that fits a C `unsigned int`.
    UInt,
    /// `virConfGetValueStringList` without the one-string form: a list of strings.
    StringList,
    /// An `auth_*` string: one of `none`, `sasl`, `polkit` (`remoteConfigGetAuth`).
    Auth,
    /// A `unix_sock_*_perms` string: a mode in octal digits. `daemonSetupNetworking` in
    /// libvirt's `src/remote/remote_daemon.c` reads it with `virStrToLong_i(..., 8, ...)`
    /// and exits ("Failed to parse mode") on anything else.
    Mode,
    /// A name libvirt knows but does not check here: no longer read (`keepalive_required`,
    /// `tls_no_verify_address`), or newer than the code this list was checked against
    /// (`key_files`, `cert_files`, in the lens as lists of strings).
    Unchecked,
}

/// Every key of libvirtd.conf and virtproxyd.conf, in the sample file's order.
pub const KEYS: &[(&str, KeyKind)] = &[
    // Network connectivity.
    ("listen_tls", KeyKind::Bool),
    ("listen_tcp", KeyKind::Bool),
    ("tls_port", KeyKind::String),
    ("tcp_port", KeyKind::String),
    ("listen_addr", KeyKind::String),
    // UNIX socket access.
    ("unix_sock_group", KeyKind::String),
    ("unix_sock_ro_perms", KeyKind::Mode),
    ("unix_sock_rw_perms", KeyKind::Mode),
    ("unix_sock_admin_perms", KeyKind::Mode),
    ("unix_sock_dir", KeyKind::String),
    // Authentication.
    ("auth_unix_ro", KeyKind::Auth),
    ("auth_unix_rw", KeyKind::Auth),
    ("auth_tcp", KeyKind::Auth),
    ("auth_tls", KeyKind::Auth),
    ("tcp_min_ssf", KeyKind::UInt),
    ("access_drivers", KeyKind::StringList),
    // TLS certificates.
    ("key_file", KeyKind::String),
    ("cert_file", KeyKind::String),
    ("key_files", KeyKind::Unchecked),
    ("cert_files", KeyKind::Unchecked),
    ("ca_file", KeyKind::String),
    ("crl_file", KeyKind::String),
    // Authorization.
    ("tls_no_sanity_certificate", KeyKind::Bool),
    ("tls_no_verify_certificate", KeyKind::Bool),
    ("tls_allowed_dn_list", KeyKind::StringList),
    ("tls_priority", KeyKind::String),
    ("sasl_allowed_username_list", KeyKind::StringList),
    // Processing.
    ("max_clients", KeyKind::UInt),
    ("max_queued_clients", KeyKind::UInt),
    ("max_anonymous_clients", KeyKind::UInt),
    ("min_workers", KeyKind::UInt),
    ("max_workers", KeyKind::UInt),
    ("prio_workers", KeyKind::UInt),
    ("max_client_requests", KeyKind::UInt),
    ("admin_min_workers", KeyKind::UInt),
    ("admin_max_workers", KeyKind::UInt),
    ("admin_max_clients", KeyKind::UInt),
    ("admin_max_queued_clients", KeyKind::UInt),
    ("admin_max_client_requests", KeyKind::UInt),
    // Logging and auditing.
    ("log_level", KeyKind::UInt),
    ("log_filters", KeyKind::String),
    ("log_outputs", KeyKind::String),
    ("audit_level", KeyKind::UInt),
    ("audit_logging", KeyKind::Bool),
    // Host UUID.
    ("host_uuid", KeyKind::String),
    ("host_uuid_source", KeyKind::String),
    // Keepalive.
    ("keepalive_interval", KeyKind::Int),
    ("keepalive_count", KeyKind::UInt),
    ("keepalive_required", KeyKind::Unchecked),
    ("admin_keepalive_interval", KeyKind::Int),
    ("admin_keepalive_count", KeyKind::UInt),
    ("admin_keepalive_required", KeyKind::Unchecked),
    // Open vSwitch.
    ("ovs_timeout", KeyKind::UInt),
    // No longer read by libvirt; the audit warns that it has no effect.
    ("tls_no_verify_address", KeyKind::Unchecked),
];

/// A bound libvirtd checks beyond a key's type: a value below it stops libvirtd at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Minimum {
    /// The key.
    pub key: &'static str,
    /// The smallest value libvirtd accepts.
    pub min: i64,
    /// Why, in libvirt's words.
    pub why: &'static str,
    /// The line to write instead.
    pub fix: &'static str,
}

/// The bounds `daemonConfigLoadOptions` (libvirt's `src/remote/remote_daemon_config.c`)
/// checks after reading a key: `max_workers < 1` ("'max_workers' must be greater than 0")
/// and a set `tcp_min_ssf` below `SSF_WARNING_LEVEL`, 112 ("minimum SSF levels lower than
/// 112 are not supported"; 56 is only the default when the key is not set). Either makes
/// loading the file fail, and libvirtd exits. (`min_workers > max_workers` is not refused:
/// the thread pool lowers `min_workers` to `max_workers`.)
pub const MINIMUMS: &[Minimum] = &[
    Minimum {
        key: "max_workers",
        min: 1,
        why: "'max_workers' must be greater than 0",
        fix: "max_workers = 20 (libvirt's default), or any number from 1",
    },
    Minimum {
        key: "tcp_min_ssf",
        min: 112,
        why: "minimum SSF levels lower than 112 are not supported",
        fix: "tcp_min_ssf = 112, or delete the line (the default, 56, is allowed only unset)",
    },
];

/// The bound libvirtd checks for `name`, if any.
pub fn minimum(name: &str) -> Option<&'static Minimum> {
    MINIMUMS.iter().find(|m| m.key == name)
}

/// How libvirtd reads `name`; `None` for a name it ignores. Names are case-sensitive, as
/// in libvirt.
pub fn key_kind(name: &str) -> Option<KeyKind> {
    KEYS.iter().find(|(k, _)| *k == name).map(|(_, kind)| *kind)
}

/// The known key that `name` (one libvirtd ignores) was most likely meant to be: the one
/// fewest edits away (a typo, a swapped pair of letters, another case), or one of which
/// `name` is a large part (`tls_no_verify_cert`, `allowed_dn_list`). `None` when no key is
/// close, so that an unrelated name gets no suggestion.
pub fn nearest_key(name: &str) -> Option<&'static str> {
    nearest_in(name, KEYS.iter().map(|(k, _)| *k))
}

/// [`nearest_key`] among `keys`: the same rule for another file's names (qemu.conf's, in
/// [`super::qemu`]).
pub fn nearest_in<'a, I>(name: &str, keys: I) -> Option<&'a str>
where
    I: Iterator<Item = &'a str> + Clone,
{
    let lower = name.to_ascii_lowercase();
    // About one edit in five characters, at least one and at most three.
    let allowed = (lower.len() / 5).clamp(1, 3);
    let by_edits = keys
        .clone()
        .map(|k| (edit_distance(&lower, k), k))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k);
    by_edits.or_else(|| {
        keys.filter(|k| {
            let (short, long) = if lower.len() < k.len() {
                (lower.as_str(), *k)
            } else {
                (*k, lower.as_str())
            };
            short.len() >= 5 && short.len() * 2 >= long.len() && long.contains(short)
        })
        .max_by_key(|k| k.len().min(lower.len()) * 100 / k.len().max(lower.len()))
    })
}

/// The number of single-character insertions, deletions, substitutions and swaps of two
/// neighbours that turn `a` into `b` (optimal string alignment distance). Keys are ASCII;
/// anything else counts by bytes, which only makes a suggestion less likely.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // Three rows of the table: two back, one back, this one.
    let mut two_back = vec![0; b.len() + 1];
    let mut one_back: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (one_back[j] + 1)
                .min(row[j - 1] + 1)
                .min(one_back[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(two_back[j - 2] + 1);
            }
        }
        std::mem::swap(&mut two_back, &mut one_back);
        std::mem::swap(&mut one_back, &mut row);
    }
    one_back[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("listen_tls", "listen_tls"), 0);
        assert_eq!(
            edit_distance("tls_alowed_dn_list", "tls_allowed_dn_list"),
            1
        );
        // A swapped pair is one edit.
        assert_eq!(edit_distance("lsiten_tcp", "listen_tcp"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_issue_s_typos_find_their_key() {
        assert_eq!(
            nearest_key("tls_alowed_dn_list"),
            Some("tls_allowed_dn_list")
        );
        assert_eq!(
            nearest_key("tls_no_verify_cert"),
            Some("tls_no_verify_certificate")
        );
        assert_eq!(nearest_key("lsiten_tcp"), Some("listen_tcp"));
        assert_eq!(nearest_key("listen_tsl"), Some("listen_tls"));
        assert_eq!(nearest_key("Listen_TLS"), Some("listen_tls"));
        assert_eq!(nearest_key("allowed_dn_list"), Some("tls_allowed_dn_list"));
        assert_eq!(nearest_key("crl_files"), Some("crl_file"));
        assert_eq!(
            nearest_key("tls_allowed_dn_lists"),
            Some("tls_allowed_dn_list")
        );
    }

    #[test]
    fn unrelated_names_get_no_suggestion() {
        for name in [
            "future_key",
            "foo",
            "x",
            "mdns_adv",
            "port",
            "verbose",
            "a_b_c_d_e",
        ] {
            assert_eq!(nearest_key(name), None, "{name}");
        }
    }

    #[test]
    fn the_list_is_complete_and_unique() {
        let mut names: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
        // The lens's 53 keys and tls_no_verify_address.
        assert_eq!(names.len(), 54);
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KEYS.len(), "a key is listed twice");
        assert_eq!(key_kind("tls_allowed_dn_list"), Some(KeyKind::StringList));
        assert_eq!(key_kind("TLS_PORT"), None);
        assert_eq!(key_kind("keepalive_interval"), Some(KeyKind::Int));
    }
}
