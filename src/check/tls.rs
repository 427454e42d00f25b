// SPDX-License-Identifier: GPL-2.0-or-later
//! TLS client setup for https (and any negotiate service that speaks TLS):
//! rustls with the ring provider.
//!
//! Verification is off by default, as in ldirectord (LWP with
//! `verify_hostname => 0`): the handshake still runs to the end, with the
//! server's signature checked against the certificate it sent, but any
//! certificate is accepted. With verification on, the chain is checked
//! against the system trust store (or a given CA file) and the name against
//! `virtualhost`, else the real's IP.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, IpAddr as PkiIpAddr, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::{CheckError, TlsVerify};

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system trust store, read once per process: reading /etc/ssl/certs
/// costs milliseconds, and checks run thousands of times.
fn system_roots() -> Result<Arc<RootCertStore>, CheckError> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
            if added == 0 {
                let detail = loaded
                    .errors
                    .first()
                    .map(|err| format!(": {err}"))
                    .unwrap_or_default();
                return Err(format!(
                    "no trusted CA certificates found in the system store{detail}"
                ));
            }
            Ok(Arc::new(store))
        })
        .clone()
        .map_err(CheckError::Tls)
}

fn file_roots(path: &Path) -> Result<Arc<RootCertStore>, CheckError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|err| CheckError::Tls(format!("cannot read CA file {}: {err}", path.display())))?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(CheckError::Tls(format!(
            "no CA certificate in {}",
            path.display()
        )));
    }
    Ok(Arc::new(store))
}

/// Builds the client configuration for one checker. `alpn` is empty for
/// plain HTTP/1.1.
pub fn client_config(verify: &TlsVerify) -> Result<Arc<ClientConfig>, CheckError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| CheckError::Tls(err.to_string()))?;
    let config = match verify {
        TlsVerify::Off => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                provider: provider(),
            }))
            .with_no_client_auth(),
        TlsVerify::System => builder
            .with_root_certificates(system_roots()?)
            .with_no_client_auth(),
        TlsVerify::CaFile(path) => builder
            .with_root_certificates(file_roots(path)?)
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The name to send as SNI and to verify: `virtualhost` when it is a DNS
/// name, else the real's IP (for which rustls sends no SNI).
pub fn server_name(virtualhost: Option<&str>, ip: std::net::IpAddr) -> ServerName<'static> {
    if let Some(host) = virtualhost {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(name) = ServerName::try_from(host.to_string()) {
            return name;
        }
    }
    ServerName::IpAddress(PkiIpAddr::from(ip))
}

/// Accepts any certificate but still verifies the handshake signatures
/// with the certificate presented, so the handshake is a real one.
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

/// A short reason for a rustls error ("certificate expired", ...), without
/// the "TLS: " prefix that `CheckError::Tls` adds.
pub fn describe_error(err: &rustls::Error) -> String {
    match err {
        rustls::Error::InvalidCertificate(cert) => describe_certificate_error(cert),
        rustls::Error::AlertReceived(alert) => format!("alert from server: {alert:?}"),
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "the server does not speak TLS on this port".into()
        }
        other => other.to_string(),
    }
}

fn describe_certificate_error(err: &CertificateError) -> String {
    match err {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet".into()
        }
        CertificateError::UnknownIssuer => "certificate signed by unknown authority".into(),
        CertificateError::NotValidForName => "certificate not valid for this name".into(),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "certificate not valid for name {} (presented: {})",
            expected.to_str(),
            presented.join(", ")
        ),
        CertificateError::Revoked => "certificate revoked".into(),
        CertificateError::BadSignature => "certificate has a bad signature".into(),
        CertificateError::BadEncoding => "certificate badly encoded".into(),
        other => format!("invalid certificate: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_prefers_virtualhost() {
        let ip: std::net::IpAddr = "127.0.1.1".parse().unwrap();
        assert_eq!(
            server_name(Some("www.example.test"), ip).to_str(),
            "www.example.test"
        );
        assert!(matches!(server_name(None, ip), ServerName::IpAddress(_)));
        assert!(matches!(
            server_name(Some("not a name"), ip),
            ServerName::IpAddress(_)
        ));
    }

    #[test]
    fn certificate_errors_read_well() {
        let err = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert_eq!(describe_error(&err), "certificate expired");
        let err = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(
            describe_error(&err),
            "certificate signed by unknown authority"
        );
    }

    #[test]
    fn configs_build() {
        assert!(client_config(&TlsVerify::Off).is_ok());
        let missing = client_config(&TlsVerify::CaFile("/nonexistent/ca.pem".into()));
        assert!(missing
            .unwrap_err()
            .to_string()
            .starts_with("TLS: cannot read CA file"));
    }
}
