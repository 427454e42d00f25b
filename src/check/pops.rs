// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=pops`: the `pop` check over implicit TLS (port 995).
//! Certificates are not verified unless the virtual asks for it, as in
//! ldirectord (Mail::POP3Client with `USESSL`).

use futures::future::BoxFuture;

use super::pop::PopChecker;
use super::{CheckError, CheckSpec, CheckTarget, Checker};

/// Checks a POP3 server over TLS.
#[derive(Debug, Clone)]
pub struct PopsChecker(PopChecker);

impl PopsChecker {
    pub fn new(spec: &CheckSpec) -> Self {
        Self(PopChecker::over_tls(spec))
    }
}

impl Checker for PopsChecker {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        self.0.check(target)
    }
}
