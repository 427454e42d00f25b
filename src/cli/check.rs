// SPDX-License-Identifier: GPL-2.0-or-later
//! `ldirectord --check [CONFIG]`: validate a configuration. Everything a
//! config can get wrong, `service=oracle` included (no pure-Rust client
//! exists), is the parser's verdict, so the daemon refuses what this refuses.

use std::path::Path;

use crate::config::{self, ConfigError, SystemEnvironment};

/// Prints every error and warning to stderr and a one-line summary to
/// stdout; exit 0 when the file is valid, 2 when it is not.
pub fn run(path: &Path) -> i32 {
    match config::parse_file(path, &SystemEnvironment::new()) {
        Ok(parsed) => {
            for warning in &parsed.warnings {
                eprintln!("{warning}");
            }
            let reals: usize = parsed.config.virtuals.iter().map(|v| v.reals.len()).sum();
            println!(
                "{}: OK ({} virtual services, {} real servers)",
                path.display(),
                parsed.config.virtuals.len(),
                reals
            );
            0
        }
        Err(ConfigError::Invalid(diagnostics)) => {
            for diagnostic in &diagnostics {
                eprintln!("{diagnostic}");
            }
            2
        }
        Err(other) => {
            eprintln!("{other}");
            2
        }
    }
}
