// SPDX-License-Identifier: GPL-2.0-or-later
//! What the daemon reports about itself over the control socket: used by
//! `ldirectord status`, `ipvs-ls --health`, and the OCF agent's monitor.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ipvs::ServiceKey;

/// ldirectord's daemon states (its `$DAEMON_STATUS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonState {
    Starting,
    Running,
    Reloading,
    Stopping,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub state: DaemonState,
    pub pid: u32,
    pub config: String,
    /// The last reload's errors, if the last reload was refused (the
    /// previous config keeps running).
    pub reload_errors: Vec<String>,
    pub virtuals: Vec<VirtualStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualStatus {
    pub key: ServiceKey,
    /// True while the fallback server is in the table.
    pub fallback_active: bool,
    pub reals: Vec<RealStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealStatus {
    pub addr: IpAddr,
    pub port: u16,
    pub up: bool,
    /// Why it is up or down: the last check's reason, "maintenance", ...
    pub reason: String,
    /// Check type and service, e.g. `negotiate:http`.
    pub check: String,
    /// Unix time of the last completed check, if any.
    pub last_check: Option<f64>,
    pub latency_ms: Option<f64>,
    /// The weight the config asks for when the real is up.
    pub weight: u32,
    /// Checks run and checks failed since the daemon started.
    pub checks_total: u64,
    pub failures_total: u64,
}

impl StatusReport {
    /// What `ldirectord status` prints below its "running" line: one block
    /// per virtual service, one line per real with its state and reason.
    pub fn render(&self, now_unix: f64) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "state: {:?}", self.state);
        for error in &self.reload_errors {
            let _ = writeln!(out, "last reload refused: {error}");
        }
        for virtual_status in &self.virtuals {
            let _ = writeln!(
                out,
                "{}{}",
                virtual_status.key,
                if virtual_status.fallback_active {
                    "  (fallback active: no real is up)"
                } else {
                    ""
                }
            );
            for real in &virtual_status.reals {
                let endpoint = match real.addr {
                    IpAddr::V4(a) => format!("{a}:{}", real.port),
                    IpAddr::V6(a) => format!("[{a}]:{}", real.port),
                };
                let age = real
                    .last_check
                    .map(|t| format!("{:.1}s ago", (now_unix - t).max(0.0)))
                    .unwrap_or_else(|| "never".to_owned());
                let _ = writeln!(
                    out,
                    "  -> {endpoint:<28} {:<4} weight {:<5} {:<18} last check {age:<10} {}",
                    if real.up { "up" } else { "down" },
                    real.weight,
                    real.check,
                    real.reason
                );
            }
        }
        out
    }

    /// Finds the health the director has for a kernel destination.
    pub fn real(&self, key: &ServiceKey, addr: IpAddr, port: u16) -> Option<&RealStatus> {
        self.virtuals
            .iter()
            .find(|v| v.key == *key)?
            .reals
            .iter()
            .find(|r| r.addr == addr && r.port == port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::Protocol;

    #[test]
    fn render_shows_every_real_with_state_and_reason() {
        let report = StatusReport {
            state: DaemonState::Running,
            pid: 42,
            config: "web.cf".into(),
            reload_errors: vec!["web.cf:3:1: error: bad".into()],
            virtuals: vec![VirtualStatus {
                key: ServiceKey::Addr {
                    protocol: Protocol::Tcp,
                    addr: "10.0.0.1".parse().unwrap(),
                    port: 80,
                },
                fallback_active: true,
                reals: vec![RealStatus {
                    addr: "10.0.1.1".parse().unwrap(),
                    port: 8080,
                    up: false,
                    reason: "connection refused".into(),
                    check: "negotiate:http".into(),
                    last_check: Some(100.0),
                    latency_ms: Some(1.0),
                    weight: 5,
                    checks_total: 3,
                    failures_total: 3,
                }],
            }],
        };
        let text = report.render(102.5);
        assert!(
            text.contains("last reload refused: web.cf:3:1: error: bad"),
            "{text}"
        );
        assert!(text.contains("TCP 10.0.0.1:80  (fallback active"), "{text}");
        let line = text.lines().find(|l| l.contains("10.0.1.1:8080")).unwrap();
        for part in [
            "down",
            "weight 5",
            "negotiate:http",
            "2.5s ago",
            "connection refused",
        ] {
            assert!(line.contains(part), "{part} missing in {line:?}");
        }
    }
}
