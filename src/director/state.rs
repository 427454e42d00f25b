// SPDX-License-Identifier: GPL-2.0-or-later
//! The director's memory between reconciles: the managed virtuals of the
//! running config and the health of every real. Pure (no I/O): check
//! results and maintenance flags go in, the desired table, the status
//! report and health transitions come out.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::desired::DesiredTable;
use super::managed::{ManagedVirtual, RealKey};
use super::rules::{RealState, VirtualState};
use crate::check::threshold::{Health, Verdict};
use crate::daemon::status::{DaemonState, RealStatus, StatusReport, VirtualStatus};
use crate::ipvs::{ServiceEntry, ServiceKey};

/// Health and bookkeeping of one real.
#[derive(Debug, Clone)]
pub struct RealHealth {
    pub health: Health,
    /// Why it is in its current state ("connection refused", "adopted
    /// from the kernel", "maintenance", ...).
    pub reason: String,
    pub last_check: Option<SystemTime>,
    pub latency_ms: Option<f64>,
    pub checks_total: u64,
    pub failures_total: u64,
    /// The check's description (`negotiate:http`), for status output.
    /// Shared by every real of a virtual (a reload of 10,000 reals copied
    /// it 10,000 times).
    pub check: Arc<str>,
}

impl RealHealth {
    fn new(up: bool, reason: &str, check: Arc<str>) -> Self {
        RealHealth {
            health: Health::new(up),
            reason: reason.to_owned(),
            last_check: None,
            latency_ms: None,
            checks_total: 0,
            failures_total: 0,
            check,
        }
    }
}

/// A change of a real's readiness, for the log, monitorfile and alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub key: RealKey,
    pub up: bool,
    pub reason: String,
}

/// A check result for one real.
#[derive(Debug, Clone)]
pub struct Observation {
    pub key: RealKey,
    pub success: bool,
    pub reason: String,
    pub latency_ms: f64,
    pub at: SystemTime,
}

/// Maps keyed by config-derived keys (the operator's own addresses, not
/// network input): foldhash instead of SipHash, which was the largest
/// single cost of a reload of 10,000 reals.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// All managed virtuals with the health of their reals.
#[derive(Debug, Clone, Default)]
pub struct DirectorState {
    /// Read-only outside this module: `by_service` indexes it.
    pub virtuals: Vec<ManagedVirtual>,
    health: FastMap<RealKey, RealHealth>,
    /// Per virtual (by service key): whether no real was up at the last
    /// evaluation, to run `fallbackcommand` on the edges.
    all_down: FastMap<ServiceKey, bool>,
    /// Position in `virtuals` by service key: every check result looks its
    /// virtual up, thousands of times a second.
    by_service: FastMap<ServiceKey, usize>,
}

impl DirectorState {
    /// A state for `virtuals` where a real already in the kernel with a
    /// weight above zero starts up (so a restart drops no traffic) and any
    /// other starts down until its first check.
    pub fn adopt(
        virtuals: Vec<ManagedVirtual>,
        kernel: &[ServiceEntry],
        check_label: impl Fn(&ManagedVirtual) -> String,
    ) -> Self {
        DirectorState::build(virtuals, kernel, check_label, None)
    }

    /// The state for a new config: reals whose key and check did not
    /// change keep their health; new ones start as [`DirectorState::adopt`]
    /// would start them.
    pub fn reconfigure(
        &self,
        virtuals: Vec<ManagedVirtual>,
        kernel: &[ServiceEntry],
        check_label: impl Fn(&ManagedVirtual) -> String,
    ) -> Self {
        DirectorState::build(virtuals, kernel, check_label, Some(self))
    }

    /// [`DirectorState::adopt`], carrying over from `previous` the health
    /// of every real whose key and check label are unchanged, and each
    /// virtual's fallback state.
    fn build(
        virtuals: Vec<ManagedVirtual>,
        kernel: &[ServiceEntry],
        check_label: impl Fn(&ManagedVirtual) -> String,
        previous: Option<&DirectorState>,
    ) -> Self {
        let reals: usize = virtuals.iter().map(|v| v.reals.len()).sum();
        let mut health = FastMap::with_capacity_and_hasher(reals, Default::default());
        // Kernel reals carrying traffic, indexed once: a search per real
        // made adopting 1,000 services x 10 reals quadratic.
        let mut serving: HashSet<(ServiceKey, IpAddr, u16), foldhash::fast::RandomState> =
            HashSet::with_capacity_and_hasher(
                kernel.iter().map(|e| e.destinations.len()).sum(),
                Default::default(),
            );
        serving.extend(kernel.iter().flat_map(|e| {
            e.destinations
                .iter()
                .filter(|d| d.dest.weight > 0)
                .map(move |d| (e.service.key, d.dest.addr, d.dest.port))
        }));
        for v in &virtuals {
            let label: Arc<str> = Arc::from(check_label(v));
            for real in &v.reals {
                let key = v.real_key(real);
                let carried = previous
                    .and_then(|p| p.health.get(&key))
                    .filter(|old| old.check == label);
                let entry = match carried {
                    Some(old) => old.clone(),
                    None => {
                        let in_kernel = serving.contains(&(key.service, key.addr, key.port));
                        let reason = if in_kernel {
                            "adopted from the kernel table, awaiting first check"
                        } else {
                            "awaiting first check"
                        };
                        RealHealth::new(in_kernel, reason, label.clone())
                    }
                };
                health.insert(key, entry);
            }
        }
        let mut by_service = FastMap::with_capacity_and_hasher(virtuals.len(), Default::default());
        for (i, v) in virtuals.iter().enumerate() {
            // The first one wins, as a search in config order would find.
            by_service.entry(v.service.key).or_insert(i);
        }
        let mut state = DirectorState {
            virtuals,
            health,
            all_down: FastMap::with_capacity_and_hasher(reals, Default::default()),
            by_service,
        };
        for v in &state.virtuals {
            let down = state.virtual_all_down(v);
            let before = previous
                .and_then(|p| p.all_down.get(&v.service.key).copied())
                .unwrap_or(down);
            state.all_down.insert(v.service.key, before);
        }
        state
    }

