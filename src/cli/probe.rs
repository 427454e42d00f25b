// SPDX-License-Identifier: GPL-2.0-or-later
//! `ldirectord --probe [CONFIG] [--json]`: run every check once.
//!
//! Placeholder until the check scheduler lands: it validates the file and
//! says plainly that probing is not available yet.

use std::path::Path;

pub fn run(path: &Path, _json: bool) -> i32 {
    let code = super::check::run(path);
    if code != 0 {
        return code;
    }
    eprintln!("ldirectord --probe: not available in this build yet");
    2
}
