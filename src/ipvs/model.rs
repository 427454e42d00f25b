// SPDX-License-Identifier: GPL-2.0-or-later
//! Semantic IPVS types: what a service or destination *is*, independent of
//! how the kernel encodes it. Equality on these types is what the director's
//! diff uses, so statistics live outside the comparable parts.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Address family of a service or destination (`AF_INET` / `AF_INET6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressFamily {
    Inet,
    Inet6,
}

impl AddressFamily {
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        }
    }
}

/// Transport protocol of an address-based virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The IP protocol number the kernel uses (`IPPROTO_*`).
    pub fn number(self) -> u16 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    pub fn from_number(n: u16) -> Option<Self> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// What identifies a virtual service in the kernel: either protocol +
/// address + port, or an address family + firewall mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ServiceKey {
    Addr {
        protocol: Protocol,
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        af: AddressFamily,
        mark: u32,
    },
}

impl ServiceKey {
    pub fn af(&self) -> AddressFamily {
        match self {
            ServiceKey::Addr { addr, .. } => AddressFamily::of(addr),
            ServiceKey::Fwmark { af, .. } => *af,
        }
    }
}

impl fmt::Display for ServiceKey {
    /// ipvsadm's spelling: `TCP 10.0.0.1:80`, `UDP [2001:db8::1]:53`,
    /// `FWM 5 IPv6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                let proto = protocol.to_string().to_uppercase();
                match addr {
                    IpAddr::V4(a) => write!(f, "{proto} {a}:{port}"),
                    IpAddr::V6(a) => write!(f, "{proto} [{a}]:{port}"),
                }
            }
            ServiceKey::Fwmark { af, mark } => match af {
                AddressFamily::Inet => write!(f, "FWM {mark}"),
                AddressFamily::Inet6 => write!(f, "FWM {mark} IPv6"),
            },
        }
    }
}

/// Service flags (`IP_VS_SVC_F_*`). Unknown bits are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceFlags(pub u32);

impl ServiceFlags {
    pub const PERSISTENT: u32 = 0x0001;
    pub const HASHED: u32 = 0x0002;
    pub const ONEPACKET: u32 = 0x0004;
    pub const SCHED1: u32 = 0x0008;
    pub const SCHED2: u32 = 0x0010;
    pub const SCHED3: u32 = 0x0020;

    pub fn contains(self, bit: u32) -> bool {
        self.0 & bit == bit
    }
}

/// A virtual service's configuration (what the director manages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub key: ServiceKey,
    /// Scheduler name as the kernel knows it (`rr`, `wlc`, `mh`, ...).
    pub scheduler: String,
    /// Flags, without the kernel-internal `HASHED` bit.
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds; meaningful when `PERSISTENT` is set.
    pub timeout: u32,
    /// Persistence netmask: an IPv4 mask in network order as a host u32
    /// (0xffffffff = /32), or an IPv6 prefix length.
    pub netmask: u32,
    /// Persistence engine (`sip`), if any.
    pub pe_name: Option<String>,
}

/// How packets reach a real server (`IP_VS_CONN_F_FWD_MASK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMethod {
    /// NAT (`-m`, ldirectord `masq`).
    Masq,
    /// Local node (kernel value 1; ipvsadm shows `Local`).
    Local,
    /// IP-in-IP or other tunnel (`-i`, ldirectord `ipip`).
    Tunnel,
    /// Direct routing (`-g`, ldirectord `gate`).
    Route,
    /// Bypass (kernel value 4; never configured by ldirectord).
    Bypass,
}

impl ForwardMethod {
    pub fn to_kernel(self) -> u32 {
        match self {
            ForwardMethod::Masq => 0,
            ForwardMethod::Local => 1,
            ForwardMethod::Tunnel => 2,
            ForwardMethod::Route => 3,
            ForwardMethod::Bypass => 4,
        }
    }

    pub fn from_kernel(v: u32) -> Option<Self> {
        match v & 0x7 {
            0 => Some(ForwardMethod::Masq),
            1 => Some(ForwardMethod::Local),
            2 => Some(ForwardMethod::Tunnel),
            3 => Some(ForwardMethod::Route),
            4 => Some(ForwardMethod::Bypass),
            _ => None,
        }
    }
}

