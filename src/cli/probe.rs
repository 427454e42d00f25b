// SPDX-License-Identifier: GPL-2.0-or-later
//! `ldirectord --probe [CONFIG] [--json]`: run every check once, print one
//! row per (virtual, real); exit 0 all up, 1 any down, 2 bad config.

use std::path::Path;

pub fn run(path: &Path, json: bool) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    crate::check::probe::run_command(path, json, &mut stdout.lock(), &mut stderr.lock())
}
