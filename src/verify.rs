//! Server and client verification: the decision procedure of the C API contract.
//!
//! rustls-webpki builds and checks the chain (signatures, validity of the leaf and
//! intermediates, CRLs, basic constraints) and matches DNS and IP names against the SANs. On
//! top of it this module adds what libvirt users need:
//!
//! - the validity of the trust anchor, which webpki does not check (chain.rs refuses a path
//!   through an anchor not valid now, so webpki goes on to a renewed root of the same name
//!   and key, wherever it is in the bundle);
//! - the Common Name fallback for certificates with no DNS or IP SAN at all (RFC 6125 §6.4.4,
//!   as GnuTLS does; libvirt's documentation issued CN-only certificates for years), unless
//!   the context has [`ContextFlags::REQUIRE_SAN`];
//! - libvirt's key usage rule (digitalSignature, and keyEncipherment for RSA keys, required
//!   only when the extension is critical);
//! - the purpose: a server's extended key usage, when present, must allow serverAuth (or any
//!   purpose); a client's must allow clientAuth when the extension is critical (libvirt's rule;
//!   a non-critical one only earns a warning at load time);
//! - pinned certificates, the known-servers store and the application's validator, which may
//!   override some failures and never others: the rule is the table `OVERRIDES` in this
//!   module, written once;
//! - the DN allow-list of a daemon.
//!
//! A peer sends at most [`MAX_PEER_CERTIFICATES`] certificates. A certificate trusted for any
//! host (`VIR_CONNECT_CERT_SERVER_TRUSTED`, an any-host known-servers entry) overrides an
//! unknown issuer only, never a host name mismatch: else whoever holds one pinned server's key
//! could impersonate every host. Before any override, every certificate the peer sent is
//! checked for its validity period and against the loaded CRLs, and a server certificate
//! against its own profile rules, since no path means neither webpki nor the path callback
//! checked them.
//!
//! Revocation follows GnuTLS: a CA without a CRL means "not revoked"; a loaded CRL is enforced
//! for every certificate of the chain, and still applied after its nextUpdate time (libvirt does
//! not refuse a stale CRL either; the sanity check warns about it). Of several CRLs of one CA,
//! the newest (highest CRL number) applies, as RFC 5280 has it; GnuTLS consults them all, which
//! differs only when a newer list no longer names a certificate (a hold released).

use std::sync::{Arc, Mutex};

use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter};

use crate::cert::{Certificate, KeyUsage, Validity};
use crate::chain;
use crate::context::{Context, ContextFlags};
use crate::credentials::Credentials;
use crate::error::{Error, ErrorKind, Result};
use crate::known::{KnownServersStore, TrustStatus};
use crate::names;
use crate::profile::{self, Rules};
use crate::revocation;
use crate::role::Role;
use crate::timefmt::UnixSeconds;
use crate::validator::{CertificateValidator, ValidateFlags, ValidationRequest, ValidatorAnswer};

/// Flags of the verify functions; the values are the C API's `VIR_PKI_VERIFY_*`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyFlags(u32);

impl VerifyFlags {
    /// libvirt's `no_verify=1` / `tls_no_verify_certificate=1`: never fail on certificate checks.
    pub const NO_VERIFY: VerifyFlags = VerifyFlags(1 << 0);

    /// The flags for C bits, or `None` if an unknown bit is set.
    pub fn from_bits(bits: u32) -> Option<VerifyFlags> {
        (bits & !1 == 0).then_some(VerifyFlags(bits))
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: VerifyFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// The most certificates a peer may send, leaf included: GnuTLS's default verification depth
/// (`DEFAULT_MAX_VERIFY_DEPTH` in its `gnutls_int.h`), which it applies to the peer's list
/// before verifying (`GNUTLS_E_CONSTRAINT_ERROR`), so no libvirt peer sends more. It bounds
/// the work a peer can cause; webpki's own budget is the second line.
pub const MAX_PEER_CERTIFICATES: usize = 16;

/// What a verification failure is, as far as overriding goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// No loaded CA issued the certificate (or none is loaded): [`chain::Unverified::NoIssuer`].
    Issuer,
    /// The certificate does not name the host.
    HostName,
    /// Everything else: expired, revoked, bad signature, usage, a chain webpki gave up on,
    /// anything not classified. Never overridden.
    Final,
}

/// Who may override a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overrider {
    /// This exact certificate is recorded for this host (and port) in the known-servers store.
    HostBound,
    /// This exact certificate is trusted for any host: pinned with
    /// `VIR_CONNECT_CERT_SERVER_TRUSTED`, or an any-host known-servers entry.
    AnyHost,
    /// The application's validator, asked with `PROMPT_UNVERIFIED`.
    Validator,
}

