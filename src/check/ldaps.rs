// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=ldaps`: the `ldap` check over implicit TLS (usually port 636).
//!
//! Certificate verification is off by default, as in ldirectord (Net::LDAP
//! with `scheme => "ldaps"` and no `verify`); with verification on, the
//! certificate must chain to the system roots (or the roots given) and
//! name the server: by default the real's IP address, or a configured name.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use regex::Regex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::ldap::{io_error, LdapQuery};
use super::{CheckError, CheckTarget, Checker};

/// Debian's bundle of the system's trusted roots (package ca-certificates).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why TLS could not be set up for an `ldaps` checker.
#[derive(Debug, thiserror::Error)]
pub enum LdapsError {
    #[error("cannot read CA bundle {path}: {reason}")]
    CaBundle { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
}

/// How the server's certificate is checked.
#[derive(Debug, Clone)]
pub enum Verification {
    /// Accept any certificate (ldirectord's behaviour, the default).
    Off,
    /// Require a certificate chaining to these roots.
    Roots(Arc<RootCertStore>),
}

impl Verification {
    /// Verification against the system CA bundle.
    pub fn system_roots() -> Result<Self, LdapsError> {
        let bundle_error = |reason: String| LdapsError::CaBundle {
            path: SYSTEM_CA_BUNDLE.to_owned(),
            reason,
        };
        let mut roots = RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(SYSTEM_CA_BUNDLE)
            .map_err(|error| bundle_error(error.to_string()))?
        {
            let certificate = certificate.map_err(|error| bundle_error(error.to_string()))?;
            roots
                .add(certificate)
                .map_err(|error| bundle_error(error.to_string()))?;
        }
        Ok(Self::Roots(Arc::new(roots)))
    }
}

/// `service=ldaps`.
#[derive(Clone)]
pub struct LdapsChecker {
    query: LdapQuery,
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for LdapsChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapsChecker")
            .field("query", &self.query)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl LdapsChecker {
    /// As [`super::ldap::LdapChecker::new`], plus how to verify the
    /// certificate and, optionally, the name to verify it against (and send
    /// as SNI) instead of the real's IP address.
    pub fn new(
        timeout: Duration,
        login: &str,
        passwd: &str,
        request: &str,
        receive: Option<Regex>,
        verification: Verification,
        server_name: Option<&str>,
    ) -> Result<Self, LdapsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let config = match verification {
            Verification::Off => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
                .with_no_client_auth(),
            Verification::Roots(roots) => {
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        let server_name = server_name
            .map(|name| {
                ServerName::try_from(name.to_owned())
                    .map_err(|_| LdapsError::ServerName(name.to_owned()))
            })
            .transpose()?;
        Ok(Self {
            query: LdapQuery::new(timeout, login, passwd, request, receive),
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    async fn probe(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let stream = TcpStream::connect(target.addr).await.map_err(io_error)?;
        let _ = stream.set_nodelay(true);
        let server_name = self
            .server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(target.addr.ip().into()));
        let mut stream = self
            .connector
            .connect(server_name, stream)
            .await
            .map_err(|error| match error.get_ref() {
                // rustls wraps its own errors in io::Error; name them as TLS.
                Some(inner) if inner.is::<rustls::Error>() => CheckError::Tls(inner.to_string()),
                _ => io_error(error),
            })?;
        self.query.run(&mut stream).await
    }
}

impl Checker for LdapsChecker {
    fn name(&self) -> &'static str {
        "ldaps"
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(async move {
            let timeout = self.query.timeout();
            match tokio::time::timeout(timeout, self.probe(target)).await {
                Ok(result) => result,
                Err(_) => Err(CheckError::Timeout(timeout)),
            }
        })
    }
}

/// Accepts any server certificate, but still checks that the handshake is
/// signed by the key in it (so the session is at least consistent).
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
