// SPDX-License-Identifier: GPL-2.0-or-later
//! `ldirectord --check [CONFIG]`: validate a configuration without touching
//! anything (no IPVS, no pid file, no log file; host names are resolved, as
//! the daemon would resolve them at start).
//!
//! Every error and warning goes to stderr, one per line, compiler style:
//! `FILE:LINE:COL: error: what is wrong (what was expected)`. On success a
//! one-line summary goes to stdout. Exit 0 when valid, 2 when not (the code
//! ldirectord exits with on a configuration error).

use std::io::Write;
use std::path::Path;

use crate::config::{self, Config, ConfigError, Diagnostic, Environment, SystemEnvironment};

/// Exit code for a valid configuration.
pub const EXIT_VALID: i32 = 0;
/// Exit code for an invalid (or unreadable) configuration, as ldirectord's.
pub const EXIT_INVALID: i32 = 2;

/// Validate `config_path` with the real system's name resolution.
pub fn run(config_path: &Path) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    check(
        config_path,
        &SystemEnvironment::new(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
}

/// Validate and, when valid, print the parsed model as JSON on stdout
/// (diagnostics still go to stderr).
pub fn run_json(config_path: &Path) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    match config::parse_file(config_path, &SystemEnvironment::new()) {
        Ok(parsed) => {
            print_diagnostics(&mut err, &parsed.warnings);
            let mut out = stdout.lock();
            match serde_json::to_writer_pretty(&mut out, &parsed.config) {
                Ok(()) => {
                    let _ = writeln!(out);
                    EXIT_VALID
                }
                Err(e) => {
                    let _ = writeln!(err, "{}: cannot write JSON: {e}", config_path.display());
                    EXIT_INVALID
                }
            }
        }
        Err(e) => report_invalid(&mut err, config_path, &e),
    }
}

/// The whole check with its environment and output streams passed in.
pub fn check(
    config_path: &Path,
    env: &dyn Environment,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match config::parse_file(config_path, env) {
        Ok(parsed) => {
            print_diagnostics(err, &parsed.warnings);
            let _ = writeln!(
                out,
                "{}: OK: {}{}",
                config_path.display(),
                summary(&parsed.config),
                match parsed.warnings.len() {
                    0 => String::new(),
                    1 => ", 1 warning".to_string(),
                    n => format!(", {n} warnings"),
                }
            );
            EXIT_VALID
        }
        Err(e) => report_invalid(err, config_path, &e),
    }
}

fn report_invalid(err: &mut dyn Write, config_path: &Path, e: &ConfigError) -> i32 {
    match e {
        ConfigError::Invalid(diagnostics) => {
            print_diagnostics(err, diagnostics);
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            let _ = writeln!(
                err,
                "{}: invalid: {errors} error{}",
                config_path.display(),
                if errors == 1 { "" } else { "s" }
            );
        }
        ConfigError::Read { .. } => {
            let _ = writeln!(err, "{e}");
        }
    }
    EXIT_INVALID
}

fn print_diagnostics(err: &mut dyn Write, diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        let _ = writeln!(err, "{d}");
    }
}

/// `2 virtual services, 7 real servers` (ranges counted per address).
pub fn summary(config: &Config) -> String {
    let virtuals = config.virtuals.len();
    let reals: u64 = config
        .virtuals
        .iter()
        .flat_map(|v| v.reals.iter())
        .map(|r| r.count())
        .sum();
    format!(
        "{virtuals} virtual service{}, {reals} real server{}",
        if virtuals == 1 { "" } else { "s" },
        if reals == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OfflineEnvironment;

    fn run_on(text: &str) -> (i32, String, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("test.cf");
        std::fs::write(&path, text).expect("write config");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = check(&path, &OfflineEnvironment, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).replace(&path.display().to_string(), "FILE"),
        )
    }

    #[test]
    fn valid_file_prints_a_summary_with_ranges_counted() {
        let (code, out, err) = run_on(
            "virtual=10.0.0.1:80\n\treal=10.0.0.2->10.0.0.4:80 gate\n\treal=10.0.0.9:80 masq\n",
        );
        assert_eq!(code, EXIT_VALID, "{err}");
        assert!(
            out.ends_with(": OK: 1 virtual service, 4 real servers\n"),
            "{out}"
        );
        assert_eq!(err, "");
    }

    #[test]
    fn invalid_file_reports_every_error_with_its_place() {
        let (code, out, err) = run_on(
            "checktimeout=0\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80\n\tchecktype=sometimes\n",
        );
        assert_eq!(code, EXIT_INVALID);
        assert_eq!(out, "");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 4, "{err}");
        assert!(lines[0].starts_with("FILE:1:14: error: "), "{err}");
        assert!(lines[1].starts_with("FILE:3:7: error: "), "{err}");
        assert!(lines[2].starts_with("FILE:4:12: error: "), "{err}");
        assert_eq!(lines[3], "FILE: invalid: 3 errors");
    }

    #[test]
    fn warnings_do_not_fail_the_check() {
        let (code, out, err) = run_on("checkcount=2\n");
        assert_eq!(code, EXIT_VALID);
        assert!(out.ends_with("0 virtual services, 0 real servers, 1 warning\n"));
        assert!(err.starts_with("FILE:1:1: warning: checkcount is deprecated"));
    }

    #[test]
    fn unreadable_file_is_invalid() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = check(
            Path::new("/nonexistent/ldirectord.cf"),
            &OfflineEnvironment,
            &mut out,
            &mut err,
        );
        assert_eq!(code, EXIT_INVALID);
        assert!(String::from_utf8_lossy(&err).contains("cannot read"));
    }
}
