// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=smtp`: the server is up when it greets with a 2xx banner and
//! accepts EHLO (or, for old servers, HELO), which is what ldirectord's
//! `Net::SMTP->new` requires. The session ends with QUIT; no mail is sent.
//! The whole exchange runs under negotiatetimeout.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::textproto::{self, Deadline, LineConn};
use super::{CheckError, CheckSpec, CheckTarget, Checker};

/// The EHLO argument Net::SMTP sends when none is given, and so the one
/// ldirectord's check sends. It is FQDN-shaped, so MTAs that refuse bare
/// host names in EHLO still accept it.
pub const DEFAULT_HELO_NAME: &str = "localhost.localdomain";

/// Checks an SMTP server (also used for `submission`).
#[derive(Debug, Clone)]
pub struct SmtpChecker {
    timeout: Duration,
    helo_name: String,
    name: &'static str,
}

impl SmtpChecker {
    /// The check a spec describes: only negotiatetimeout matters.
    pub fn new(spec: &CheckSpec) -> Self {
        Self::with_timeout(spec.negotiate_timeout)
    }

    /// A check bounded by `timeout`, greeting as Net::SMTP does.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            timeout,
            helo_name: DEFAULT_HELO_NAME.to_owned(),
            name: "smtp",
        }
    }

    /// Replaces the EHLO argument.
    pub fn helo_name(mut self, name: impl Into<String>) -> Self {
        self.helo_name = name.into();
        self
    }

    /// The same probe under another service name (`submission`).
    pub(crate) fn renamed(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    async fn probe(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let deadline = Deadline::after(self.timeout);
        let mut conn = textproto::open(target.addr, None, deadline, "SMTP").await?;
        let banner = conn.read_reply("banner").await?;
        if banner.class() != 2 {
            return Err(CheckError::Protocol(format!("SMTP banner {banner}")));
        }
        self.hello(&mut conn).await?;
        conn.goodbye("QUIT").await;
        Ok(())
    }

    /// EHLO, falling back to HELO when EHLO is refused (RFC 5321 3.2), as
    /// Net::SMTP does for servers that predate ESMTP.
    async fn hello(&self, conn: &mut LineConn) -> Result<(), CheckError> {
        conn.send_line(&format!("EHLO {}", self.helo_name)).await?;
        let ehlo = conn.read_reply("EHLO reply").await?;
        if ehlo.class() == 2 {
            return Ok(());
        }
        // 421 means the server is closing the session: no point in HELO.
        if ehlo.code != 421 {
            conn.send_line(&format!("HELO {}", self.helo_name)).await?;
            let helo = conn.read_reply("HELO reply").await?;
            if helo.class() == 2 {
                return Ok(());
            }
            return Err(CheckError::Protocol(format!(
                "SMTP EHLO rejected: {ehlo}; HELO rejected: {helo}"
            )));
        }
        Err(CheckError::Protocol(format!("SMTP EHLO rejected: {ehlo}")))
    }
}

impl Checker for SmtpChecker {
    fn name(&self) -> &'static str {
        self.name
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        self.probe(target).boxed()
    }
}
