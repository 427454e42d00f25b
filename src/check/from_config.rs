// SPDX-License-Identifier: GPL-2.0-or-later
//! From the parsed configuration to the checks to run: one [`CheckSpec`]
//! per (virtual, real address), resolved as ldirectord resolves it, then
//! deduplicated so a real shared by several virtuals with the same check is
//! probed once per interval (ldirectord's "shared reals", L3885).
//!
//! The result, a [`CheckPlan`], is what the scheduler runs and `--probe`
//! prints; each distinct check lists the (virtual, real) pairs it decides,
//! with their failurecount, so the daemon can fan one result out.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, Config, Real, Virtual, VirtualAddr, VirtualProtocol};

use super::spec::{CheckKind, CheckSpec, HttpMethod, Protocol, Service, TlsVerify};

/// Identity of a distinct check: a hash of its [`CheckSpec`], so the same
/// check keeps the same id across a reload and its health carries over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpecId(pub u64);

impl std::fmt::Display for SpecId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One (virtual, real address) pair a check decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Index into `Config::virtuals`.
    pub virtual_index: usize,
    /// Index into that virtual's `reals` (a range line stands for several
    /// addresses, all with the same index).
    pub real_index: usize,
    /// The real's address and configured port (0 for fwmark reals written
    /// without one).
    pub real: SocketAddr,
    /// Consecutive failures that mark this real down in this virtual.
    pub failurecount: u32,
}

/// One distinct check and everyone who depends on it.
#[derive(Debug, Clone)]
pub struct PlannedCheck {
    pub id: SpecId,
    pub spec: Arc<CheckSpec>,
    /// How often to run it: the shortest checkinterval of its virtuals.
    pub interval: Duration,
    pub members: Vec<Member>,
}

/// Every distinct check of a configuration, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct CheckPlan {
    pub checks: Vec<PlannedCheck>,
}

impl CheckPlan {
    /// Builds the plan for `config`.
    pub fn from_config(config: &Config) -> CheckPlan {
        CheckPlan::build(config, spec_hash)
    }

    /// [`CheckPlan::from_config`] with the hash as a parameter, so tests
    /// can force collisions.
    fn build(config: &Config, hash: impl Fn(&CheckSpec) -> SpecId) -> CheckPlan {
        let reals: usize = config.virtuals.iter().map(|v| v.reals.len()).sum();
        let mut checks: Vec<PlannedCheck> = Vec::with_capacity(reals);
        // Position of each check by id. A spec is hashed once, for its id;
        // equal specs hash alike, so the spec already planned (if any) is
        // found by probing from that hash: each id taken by a different
        // spec moves the probe one up, as it moved the id of the spec that
        // came second.
        let mut by_id: HashMap<SpecId, usize, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(reals, Default::default());
        for (virtual_index, virt) in config.virtuals.iter().enumerate() {
            let interval = Duration::from_secs(virt.effective_checkinterval(&config.global).max(1));
            let failurecount = clamp_u32(virt.effective_failurecount(&config.global)).max(1);
            for (real_index, real) in virt.reals.iter().enumerate() {
                for ip in real.addresses() {
                    let spec = spec_for(config, virt, real, ip);
                    let member = Member {
                        virtual_index,
                        real_index,
                        real: SocketAddr::new(ip, real.port),
                        failurecount,
                    };
                    let mut id = hash(&spec);
                    loop {
                        match by_id.entry(id) {
                            Entry::Occupied(slot) => {
                                let check = &mut checks[*slot.get()];
                                if *check.spec == spec {
                                    check.interval = check.interval.min(interval);
                                    check.members.push(member);
                                    break;
                                }
                                // Two different specs hashed alike
                                // (astronomically unlikely): next id.
                                id = SpecId(id.0.wrapping_add(1));
                            }
                            Entry::Vacant(slot) => {
                                slot.insert(checks.len());
                                checks.push(PlannedCheck {
                                    id,
                                    spec: Arc::new(spec),
                                    interval,
                                    members: vec![member],
                                });
                                break;
                            }
                        }
                    }
                }
            }
        }
        CheckPlan { checks }
    }

