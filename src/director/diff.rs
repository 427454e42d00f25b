// SPDX-License-Identifier: GPL-2.0-or-later
//! The pure diff planner: desired table x kernel dump -> the operations that
//! turn one into the other. No I/O, so every rule is a table-driven test.
//!
//! Rules (ldirectord semantics, reference §3, minus its bookkeeping):
//! - a desired service missing from the kernel is added, then its reals;
//! - a desired service whose scheduler, flags, persistence or persistence
//!   engine differ is edited in place (connections survive an edit);
//! - inside a desired service, reals the config does not name are deleted,
//!   differing reals are edited, missing reals are added (except quiescent
//!   ones whose readd is off);
//! - a service that was managed before but is no longer desired is deleted;
//! - any other kernel service belongs to someone else and is left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use super::desired::{DesiredService, DesiredTable, RealIntent};
use crate::ipvs::{Destination, Service, ServiceEntry, ServiceFlags, ServiceKey};

/// One kernel operation. `apply` is the only consumer that touches the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    AddService(Service),
    EditService(Service),
    DelService(ServiceKey),
    AddDest(ServiceKey, Destination),
    EditDest(ServiceKey, Destination),
    DelDest(ServiceKey, IpAddr, u16),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddService(s) => write!(f, "add service {} scheduler {}", s.key, s.scheduler),
            Op::EditService(s) => write!(f, "edit service {} scheduler {}", s.key, s.scheduler),
            Op::DelService(k) => write!(f, "delete service {k}"),
            Op::AddDest(k, d) => write!(
                f,
                "add real {} to {k} ({:?}, weight {})",
                fmt_addr(d.addr, d.port),
                d.forward,
                d.weight
            ),
            Op::EditDest(k, d) => write!(
                f,
                "edit real {} in {k} ({:?}, weight {})",
                fmt_addr(d.addr, d.port),
                d.forward,
                d.weight
            ),
            Op::DelDest(k, a, p) => write!(f, "delete real {} from {k}", fmt_addr(*a, *p)),
        }
    }
}

