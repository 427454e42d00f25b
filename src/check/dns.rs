// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=dns` (written next).

use futures::future::BoxFuture;

use super::{CheckError, CheckSpec, CheckTarget, Checker};

pub struct DnsChecker;

impl DnsChecker {
    pub fn new(_spec: &CheckSpec) -> Result<Self, CheckError> {
        Err(CheckError::Other("service dns not built yet".into()))
    }
}

impl Checker for DnsChecker {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn check<'a>(&'a self, _target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(async { Err(CheckError::Other("service dns not built yet".into())) })
    }
}