    /// Position of each check by id, for lookups per result: the daemon
    /// handles thousands of results a second, too many for a linear search.
    pub fn index(&self) -> HashMap<SpecId, usize> {
        self.checks
            .iter()
            .enumerate()
            .map(|(position, check)| (check.id, position))
            .collect()
    }

    pub fn get(&self, id: SpecId) -> Option<&PlannedCheck> {
        self.checks.iter().find(|check| check.id == id)
    }

    pub fn len(&self) -> usize {
        self.checks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }
}

/// The spec's hash: the first candidate for its id.
///
/// A fixed seed, so the same spec hashes the same in every run of one
/// build (a reload needs that to keep a check and its health). foldhash's
/// quality variant: the id's low bits also spread first runs over the
/// interval. Not SipHash: hashing 10,000 specs with it was a fifth of a
/// reload's instructions, and these keys come from the operator's own
/// config, not from the network.
fn spec_hash(spec: &CheckSpec) -> SpecId {
    const SEED: u64 = 0x6c64_6972_6563_746f; // "ldirecto"
    SpecId(foldhash::quality::FixedState::with_seed(SEED).hash_one(spec))
}

fn clamp_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn service(service: config::Service) -> Service {
    match service {
        config::Service::Dns => Service::Dns,
        config::Service::Ftp => Service::Ftp,
        config::Service::Http => Service::Http,
        config::Service::Https => Service::Https,
        config::Service::HttpProxy => Service::HttpProxy,
        config::Service::Imap => Service::Imap,
        config::Service::Imaps => Service::Imaps,
        config::Service::Ldap => Service::Ldap,
        config::Service::Ldaps => Service::Ldaps,
        config::Service::Mysql => Service::Mysql,
        config::Service::Nntp => Service::Nntp,
        config::Service::None => Service::None,
        config::Service::Oracle => Service::Oracle,
        config::Service::Pgsql => Service::Pgsql,
        config::Service::Pop => Service::Pop,
        config::Service::Pops => Service::Pops,
        config::Service::Radius => Service::Radius,
        config::Service::Simpletcp => Service::SimpleTcp,
        config::Service::Sip => Service::Sip,
        config::Service::Smtp => Service::Smtp,
        config::Service::Submission => Service::Submission,
    }
}

fn protocol(protocol: VirtualProtocol) -> Protocol {
    match protocol {
        VirtualProtocol::Tcp => Protocol::Tcp,
        VirtualProtocol::Udp => Protocol::Udp,
        VirtualProtocol::Sctp => Protocol::Sctp,
        VirtualProtocol::Fwm => Protocol::Fwm,
    }
}

