// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=submission`: the SMTP probe (banner, EHLO, QUIT) on the
//! message submission port. ldirectord runs the very same check.

use futures::future::BoxFuture;

use super::smtp::SmtpChecker;
use super::{CheckError, CheckSpec, CheckTarget, Checker};

/// Checks a mail submission server.
#[derive(Debug, Clone)]
pub struct SubmissionChecker(SmtpChecker);

impl SubmissionChecker {
    /// See [`SmtpChecker::new`].
    pub fn new(spec: &CheckSpec) -> Self {
        Self(SmtpChecker::new(spec).renamed("submission"))
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
