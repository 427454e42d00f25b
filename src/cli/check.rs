// SPDX-License-Identifier: GPL-2.0-or-later
//! `ldirectord --check [CONFIG]`: validate a configuration.

use std::path::Path;

use crate::check::oracle;
use crate::config::{self, CheckType, Config, ConfigError, Diagnostic, Service, SystemEnvironment};

/// Prints every error and warning to stderr and a one-line summary to
/// stdout; exit 0 when the file is valid, 2 when it is not.
pub fn run(path: &Path) -> i32 {
    match config::parse_file(path, &SystemEnvironment::new()) {
        Ok(parsed) => {
            for warning in &parsed.warnings {
                eprintln!("{warning}");
            }
            let unsupported = unsupported_services(&parsed.config);
            if !unsupported.is_empty() {
                for diagnostic in &unsupported {
                    eprintln!("{diagnostic}");
                }
                return 2;
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

/// Virtuals whose negotiate check cannot run in this build: `oracle` (see
/// [`oracle`]), whether named by `service=` or derived from port 1521.
/// ldirectord accepts them; a real behind one would only ever be down, so
/// `--check` says so up front.
fn unsupported_services(config: &Config) -> Vec<Diagnostic> {
    config
        .virtuals
        .iter()
        .filter(|virt| virt.service == Service::Oracle)
        .filter(|virt| {
            matches!(
                virt.checktype(),
                CheckType::Negotiate | CheckType::Combined(_)
            )
        })
        .map(|virt| {
            let span = virt
                .service_directive
                .as_ref()
                .map_or_else(|| virt.span.clone(), |directive| directive.span.clone());
            Diagnostic::error(span, oracle::MESSAGE).help(oracle::HELP)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OfflineEnvironment;

    fn diagnostics(text: &str) -> Vec<String> {
        let parsed =
            config::parse_str("test.cf", text, &OfflineEnvironment).expect("valid for ldirectord");
        unsupported_services(&parsed.config)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn oracle_negotiate_is_rejected_at_its_service_line() {
        let found = diagnostics(
            "virtual=127.0.2.110:1521\n\treal=127.0.2.111:1521 gate\n\
             \tservice=oracle\n\tchecktype=negotiate\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("test.cf:3:2: error: service=oracle is not supported"),
            "{found:?}"
        );
    }

    #[test]
    fn oracle_without_a_negotiate_check_is_fine() {
        let found = diagnostics(
            "virtual=127.0.2.110:1521\n\treal=127.0.2.111:1521 gate\n\
             \tservice=oracle\n\tchecktype=connect\n",
        );
        assert!(found.is_empty(), "{found:?}");
    }
}