/// The rule "what may be overridden, by whom" (the C API's "Server verification, in order",
/// step 3). A verification is overridden only when every failure's class lists the overrider.
const OVERRIDES: [(Class, &[Overrider]); 3] = [
    (
        Class::Issuer,
        &[
            Overrider::HostBound,
            Overrider::AnyHost,
            Overrider::Validator,
        ],
    ),
    (
        Class::HostName,
        &[Overrider::HostBound, Overrider::Validator],
    ),
    (Class::Final, &[]),
];

/// Whether `by` may override every one of `failures`.
fn may_override(failures: &[Failure], by: Overrider) -> bool {
    failures.iter().all(|f| {
        OVERRIDES
            .iter()
            .any(|(class, who)| *class == f.class && who.contains(&by))
    })
}

/// One reason a verification failed, with its class.
struct Failure {
    class: Class,
    error: Error,
}

impl Failure {
    fn new(class: Class, error: Error) -> Failure {
        Failure { class, error }
    }

    fn final_(error: Error) -> Failure {
        Failure::new(Class::Final, error)
    }
}

/// What made a server certificate acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Acceptance {
    /// It passed validation and no validator was set.
    Verified,
    /// It failed only on issuer or name, and this exact certificate is trusted: for this host
    /// (either failure), or for any host (an unknown issuer only).
    Pinned,
    /// The validator accepted it for this time.
    ValidatorOnce,
    /// The validator accepted it and it was recorded in the known-servers store.
    ValidatorAlways,
    /// Verification was switched off (`NO_VERIFY`).
    NotVerified,
}

/// The outcome of an accepted server verification.
#[derive(Clone, Debug)]
pub struct ServerVerdict {
    /// Why it was accepted.
    pub acceptance: Acceptance,
    /// The known-servers status before any recording.
    pub trust: TrustStatus,
    /// Why CA validation failed, when the certificate was accepted anyway.
    pub failure: Option<String>,
}

/// What a client certificate verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientVerdict {
    /// The client's DN in libvirt's format.
    pub dn: String,
    /// Why it would have failed, when `NO_VERIFY` let it through.
    pub failure: Option<String>,
}

/// Requires serverAuth (or anyExtendedKeyUsage) whenever an EKU extension is present.
/// webpki calls it with no purposes when the extension is absent.
struct ServerPurpose;

impl ExtendedKeyUsageValidator for ServerPurpose {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> std::result::Result<(), webpki::Error> {
        const SERVER_AUTH: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 1];
        const ANY: &[u8] = &[0x55, 0x1d, 0x25, 0x00];
        let wanted = [KeyPurposeId::new(SERVER_AUTH), KeyPurposeId::new(ANY)];
        let mut present = false;
        for purpose in iter {
            present = true;
            if wanted.contains(&purpose?) {
                return Ok(());
            }
        }
        if present {
            Err(webpki::Error::RequiredEkuNotFoundContext(
                webpki::RequiredEkuNotFoundContext {
                    required: webpki::KeyUsage::server_auth(),
                    present: Vec::new(),
                },
            ))
        } else {
            Ok(())
        }
    }
}

impl Context {
    /// Client role: is this server, presenting `chain` (leaf first), the host we wanted?
    ///
    /// `port` keys the known-servers entry (`None`: any port). Follows "Server verification,
    /// in order" of the C API contract. A chain longer than [`MAX_PEER_CERTIFICATES`] is
    /// refused ([`ErrorKind::TooLarge`]) before anything else, [`VerifyFlags::NO_VERIFY`] too.
    pub fn verify_server(
        &self,
        hostname: &str,
        port: Option<u16>,
        chain: &[Certificate],
        flags: VerifyFlags,
    ) -> Result<ServerVerdict> {
        self.verify_server_with(&self.credentials(), hostname, port, chain, flags)
    }