/// The check of one real address of one virtual, as ldirectord would run
/// it.
pub fn spec_for(config: &Config, virt: &Virtual, real: &Real, ip: IpAddr) -> CheckSpec {
    let global = &config.global;
    let svc = service(virt.service);
    let proto = protocol(virt.protocol);
    let checkcount = clamp_u32(virt.effective_checkcount(global)).max(1);
    let kind = match virt.checktype() {
        config::CheckType::Connect if proto == Protocol::Udp => {
            // UDP has no connection to open: ldirectord pings instead.
            CheckKind::Ping { count: checkcount }
        }
        config::CheckType::Connect => CheckKind::Connect,
        config::CheckType::Negotiate => CheckKind::Negotiate(svc),
        config::CheckType::Ping => CheckKind::Ping { count: checkcount },
        config::CheckType::Off => CheckKind::Off,
        config::CheckType::On => CheckKind::On,
        config::CheckType::External => CheckKind::External {
            command: PathBuf::from(virt.checkcommand()),
        },
        config::CheckType::ExternalPerl => CheckKind::ExternalPerl {
            script: PathBuf::from(virt.checkcommand()),
        },
        config::CheckType::Combined(connects) => CheckKind::Combined {
            connects: clamp_u32(connects),
            service: svc,
        },
    };
    let check_port = virt.check_port(real).unwrap_or(0);
    // Zero timeouts would fail every check at once; ldirectord rejects
    // them when parsing, this is belt and braces.
    let check_timeout = Duration::from_secs(virt.effective_checktimeout(global).max(1));
    let negotiate_timeout = Duration::from_secs(virt.effective_negotiatetimeout(global).max(1));

    let mut spec = CheckSpec::new(kind, SocketAddr::new(ip, check_port))
        .protocol(proto)
        .timeouts(check_timeout, negotiate_timeout)
        .http_method(match virt.httpmethod() {
            config::HttpMethod::Get => HttpMethod::Get,
            config::HttpMethod::Head => HttpMethod::Head,
        });
    if virt.sslverify() {
        spec = spec.tls_verify(TlsVerify::System);
    }
    // A real's own "REQ","RECV" pair replaces the virtual's (ldirectord
    // only takes it when both are given).
    spec = match (&real.request, &real.receive) {
        (Some(request), Some(receive)) => spec.real_request(request.clone(), receive.clone()),
        _ => spec.request(virt.request()).receive(virt.receive()),
    };
    if let Some(host) = &virt.virtualhost {
        spec = spec.virtualhost(host.value.clone());
    }
    spec.login = virt.login.as_ref().map(|s| s.value.clone());
    spec.passwd = virt.passwd.as_ref().map(|s| s.value.clone());
    spec.database = virt.database.as_ref().map(|s| s.value.clone());
    spec.secret = virt.secret.as_ref().map(|s| s.value.clone());

    // Only external checks see the virtual and the real's own port; for
    // every other kind they stay out of the spec so a real shared by
    // several virtuals is one check.
    if matches!(
        spec.kind,
        CheckKind::External { .. } | CheckKind::ExternalPerl { .. }
    ) {
        let (addr, port_or_mark) = match virt.addr {
            VirtualAddr::Addr { addr, port } => (Some(addr), u32::from(port)),
            VirtualAddr::Fwmark { mark, .. } => (None, mark),
        };
        spec = spec
            .virtual_service(addr, port_or_mark)
            .real_port(real.port);
    } else {
        spec = spec.real_port(check_port);
    }
    strip_unused(spec)
}

/// Clears the fields a check kind never reads, so specs that behave the
/// same compare equal (and dedupe).
fn strip_unused(mut spec: CheckSpec) -> CheckSpec {
    let negotiated = match &spec.kind {
        CheckKind::Negotiate(service) | CheckKind::Combined { service, .. } => Some(*service),
        _ => None,
    };
    let keep_exchange = !matches!(negotiated, None | Some(Service::None));
    if !keep_exchange {
        let timeouts = (spec.check_timeout, spec.negotiate_timeout);
        let base = CheckSpec::new(spec.kind.clone(), spec.target.addr)
            .protocol(spec.protocol)
            .timeouts(timeouts.0, timeouts.1);
        spec = CheckSpec {
            target: spec.target.clone(),
            ..base
        };
    }
    if !matches!(negotiated, Some(Service::Https)) {
        spec.tls_verify = TlsVerify::Off;
    }
    spec
}

