//! rustls configurations built from a context.
//!
//! The verifiers here hand the certificate decision to [`Context::verify_server`] and
//! [`Context::verify_client`] (rustls-webpki underneath, plus libvirt's rules), and the
//! handshake signatures to rustls' webpki-based functions, always. The crypto provider (ring)
//! is passed explicitly: the library never installs a process-wide default.
//!
//! Several identities of a role ([`Credentials::identities`]) are offered as GnuTLS offers
//! several loaded pairs, so that the same directory behaves the same in QEMU and here: a
//! server presents the first identity, in load order, whose key can sign with a scheme the
//! client offered (one whose certificate names the SNI host first, when the client sent one);
//! a client answers a CertificateRequest with the first identity whose key can sign with a
//! scheme the server allows and, when the server names CAs, that is issued under one of them
//! (none otherwise, as GnuTLS answers: a server naming other CAs would refuse them anyway, and
//! is not shown a certificate meant for another CA; it can still ask for each identity by
//! naming its CA, as with GnuTLS, so a client holding identities of several organisations
//! shows a server it trusts which ones it holds). With one identity nothing changes (rustls
//! sends it whatever the server names). When no identity fits, the session's error says why.
//!
//! A failed verification reaches rustls as `CertificateError::Other` carrying the library's
//! [`Error`], so that [`from_rustls`] can give the caller the precise kind back.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::cert::Certificate;
use crate::context::Context;
use crate::credentials::{Credentials, Identity};
use crate::error::{Error, ErrorKind, Result};
use crate::role::Role;
use crate::source::Source;
use crate::verify::{AskedNote, VerifyFlags};

/// A client configuration that verifies the server as `hostname` (port keys the known-servers
/// entry) and presents the context's client identity, if it has one.
pub fn client_config(
    ctx: &Arc<Context>,
    hostname: &str,
    port: Option<u16>,
    flags: VerifyFlags,
) -> Result<ClientConfig> {
    client_config_noted(ctx, hostname, port, flags).map(|(config, _)| config)
}

/// Why no identity was chosen in a handshake, for the session's error; empty with one
/// identity (rustls' own choice, unchanged).
pub(crate) type SelectionNote = Arc<Mutex<Option<String>>>;

/// [`client_config`], with the note its identity choice leaves.
pub(crate) fn client_config_noted(
    ctx: &Arc<Context>,
    hostname: &str,
    port: Option<u16>,
    flags: VerifyFlags,
) -> Result<(ClientConfig, SelectionNote)> {
    client_config_asked(ctx, hostname, port, flags, None)
}

/// [`client_config_noted`], whose verifier also fills `asked`, when given, with what the
/// validator accepted (for [`crate::session::SharedSession::record_peer`]; no other caller
/// reads it, so none is filled for them: no copy of the leaf nor hold on the context).
pub(crate) fn client_config_asked(
    ctx: &Arc<Context>,
    hostname: &str,
    port: Option<u16>,
    flags: VerifyFlags,
    asked: Option<AskedNote>,
) -> Result<(ClientConfig, SelectionNote)> {
    let note = SelectionNote::default();
    let provider = crate::crypto::provider();
    // One snapshot for the whole handshake: the identity presented and the trust the server
    // is verified against come from the same credentials, even if a reload swaps them.
    let creds = ctx.credentials();
    let verifier = Arc::new(ServerVerifier {
        ctx: Arc::clone(ctx),
        creds: Arc::clone(&creds),
        hostname: hostname.to_owned(),
        port,
        flags,
        algorithms: provider.signature_verification_algorithms,
        asked,
    });
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("protocol versions", e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&creds.client.chain, &creds.client.key) {
        (chain, None) if !chain.is_empty() => {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                "the client certificate is loaded but not its key",
            ))
        }
        _ if !creds.more_clients.is_empty() => builder.with_client_cert_resolver(Arc::new(
            IdentityResolver::new(&creds, Role::Client, &provider, &note)?,
        )),
        (chain, Some(key)) if !chain.is_empty() => builder
            .with_client_auth_cert(ders(chain), key.der().clone_key())
            .map_err(|e| identity_error(Role::Client, e))?,
        _ => builder.with_no_client_auth(),
    };
    // A configuration is built for each session, so a session or ticket kept for resumption
    // could never be used: it only held memory (make bench's memory report: an idle client
    // session held 29.7 KiB of heap with the cache, 11.8 without) and every handshake is full.
    config.resumption = rustls::client::Resumption::disabled();
    Ok((config, note))
}

/// A server configuration that presents the context's server identity and verifies clients
/// (a certificate is required unless `NO_VERIFY`), including the allowed-DN list.
pub fn server_config(ctx: &Arc<Context>, flags: VerifyFlags) -> Result<ServerConfig> {
    server_config_noted(ctx, flags).map(|(config, _)| config)
}

