// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=submission`: the SMTP probe (banner, EHLO, QUIT) on the
//! message submission port. ldirectord runs the very same check.

use std::time::Duration;

use futures::future::BoxFuture;

use super::smtp::SmtpChecker;
use super::{CheckError, CheckTarget, Checker};

/// Default port of `service=submission` (RFC 6409).
pub const DEFAULT_PORT: u16 = 587;

/// Checks a mail submission server.
#[derive(Debug, Clone)]
pub struct SubmissionChecker(SmtpChecker);

impl SubmissionChecker {
    /// See [`SmtpChecker::new`].
    pub fn new(timeout: Duration, helo_name: Option<String>) -> Self {
        Self(SmtpChecker::new(timeout, helo_name).renamed("submission"))
    }
}

impl Checker for SubmissionChecker {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        self.0.check(target)
    }
}