    /// [`verify_server`](Self::verify_server) against the snapshot `creds`: a handshake
    /// verifies against the snapshot its own identity came from, never half of each when a
    /// [`reload`](Self::reload) swaps them in between.
    pub(crate) fn verify_server_with(
        &self,
        creds: &Credentials,
        hostname: &str,
        port: Option<u16>,
        chain: &[Certificate],
        flags: VerifyFlags,
    ) -> Result<ServerVerdict> {
        let leaf = chain
            .first()
            .ok_or_else(|| Error::new(ErrorKind::InvalidArg, "the server sent no certificate"))?;
        check_chain_length(chain)?;
        if hostname.is_empty() {
            return Err(Error::new(ErrorKind::InvalidArg, "an empty host name"));
        }
        let (trust, stored) = self.trust_status(creds, hostname, port, leaf)?;
        if flags.contains(VerifyFlags::NO_VERIFY) {
            return Ok(ServerVerdict {
                acceptance: Acceptance::NotVerified,
                trust,
                failure: None,
            });
        }
        let mut failures = validate_server(creds, hostname, chain, self.now(), self.flags());
        let trusted_by = match trust {
            TrustStatus::Trusted => Some(Overrider::HostBound),
            TrustStatus::TrustedAnyHost => Some(Overrider::AnyHost),
            _ => None,
        };
        let prompt = self.flags().contains(ContextFlags::PROMPT_UNVERIFIED);
        if !failures.is_empty() {
            // No path, or not the whole chain on it: what webpki did not check is checked
            // before anything may accept it anyway (and named first when it fails), and the
            // server profile, which only ran on paths to a loaded CA.
            let mut checked = check_peer_certificates(creds, chain, self.now());
            checked.extend(profile::check_server_leaf(leaf).err().map(Failure::final_));
            checked.retain(|c| !failures.iter().any(|f| f.error.kind() == c.error.kind()));
            checked.append(&mut failures);
            failures = checked;
        }
        // Told to the validator: the certificate is trusted for this host, i.e. its trust
        // covers any host name failure (by the table: a host entry does, any-host trust not).
        let trusted = trusted_by.is_some_and(|by| {
            failures
                .iter()
                .filter(|f| f.class == Class::HostName)
                .all(|f| may_override(std::slice::from_ref(f), by))
        });
        // From the store's own answer: any-host trust in the leaf must not hide that this
        // host was trusted with another certificate.
        let mut validate_flags = match stored {
            TrustStatus::Changed { same_key: true } => {
                ValidateFlags::CHANGED | ValidateFlags::SAME_KEY
            }
            TrustStatus::Changed { same_key: false } => ValidateFlags::CHANGED,
            _ => ValidateFlags::default(),
        };
        let failure = combine(&failures, leaf, trusted_by);
        if let Some(failure) = failure.as_ref() {
            match trusted_by {
                Some(by) if may_override(&failures, by) => {
                    return Ok(ServerVerdict {
                        acceptance: Acceptance::Pinned,
                        trust,
                        failure: Some(failure.message().to_owned()),
                    })
                }
                _ => {}
            }
            if !prompt || !may_override(&failures, Overrider::Validator) {
                return Err(failure.clone_error());
            }
            validate_flags = validate_flags | ValidateFlags::UNVERIFIED;
        }
        let Some(validator) = self.validator() else {
            return match failure {
                Some(f) => Err(f),
                None => Ok(ServerVerdict {
                    acceptance: Acceptance::Verified,
                    trust,
                    failure: None,
                }),
            };
        };
        let answer = validator.validate(&ValidationRequest {
            hostname,
            port,
            certificate: leaf,
            trusted,
            flags: validate_flags,
            failure: failure.as_ref(),
        });
        let acceptance = self.apply_answer(answer, hostname, port, leaf, failure.as_ref())?;
        Ok(ServerVerdict {
            acceptance,
            trust,
            failure: failure.map(|f| f.message().to_owned()),
        })
    }