fn fmt_addr(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Plans the operations that make the kernel hold `desired`.
///
/// `previously_managed` names services the director owned before (the last
/// config, at a reload): those absent from `desired` are deleted. Kernel
/// services in neither set are not ours and are never touched.
pub fn plan(
    desired: &DesiredTable,
    observed: &[ServiceEntry],
    previously_managed: &BTreeSet<ServiceKey>,
) -> Vec<Op> {
    let observed: BTreeMap<ServiceKey, &ServiceEntry> =
        observed.iter().map(|e| (e.service.key, e)).collect();
    let mut ops = Vec::new();

    for (key, want) in &desired.services {
        match observed.get(key) {
            None => {
                ops.push(Op::AddService(want.service.clone()));
                for intent in want.reals.values() {
                    if let RealIntent::Present(d) = intent {
                        ops.push(Op::AddDest(*key, d.clone()));
                    }
                }
            }
            Some(have) => {
                if !same_service(&want.service, &have.service) {
                    ops.push(Op::EditService(want.service.clone()));
                }
                plan_reals(*key, want, have, &mut ops);
            }
        }
    }

    for key in previously_managed {
        if !desired.services.contains_key(key) && observed.contains_key(key) {
            ops.push(Op::DelService(*key));
        }
    }
    ops
}

fn plan_reals(key: ServiceKey, want: &DesiredService, have: &ServiceEntry, ops: &mut Vec<Op>) {
    let have: BTreeMap<(IpAddr, u16), &Destination> = have
        .destinations
        .iter()
        .map(|e| ((e.dest.addr, e.dest.port), &e.dest))
        .collect();

    // Deletes first: a real moving between forwarding methods changes its
    // kernel key, and the delete must not follow the add of its successor.
    for (addr, port) in have.keys() {
        if !want.reals.contains_key(&(*addr, *port)) {
            ops.push(Op::DelDest(key, *addr, *port));
        }
    }
    for (id, intent) in &want.reals {
        let d = intent.destination();
        match (have.get(id), intent) {
            (Some(cur), _) if !same_dest(d, cur) => ops.push(Op::EditDest(key, d.clone())),
            (Some(_), _) => {}
            (None, RealIntent::Present(_)) => ops.push(Op::AddDest(key, d.clone())),
            (None, RealIntent::QuiescentIfPresent(_)) => {}
        }
    }
}

/// Compares what an edit can change. Timeout and netmask only mean
/// something for persistent services; the kernel's `HASHED` bit is its own
/// bookkeeping.
fn same_service(want: &Service, have: &Service) -> bool {
    let flags = |s: &Service| s.flags.0 & !ServiceFlags::HASHED;
    let persistent = want.flags.contains(ServiceFlags::PERSISTENT);
    want.scheduler == have.scheduler
        && flags(want) == flags(have)
        && want.pe_name == have.pe_name
        && (!persistent || (want.timeout == have.timeout && want.netmask == have.netmask))
}

fn same_dest(want: &Destination, have: &Destination) -> bool {
    want.forward == have.forward
        && want.weight == have.weight
        && want.upper_threshold == have.upper_threshold
        && want.lower_threshold == have.lower_threshold
        && (want.forward != crate::ipvs::ForwardMethod::Tunnel || want.tunnel == have.tunnel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::{
        ConnCounts, DestinationEntry, ForwardMethod, Protocol, Stats, TunnelSettings,
    };

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port,
        }
    }

    fn svc(port: u16, sched: &str) -> Service {
        Service {
            key: key(port),
            scheduler: sched.into(),
            flags: ServiceFlags(0),
            timeout: 0,
            netmask: 0xffff_ffff,
            pe_name: None,
        }
    }

    fn dest(ip: &str, port: u16, fwd: ForwardMethod, weight: u32) -> Destination {
        Destination {
            addr: ip.parse().unwrap(),
            port,
            forward: fwd,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
            tunnel: TunnelSettings::default(),
        }
    }

    fn entry(s: Service, dests: Vec<Destination>) -> ServiceEntry {
        ServiceEntry {
            service: s,
            stats: Stats::default(),
            destinations: dests
                .into_iter()
                .map(|d| DestinationEntry {
                    dest: d,
                    conns: ConnCounts::default(),
                    stats: Stats::default(),
                })
                .collect(),
        }
    }

    fn desired(s: Service, reals: Vec<RealIntent>) -> DesiredTable {
        let mut ds = DesiredService::new(s);
        for r in reals {
            ds.insert(r);
        }
        let mut t = DesiredTable::default();
        t.insert(ds);
        t
    }

    use ForwardMethod::{Masq, Route, Tunnel};
    use RealIntent::{Present, QuiescentIfPresent};

    struct Case {
        name: &'static str,
        desired: DesiredTable,
        observed: Vec<ServiceEntry>,
        managed: Vec<ServiceKey>,
        expect: Vec<Op>,
    }

    fn cases() -> Vec<Case> {
        let a = || dest("10.1.0.1", 80, Masq, 1);
        let b = || dest("10.1.0.2", 80, Masq, 1);
        vec![
            Case {
                name: "empty kernel: add service then its reals",
                desired: desired(svc(80, "wrr"), vec![Present(a()), Present(b())]),
                observed: vec![],
                managed: vec![],
                expect: vec![
                    Op::AddService(svc(80, "wrr")),
                    Op::AddDest(key(80), a()),
                    Op::AddDest(key(80), b()),
                ],
            },
            Case {
                name: "identical table: nothing to do",
                desired: desired(svc(80, "wrr"), vec![Present(a()), Present(b())]),
                observed: vec![entry(svc(80, "wrr"), vec![a(), b()])],
                managed: vec![],
                expect: vec![],
            },
            Case {
                name: "one weight changed: one edit",
                desired: desired(
                    svc(80, "wrr"),
                    vec![Present(a()), Present(dest("10.1.0.2", 80, Masq, 5))],
                ),
                observed: vec![entry(svc(80, "wrr"), vec![a(), b()])],
                managed: vec![],
                expect: vec![Op::EditDest(key(80), dest("10.1.0.2", 80, Masq, 5))],
            },
            Case {
                name: "real not in config is removed from a managed service",
                desired: desired(svc(80, "wrr"), vec![Present(a())]),
                observed: vec![entry(svc(80, "wrr"), vec![a(), b()])],
                managed: vec![],
                expect: vec![Op::DelDest(key(80), "10.1.0.2".parse().unwrap(), 80)],
            },
            Case {
                name: "scheduler changed: service edited, reals untouched",
                desired: desired(svc(80, "lc"), vec![Present(a())]),
                observed: vec![entry(svc(80, "wrr"), vec![a()])],
                managed: vec![],
                expect: vec![Op::EditService(svc(80, "lc"))],
            },
            Case {
                name: "quiescent real present: weight set to 0",
                desired: desired(
                    svc(80, "wrr"),
                    vec![
                        Present(a()),
                        QuiescentIfPresent(dest("10.1.0.2", 80, Masq, 0)),
                    ],
                ),
                observed: vec![entry(svc(80, "wrr"), vec![a(), b()])],
                managed: vec![],
                expect: vec![Op::EditDest(key(80), dest("10.1.0.2", 80, Masq, 0))],
            },
            Case {
                name: "quiescent real missing without readd: not added",
                desired: desired(
                    svc(80, "wrr"),
                    vec![
                        Present(a()),
                        QuiescentIfPresent(dest("10.1.0.2", 80, Masq, 0)),
                    ],
                ),
                observed: vec![entry(svc(80, "wrr"), vec![a()])],
                managed: vec![],
                expect: vec![],
            },
            Case {
                name: "gate real is matched under the virtual's port",
                desired: desired(
                    svc(80, "wrr"),
                    vec![Present(dest("10.1.0.3", 8080, Route, 1))],
                ),
                observed: vec![entry(svc(80, "wrr"), vec![dest("10.1.0.3", 80, Route, 1)])],
                managed: vec![],
                expect: vec![],
            },
            Case {
                name: "masq to gate: old key deleted before the new one is added",
                desired: desired(
                    svc(80, "wrr"),
                    vec![Present(dest("10.1.0.3", 8080, Route, 1))],
                ),
                observed: vec![entry(svc(80, "wrr"), vec![dest("10.1.0.3", 8080, Masq, 1)])],
                managed: vec![],
                expect: vec![
                    Op::DelDest(key(80), "10.1.0.3".parse().unwrap(), 8080),
                    Op::AddDest(key(80), dest("10.1.0.3", 80, Route, 1)),
                ],
            },
            Case {
                name: "forwarding method edited in place when the key stays",
                desired: desired(
                    svc(80, "wrr"),
                    vec![Present(dest("10.1.0.3", 80, Tunnel, 1))],
                ),
                observed: vec![entry(svc(80, "wrr"), vec![dest("10.1.0.3", 80, Route, 1)])],
                managed: vec![],
                expect: vec![Op::EditDest(key(80), dest("10.1.0.3", 80, Tunnel, 1))],
            },
            Case {
                name: "unmanaged kernel service is left alone",
                desired: desired(svc(80, "wrr"), vec![Present(a())]),
                observed: vec![
                    entry(svc(80, "wrr"), vec![a()]),
                    entry(svc(443, "rr"), vec![b()]),
                ],
                managed: vec![],
                expect: vec![],
            },
            Case {
                name: "previously managed service gone from config is deleted",
                desired: desired(svc(80, "wrr"), vec![Present(a())]),
                observed: vec![
                    entry(svc(80, "wrr"), vec![a()]),
                    entry(svc(443, "rr"), vec![b()]),
                ],
                managed: vec![key(80), key(443)],
                expect: vec![Op::DelService(key(443))],
            },
            Case {
                name: "previously managed service already gone: nothing",
                desired: DesiredTable::default(),
                observed: vec![],
                managed: vec![key(443)],
                expect: vec![],
            },
            Case {
                name: "kernel HASHED flag is not a difference",
                desired: desired(svc(80, "wrr"), vec![]),
                observed: vec![entry(
                    Service {
                        flags: ServiceFlags(ServiceFlags::HASHED),
                        ..svc(80, "wrr")
                    },
                    vec![],
                )],
                managed: vec![],
                expect: vec![],
            },
            Case {
                name: "persistence timeout change is an edit",
                desired: desired(
                    Service {
                        flags: ServiceFlags(ServiceFlags::PERSISTENT),
                        timeout: 600,
                        ..svc(80, "wrr")
                    },
                    vec![],
                ),
                observed: vec![entry(
                    Service {
                        flags: ServiceFlags(ServiceFlags::PERSISTENT | ServiceFlags::HASHED),
                        timeout: 300,
                        ..svc(80, "wrr")
                    },
                    vec![],
                )],
                managed: vec![],
                expect: vec![Op::EditService(Service {
                    flags: ServiceFlags(ServiceFlags::PERSISTENT),
                    timeout: 600,
                    ..svc(80, "wrr")
                })],
            },
        ]
    }

    #[test]
    fn planner_table() {
        for c in cases() {
            let managed: BTreeSet<ServiceKey> = c.managed.into_iter().collect();
            let got = plan(&c.desired, &c.observed, &managed);
            assert_eq!(got, c.expect, "case: {}", c.name);
        }
    }

    #[test]
    fn planning_the_result_again_is_empty() {
        // Applying the plan to the observed table and planning again must
        // converge: the planner never asks for work it would undo.
        for c in cases() {
            let managed: BTreeSet<ServiceKey> = c.managed.into_iter().collect();
            let ops = plan(&c.desired, &c.observed, &managed);
            let after = simulate(&c.observed, &ops);
            assert_eq!(
                plan(&c.desired, &after, &managed),
                vec![],
                "case: {}",
                c.name
            );
        }
    }

    /// A model of the kernel's table, to check convergence.
    fn simulate(observed: &[ServiceEntry], ops: &[Op]) -> Vec<ServiceEntry> {
        let mut t: BTreeMap<ServiceKey, ServiceEntry> = observed
            .iter()
            .map(|e| (e.service.key, e.clone()))
            .collect();
        for op in ops {
            match op {
                Op::AddService(s) | Op::EditService(s) => {
                    let e = t.entry(s.key).or_insert_with(|| entry(s.clone(), vec![]));
                    e.service = s.clone();
                }
                Op::DelService(k) => {
                    t.remove(k);
                }
                Op::AddDest(k, d) | Op::EditDest(k, d) => {
                    let e = t.get_mut(k).expect("dest op on a missing service");
                    e.destinations
                        .retain(|x| (x.dest.addr, x.dest.port) != (d.addr, d.port));
                    e.destinations.push(DestinationEntry {
                        dest: d.clone(),
                        conns: ConnCounts::default(),
                        stats: Stats::default(),
                    });
                }
                Op::DelDest(k, a, p) => {
                    let e = t.get_mut(k).expect("dest op on a missing service");
                    e.destinations
                        .retain(|x| (x.dest.addr, x.dest.port) != (*a, *p));
                }
            }
        }
        t.into_values().collect()
    }
}
