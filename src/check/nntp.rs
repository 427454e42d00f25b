// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=nntp`: the server is up when its greeting starts with `2`
//! (`200` posting allowed, `201` no posting), as in ldirectord's
//! `check_nntp`, which reads the first bytes the server sends. A `400`
//! (service not available) or `502` (no permission) greeting is down with
//! that greeting as the reason. The session ends with `QUIT`; the whole
//! exchange runs under negotiatetimeout.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::textproto::{self, quote_server_text, Deadline};
use super::{CheckError, CheckSpec, CheckTarget, Checker};

/// Checks a news server's greeting.
#[derive(Debug, Clone)]
pub struct NntpChecker {
    timeout: Duration,
}

impl NntpChecker {
    pub fn new(spec: &CheckSpec) -> Self {
        Self {
            timeout: spec.negotiate_timeout,
        }
    }

    async fn probe(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let deadline = Deadline::after(self.timeout);
        let mut conn = textproto::open(target.addr, None, deadline, "NNTP").await?;
        let greeting = conn.read_line("greeting").await?;
        if !greeting.starts_with('2') {
            return Err(CheckError::Protocol(format!(
                "NNTP greeting: {}",
                quote_server_text(&greeting)
            )));
        }
        conn.goodbye("QUIT").await;
        Ok(())
    }
}

impl Checker for NntpChecker {
    fn name(&self) -> &'static str {
        "nntp"
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        self.probe(target).boxed()
    }
}