    /// Server role: is this client, presenting `chain` (leaf first), allowed in? A chain longer
    /// than [`MAX_PEER_CERTIFICATES`] is refused first, as for a server.
    pub fn verify_client(
        &self,
        chain: &[Certificate],
        flags: VerifyFlags,
    ) -> Result<ClientVerdict> {
        self.verify_client_with(&self.credentials(), chain, flags)
    }

    /// [`verify_client`](Self::verify_client) against the snapshot `creds` (see
    /// [`verify_server_with`](Self::verify_server_with)).
    pub(crate) fn verify_client_with(
        &self,
        creds: &Credentials,
        chain: &[Certificate],
        flags: VerifyFlags,
    ) -> Result<ClientVerdict> {
        let leaf = chain.first().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArg,
                "No certificate was presented by the client",
            )
        })?;
        check_chain_length(chain)?;
        let now = self.now();
        let (mut failures, _) = validate_chain(creds, chain, None, now, Role::Client);
        failures.extend(check_client_purpose(leaf).map(Failure::final_));
        if failures.is_empty() {
            if let Some(list) = self.allowed_dn_list() {
                if !list.is_allowed(leaf.subject()) {
                    failures.push(Failure::final_(Error::new(
                        ErrorKind::DnNotAllowed,
                        format!(
                            "Client's Distinguished Name is not on the list of allowed clients \
                             (tls_allowed_dn_list).  Use 'virt-pki-query-dn clientcert.pem' to \
                             view the Distinguished Name field in the client certificate, or run \
                             this daemon with --verbose option. (DN: {})",
                            leaf.subject()
                        ),
                    )));
                }
            }
        }
        match combine(&failures, leaf, None) {
            None => Ok(ClientVerdict {
                dn: leaf.subject().to_owned(),
                failure: None,
            }),
            Some(f) if flags.contains(VerifyFlags::NO_VERIFY) => Ok(ClientVerdict {
                dn: leaf.subject().to_owned(),
                failure: Some(f.message().to_owned()),
            }),
            Some(f) => Err(f),
        }
    }

    /// The trust `leaf` has for this host (pins included), and the known-servers store's own
    /// answer, which alone says whether the host was known with another certificate.
    fn trust_status(
        &self,
        creds: &Credentials,
        hostname: &str,
        port: Option<u16>,
        leaf: &Certificate,
    ) -> Result<(TrustStatus, TrustStatus)> {
        let stored = match self.known_servers() {
            Some(store) => store.lookup(hostname, port, leaf.der())?,
            None => TrustStatus::Unknown,
        };
        // Pinned data (`VIR_CONNECT_CERT_SERVER_TRUSTED`) names no host: any-host trust,
        // unless the store binds the certificate to this host, or records this host with
        // another certificate (a change is never hidden, as in the store itself).
        let pinned = creds
            .trusted_servers
            .iter()
            .any(|t| t.der().as_ref() == leaf.der().as_ref());
        let trust = match stored {
            TrustStatus::Trusted | TrustStatus::Changed { .. } => stored,
            _ if pinned => TrustStatus::TrustedAnyHost,
            other => other,
        };
        Ok((trust, stored))
    }

    fn apply_answer(
        &self,
        answer: ValidatorAnswer,
        hostname: &str,
        port: Option<u16>,
        leaf: &Certificate,
        failure: Option<&Error>,
    ) -> Result<Acceptance> {
        match answer {
            ValidatorAnswer::Reject => {
                let why = failure
                    .map(|f| format!(" (it had failed validation: {})", f.message()))
                    .unwrap_or_default();
                Err(Error::new(
                    ErrorKind::Rejected,
                    format!(
                        "the application rejected the certificate of {hostname} ({}){why}",
                        leaf.subject()
                    ),
                ))
            }
            ValidatorAnswer::AcceptOnce => Ok(Acceptance::ValidatorOnce),
            ValidatorAnswer::AcceptAlways => {
                if record_always(self.known_servers().as_deref(), hostname, port, leaf.der())? {
                    Ok(Acceptance::ValidatorAlways)
                } else {
                    // Nowhere to record it: accepted for this time only.
                    Ok(Acceptance::ValidatorOnce)
                }
            }
        }
    }
}

