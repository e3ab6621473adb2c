//! rustls configurations built from a context.
//!
//! The verifiers here hand the certificate decision to [`Context::verify_server`] and
//! [`Context::verify_client`] (rustls-webpki underneath, plus libvirt's rules), and the
//! handshake signatures to rustls' webpki-based functions, always. The crypto provider (ring)
//! is passed explicitly: the library never installs a process-wide default.
//!
//! A failed verification reaches rustls as `CertificateError::Other` carrying the library's
//! [`Error`], so that [`from_rustls`] can give the caller the precise kind back.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::cert::Certificate;
use crate::context::Context;
use crate::credentials::Credentials;
use crate::error::{Error, ErrorKind, Result};
use crate::role::Role;
use crate::source::Source;
use crate::verify::VerifyFlags;

/// A client configuration that verifies the server as `hostname` (port keys the known-servers
/// entry) and presents the context's client identity, if it has one.
pub fn client_config(
    ctx: &Arc<Context>,
    hostname: &str,
    port: Option<u16>,
    flags: VerifyFlags,
) -> Result<ClientConfig> {
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
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("protocol versions", e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&creds.client.chain, &creds.client.key) {
        (chain, Some(key)) if !chain.is_empty() => builder
            .with_client_auth_cert(ders(chain), key.der().clone_key())
            .map_err(|e| identity_error(Role::Client, e))?,
        (chain, None) if !chain.is_empty() => {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                "the client certificate is loaded but not its key",
            ))
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// A server configuration that presents the context's server identity and verifies clients
/// (a certificate is required unless `NO_VERIFY`), including the allowed-DN list.
pub fn server_config(ctx: &Arc<Context>, flags: VerifyFlags) -> Result<ServerConfig> {
    let provider = crate::crypto::provider();
    let creds = ctx.credentials();
    let (chain, key) = match (&creds.server.chain, &creds.server.key) {
        (chain, Some(key)) if !chain.is_empty() => (chain, key),
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
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("protocol versions", e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(ders(chain), key.der().clone_key())
        .map_err(|e| identity_error(Role::Server, e))
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
        self.ctx
            .verify_server_with(&self.creds, &self.hostname, self.port, &chain, self.flags)
            .map(|_| ServerCertVerified::assertion())
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