    pub fn health(&self, key: &RealKey) -> Option<&RealHealth> {
        self.health.get(key)
    }

    /// Every real key the config names.
    pub fn keys(&self) -> impl Iterator<Item = &RealKey> {
        self.health.keys()
    }

    /// Records a check result; returns the transition if readiness flipped.
    pub fn observe(&mut self, obs: Observation) -> Option<Transition> {
        let threshold = self.virtual_of(&obs.key).map_or(1, |v| v.failurecount);
        let entry = self.health.get_mut(&obs.key)?;
        let was_ready = entry.health.ready();
        entry.checks_total += 1;
        if !obs.success {
            entry.failures_total += 1;
        }
        entry.last_check = Some(obs.at);
        entry.latency_ms = Some(obs.latency_ms);
        let verdict = entry.health.observe(obs.success, threshold);
        // In maintenance the reason stays "Server in maintenance".
        if entry.health.enabled() {
            entry.reason = match verdict {
                Verdict::SoftFailure {
                    failures,
                    threshold,
                } => {
                    format!("{} (soft failure {failures}/{threshold})", obs.reason)
                }
                _ => obs.reason,
            };
        }
        let ready = entry.health.ready();
        (ready != was_ready).then(|| Transition {
            key: obs.key,
            up: ready,
            reason: entry.reason.clone(),
        })
    }

    /// Maintenance (`maintenancedir`): a real in maintenance is down
    /// whatever its checks say. Returns the transition if readiness flipped.
    pub fn set_maintenance(&mut self, key: &RealKey, on: bool) -> Option<Transition> {
        let entry = self.health.get_mut(key)?;
        if entry.health.enabled() != on {
            return None;
        }
        let changed = entry.health.set_enabled(!on);
        if on {
            entry.reason = "Server in maintenance".to_owned();
        } else if entry.health.healthy() {
            entry.reason = "maintenance ended".to_owned();
        }
        changed.then(|| Transition {
            key: *key,
            up: entry.health.ready(),
            reason: entry.reason.clone(),
        })
    }

    fn virtual_all_down(&self, v: &ManagedVirtual) -> bool {
        !v.reals.iter().any(|r| {
            self.health
                .get(&v.real_key(r))
                .is_some_and(|h| h.health.ready())
        })
    }

    /// Virtuals whose "no real is up" state flipped since the last call,
    /// with the new state: `fallbackcommand start` on true, `stop` on false.
    pub fn fallback_edges(&mut self) -> Vec<(usize, bool)> {
        let mut edges = Vec::new();
        for (i, v) in self.virtuals.iter().enumerate() {
            let now = self.virtual_all_down(v);
            let before = self.all_down.insert(v.service.key, now);
            if before != Some(now) {
                edges.push((i, now));
            }
        }
        edges
    }

    /// What the kernel should hold now.
    pub fn desired(&self) -> DesiredTable {
        let mut table = DesiredTable::default();
        for v in &self.virtuals {
            let state = VirtualState {
                service: v.service.clone(),
                reals: v
                    .reals
                    .iter()
                    .map(|r| RealState {
                        dest: r.dest.clone(),
                        up: self
                            .health
                            .get(&v.real_key(r))
                            .is_some_and(|h| h.health.ready()),
                    })
                    .collect(),
                fallback: v.fallback.clone(),
                quiescent: v.quiescent,
                readd_quiescent: v.readd_quiescent,
            };
            table.insert(state.desired());
        }
        table
    }

    /// The services this state manages.
    pub fn managed_keys(&self) -> BTreeSet<ServiceKey> {
        self.virtuals.iter().map(|v| v.service.key).collect()
    }