/// ACCEPT_ALWAYS's recording, the one home of it: the leaf certificate `leaf_der` for
/// (`hostname`, `port`) in the known-servers `store`, replacing that host and port's entry.
/// `Ok(false)` when no store is set (nothing recorded).
fn record_always(
    store: Option<&dyn KnownServersStore>,
    hostname: &str,
    port: Option<u16>,
    leaf_der: &[u8],
) -> Result<bool> {
    match store {
        Some(store) => {
            store.add(hostname, port, leaf_der)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// What a client handshake's validator was asked about and accepted: kept by the session
/// (filled by the TLS layer's verifier) so that an answer given after the handshake (a
/// coroutine validator of virtpki.aio, which the library was answered "accept once" for) can
/// still be recorded as ACCEPT_ALWAYS, and nothing else: no other host, port, certificate or
/// known-servers store.
#[derive(Clone, Debug, Default)]
pub(crate) struct AskedNote(Arc<Mutex<Option<Asked>>>);

#[derive(Clone)]
struct Asked {
    ctx: Arc<Context>,
    hostname: String,
    port: Option<u16>,
    /// Only the DER: a session keeps this for its whole life.
    leaf_der: Vec<u8>,
    /// The store the validator's question came from (what it was told: CHANGED or not).
    store: Option<Arc<dyn KnownServersStore>>,
}

impl std::fmt::Debug for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Asked")
            .field("hostname", &self.hostname)
            .field("port", &self.port)
            .field("store", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl AskedNote {
    /// Notes a verdict of `ctx` on `leaf` for (`hostname`, `port`), given with the
    /// known-servers `store` the context had before it verified: kept when the validator
    /// accepted it; any other verdict (verified without a validator, pinned, not verified)
    /// clears the note, since the validator was not asked.
    pub(crate) fn note(
        &self,
        ctx: &Arc<Context>,
        store: Option<Arc<dyn KnownServersStore>>,
        hostname: &str,
        port: Option<u16>,
        leaf: &Certificate,
        acceptance: Acceptance,
    ) {
        let asked = matches!(
            acceptance,
            Acceptance::ValidatorOnce | Acceptance::ValidatorAlways
        )
        .then(|| Asked {
            ctx: Arc::clone(ctx),
            hostname: hostname.to_owned(),
            port,
            leaf_der: leaf.der().to_vec(),
            store,
        });
        // A poisoned note stays empty for a reader: nothing can be recorded from it.
        if let Ok(mut slot) = self.0.lock() {
            *slot = asked;
        }
    }

    /// Records what the validator accepted as ACCEPT_ALWAYS does ([`record_always`]: same
    /// store, same replacement, same errors); an error ([`ErrorKind::InvalidArg`]) when it was
    /// not asked, when no known-servers store is set (an answer of ACCEPT_ALWAYS inside the
    /// handshake is then accepted once, unrecorded), or when the context's store is not the
    /// one the validator was asked against (set or replaced since: another store may hold
    /// another certificate for the host, which the validator was not warned of).
    pub(crate) fn record(&self) -> Result<()> {
        let asked = self
            .0
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidArg,
                    "nothing to record: the certificate validator was not asked about the \
                     server's certificate in this session's handshake (no validator, a pinned \
                     certificate, or a refused one)",
                )
            })?;
        let Asked {
            ctx,
            hostname,
            port,
            leaf_der,
            store,
        } = asked;
        let current = ctx.known_servers();
        let same = match (&store, &current) {
            (Some(then), Some(now)) => Arc::ptr_eq(then, now),
            (None, None) => true,
            _ => false,
        };
        if !same {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "the certificate of {hostname} is not recorded: the context's known-servers \
                     store was set or replaced after the certificate validator was asked about \
                     it (the validator was told what the earlier store knew)"
                ),
            ));
        }
        if record_always(current.as_deref(), &hostname, port, &leaf_der)? {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "the certificate of {hostname} cannot be recorded: the context has no \
                     known-servers store (virPKIContextSetKnownServersFile)"
                ),
            ))
        }
    }
}