/// [`server_config`], with the note its identity choice leaves.
pub(crate) fn server_config_noted(
    ctx: &Arc<Context>,
    flags: VerifyFlags,
) -> Result<(ServerConfig, SelectionNote)> {
    let note = SelectionNote::default();
    let provider = crate::crypto::provider();
    let creds = ctx.credentials();
    let first = match (&creds.server.chain, &creds.server.key) {
        (chain, Some(key)) if !chain.is_empty() => Some((chain, key)),
        (chain, None) if chain.is_empty() && !creds.more_servers.is_empty() => None,
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                "a server session needs the server certificate and its key",
            ))
        }
    };
    let hints = creds
        .ca_certs
        .iter()
        .map(|ca| DistinguishedName::from(ca.subject_raw().to_vec()))
        .collect();
    let verifier = Arc::new(ClientVerifier {
        ctx: Arc::clone(ctx),
        creds: Arc::clone(&creds),
        flags,
        hints,
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("protocol versions", e))?
        .with_client_cert_verifier(verifier);
    let mut config = match first {
        Some((chain, key)) if creds.more_servers.is_empty() => builder
            .with_single_cert(ders(chain), key.der().clone_key())
            .map_err(|e| identity_error(Role::Server, e))?,
        _ => builder.with_cert_resolver(Arc::new(IdentityResolver::new(
            &creds,
            Role::Server,
            &provider,
            &note,
        )?)),
    };
    // No TLS 1.3 tickets: no configuration outlives its session, so none could be redeemed
    // (and a client would spend memory keeping them).
    config.send_tls13_tickets = 0;
    Ok((config, note))
}

/// The identities of one role as rustls keys, in load order, and the choice among them.
#[derive(Debug)]
struct IdentityResolver {
    role: Role,
    choices: Vec<Choice>,
    note: SelectionNote,
}

/// One identity as the resolver sees it.
#[derive(Debug)]
struct Choice {
    key: Arc<CertifiedKey>,
    leaf: Certificate,
    /// The issuers of its chain's certificates, as a server's CA hints name them.
    issuers: Vec<Vec<u8>>,
    /// Its file and key algorithm, for messages.
    name: String,
}

impl IdentityResolver {
    fn new(
        creds: &Credentials,
        role: Role,
        provider: &rustls::crypto::CryptoProvider,
        note: &SelectionNote,
    ) -> Result<IdentityResolver> {
        let choices = creds
            .identities(role)
            .enumerate()
            .map(|(index, identity)| choice(identity, index, role, provider))
            .collect::<Result<Vec<_>>>()?;
        Ok(IdentityResolver {
            role,
            choices,
            note: Arc::clone(note),
        })
    }

    /// The first identity whose key signs with one of `schemes` and that `prefer` accepts,
    /// else (with `fallback`) the first whose key signs with one of them; `None`, and the
    /// note says why, if there is none.
    fn pick(
        &self,
        schemes: &[SignatureScheme],
        prefer: impl Fn(&Choice) -> bool,
        fallback: bool,
    ) -> Option<Arc<CertifiedKey>> {
        let signs = |c: &&Choice| c.key.key.choose_scheme(schemes).is_some();
        let preferred = self.choices.iter().filter(signs).find(|c| prefer(c));
        let chosen = match preferred {
            None if fallback => self.choices.iter().find(signs),
            other => other,
        };
        if let Some(c) = chosen {
            return Some(Arc::clone(&c.key));
        }
        let names: Vec<&str> = self.choices.iter().map(|c| c.name.as_str()).collect();
        let text = if self.choices.iter().any(|c| signs(&c)) {
            // Only the client refuses a fitting key: none is issued under a CA the server named.
            format!(
                "none of the {} identities ({}) is issued under a CA the server's certificate \
                 request names, so none is sent (as GnuTLS sends none): add an identity issued \
                 by a CA the server trusts",
                self.role.name(),
                names.join(", "),
            )
        } else {
            let peer = match self.role {
                Role::Server => "the client offered",
                Role::Client => "the server's certificate request allows",
            };
            format!(
                "none of the {} identities ({}) can sign with a signature scheme {peer} ({}): \
                 add an identity with a key type the peer accepts",
                self.role.name(),
                names.join(", "),
                scheme_names(schemes),
            )
        };
        if let Ok(mut note) = self.note.lock() {
            *note = Some(text);
        }
        None
    }
}

fn scheme_names(schemes: &[SignatureScheme]) -> String {
    if schemes.is_empty() {
        return "none".into();
    }
    let names: Vec<String> = schemes.iter().map(|s| format!("{s:?}")).collect();
    names.join(", ")
}

