//! How bad a finding is, for every check that reports findings.
//!
//! A module of its own because the sanity check ([`crate::sanity`]), the file audit
//! ([`crate::file_audit`]), the `tls_allowed_dn_list` lint ([`crate::dn_lint`]) and the
//! libvirtd.conf audit ([`crate::daemon_conf`]) all grade what they find the same way, and
//! none of them should need another for it.

/// How bad a finding is: errors make libvirt refuse the credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// libvirt would refuse the credentials, or the problem is a risk.
    Error,
    /// A deviation worth fixing that libvirt accepts.
    Warning,
}