/// Every reason the server's chain fails validation for `hostname`.
fn validate_server(
    creds: &Credentials,
    hostname: &str,
    chain: &[Certificate],
    now: UnixSeconds,
    flags: ContextFlags,
) -> Vec<Failure> {
    let leaf = &chain[0];
    // Parsed once for the path and the name (each parses it again itself if this fails, and
    // says why).
    let parsed = EndEntityCert::try_from(leaf.der()).ok();
    let (mut failures, path) = validate_chain(creds, chain, parsed.as_ref(), now, Role::Server);
    let cn_fallback = !flags.contains(ContextFlags::REQUIRE_SAN);
    match names::check_parsed(parsed.as_ref(), leaf, hostname, cn_fallback) {
        Err(e) if e.kind() == ErrorKind::HostnameMismatch => {
            failures.push(Failure::new(Class::HostName, e))
        }
        Err(e) => failures.push(Failure::final_(e)),
        Ok(names::NameMatch::CommonName) => {
            // Name constraints bind SANs; a CA constrained to some names must not vouch for
            // another one through a Common Name, so the fallback is off under such a CA.
            let constrained = chain[1..].iter().any(Certificate::has_name_constraints)
                || path.is_some_and(|p| {
                    p.ca_intermediates
                        .iter()
                        .chain([&p.anchor])
                        .any(|i| creds.ca_certs[*i].has_name_constraints())
                });
            if constrained {
                failures.push(Failure::new(
                    Class::HostName,
                    Error::new(
                        ErrorKind::HostnameMismatch,
                        format!(
                            "The certificate names '{hostname}' only in its Common Name, and a \
                             CA of its chain has name constraints, which apply to subject \
                             alternative names: the certificate needs a DNS SAN."
                        ),
                    ),
                ));
            }
        }
        Ok(names::NameMatch::SubjectAltName) => {}
    }
    failures
}

/// Refuses a peer chain longer than [`MAX_PEER_CERTIFICATES`], before any work on it.
fn check_chain_length(chain: &[Certificate]) -> Result<()> {
    if chain.len() > MAX_PEER_CERTIFICATES {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "the peer sent {} certificates; at most {MAX_PEER_CERTIFICATES} are accepted \
                 (GnuTLS's verification depth), a libvirt peer sends its certificate and its \
                 intermediate CAs",
                chain.len()
            ),
        ));
    }
    Ok(())
}

/// What must hold before a failed verification may be overridden: every certificate the peer
/// sent is within its validity period and not revoked by a loaded CRL. The leaf's own time is
/// already among the failures. Revocation comes first, the most important news.
fn check_peer_certificates(
    creds: &Credentials,
    chain: &[Certificate],
    now: UnixSeconds,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    if let Some(revoked) = revocation::revoked_without_path(chain, &creds.crls) {
        let whose = if std::ptr::eq(revoked, &chain[0]) {
            "The certificate".to_owned()
        } else {
            format!("The certificate {} the peer sent", revoked.subject())
        };
        failures.push(Failure::final_(Error::new(
            ErrorKind::Revoked,
            format!("{whose} has been revoked (a loaded CRL of its issuer lists it)."),
        )));
    }
    for cert in &chain[1..] {
        let (kind, verb) = match cert.validity_at(now) {
            Validity::Valid => continue,
            Validity::Expired => (ErrorKind::Expired, "has expired"),
            Validity::NotYetValid => (ErrorKind::NotYetValid, "is not yet active"),
        };
        failures.push(Failure::final_(Error::new(
            kind,
            format!(
                "The certificate {} that the peer sent along with its own {verb}.",
                cert.subject()
            ),
        )));
    }
    failures
}

