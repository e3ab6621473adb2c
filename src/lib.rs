//! virtpki: X.509 credentials for libvirt-style TLS connections.
//!
//! A [`Context`] holds CA certificates, CRLs, trusted server certificates and the client and
//! server identities, added from PEM text, files or libvirt's default locations
//! ([`locations`]). Every input is parsed and checked completely when it is added
//! ([`pem`]); certificates are modelled once ([`cert`]) with libvirt's DN string ([`dn`]).
//! [`sanity`] runs libvirt's load-time checks and reports every finding with a fix.
//! [`verify`] decides on every connection: server and client verification, the application's
//! validator and the [`known`] servers store. [`daemon_conf`] reads libvirtd.conf's TLS settings;
//! [`dn_match`] decides `tls_allowed_dn_list` as libvirt does and [`dn_lint`] finds the patterns
//! in it that can match no DN libvirt prints. [`file_audit`] holds the owners and modes of the
//! credential files to virt-pki-validate's expectations, and [`fsutil`] reads and writes files
//! through descriptors, so what is checked is what is used; [`machine_names`] gives the names a
//! server certificate should hold.
//!
//! This page is the map of the crate and the short form of its verification rules; the
//! README points here. The contract of the C API is `include/virtpki.h` (generated from
//! `../shared/API.md`'s names and values).
//!
//! # What is there
//!
//! ## Inputs and the certificate model
//!
//! - [`pem`]: the inputs of the certificate-management proposal's types ([`CertDataType`]):
//!   PEM text, PEM or DER files, bundles, CRLs, PKCS#8 / PKCS#1 / SEC1 keys
//!   ([`pem::KeyFormat`]); size caps; the permissions of key files.
//! - [`cert`]: a parsed [`Certificate`]: libvirt's DN string, SANs, validity, basic
//!   constraints, key usage and purpose with criticality, fingerprints ([`cert::Fingerprint`],
//!   the one SHA-256 of certificates and keys), a description for people. Its own DER reader
//!   reads the plain version 3 form; x509-parser reads the rest and gives the errors; what
//!   GnuTLS refuses to import, and so libvirt, is refused. [`crl`] does the same for a
//!   [`Crl`], checked with webpki when it is loaded.
//! - [`dn`]: libvirt's DN string (GnuTLS's compatibility format), byte-identical to
//!   `virt-pki-query-dn`.
//! - [`locations`]: libvirt's system, user and `pkipath` files with their fallbacks, QEMU's
//!   x509 directory, the proposal's tree ([`locations::Origin`] says which one a file is).
//! - [`context`]: the credential [`Context`]: all-or-nothing additions, default loading that
//!   reports where each item came from ([`LoadReport`]).
//!
//! ## Deciding on a connection
//!
//! - [`chain`] and [`profile`]: chain building by rustls-webpki, plus the RFC 5280 profile
//!   rules webpki leaves aside; [`revocation`] answers "not revoked" from a CRL webpki has
//!   already verified, so a long CRL's signature is not checked on every connection, and
//!   finds revoked certificates that no path was built for (a pinned leaf).
//! - [`names`]: host names: IP literals against IP SANs only, DNS names against DNS SANs, the
//!   Common Name only without any DNS or IP SAN; the first of several names that matches.
//! - [`verify`]: server and client verification ([`Context::verify_server`],
//!   [`Context::verify_client`]), asking the validator, pinning.
//! - [`known`]: the known-servers store: a PEM file with `# host` lines (`known/format.rs`),
//!   locked and written atomically ([`KnownServers`], `known/file_store.rs`), in memory
//!   ([`MemoryKnownServers`], `known/memory.rs`); [`KnownServersStore`] for other back ends.
//! - [`dn_match`]: `tls_allowed_dn_list` matching ([`AllowedDnList`]) with GLib's
//!   `g_pattern_match_simple` rules, compiled for long lists.
//! - [`tls`] and [`session`]: rustls `ClientConfig` and `ServerConfig` built from a context
//!   (the provider passed explicitly, never installed for the process), blocking sessions ([`session::Session`]) with
//!   libvirt's 0x01 byte. Only close_notify ends a stream: a TCP close without it is a TLS
//!   error, since it could cut a message short.
//! - [`vnc`]: a VNC viewer's RFB 3.8 and VeNCrypt handshake up to the TLS switch (x509
//!   sub-types only), over the viewer's own socket; a [`session::Session`] then runs on the
//!   same stream, and [`vnc::after_tls`] reads the SecurityResult that tells acceptance.
//!
//! ## Checks that report findings
//!
//! - [`sanity`]: libvirt's load-time checks as [`Finding`]s (severity, file, [`Rule`],
//!   libvirt's message, a fix), gathered in a [`Report`] ([`Context::check`]).
//! - [`expiry`]: every certificate and CRL of a set of files (libvirt's, a CA directory) with
//!   its role and days left, soonest first: `virtpki expiry`'s list.
//! - [`dn_lint`]: what is wrong with `tls_allowed_dn_list` patterns ([`dn_lint::DnFinding`]):
//!   spaces after commas, RFC 4514 order, attribute names libvirt does not print, an empty
//!   list.
//! - [`daemon_conf`]: `libvirtd.conf` read with libvirt's grammar (virconf.c), its TLS
//!   settings with line numbers ([`daemon_conf::TlsSettings`]); [`daemon_conf::audit()`]:
//!   what makes libvirtd refuse to start, weakens it silently or has no effect, with fixes.
//! - [`file_audit`]: owners and modes of the credential files against virt-pki-validate's
//!   rules, as a pure function of the file's metadata ([`file_audit::audit()`]); the modes
//!   `virtpki install` gives files come from the same place ([`file_audit::mode_for`]).
//!
//! ## Files, text and the machine
//!
//! - [`fsutil`]: the one file layer. A file is read through one descriptor (regular files
//!   only, `O_NONBLOCK`, optionally `O_NOFOLLOW`, a size cap: [`fsutil::read_regular`]);
//!   atomic replace, mode and owner fixes, backups, directories with exact modes and the
//!   lock ([`fsutil::Dir`], [`fsutil::Lock`]) all work relative to a directory's descriptor
//!   and never through a link.
//! - [`display`]: text from certificates made safe to show. Control characters (NUL, ESC,
//!   CR, LF, DEL, C1), bidi overrides, line separators and characters that show as nothing
//!   (zero-width, BOM, soft hyphen, tags) are escaped ([`display::escape`]) in descriptions,
//!   every error message and the CLI's `show` and `probe`; a SAN value with a comma, space,
//!   quote, backslash or non-ASCII character is shown in quotes (`DNS:"a, DNS:b"` is one
//!   name); a file name in a suggested command (`chmod o-rwx PATH`) is shell-quoted
//!   ([`display::shell_path`]). The DN string for matching and `virtpki dn` stay
//!   byte-identical to libvirt.
//! - [`machine_names`]: this machine's names (host name, short name, canonical name) for
//!   checking its server certificate.
//! - [`crypto`]: the one crypto provider, ring ([`crypto::provider`]), and the SHA-256 and
//!   random bytes everything else uses; the only module that names ring's API.
//! - `generate` (cargo feature `generate`, on by default): issuing a CA, server and client
//!   certificates and CRLs as libvirt's certtool templates do (rcgen; RSA keys by the `rsa`
//!   crate). A program that only verifies builds without it (`default-features = false`),
//!   and nothing outside it imports it.
//!
//! ## Shared types
//!
//! The types these modules share have homes of their own, so that no module needs another
//! only for a type and the modules import each other without a circle (a test,
//! `tests/suite/module_graph.rs`, keeps it so): [`credentials`] (what a context holds:
//! [`Credentials`], [`Identity`]), [`role`] and [`data_type`] (the C API's roles and kinds of
//! data: [`Role`], [`CertDataType`]), [`severity`] (of every finding: [`Severity`]),
//! [`subject`] (libvirt's DN form, apart from the issuer `generate`, which nothing on the
//! verification side imports), [`validator`] (the application's callback:
//! [`CertificateValidator`]), [`source`] (where data came from: [`Source`]), [`error`]
//! ([`Error`], [`ErrorKind`], whose values are the C error codes) and [`timefmt`] (the time
//! unit).
//!
//! Enums that will grow ([`ErrorKind`], [`Rule`], [`dn_lint::DnFinding`], [`TrustStatus`],
//! [`Acceptance`], [`cert::KeyAlgorithm`], [`subject::Attribute`], `generate::KeyType`,
//! [`locations::Origin`], [`file_audit::FileKind`]) are `#[non_exhaustive]`: a `match` on
//! one outside this crate needs a wildcard arm, and that arm should fail closed. Enums whose
//! set is fixed by the C contract ([`CertDataType`], [`ValidatorAnswer`]) or by their logic
//! ([`Role`], [`Severity`], [`cert::Validity`]) are not.
//!
//! ## The C library and the command-line tool
//!
//! The `ffi` module is the C ABI of `../shared/API.md`, hidden from these documents because no
//! Rust code uses it: thin shims, a panic boundary that prints nothing (a caught panic is
//! `VIR_PKI_ERR_INTERNAL`; panics elsewhere in the process, and in the application's own
//! validator and free callbacks, still reach the application's hook), errors kept per thread.
//!
//! The `virtpki` command (the `cli/` crate) has a module per subcommand (`issue`, `install`,
//! `validate/`, `inspect`, `known`, `probe`), `files` (the CLI's words around [`fsutil`]:
//! atomic writes with final modes and owners, backups, directories) and `ui` (exit codes,
//! colour, JSON); `validate/` gathers paths, calls the library's audits and prints their
//! findings.
//!
//! # Verification in short
//!
//! ## Server (client role)
//!
//! In order ([`Context::verify_server`]):
//!
//! 1. [`VerifyFlags::NO_VERIFY`] accepts.
//! 2. Otherwise the chain is validated: rustls-webpki checks the chain, signatures, times and
//!    CRLs; virtpki adds the CA's own validity, libvirt's key-usage rule, the server purpose,
//!    the RFC 5280 profile rules and the host name.
//! 3. A failure may be overridden only when it is a genuine unknown issuer (no loaded CA
//!    issued the chain) or a host name mismatch:
//!    - a known-servers entry bound to this host (and port) overrides either;
//!    - a certificate trusted for any host ([`CertDataType::ServerTrusted`], a `# host *`
//!      store entry or a plain bundle's certificate) overrides an unknown issuer only, so
//!      holding one pinned server's key does not make its holder every host;
//!    - with [`ContextFlags::PROMPT_UNVERIFIED`] the validator is asked about either (trust
//!      on first use).
//!
//!    Before any override, every certificate the peer sent is checked for its validity period
//!    and against the loaded CRLs (every list of its issuer's name counts there, verifiable or
//!    not: the issuer is often not at hand), and the server certificate against its own
//!    profile rules.
//! 4. A certificate that passed is shown to the validator, if one is set
//!    ([`CertificateValidator`]); "accept always" ([`ValidatorAnswer::AcceptAlways`]) records
//!    it in the known-servers store. [`ServerVerdict::acceptance`] says which way it was
//!    accepted.
//!
//! Never accepted: expired, not-yet-valid, revoked and badly signed certificates, and chains
//! rustls-webpki gives up on (its signature and path-building budgets). A peer may send at
//! most [`verify::MAX_PEER_CERTIFICATES`] (16) certificates, GnuTLS's default verification
//! depth, which it applies the same way.
//!
//! Names: the Common Name stands for the host only in a certificate without DNS or IP SAN and
//! with exactly one Common Name attribute (readable as text or not). An IPv6 zone
//! (`fe80::1%eth0`; letters, digits and `-._~`) is ignored when matching the certificate (it
//! cannot name one) but kept in the known-servers key. Of several CA certificates with one
//! name and key (a root and its renewal), the one valid now anchors the path, in either
//! order.
//!
//! ## Client (daemon role)
//!
//! [`Context::verify_client`]: chain, CRLs, times, the peer must not be a CA, key usage and
//! purpose with libvirt's critical-only rule, then `tls_allowed_dn_list` ([`AllowedDnList`])
//! with GLib's `*`/`?` matching on libvirt's DN string.
//!
//! ## Revocation
//!
//! Revocation behaves like GnuTLS: a CA with no CRL loaded means "not revoked"; a loaded CRL
//! is enforced for every certificate of the chain, and still applied after its nextUpdate (the
//! sanity check warns that it is stale). CRLs without a CRL number, or with a critical one,
//! are refused when loaded, as are version 1 CRLs.

