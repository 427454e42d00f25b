// SPDX-License-Identifier: GPL-2.0-or-later
//! `ldirectord --probe [CONFIG] [--json]`: run every configured check once,
//! concurrently, and print one row per (virtual, real). Needs neither root
//! nor IPVS. Exit 0 when every real is up, 1 when any is down, 2 when the
//! configuration does not load. The work is in [`crate::check::probe`].

use std::path::Path;

pub fn run(path: &Path, json: bool) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    crate::check::probe::run_command(path, json, &mut stdout.lock(), &mut stderr.lock())
}
