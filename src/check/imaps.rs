// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=imaps`: the `imap` check over implicit TLS (port 993).
//! Certificates are not verified unless the virtual asks for it, as in
//! ldirectord (Net::IMAP::Simple::SSL).

use futures::future::BoxFuture;

use super::imap::ImapChecker;
use super::{CheckError, CheckSpec, CheckTarget, Checker};

/// Checks an IMAP server over TLS.
#[derive(Debug, Clone)]
pub struct ImapsChecker(ImapChecker);

impl ImapsChecker {
    pub fn new(spec: &CheckSpec) -> Self {
        Self(ImapChecker::over_tls(spec))
    }
}

impl Checker for ImapsChecker {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        self.0.check(target)
    }
}
