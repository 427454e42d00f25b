// SPDX-License-Identifier: GPL-2.0-or-later
//! `ipvs-ls --json`: the kernel table as one JSON document.
//!
//! The schema is a contract for scripts and monitoring, so it is built
//! from dedicated view types here rather than by serialising the internal
//! model: the model may change, this may only grow. Rules:
//! - `"schema": 1` names this layout; a change that removes or renames a
//!   field, or changes a type, bumps it. New fields may appear without a
//!   bump, so readers must ignore fields they do not know.
//! - Services and destinations come in ipvsadm's order (`--nosort`: the
//!   kernel's).
//! - Addresses are strings (`"10.0.0.1"`, `"2001:db8::1"`), never
//!   bracketed; absent values are `null`, never omitted.
//! - Counters are unsigned 64-bit integers; readers that parse JSON
//!   numbers as doubles lose precision above 2^53.
//!
//! The full field list, with an example, is in `docs/ipvs-ls.md`.

use std::net::IpAddr;

use serde::Serialize;

use crate::inspect::format::{forward_name, scheduler_flag_names};
use crate::inspect::health::HealthIndex;
use crate::inspect::names::inet_ntop6;
use crate::ipvs::{
    AddressFamily, DestinationEntry, ForwardMethod, IpvsInfo, ServiceEntry, ServiceFlags,
    ServiceKey, Stats, SyncDaemon, SyncState, Timeouts, TunnelType,
};

/// Version of the layout below.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Document {
    pub schema: u32,
    /// IPVS version (`"1.2.1"`).
    pub version: String,
    /// Size of the kernel's connection hash table.
    pub conn_table_size: u32,
    /// Connection timeouts in seconds.
    pub timeouts: Option<TimeoutsView>,
    /// Running connection-sync daemons.
    pub sync_daemons: Vec<SyncDaemonView>,
    /// Whether health was asked for (`--health`), and which director
    /// instances answered or failed.
    pub health: Option<HealthSourcesView>,
    pub services: Vec<ServiceView>,
}