pub mod cert;
pub mod chain;
pub mod context;
pub mod credentials;
pub mod crl;
pub mod crypto;
pub mod daemon_conf;
pub mod data_type;
mod der;
pub mod display;
pub mod dn;
pub mod dn_lint;
pub mod dn_match;
pub mod error;
pub mod expiry;
#[doc(hidden)]
pub mod ffi;
pub mod file_audit;
pub mod fsutil;
#[cfg(feature = "generate")]
pub mod generate;
pub mod known;
pub mod locations;
pub mod machine_names;
pub mod names;
pub mod pem;
pub mod profile;
pub mod revocation;
pub mod role;
pub mod sanity;
pub mod session;
pub mod severity;
pub mod source;
pub mod subject;
#[cfg(test)]
mod test_rng;
pub mod timefmt;
pub mod tls;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod validator;
pub mod verify;
pub mod vnc;

pub use cert::Certificate;
pub use context::{Context, ContextFlags, LoadReport};
pub use credentials::{Credentials, Identity};
pub use crl::Crl;
pub use data_type::CertDataType;
pub use dn_match::AllowedDnList;
pub use error::{Error, ErrorKind, Result};
pub use known::{KnownServer, KnownServers, KnownServersStore, MemoryKnownServers, TrustStatus};
pub use pem::PrivateKey;
pub use role::Role;
pub use sanity::{Finding, Report, Rule};
pub use severity::Severity;
pub use source::Source;
pub use validator::{CertificateValidator, ValidateFlags, ValidationRequest, ValidatorAnswer};
pub use verify::{Acceptance, ClientVerdict, ServerVerdict, VerifyFlags};