/// Chain, times (leaf and every CA used), revocation, basic constraints, key usage and, for a
/// server, purpose; with the path found, if one was. chain::verify refuses a path through a
/// CA certificate that is not valid now, so every CA on the path found is.
fn validate_chain(
    creds: &Credentials,
    chain: &[Certificate],
    parsed_leaf: Option<&EndEntityCert<'_>>,
    now: UnixSeconds,
    role: Role,
) -> (Vec<Failure>, Option<chain::VerifiedChain>) {
    let leaf = &chain[0];
    let mut failures = Vec::new();
    let mut verified = None;
    match leaf.validity_at(now) {
        Validity::Valid => {}
        Validity::Expired => failures.push(Failure::final_(Error::new(
            ErrorKind::Expired,
            "The certificate has expired.",
        ))),
        Validity::NotYetValid => failures.push(Failure::final_(Error::new(
            ErrorKind::NotYetValid,
            "The certificate is not yet active.",
        ))),
    }
    let result = match role {
        Role::Server => chain::verify_path_of(
            parsed_leaf,
            chain,
            &creds.ca_certs,
            &creds.crls,
            now,
            ServerPurpose,
            Some(Rules { leaf: true }),
        ),
        Role::Client => chain::verify_path_of(
            parsed_leaf,
            chain,
            &creds.ca_certs,
            &creds.crls,
            now,
            chain::AnyPurpose,
            Some(Rules { leaf: false }),
        ),
    };
    match result {
        Ok(path) => verified = Some(path),
        Err(unverified) => {
            let failure = match unverified {
                chain::Unverified::NoIssuer(e) => Failure::new(Class::Issuer, e),
                chain::Unverified::Refused(e) => Failure::final_(e),
            };
            // The leaf's own time failure is already listed.
            if !failures
                .iter()
                .any(|f| f.error.kind() == failure.error.kind())
            {
                failures.push(failure);
            }
        }
    }
    if let Some(ku) = leaf.key_usage() {
        if ku.critical {
            let mut missing = Vec::new();
            if !ku.allows(KeyUsage::DIGITAL_SIGNATURE) {
                missing.push("digital signature");
            }
            if !ku.allows(KeyUsage::KEY_ENCIPHERMENT) && !leaf.key_algorithm().is_signature_only() {
                missing.push("key encipherment");
            }
            if !missing.is_empty() {
                failures.push(Failure::final_(Error::new(
                    ErrorKind::KeyUsage,
                    format!(
                        "The certificate's usage does not permit {}.",
                        missing.join(" or ")
                    ),
                )));
            }
        }
    }
    (failures, verified)
}

/// libvirt's client purpose rule: only a critical extension without clientAuth fails.
fn check_client_purpose(leaf: &Certificate) -> Option<Error> {
    let eku = leaf.extended_key_usage()?;
    (eku.critical && !eku.allows(Role::Client)).then(|| {
        Error::new(
            ErrorKind::Purpose,
            "The certificate's purpose does not allow use as a TLS client.",
        )
    })
}

impl Error {
    /// A copy with the same kind and message (the source is not kept).
    fn clone_error(&self) -> Error {
        Error::new(self.kind(), self.message())
    }
}

/// One error naming the certificate and every failure found. Its kind says why it was not
/// overridden: the first final failure's, else the first one `trusted_by` (the trust the
/// certificate has) cannot override, else the first one's.
fn combine(
    failures: &[Failure],
    leaf: &Certificate,
    trusted_by: Option<Overrider>,
) -> Option<Error> {
    let first = failures
        .iter()
        .find(|f| f.class == Class::Final)
        .or_else(|| {
            let by = trusted_by?;
            failures
                .iter()
                .find(|f| !may_override(std::slice::from_ref(f), by))
        })
        .or(failures.first())?;
    let mut reasons: Vec<&str> = failures.iter().map(|f| f.error.message()).collect();
    // Whoever pinned or recorded the certificate learns why that did not help.
    match trusted_by {
        Some(by) if !may_override(failures, by) => reasons.push(match (by, first.class) {
            (Overrider::AnyHost, Class::HostName) => {
                "It is trusted for any host (pinned or an any-host known-servers entry), which \
                 stands in for an unknown issuer only, never for a host name it does not carry."
            }
            _ => "It is pinned or recorded as known, which never overrides this failure.",
        }),
        _ => {}
    }
    Some(Error::new(
        first.error.kind(),
        format!(
            "certificate {} (issuer {}): {}",
            leaf.subject(),
            leaf.issuer(),
            reasons.join(" ")
        ),
    ))
}

/// The validator held by a context.
pub type SharedValidator = Arc<dyn CertificateValidator>;
