// SPDX-License-Identifier: GPL-2.0-or-later
//! Implicit TLS (the whole connection is TLS from the first byte) for the
//! mail services pops and imaps, with rustls and the ring provider.
//!
//! Like ldirectord, certificates are not verified by default: a check asks
//! "is the service answering", and real servers behind a director often
//! carry certificates for the virtual's name, not for their own address.
//! The handshake is still completed and its signatures checked, so a
//! server whose TLS is broken is down. Verification can be turned on.
//!
//! NOTE for the merge: the framework's https checker needs the same
//! configuration; this file is meant to be unified with its TLS helper.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::textproto::Deadline;
use super::CheckError;

/// Debian's bundle of trusted CAs (package ca-certificates).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How a checker sets up TLS.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Verify the server's certificate chain and name (off by default, as
    /// in ldirectord).
    pub verify_certificate: bool,
    /// Name sent as SNI and verified against the certificate: the
    /// virtual's `virtualhost`. Without it the real's IP address is used,
    /// and no SNI is sent (SNI carries names only).
    pub server_name: Option<String>,
    /// Trust anchors used when verifying; `None` reads
    /// [`SYSTEM_CA_BUNDLE`].
    pub ca_file: Option<PathBuf>,
}

/// A ready-to-use TLS client, built once per checker.
#[derive(Clone)]
pub struct TlsClient {
    /// A configuration error (unreadable CA file, ...) is kept and reported
    /// as the reason of every check, rather than failing construction.
    config: Result<Arc<ClientConfig>, String>,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("ready", &self.config.is_ok())
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsClient {
    pub fn new(settings: &TlsSettings) -> Self {
        Self {
            config: build_config(settings).map(Arc::new),
            server_name: settings.server_name.clone().filter(|name| !name.is_empty()),
        }
    }

    /// Runs the TLS handshake over `tcp` within the deadline.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        peer: IpAddr,
        deadline: &Deadline,
    ) -> Result<TlsStream<TcpStream>, CheckError> {
        let config = self.config.clone().map_err(CheckError::Tls)?;
        let name = match &self.server_name {
            Some(name) => ServerName::try_from(name.clone())
                .map_err(|_| CheckError::Tls(format!("invalid server name \"{name}\"")))?,
            None => ServerName::IpAddress(peer.into()),
        };
        deadline
            .run(TlsConnector::from(config).connect(name, tcp))
            .await?
            .map_err(|e| CheckError::Tls(handshake_reason(&e)))
    }
}

/// Extracts the rustls error from the I/O error tokio-rustls wraps it in,
/// so the reason reads "TLS: invalid peer certificate: UnknownIssuer"
/// rather than a generic I/O message.
fn handshake_reason(err: &std::io::Error) -> String {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            "connection closed by server during handshake".to_owned()
        }
        None => format!("handshake: {err}"),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build_config(settings: &TlsSettings) -> Result<ClientConfig, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("configuration: {e}"))?;
    let config = if settings.verify_certificate {
        let ca_file = settings
            .ca_file
            .as_deref()
            .unwrap_or(Path::new(SYSTEM_CA_BUNDLE));
        builder
            .with_root_certificates(load_roots(ca_file)?)
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth()
    };
    Ok(config)
}

fn load_roots(ca_file: &Path) -> Result<RootCertStore, String> {
    let unreadable = |e: &dyn std::fmt::Display| {
        format!(
            "cannot read CA certificates from {}: {e}",
            ca_file.display()
        )
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| unreadable(&e))? {
        let cert = cert.map_err(|e| unreadable(&e))?;
        // One odd certificate in a system bundle must not disable all the
        // others, so bad entries are skipped, as OpenSSL does.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(unreadable(&"no certificate found"));
    }
    Ok(roots)
}

/// Accepts any certificate chain, but still checks that the server signed
/// the handshake with the key of the certificate it presented, so the TLS
/// session itself is sound.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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
