// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=ldaps`: the `ldap` check over implicit TLS (usually port 636).
//!
//! Certificate verification is off by default, as in ldirectord (Net::LDAP
//! with `scheme => "ldaps"` and no `verify`); the per-virtual verification
//! directive turns it on, with the name taken from `virtualhost`, else the
//! real's IP (see [`super::implicit_tls`]).

use futures::future::BoxFuture;

use super::implicit_tls::TlsClient;
use super::ldap::{io_error, LdapQuery};
use super::textproto::Deadline;
use super::{within, CheckError, CheckSpec, CheckTarget, Checker};

/// `service=ldaps`.
#[derive(Debug, Clone)]
pub struct LdapsChecker {
    query: LdapQuery,
    tls: TlsClient,
}

impl LdapsChecker {
    /// The check a spec describes; fails on an invalid `receive` regex.
    pub fn new(spec: &CheckSpec) -> Result<Self, CheckError> {
        Ok(Self {
            query: LdapQuery::from_spec(spec)?,
            tls: TlsClient::new(spec),
        })
    }

    async fn probe(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let deadline = Deadline::after(self.query.timeout());
        let stream = deadline
            .run(tokio::net::TcpStream::connect(target.addr))
            .await?
            .map_err(io_error)?;
        let _ = stream.set_nodelay(true);
        let mut stream = self
            .tls
            .handshake(stream, target.addr.ip(), &deadline)
            .await?;
        self.query.run(&mut stream).await
    }
}

impl Checker for LdapsChecker {
    fn name(&self) -> &'static str {
        "ldaps"
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(within(self.query.timeout(), self.probe(target)))
    }
}
