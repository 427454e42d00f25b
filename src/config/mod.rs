// SPDX-License-Identifier: GPL-2.0-or-later
//! The ldirectord.cf parser: lexer, nom value parsers, typed model, validation.
//!
//! ```text
//! text --lexer--> lines (number, indentation, key, value span)
//!      --value--> nom / Perl-regex-exact value readers
//!      --parser-> typed model (Config), every directive with its Span,
//!                 names resolved (as ldirectord does, at parse time)
//! ```
//!
//! The verdict (accept or reject) is ldirectord 4.12's for every file,
//! except the documented extensions (`protocol=sctp`, `sslverify=`, ranges
//! larger than [`parser::MAX_RANGE`]). Unlike ldirectord, every error of a
//! file is reported, each as `FILE:LINE:COL: error: what (expected)`, and
//! suspicious but accepted input gets a warning.

pub mod env;
pub mod error;
pub mod lexer;
pub mod model;
pub mod parser;
pub mod value;

use std::path::{Path, PathBuf};

pub use env::{Environment, FilesEnvironment, OfflineEnvironment, SystemEnvironment};
pub use error::{ConfigError, Diagnostic, Severity};
pub use model::*;

/// A successfully parsed configuration and its warnings.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Parse configuration text. `file` names it in spans and messages.
pub fn parse_str(file: &str, text: &str, env: &dyn Environment) -> Result<Parsed, ConfigError> {
    let (config, diags) = parser::parse(file, text, env);
    match config {
        Some(config) => Ok(Parsed {
            config,
            warnings: diags,
        }),
        None => Err(ConfigError::Invalid(diags)),
    }
}

/// Read and parse a file. Bytes that are not UTF-8 are replaced (they can
/// only appear in free text such as comments; ldirectord's own patterns
/// are ASCII).
pub fn parse_file(path: &Path, env: &dyn Environment) -> Result<Parsed, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    parse_str(&path.display().to_string(), &text, env)
}

/// Where ldirectord looks for a configuration named `name`:
/// `/etc/ha.d/NAME`, then `/etc/ha.d/conf/NAME`, then `NAME` itself.
pub fn locate(name: &str) -> Option<PathBuf> {
    locate_in(name, Path::new("/etc/ha.d"))
}

/// [`locate`] with another base directory (for tests).
pub fn locate_in(name: &str, base: &Path) -> Option<PathBuf> {
    [
        base.join(name),
        base.join("conf").join(name),
        PathBuf::from(name),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// The configuration's short name as ldirectord derives it (the file
/// name), used for the pid file `/var/run/ldirectord.NAME.pid`.
pub fn config_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}