/// `IP:PORT`, `[IPv6]:PORT`, or the fwmark as a string: how `--probe`
/// and the status output name a virtual.
pub fn virtual_label(virt: &Virtual) -> String {
    match virt.addr {
        VirtualAddr::Addr { addr, port } => SocketAddr::new(addr, port).to_string(),
        VirtualAddr::Fwmark { mark, .. } => mark.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_str, OfflineEnvironment};

    fn plan(text: &str) -> (Config, CheckPlan) {
        let parsed = parse_str("test.cf", text, &OfflineEnvironment).expect("config parses");
        let plan = CheckPlan::from_config(&parsed.config);
        (parsed.config, plan)
    }

    #[test]
    fn http_negotiate_with_ldirectord_defaults() {
        let (_, plan) = plan(
            "virtual=127.0.3.1:80\n\
             \treal=127.0.3.2:8080 gate\n\
             \trequest=\"index.html\"\n\
             \treceive=\"alive\"\n\
             \tvirtualhost=www.example.test\n",
        );
        assert_eq!(plan.len(), 1);
        let check = &plan.checks[0];
        let spec = &check.spec;
        assert_eq!(spec.kind, CheckKind::Negotiate(Service::Http));
        assert_eq!(spec.target.addr, "127.0.3.2:8080".parse().unwrap());
        assert_eq!(spec.request, "/index.html");
        assert_eq!(spec.receive, "alive");
        assert_eq!(spec.virtualhost.as_deref(), Some("www.example.test"));
        assert_eq!(spec.check_timeout, Duration::from_secs(5));
        assert_eq!(spec.negotiate_timeout, Duration::from_secs(30));
        assert_eq!(check.interval, Duration::from_secs(10));
        assert_eq!(check.members[0].failurecount, 1);
    }

    #[test]
    fn timeouts_resolve_as_ldirectord_does() {
        let (_, plan) = plan(
            "checktimeout=3\n\
             virtual=127.0.3.1:80\n\
             \treal=127.0.3.2:80 gate\n\
             virtual=127.0.3.1:81\n\
             \treal=127.0.3.2:81 gate\n\
             \tnegotiatetimeout=7\n",
        );
        // Global checktimeout only: both timeouts become 3.
        let first = &plan.checks[0].spec;
        assert_eq!(first.check_timeout, Duration::from_secs(3));
        assert_eq!(first.negotiate_timeout, Duration::from_secs(3));
        // The virtual's negotiatetimeout wins over the global checktimeout
        // for both.
        let second = &plan.checks[1].spec;
        assert_eq!(second.negotiate_timeout, Duration::from_secs(7));
        assert_eq!(second.check_timeout, Duration::from_secs(7));
    }

    #[test]
    fn shared_reals_are_checked_once() {
        let (_, plan) = plan(
            "virtual=127.0.3.1:80\n\
             \treal=127.0.3.2:80 gate\n\
             \tchecktype=connect\n\
             \tcheckinterval=5\n\
             virtual=127.0.3.9:80\n\
             \treal=127.0.3.2:80 masq 3\n\
             \tchecktype=connect\n\
             \tfailurecount=4\n",
        );
        assert_eq!(plan.len(), 1);
        let check = &plan.checks[0];
        assert_eq!(check.members.len(), 2);
        assert_eq!(check.interval, Duration::from_secs(5));
        assert_eq!(check.members[1].virtual_index, 1);
        assert_eq!(check.members[1].failurecount, 4);
        assert_eq!(plan.get(check.id).map(|c| c.members.len()), Some(2));
    }

    #[test]
    fn colliding_hashes_still_dedupe_and_get_distinct_ids() {
        let text = "virtual=127.0.3.1:80\n\
             \treal=127.0.3.2:80 gate\n\
             \treal=127.0.3.3:80 gate\n\
             \tchecktype=connect\n\
             virtual=127.0.3.9:80\n\
             \treal=127.0.3.3:80 gate\n\
             \treal=127.0.3.2:80 gate\n\
             \tchecktype=connect\n";
        let config = parse_str("test.cf", text, &OfflineEnvironment)
            .expect("config parses")
            .config;
        // Every spec hashes alike: ids are taken one after the other and
        // equal specs must still be found past the ones that differ.
        let plan = CheckPlan::build(&config, |_| SpecId(u64::MAX));
        assert_eq!(plan.len(), 2);
        assert_eq!(plan.checks[0].id, SpecId(u64::MAX));
        assert_eq!(plan.checks[1].id, SpecId(0));
        let members = |i: usize| -> Vec<(usize, usize)> {
            plan.checks[i]
                .members
                .iter()
                .map(|m| (m.virtual_index, m.real_index))
                .collect()
        };
        assert_eq!(members(0), vec![(0, 0), (1, 1)]);
        assert_eq!(members(1), vec![(0, 1), (1, 0)]);
        // The real hash gives the same grouping.
        let real = CheckPlan::from_config(&config);
        assert_eq!(real.len(), 2);
        assert_ne!(real.checks[0].id, real.checks[1].id);
    }

    #[test]
    fn external_checks_are_per_virtual() {
        let (_, plan) = plan(
            "virtual=127.0.3.1:80\n\
             \treal=127.0.3.2:80 gate\n\
             \tchecktype=external\n\
             \tcheckcommand=/usr/local/bin/check\n\
             virtual=127.0.3.9:80\n\
             \treal=127.0.3.2:80 gate\n\
             \tchecktype=external\n\
             \tcheckcommand=/usr/local/bin/check\n",
        );
        assert_eq!(plan.len(), 2);
        let spec = &plan.checks[1].spec;
        assert_eq!(spec.target.virtual_addr, Some("127.0.3.9".parse().unwrap()));
        assert_eq!(spec.target.virtual_port, 80);
    }

    #[test]
    fn udp_connect_pings_and_ranges_expand() {
        let (_, plan) = plan(
            "checkcount=3\n\
             virtual=127.0.3.1:53\n\
             \treal=127.0.3.10->127.0.3.12:53 gate\n\
             \tchecktype=connect\n",
        );
        assert_eq!(plan.len(), 3);
        for check in &plan.checks {
            assert_eq!(check.spec.kind, CheckKind::Ping { count: 3 });
            assert_eq!(check.spec.protocol, Protocol::Udp);
        }
        assert_eq!(
            plan.checks[2].members[0].real,
            "127.0.3.12:53".parse().unwrap()
        );
    }

    #[test]
    fn per_real_request_replaces_the_virtuals() {
        let (_, plan) = plan(
            "virtual=127.0.3.1:80\n\
             \treal=127.0.3.2:80 gate 1 \"/health\", \"ok\"\n\
             \treal=127.0.3.3:80 gate\n\
             \trequest=\"/\"\n\
             \treceive=\"root\"\n",
        );
        assert_eq!(plan.checks[0].spec.request, "/health");
        assert!(plan.checks[0].spec.request_per_real);
        assert_eq!(plan.checks[0].spec.receive, "ok");
        assert_eq!(plan.checks[1].spec.receive, "root");
    }

    #[test]
    fn fwmark_labels_and_default_check_port() {
        let (config, plan) = plan(
            "virtual=7\n\
             \treal=127.0.3.2 gate\n\
             \tservice=https\n\
             \tsslverify=yes\n",
        );
        assert_eq!(virtual_label(&config.virtuals[0]), "7");
        let spec = &plan.checks[0].spec;
        assert_eq!(spec.target.addr.port(), 443);
        assert_eq!(spec.protocol, Protocol::Fwm);
        assert_eq!(spec.tls_verify, TlsVerify::System);
    }

    #[test]
    fn the_same_spec_keeps_its_id() {
        let text = "virtual=127.0.3.1:80\n\treal=127.0.3.2:80 gate\n";
        let (_, a) = plan(text);
        let (_, b) = plan(text);
        assert_eq!(a.checks[0].id, b.checks[0].id);
        let (_, c) = plan("virtual=127.0.3.1:80\n\treal=127.0.3.2:80 gate\n\treceive=\"x\"\n");
        assert_ne!(a.checks[0].id, c.checks[0].id);
    }
}