/// Tunnel encapsulation for `ForwardMethod::Tunnel` (`IP_VS_CONN_F_TUNNEL_TYPE_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    #[default]
    Ipip,
    Gue,
    Gre,
}

impl TunnelType {
    pub fn to_kernel(self) -> u8 {
        match self {
            TunnelType::Ipip => 0,
            TunnelType::Gue => 1,
            TunnelType::Gre => 2,
        }
    }

    pub fn from_kernel(v: u8) -> Option<Self> {
        match v {
            0 => Some(TunnelType::Ipip),
            1 => Some(TunnelType::Gue),
            2 => Some(TunnelType::Gre),
            _ => None,
        }
    }
}

/// Tunnel settings; only meaningful for `ForwardMethod::Tunnel`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TunnelSettings {
    pub tun_type: TunnelType,
    /// GUE destination port (host order).
    pub port: u16,
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*` bits (checksum options).
    pub flags: u16,
}

/// A real server (destination) inside a virtual service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub addr: IpAddr,
    pub port: u16,
    pub forward: ForwardMethod,
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub upper_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub lower_threshold: u32,
    pub tunnel: TunnelSettings,
}

/// Kernel counters (`ip_vs_stats64`), for services and destinations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// Connection counters the kernel reports per destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnCounts {
    pub active: u32,
    pub inactive: u32,
    pub persistent: u32,
}

/// A destination as dumped from the kernel: configuration plus live counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationEntry {
    pub dest: Destination,
    pub conns: ConnCounts,
    pub stats: Stats,
}

/// A service as dumped from the kernel, with its destinations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEntry {
    pub service: Service,
    pub stats: Stats,
    pub destinations: Vec<DestinationEntry>,
}

/// Connection timeouts (`ipvsadm --set tcp tcpfin udp`), seconds; 0 = unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// Connection synchronisation daemon role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncState {
    Master,
    Backup,
}

/// Connection synchronisation daemon settings (`ipvsadm --start-daemon`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDaemon {
    pub state: SyncState,
    pub mcast_ifname: String,
    pub sync_id: u32,
    /// Max sync message length; 0 = kernel default.
    pub sync_maxlen: u16,
    /// Multicast group; `None` = kernel default (224.0.0.81).
    pub mcast_group: Option<IpAddr>,
    /// 0 = kernel default (8848).
    pub mcast_port: u16,
    /// 0 = kernel default (1).
    pub mcast_ttl: u8,
}

/// General IPVS facts (`IPVS_CMD_GET_INFO`), as ipvsadm's header line
/// shows them: `IP Virtual Server version 1.2.1 (size=4096)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpvsInfo {
    /// `IP_VS_VERSION_CODE`: 0x010201 is 1.2.1.
    pub version: u32,
    /// Size of the connection hash table.
    pub conn_table_size: u32,
}

impl IpvsInfo {
    /// The version as ipvsadm prints it (`1.2.1`).
    pub fn version_string(&self) -> String {
        let v = self.version;
        format!("{}.{}.{}", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_key_spelled_like_ipvsadm() {
        let v4 = ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        assert_eq!(v4.to_string(), "TCP 10.0.0.1:80");
        let v6 = ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: "2001:db8::1".parse().unwrap(),
            port: 53,
        };
        assert_eq!(v6.to_string(), "UDP [2001:db8::1]:53");
        let fwm6 = ServiceKey::Fwmark {
            af: AddressFamily::Inet6,
            mark: 7,
        };
        assert_eq!(fwm6.to_string(), "FWM 7 IPv6");
    }

    #[test]
    fn forward_method_round_trips_through_kernel_values() {
        for m in [
            ForwardMethod::Masq,
            ForwardMethod::Local,
            ForwardMethod::Tunnel,
            ForwardMethod::Route,
            ForwardMethod::Bypass,
        ] {
            assert_eq!(ForwardMethod::from_kernel(m.to_kernel()), Some(m));
        }
        assert_eq!(ForwardMethod::from_kernel(7), None);
    }
}
