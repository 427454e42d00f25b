// SPDX-License-Identifier: GPL-2.0-or-later
//! Implicit TLS (the whole connection is TLS from the first byte) for the
//! services pops, imaps and ldaps.
//!
//! The client configuration is the one the https checker uses
//! ([`super::tls`]): like ldirectord, certificates are not verified by
//! default (a check asks "is the service answering", and reals behind a
//! director often carry certificates for the virtual's name, not their
//! own address), but the handshake is completed and its signatures
//! checked, so a server whose TLS is broken is down. The per-virtual
//! verification directive turns verification on; the name verified (and
//! sent as SNI) is `virtualhost`, else the real's IP.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::textproto::Deadline;
use super::{tls, CheckError, CheckSpec};

/// A ready-to-use TLS client, built once per checker.
#[derive(Clone)]
pub struct TlsClient {
    /// A configuration error (unreadable CA file, ...) is kept and reported
    /// as the reason of every check, rather than failing construction.
    config: Result<Arc<ClientConfig>, CheckError>,
    virtualhost: Option<String>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("ready", &self.config.is_ok())
            .field("virtualhost", &self.virtualhost)
            .finish()
    }
}

impl TlsClient {
    /// The TLS client a spec asks for (`virtualhost` and the verification
    /// directive).
    pub fn new(spec: &CheckSpec) -> Self {
        Self {
            config: tls::client_config(&spec.tls_verify),
            virtualhost: spec.virtualhost.clone().filter(|name| !name.is_empty()),
        }
    }

    /// Runs the TLS handshake over `tcp` within the deadline.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        peer: IpAddr,
        deadline: &Deadline,
    ) -> Result<TlsStream<TcpStream>, CheckError> {
        let config = self.config.clone()?;
        let name = tls::server_name(self.virtualhost.as_deref(), peer);
        deadline
            .run(TlsConnector::from(config).connect(name, tcp))
            .await?
            .map_err(|err| handshake_error(&err))
    }
}

/// Names a failed handshake: rustls's own error when there is one ("TLS:
/// certificate expired"), else what happened to the connection.
fn handshake_error(err: &std::io::Error) -> CheckError {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls_error) => CheckError::Tls(tls::describe_error(tls_error)),
        None if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            CheckError::Tls("connection closed by server during handshake".to_owned())
        }
        None => CheckError::Tls(format!("handshake: {err}")),
    }
}