    /// The report served on the control socket.
    pub fn report(
        &self,
        state: DaemonState,
        config: &str,
        reload_errors: &[String],
    ) -> StatusReport {
        StatusReport {
            state,
            pid: std::process::id(),
            config: config.to_owned(),
            reload_errors: reload_errors.to_vec(),
            virtuals: self
                .virtuals
                .iter()
                .map(|v| VirtualStatus {
                    key: v.service.key,
                    fallback_active: v.fallback.is_some() && self.virtual_all_down(v),
                    reals: v
                        .reals
                        .iter()
                        .filter_map(|r| {
                            let h = self.health.get(&v.real_key(r))?;
                            Some(RealStatus {
                                addr: r.dest.addr,
                                port: r.dest.port,
                                up: h.health.ready(),
                                reason: h.reason.clone(),
                                check: h.check.to_string(),
                                last_check: h.last_check.and_then(unix_seconds),
                                latency_ms: h.latency_ms,
                                weight: r.dest.weight,
                                checks_total: h.checks_total,
                                failures_total: h.failures_total,
                            })
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The virtual a real belongs to.
    pub fn virtual_of(&self, key: &RealKey) -> Option<&ManagedVirtual> {
        self.virtuals.get(*self.by_service.get(&key.service)?)
    }

    /// The configured port of a real (its kernel port may be the virtual's).
    pub fn config_port(&self, key: &RealKey) -> Option<u16> {
        self.virtual_of(key)?
            .reals
            .iter()
            .find(|r| r.dest.addr == key.addr && r.dest.port == key.port)
            .map(|r| r.config_port)
    }
}

fn unix_seconds(t: SystemTime) -> Option<f64> {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// `ip:port` or `[ip6]:port`, as logs and alerts spell a real.
pub fn addr_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_str, OfflineEnvironment};
    use crate::director::managed::managed_virtuals;
    use crate::director::RealIntent;

    fn state(text: &str) -> DirectorState {
        let config = parse_str("t.cf", text, &OfflineEnvironment)
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        DirectorState::adopt(managed_virtuals(&config), &[], |_| "connect".into())
    }

    fn obs(key: RealKey, success: bool) -> Observation {
        Observation {
            key,
            success,
            reason: if success {
                "ok".into()
            } else {
                "connection refused".into()
            },
            latency_ms: 1.0,
            at: SystemTime::now(),
        }
    }

    const TWO_REALS: &str = "failurecount=2\nquiescent=yes\nvirtual=10.0.0.1:80\n\
        \treal=10.0.1.1:80 masq\n\treal=10.0.1.2:80 masq\n\tfallback=127.0.0.1:80\n";

    #[test]
    fn failurecount_then_quiescent_then_fallback() {
        let mut s = state(TWO_REALS);
        let keys: Vec<RealKey> = s.virtuals[0]
            .reals
            .iter()
            .map(|r| s.virtuals[0].real_key(r))
            .collect();
        // Nothing up yet: only the fallback is present.
        let d = s.desired();
        let svc = d.services.values().next().unwrap();
        assert!(svc
            .reals
            .values()
            .any(|i| matches!(i, RealIntent::Present(d) if d.addr.to_string() == "127.0.0.1")));
        for k in &keys {
            assert_eq!(s.observe(obs(*k, true)).map(|t| t.up), Some(true));
        }
        assert_eq!(s.fallback_edges(), vec![(0, false)]);
        let d = s.desired();
        let svc = d.services.values().next().unwrap();
        assert_eq!(svc.reals.len(), 2, "fallback removed once a real is up");
        // One failure is soft, the second takes it down to weight 0.
        assert_eq!(s.observe(obs(keys[0], false)), None);
        assert!(s
            .health(&keys[0])
            .unwrap()
            .reason
            .contains("soft failure 1/2"));
        let t = s.observe(obs(keys[0], false)).expect("down");
        assert!(!t.up);
        assert_eq!(t.reason, "connection refused");
        let d = s.desired();
        let svc = d.services.values().next().unwrap();
        let intent = &svc.reals[&(keys[0].addr, keys[0].port)];
        assert!(matches!(intent, RealIntent::QuiescentIfPresent(d) if d.weight == 0));
        // Maintenance takes the other one down; now the fallback serves.
        assert!(s.set_maintenance(&keys[1], true).is_some());
        assert_eq!(s.fallback_edges(), vec![(0, true)]);
        let report = s.report(DaemonState::Running, "t.cf", &[]);
        assert!(report.virtuals[0].fallback_active);
        assert_eq!(report.virtuals[0].reals[1].reason, "Server in maintenance");
        // A success during maintenance does not bring it back.
        assert_eq!(s.observe(obs(keys[1], true)), None);
        assert!(s.set_maintenance(&keys[1], false).expect("back").up);
    }

    #[test]
    fn reconfigure_keeps_health_of_unchanged_reals() {
        let mut s = state(TWO_REALS);
        let k = s.virtuals[0].real_key(&s.virtuals[0].reals[0]);
        s.observe(obs(k, true));
        let config = parse_str("t.cf", TWO_REALS, &OfflineEnvironment)
            .unwrap()
            .config;
        let next = s.reconfigure(managed_virtuals(&config), &[], |_| "connect".into());
        assert!(next.health(&k).unwrap().health.ready());
        let changed = s.reconfigure(managed_virtuals(&config), &[], |_| "negotiate:http".into());
        assert!(
            !changed.health(&k).unwrap().health.ready(),
            "a changed check starts over"
        );
    }
}
