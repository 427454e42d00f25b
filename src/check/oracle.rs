// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=oracle` is not supported, and the configuration is rejected at
//! load (and by `--check`) rather than every real silently staying down.
//!
//! ldirectord checks Oracle through DBI and DBD::Oracle, i.e. Oracle's C
//! client (OCI). ldirector links no C database clients, and the pure-Rust
//! Oracle drivers that exist (as of this writing) are not fit to ship in a
//! director:
//! - `oracle` and `sibyl` wrap OCI/ODPI-C: the C client again;
//! - `oracledb` (Oracle's thin driver) is a pre-release (26.0.0-beta), is
//!   blocking, and pulls rustls with aws-lc (a second crypto provider, C
//!   code) and chrono;
//! - `oracle-rs` is a young 0.1 series.
//!
//! And no Oracle server can run in the test suite (none is packaged in
//! Debian), so a checker could not be tested against the real thing.
//! Operators can keep checking Oracle with `checktype=external` and a script
//! around `sqlplus` or `tnsping`.

/// What is wrong with `service=oracle`, as a configuration error says it.
pub const MESSAGE: &str = "service=oracle is not supported";
/// How to check an Oracle real instead.
pub const HELP: &str =
    "no suitable pure-Rust Oracle client; use checktype=external with a script (e.g. around sqlplus)";
/// The whole reason, message and help.
pub const NOT_SUPPORTED: &str = "service=oracle is not supported: no suitable pure-Rust Oracle client; use checktype=external with a script (e.g. around sqlplus)";

/// The error the configuration layer reports for `service=oracle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OracleError {
    #[error("{NOT_SUPPORTED}")]
    NotSupported,
}

/// Called by the configuration layer when it meets `service=oracle`.
pub fn not_supported() -> OracleError {
    OracleError::NotSupported
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_reason_is_message_and_help() {
        assert_eq!(NOT_SUPPORTED, format!("{MESSAGE}: {HELP}"));
    }

    #[test]
    fn message_names_the_service_and_the_way_out() {
        let message = not_supported().to_string();
        assert!(message.starts_with("service=oracle is not supported"));
        assert!(message.contains("checktype=external"));
    }
}