#[derive(Debug, Serialize)]
pub struct TimeoutsView {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

#[derive(Debug, Serialize)]
pub struct SyncDaemonView {
    /// `"master"` or `"backup"`.
    pub state: &'static str,
    pub mcast_interface: String,
    pub sync_id: u32,
    pub max_length: Option<u16>,
    pub mcast_group: Option<String>,
    pub mcast_port: Option<u16>,
    pub mcast_ttl: Option<u8>,
}

#[derive(Debug, Serialize)]
pub struct HealthSourcesView {
    /// Control sockets that answered.
    pub answered: Vec<String>,
    /// Control sockets that did not, with the reason.
    pub unreachable: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ServiceView {
    /// Display name, e.g. `"TCP 10.0.0.1:80"`, `"FWM 5 IPv6"` (as
    /// ldirector's messages spell services): handy as a map key.
    pub name: String,
    /// `"inet"` or `"inet6"`.
    pub family: &'static str,
    /// `"tcp"`, `"udp"`, `"sctp"`; `null` for firewall-mark services.
    pub protocol: Option<&'static str>,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub fwmark: Option<u32>,
    pub scheduler: String,
    pub flags: ServiceFlagsView,
    /// `null` unless the service is persistent.
    pub persistence: Option<PersistenceView>,
    pub stats: StatsView,
    /// The director has swapped in the fallback server (`--health`
    /// only; `null` without it).
    pub fallback_active: Option<bool>,
    pub destinations: Vec<DestinationView>,
}

#[derive(Debug, Serialize)]
pub struct ServiceFlagsView {
    /// The kernel's flag word (`IP_VS_SVC_F_*`, without `HASHED`).
    pub raw: u32,
    pub persistent: bool,
    pub one_packet: bool,
    /// Scheduler flags by ipvsadm's names (`"sh-port"`, `"flag-1"`).
    pub scheduler: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct PersistenceView {
    /// Seconds.
    pub timeout: u32,
    /// IPv4: a dotted mask (`"255.255.255.0"`); IPv6: a prefix length
    /// as a string (`"64"`).
    pub netmask: String,
    /// Persistence engine (`"sip"`), `null` if none.
    pub engine: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StatsView {
    pub connections: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Per-second rates from the kernel's estimator.
    pub connections_per_second: u64,
    pub packets_in_per_second: u64,
    pub packets_out_per_second: u64,
    pub bytes_in_per_second: u64,
    pub bytes_out_per_second: u64,
}

#[derive(Debug, Serialize)]
pub struct DestinationView {
    pub address: String,
    pub family: &'static str,
    pub port: u16,
    /// `"masq"`, `"local"`, `"tunnel"`, `"route"`, `"bypass"`.
    pub forward: &'static str,
    /// ipvsadm's column text (`"Masq"`, `"Route"`, ...).
    pub forward_name: Option<&'static str>,
    pub weight: u32,
    /// 0 = no threshold.
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    /// `null` unless `forward` is `"tunnel"`.
    pub tunnel: Option<TunnelView>,
    pub active_connections: u32,
    pub inactive_connections: u32,
    pub persistent_connections: u32,
    pub stats: StatsView,
    /// The director's view (`--health` only; `null` without it or when
    /// no running director manages this destination).
    pub health: Option<HealthView>,
}

#[derive(Debug, Serialize)]
pub struct TunnelView {
    /// `"ipip"`, `"gue"`, `"gre"`.
    #[serde(rename = "type")]
    pub tun_type: &'static str,
    /// GUE port; `null` for other types.
    pub port: Option<u16>,
    /// `"nocsum"`, `"csum"`, `"remcsum"` (`null` for ipip).
    pub checksum: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct HealthView {
    pub up: bool,
    pub reason: String,
    /// Check type and service, e.g. `"negotiate:http"`.
    pub check: String,
    /// Unix time (seconds) of the last completed check.
    pub last_check: Option<f64>,
    pub latency_ms: Option<f64>,
    /// The weight the configuration gives this real when it is up.
    pub configured_weight: u32,
}

fn family_name(af: AddressFamily) -> &'static str {
    match af {
        AddressFamily::Inet => "inet",
        AddressFamily::Inet6 => "inet6",
    }
}

fn address_text(addr: &IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => inet_ntop6(a),
    }
}

impl From<&Stats> for StatsView {
    fn from(s: &Stats) -> Self {
        Self {
            connections: s.conns,
            packets_in: s.inpkts,
            packets_out: s.outpkts,
            bytes_in: s.inbytes,
            bytes_out: s.outbytes,
            connections_per_second: s.cps,
            packets_in_per_second: s.inpps,
            packets_out_per_second: s.outpps,
            bytes_in_per_second: s.inbps,
            bytes_out_per_second: s.outbps,
        }
    }
}

impl From<&Timeouts> for TimeoutsView {
    fn from(t: &Timeouts) -> Self {
        Self {
            tcp: t.tcp,
            tcp_fin: t.tcp_fin,
            udp: t.udp,
        }
    }
}

impl From<&SyncDaemon> for SyncDaemonView {
    fn from(d: &SyncDaemon) -> Self {
        Self {
            state: match d.state {
                SyncState::Master => "master",
                SyncState::Backup => "backup",
            },
            mcast_interface: d.mcast_ifname.clone(),
            sync_id: d.sync_id,
            max_length: Some(d.sync_maxlen).filter(|v| *v != 0),
            mcast_group: d.mcast_group.as_ref().map(address_text),
            mcast_port: Some(d.mcast_port).filter(|v| *v != 0),
            mcast_ttl: Some(d.mcast_ttl).filter(|v| *v != 0),
        }
    }
}

fn checksum_name(flags: u16) -> String {
    match flags {
        0 => "nocsum".to_owned(),
        1 => "csum".to_owned(),
        2 => "remcsum".to_owned(),
        other => format!("unknown-{other}"),
    }
}

fn tunnel_view(dest: &DestinationEntry) -> Option<TunnelView> {
    if dest.dest.forward != ForwardMethod::Tunnel {
        return None;
    }
    let t = &dest.dest.tunnel;
    Some(match t.tun_type {
        TunnelType::Ipip => TunnelView {
            tun_type: "ipip",
            port: None,
            checksum: None,
        },
        TunnelType::Gue => TunnelView {
            tun_type: "gue",
            port: Some(t.port),
            checksum: Some(checksum_name(t.flags)),
        },
        TunnelType::Gre => TunnelView {
            tun_type: "gre",
            port: None,
            checksum: Some(checksum_name(t.flags)),
        },
    })
}

fn forward_id(forward: ForwardMethod) -> &'static str {
    match forward {
        ForwardMethod::Masq => "masq",
        ForwardMethod::Local => "local",
        ForwardMethod::Tunnel => "tunnel",
        ForwardMethod::Route => "route",
        ForwardMethod::Bypass => "bypass",
    }
}

fn destination_view(
    service: &ServiceKey,
    entry: &DestinationEntry,
    health: Option<&HealthIndex>,
) -> DestinationView {
    let d = &entry.dest;
    DestinationView {
        address: address_text(&d.addr),
        family: family_name(AddressFamily::of(&d.addr)),
        port: d.port,
        forward: forward_id(d.forward),
        forward_name: forward_name(d.forward),
        weight: d.weight,
        upper_threshold: d.upper_threshold,
        lower_threshold: d.lower_threshold,
        tunnel: tunnel_view(entry),
        active_connections: entry.conns.active,
        inactive_connections: entry.conns.inactive,
        persistent_connections: entry.conns.persistent,
        stats: StatsView::from(&entry.stats),
        health: health
            .and_then(|h| h.real(service, d.addr, d.port))
            .map(|r| HealthView {
                up: r.up,
                reason: r.reason.clone(),
                check: r.check.clone(),
                last_check: r.last_check,
                latency_ms: r.latency_ms,
                configured_weight: r.weight,
            }),
    }
}

/// The JSON view of one service.
pub fn service_view(entry: &ServiceEntry, health: Option<&HealthIndex>) -> ServiceView {
    let s = &entry.service;
    let (protocol, address, port, fwmark) = match s.key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => (
            Some(match protocol {
                crate::ipvs::Protocol::Tcp => "tcp",
                crate::ipvs::Protocol::Udp => "udp",
                crate::ipvs::Protocol::Sctp => "sctp",
            }),
            Some(address_text(&addr)),
            Some(port),
            None,
        ),
        ServiceKey::Fwmark { mark, .. } => (None, None, None, Some(mark)),
    };
    let persistent = s.flags.contains(ServiceFlags::PERSISTENT);
    ServiceView {
        name: s.key.to_string(),
        family: family_name(s.key.af()),
        protocol,
        address,
        port,
        fwmark,
        scheduler: s.scheduler.clone(),
        flags: ServiceFlagsView {
            raw: s.flags.0,
            persistent,
            one_packet: s.flags.contains(ServiceFlags::ONEPACKET),
            scheduler: scheduler_flag_names(&s.scheduler, s.flags),
        },
        persistence: persistent.then(|| PersistenceView {
            timeout: s.timeout,
            netmask: match s.key.af() {
                AddressFamily::Inet => std::net::Ipv4Addr::from(s.netmask).to_string(),
                AddressFamily::Inet6 => s.netmask.to_string(),
            },
            engine: s.pe_name.clone().filter(|pe| !pe.is_empty()),
        }),
        stats: StatsView::from(&entry.stats),
        fallback_active: health.map(|h| h.fallback_active(&s.key)),
        destinations: entry
            .destinations
            .iter()
            .map(|d| destination_view(&s.key, d, health))
            .collect(),
    }
}

/// Everything `--json` prints.
pub fn document(
    info: &IpvsInfo,
    timeouts: Option<&Timeouts>,
    daemons: &[SyncDaemon],
    services: &[ServiceEntry],
    health: Option<&HealthIndex>,
) -> Document {
    Document {
        schema: SCHEMA_VERSION,
        version: info.version_string(),
        conn_table_size: info.conn_table_size,
        timeouts: timeouts.map(TimeoutsView::from),
        sync_daemons: daemons.iter().map(SyncDaemonView::from).collect(),
        health: health.map(|h| HealthSourcesView {
            answered: h.answered.iter().map(|p| p.display().to_string()).collect(),
            unreachable: h.unreachable.clone(),
        }),
        services: services.iter().map(|s| service_view(s, health)).collect(),
    }
}