/// One identity as a rustls key, checked as a pair; `index` counts from 0 in load order.
fn choice(
    identity: &Identity,
    index: usize,
    role: Role,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<Choice> {
    let (Some(leaf), Some(key)) = (identity.certificate(), &identity.key) else {
        return Err(Error::new(
            ErrorKind::InvalidArg,
            format!(
                "{} identity {} needs both its certificate and its key",
                role.name(),
                index + 1
            ),
        ));
    };
    let signing = provider
        .key_provider
        .load_private_key(key.der().clone_key())
        .map_err(|e| identity_error(role, e))?;
    let name = format!("{} ({:?})", leaf.source(), signing.algorithm());
    let key = CertifiedKey::new(ders(&identity.chain), signing);
    key.keys_match().map_err(|e| identity_error(role, e))?;
    Ok(Choice {
        key: Arc::new(key),
        leaf: leaf.clone(),
        issuers: identity
            .chain
            .iter()
            .map(|c| c.issuer_raw().to_vec())
            .collect(),
        name,
    })
}

impl ResolvesServerCert for IdentityResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // GnuTLS prefers a certificate naming the SNI host; any one will do otherwise. The
        // Common Name of a certificate without subjectAltName counts, as in the client's
        // default check (and GnuTLS's): only a preference, the client still decides.
        let sni = client_hello.server_name().map(str::to_owned);
        let names_sni = |c: &Choice| {
            sni.as_deref()
                .is_some_and(|host| crate::names::check(&c.leaf, host, true).is_ok())
        };
        self.pick(client_hello.signature_schemes(), names_sni, true)
    }
}

impl ResolvesClientCert for IdentityResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        // Only an identity issued under a CA the server named, as GnuTLS answers: a server
        // that names other CAs would refuse them, and is not shown a certificate meant for
        // another CA. A server that names none gets the first whose key fits.
        let named = |c: &Choice| {
            c.issuers
                .iter()
                .any(|issuer| root_hint_subjects.contains(&issuer.as_slice()))
        };
        if root_hint_subjects.is_empty() {
            self.pick(sigschemes, |_| true, true)
        } else {
            self.pick(sigschemes, named, false)
        }
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn ders(chain: &[Certificate]) -> Vec<CertificateDer<'static>> {
    chain.iter().map(|c| c.der().clone()).collect()
}

fn identity_error(role: Role, e: rustls::Error) -> Error {
    let kind = match e {
        rustls::Error::InconsistentKeys(_) => ErrorKind::KeyMismatch,
        _ => ErrorKind::InvalidArg,
    };
    Error::new(
        kind,
        format!(
            "the {} certificate and key cannot be used: {e}",
            role.name()
        ),
    )
}

fn tls_error(what: &str, e: rustls::Error) -> Error {
    Error::new(ErrorKind::Tls, format!("{what}: {e}"))
}

/// The library's error behind a rustls error, or a TLS error describing it.
pub fn from_rustls(e: &rustls::Error) -> Error {
    if let rustls::Error::InvalidCertificate(CertificateError::Other(other)) = e {
        if let Some(ours) = other.0.downcast_ref::<Error>() {
            return Error::new(ours.kind(), ours.message());
        }
    }
    let text = match e {
        rustls::Error::AlertReceived(alert) => {
            format!("the peer refused the connection (TLS alert {alert:?})")
        }
        other => format!("TLS failure: {other}"),
    };
    Error::new(ErrorKind::Tls, text)
}

fn to_rustls(e: Error) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

/// Parses what the peer sent, leaf first.
fn peer_chain(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> std::result::Result<Vec<Certificate>, rustls::Error> {
    std::iter::once(end_entity)
        .chain(intermediates)
        .map(|der| Certificate::from_der(der.to_vec(), Source::Peer))
        .collect::<Result<Vec<_>>>()
        .map_err(to_rustls)
}

#[derive(Debug)]
struct ServerVerifier {
    ctx: Arc<Context>,
    /// The snapshot the session's own identity came from (see [`client_config`]).
    creds: Arc<Credentials>,
    hostname: String,
    port: Option<u16>,
    flags: VerifyFlags,
    algorithms: WebPkiSupportedAlgorithms,
    /// What the validator accepted, for a session that can record it afterwards (None when
    /// nothing would read it).
    asked: Option<AskedNote>,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let chain = peer_chain(end_entity, intermediates)?;
        // Taken first: a store set or replaced during the verification is not the one the
        // validator was asked against, and a later record_peer refuses it.
        let store = self.asked.as_ref().and_then(|_| self.ctx.known_servers());
        let verdict = self
            .ctx
            .verify_server_with(&self.creds, &self.hostname, self.port, &chain, self.flags)
            .map_err(to_rustls)?;
        if let Some(asked) = &self.asked {
            asked.note(
                &self.ctx,
                store,
                &self.hostname,
                self.port,
                &chain[0],
                verdict.acceptance,
            );
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[derive(Debug)]
struct ClientVerifier {
    ctx: Arc<Context>,
    /// The snapshot the session's own identity came from (see [`server_config`]).
    creds: Arc<Credentials>,
    flags: VerifyFlags,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        !self.flags.contains(VerifyFlags::NO_VERIFY)
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        let chain = peer_chain(end_entity, intermediates)?;
        self.ctx
            .verify_client_with(&self.creds, &chain, self.flags)
            .map(|_| ClientCertVerified::assertion())
            .map_err(to_rustls)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
