// SPDX-License-Identifier: GPL-2.0-or-later
//! The director's view of each real server, beside the kernel's rows
//! (`ipvs-ls --health`).
//!
//! The kernel only knows weights; whether a real is up, why, and when it
//! was last checked is known to the running director, which answers on its
//! control socket (`daemon::control`). Every instance in the run
//! directory is asked, so a host running several configs shows all of
//! them. A destination no instance manages gets `-`.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::daemon::control;
use crate::daemon::status::{RealStatus, StatusReport};
use crate::ipvs::ServiceKey;

/// Health of every real server the running directors report, keyed like
/// the kernel's destinations.
#[derive(Debug, Clone, Default)]
pub struct HealthIndex {
    reals: HashMap<(ServiceKey, IpAddr, u16), RealStatus>,
    fallback_active: HashSet<ServiceKey>,
    /// Instances that did not answer, as `socket: reason`.
    pub unreachable: Vec<String>,
    /// Sockets that answered.
    pub answered: Vec<PathBuf>,
    /// Unix time the index was built, for "checked 3s ago".
    now: f64,
}

impl HealthIndex {
    /// Asks every control socket in `run_dir` (blocking: a local
    /// round trip per instance with a 5 s timeout).
    pub fn collect(run_dir: &Path) -> Self {
        Self::collect_from(&control::sockets(run_dir))
    }

    /// Asks the given control sockets.
    pub fn collect_from(sockets: &[PathBuf]) -> Self {
        let mut reports = Vec::new();
        let mut unreachable = Vec::new();
        let mut answered = Vec::new();
        for socket in sockets {
            match control::status(socket) {
                Ok(report) => {
                    reports.push(report);
                    answered.push(socket.clone());
                }
                Err(error) => unreachable.push(format!("{}: {error}", socket.display())),
            }
        }
        let mut index = Self::from_reports(&reports, unix_now());
        index.unreachable = unreachable;
        index.answered = answered;
        index
    }

    /// Builds the index from status reports, as of Unix time `now`.
    pub fn from_reports(reports: &[StatusReport], now: f64) -> Self {
        let mut index = Self {
            now,
            ..Self::default()
        };
        for report in reports {
            for virtual_service in &report.virtuals {
                if virtual_service.fallback_active {
                    index.fallback_active.insert(virtual_service.key);
                }
                for real in &virtual_service.reals {
                    index
                        .reals
                        .insert((virtual_service.key, real.addr, real.port), real.clone());
                }
            }
        }
        index
    }

    pub fn real(&self, service: &ServiceKey, addr: IpAddr, port: u16) -> Option<&RealStatus> {
        self.reals.get(&(*service, addr, port))
    }

    pub fn fallback_active(&self, service: &ServiceKey) -> bool {
        self.fallback_active.contains(service)
    }

    /// The Health column: `up (3s ago) HTTP 200`, `down (1s ago)
    /// connection refused`, or `-` when no director manages it.
    pub fn cell(&self, service: &ServiceKey, addr: IpAddr, port: u16) -> String {
        let Some(real) = self.real(service, addr, port) else {
            return "-".to_owned();
        };
        let state = if real.up { "up" } else { "down" };
        let age = match real.last_check {
            Some(at) => format!("({} ago)", age_text(self.now - at)),
            None => "(not checked yet)".to_owned(),
        };
        let reason = real.reason.trim();
        if reason.is_empty() {
            format!("{state} {age}")
        } else {
            format!("{state} {age} {reason}")
        }
    }
}

/// `3s`, `2m05s`, `1h02m`; a clock step backwards reads as `0s`.
fn age_text(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds as u64
    } else {
        0
    };
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::status::{DaemonState, VirtualStatus};
    use crate::ipvs::Protocol;

    fn report() -> StatusReport {
        let key = ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "10.1.0.1".parse().unwrap(),
            port: 80,
        };
        let real = |addr: &str, up: bool, reason: &str, last_check: Option<f64>| RealStatus {
            addr: addr.parse().unwrap(),
            port: 8080,
            up,
            reason: reason.to_owned(),
            check: "negotiate:http".to_owned(),
            last_check,
            latency_ms: Some(1.5),
            weight: 1,
            checks_total: 10,
            failures_total: 1,
        };
        StatusReport {
            state: DaemonState::Running,
            pid: 42,
            config: "/etc/ha.d/web.cf".to_owned(),
            reload_errors: vec![],
            virtuals: vec![VirtualStatus {
                key,
                fallback_active: true,
                reals: vec![
                    real("10.2.0.1", true, "HTTP 200", Some(1000.0)),
                    real("10.2.0.2", false, "connection refused", Some(875.0)),
                    real("10.2.0.3", false, "", None),
                ],
            }],
        }
    }

    #[test]
    fn cells_show_state_age_and_reason() {
        let index = HealthIndex::from_reports(&[report()], 1003.4);
        let key = report().virtuals[0].key;
        let cell = |addr: &str, port| index.cell(&key, addr.parse().unwrap(), port);
        assert_eq!(cell("10.2.0.1", 8080), "up (3s ago) HTTP 200");
        assert_eq!(
            cell("10.2.0.2", 8080),
            "down (2m08s ago) connection refused"
        );
        assert_eq!(cell("10.2.0.3", 8080), "down (not checked yet)");
        // Not managed by the director (wrong port, unknown address).
        assert_eq!(cell("10.2.0.1", 80), "-");
        assert_eq!(cell("10.9.9.9", 8080), "-");
        assert!(index.fallback_active(&key));
    }

    #[test]
    fn ages_are_compact() {
        assert_eq!(age_text(-5.0), "0s");
        assert_eq!(age_text(59.9), "59s");
        assert_eq!(age_text(3600.0 + 120.0), "1h02m");
    }

    #[test]
    fn no_sockets_means_an_empty_index() {
        let dir = tempfile::tempdir().unwrap();
        let index = HealthIndex::collect(dir.path());
        assert!(index.answered.is_empty() && index.unreachable.is_empty());
        let key = report().virtuals[0].key;
        assert_eq!(index.cell(&key, "10.2.0.1".parse().unwrap(), 8080), "-");
    }

    /// A real control socket served by the daemon's own server code: the
    /// index is built from what comes over the wire.
    #[tokio::test]
    async fn collects_reports_over_the_control_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = control::socket_path(dir.path(), Path::new("/etc/ha.d/web.cf"));
        let listener = control::bind(&path).unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let reply = serde_json::to_string(&report()).unwrap();
        let server = tokio::spawn(control::serve(listener, stop.clone(), move |_| {
            let reply = reply.clone();
            async move { reply }
        }));
        // A socket nobody serves: reported, not fatal.
        let dead = dir.path().join("dead.cf.sock");
        drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
        let run_dir = dir.path().to_owned();
        let index = tokio::task::spawn_blocking(move || HealthIndex::collect(&run_dir))
            .await
            .unwrap();
        stop.cancel();
        server.await.unwrap();
        assert_eq!(index.answered, vec![path]);
        assert_eq!(index.unreachable.len(), 1, "{:?}", index.unreachable);
        assert!(index.unreachable[0].contains("dead.cf.sock"));
        let key = report().virtuals[0].key;
        let real = index.real(&key, "10.2.0.2".parse().unwrap(), 8080).unwrap();
        assert!(!real.up);
        assert_eq!(real.reason, "connection refused");
    }
}
