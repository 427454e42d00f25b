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
