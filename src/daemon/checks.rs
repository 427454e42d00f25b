// SPDX-License-Identifier: GPL-2.0-or-later
//! Glue from the config to running checks: one task per distinct check,
//! each on its virtual's interval with a jittered start, every result sent
//! to the director as an [`Observation`] for each real that shares it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::check::{self, CheckKind, CheckSpec, HttpMethod, Protocol, TlsVerify};
use crate::config::{self, CheckType, Config, Real, Virtual, VirtualAddr, VirtualProtocol};
use crate::director::managed::{kernel_port, service_key, RealKey};
use crate::director::state::Observation;

/// The check of one real of one virtual.
#[derive(Debug, Clone)]
pub struct PlannedCheck {
    pub key: RealKey,
    pub spec: CheckSpec,
    pub interval: Duration,
    /// `negotiate:http`, `connect`, ... for status output.
    pub label: String,
}

/// ldirectord's description of a virtual's check (`negotiate:http`).
pub fn check_label(v: &Virtual) -> String {
    match v.checktype() {
        CheckType::Negotiate => format!("negotiate:{}", v.service),
        CheckType::Combined(n) => format!("combined({n}):{}", v.service),
        CheckType::External | CheckType::ExternalPerl => {
            format!("{}:{}", v.checktype().as_str(), v.checkcommand())
        }
        other => other.as_str().to_owned(),
    }
}

/// Every check the config asks for, one per (virtual, real address).
pub fn plan(config: &Config) -> Vec<PlannedCheck> {
    let mut out = Vec::new();
    for v in &config.virtuals {
        let key = service_key(v);
        let interval = Duration::from_secs(v.effective_checkinterval(&config.global).max(1));
        for real in &v.reals {
            for addr in real.addresses() {
                out.push(PlannedCheck {
                    key: RealKey {
                        service: key,
                        addr,
                        port: kernel_port(&key, real.forward, real.port),
                    },
                    spec: spec_for(config, v, real, addr),
                    interval,
                    label: check_label(v),
                });
            }
        }
    }
    out
}

fn spec_for(config: &Config, v: &Virtual, real: &Real, addr: IpAddr) -> CheckSpec {
    let global = &config.global;
    let service = check::Service::from_str(v.service.as_str()).unwrap_or(check::Service::None);
    let kind = match v.checktype() {
        CheckType::Connect => CheckKind::Connect,
        CheckType::Negotiate => CheckKind::Negotiate(service),
        CheckType::Ping => CheckKind::Ping {
            count: u32::try_from(v.effective_checkcount(global)).unwrap_or(1),
        },
        CheckType::External => CheckKind::External {
            command: PathBuf::from(v.checkcommand()),
        },
        CheckType::ExternalPerl => CheckKind::ExternalPerl {
            script: PathBuf::from(v.checkcommand()),
        },
        CheckType::On => CheckKind::On,
        CheckType::Off => CheckKind::Off,
        CheckType::Combined(n) => CheckKind::Combined {
            connects: u32::try_from(n).unwrap_or(u32::MAX),
            service,
        },
    };
    let protocol = match v.protocol {
        VirtualProtocol::Tcp => Protocol::Tcp,
        VirtualProtocol::Udp => Protocol::Udp,
        VirtualProtocol::Sctp => Protocol::Sctp,
        VirtualProtocol::Fwm => Protocol::Fwm,
    };
    let port = v.check_port(real).unwrap_or(real.port);
    let (vaddr, vport) = match v.addr {
        VirtualAddr::Addr { addr, port } => (Some(addr), u32::from(port)),
        VirtualAddr::Fwmark { mark, .. } => (None, mark),
    };
    let mut spec = CheckSpec::new(kind, SocketAddr::new(addr, port))
        .protocol(protocol)
        .virtual_service(vaddr, vport)
        .real_port(real.port)
        .http_method(match v.httpmethod() {
            config::HttpMethod::Get => HttpMethod::Get,
            config::HttpMethod::Head => HttpMethod::Head,
        })
        .timeouts(
            Duration::from_secs(v.effective_checktimeout(global)),
            Duration::from_secs(v.effective_negotiatetimeout(global)),
        );
    spec = match (&real.request, &real.receive) {
        (Some(request), receive) => {
            spec.real_request(request.clone(), receive.clone().unwrap_or_default())
        }
        _ => spec.request(v.request()).receive(v.receive()),
    };
    if let Some(host) = &v.virtualhost {
        spec = spec.virtualhost(host.value.clone());
    }
    if let Some(login) = &v.login {
        let passwd = v
            .passwd
            .as_ref()
            .map(|p| p.value.clone())
            .unwrap_or_default();
        spec = spec.login(login.value.clone(), passwd);
    }
    if let Some(database) = &v.database {
        spec = spec.database(database.value.clone());
    }
    if let Some(secret) = &v.secret {
        spec = spec.secret(secret.value.clone());
    }
    if v.sslverify() {
        spec = spec.tls_verify(TlsVerify::System);
    }
    spec
}

/// Starts one task per distinct spec; results arrive on the returned
/// channel until `stop` is cancelled.
pub fn spawn(planned: Vec<PlannedCheck>, stop: CancellationToken) -> mpsc::Receiver<Observation> {
    let (tx, rx) = mpsc::channel(1024);
    let mut groups: HashMap<CheckSpec, (Duration, Vec<RealKey>)> = HashMap::new();
    for p in planned {
        let entry = groups.entry(p.spec).or_insert((p.interval, Vec::new()));
        entry.0 = entry.0.min(p.interval);
        entry.1.push(p.key);
    }
    for (index, (spec, (interval, keys))) in groups.into_iter().enumerate() {
        let tx = tx.clone();
        let stop = stop.clone();
        // Spread first runs over a second (or the interval, if shorter)
        // so a thousand checks do not fire in the same millisecond; the
        // index keeps the spread deterministic without a random source.
        let spread_ms = interval.as_millis().min(1000) as u64;
        let offset = Duration::from_millis((index as u64 * 7919) % spread_ms.max(1));
        tokio::spawn(run_one(spec, interval, keys, offset, tx, stop));
    }
    rx
}

async fn run_one(
    spec: CheckSpec,
    interval: Duration,
    keys: Vec<RealKey>,
    offset: Duration,
    tx: mpsc::Sender<Observation>,
    stop: CancellationToken,
) {
    let checker = check::build_checker(&spec);
    // Last line of defence on top of the checker's own timeouts.
    let budget = spec.probe_budget() + Duration::from_secs(1);
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = tokio::time::sleep(offset) => {}
    }
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let started = Instant::now();
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            r = check::within(budget, checker.check(&spec.target)) => r,
        };
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (success, reason) = match result {
            Ok(()) => (true, "check succeeded".to_owned()),
            Err(error) => (false, error.to_string()),
        };
        for key in &keys {
            let obs = Observation {
                key: *key,
                success,
                reason: reason.clone(),
                latency_ms,
                at: SystemTime::now(),
            };
            if tx.send(obs).await.is_err() {
                return;
            }
        }
    }
}

/// The longest first check of the plan: how long the daemon waits for a
/// first result from every real before it reports ready.
pub fn first_round_budget(planned: &[PlannedCheck]) -> Duration {
    planned
        .iter()
        .map(|p| p.spec.probe_budget())
        .max()
        .unwrap_or_default()
        + Duration::from_secs(2)
}
