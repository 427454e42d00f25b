// SPDX-License-Identifier: GPL-2.0-or-later
//! From a parsed config to the services the director manages: each
//! `virtual=` block becomes an IPVS service, each `real=` (ranges
//! expanded) a destination, with ldirectord's mapping of directives to
//! ipvsadm options (`-s`, `-p`, `-M`, `-o`, `-b`, `-x`, `-y`, `-g|-m|-i`).

use std::net::IpAddr;

use crate::config::{Config, Netmask, Virtual, VirtualAddr};
use crate::ipvs::{
    AddressFamily, Destination, ForwardMethod, Service, ServiceFlags, ServiceKey, TunnelSettings,
};

/// One real server of one managed virtual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedReal {
    /// The destination when up: configured weight, forwarding, thresholds.
    /// The port is the one the kernel keys it by (see [`kernel_port`]).
    pub dest: Destination,
    /// The port written in the config (checks use it, not the kernel's).
    pub config_port: u16,
    /// Index of the `real=` line within its virtual (one line may stand
    /// for a range of addresses).
    pub line: usize,
}

/// One managed virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedVirtual {
    /// Index of the block in `Config::virtuals`.
    pub index: usize,
    /// ldirectord's id (`tcp:10.0.0.1:80`), used in logs.
    pub id: String,
    pub service: Service,
    pub reals: Vec<ManagedReal>,
    pub fallback: Option<Destination>,
    pub quiescent: bool,
    pub readd_quiescent: bool,
    pub fallback_command: Option<String>,
    pub failurecount: u32,
    pub cleanstop: bool,
}

/// Every virtual of `config` as a managed service, in config order.
pub fn managed_virtuals(config: &Config) -> Vec<ManagedVirtual> {
    config
        .virtuals
        .iter()
        .enumerate()
        .map(|(index, v)| managed_virtual(config, index, v))
        .collect()
}

fn managed_virtual(config: &Config, index: usize, v: &Virtual) -> ManagedVirtual {
    let global = &config.global;
    let service = service_of(v);
    let reals = v
        .reals
        .iter()
        .enumerate()
        .flat_map(|(line, real)| {
            real.addresses().map(move |addr| ManagedReal {
                dest: Destination {
                    addr,
                    port: kernel_port(&service.key, real.forward, real.port),
                    forward: real.forward,
                    weight: real.weight,
                    upper_threshold: real.upper_threshold.unwrap_or(0),
                    lower_threshold: real.lower_threshold.unwrap_or(0),
                    tunnel: TunnelSettings::default(),
                },
                config_port: real.port,
                line,
            })
        })
        .collect();
    let fallback = v.effective_fallback(global).map(|fb| {
        let port = fb.port.unwrap_or(0);
        Destination {
            addr: fb.addr,
            port: kernel_port(&service.key, fb.forward, port),
            forward: fb.forward,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
            tunnel: TunnelSettings::default(),
        }
    });
    let fallback_command = v
        .fallbackcommand
        .as_ref()
        .or(global.fallbackcommand.as_ref())
        .map(|c| c.value.clone());
    ManagedVirtual {
        index,
        id: v.id(),
        service,
        reals,
        fallback,
        quiescent: v.effective_quiescent(global),
        readd_quiescent: global.readdquiescent(),
        fallback_command,
        failurecount: u32::try_from(v.effective_failurecount(global)).unwrap_or(u32::MAX),
        cleanstop: v.effective_cleanstop(global),
    }
}

/// The IPVS service a virtual block asks for.
pub fn service_of(v: &Virtual) -> Service {
    let key = service_key(v);
    let mut flags = 0u32;
    let (timeout, netmask) = match v.persistence() {
        Some((seconds, mask)) => {
            flags |= ServiceFlags::PERSISTENT;
            let netmask = match (mask, v.family) {
                (Some(Netmask::V4(m)), _) => u32::from(m),
                (Some(Netmask::Prefix(p)), _) => u32::from(p),
                (None, AddressFamily::Inet) => u32::MAX,
                (None, AddressFamily::Inet6) => 128,
            };
            (u32::try_from(seconds).unwrap_or(u32::MAX), netmask)
        }
        // ipvsadm sends the full mask even without persistence; the
        // kernel keeps it, so keep it too and the diff stays quiet.
        None => (
            0,
            match v.family {
                AddressFamily::Inet => u32::MAX,
                AddressFamily::Inet6 => 128,
            },
        ),
    };
    if v.one_packet_scheduling() {
        flags |= ServiceFlags::ONEPACKET;
    }
    if let Some(schedflags) = &v.schedflags {
        flags |= sched_flags(&schedflags.value);
    }
    Service {
        key,
        scheduler: v.scheduler().to_owned(),
        flags: ServiceFlags(flags),
        timeout,
        netmask,
        pe_name: None,
    }
}

/// ipvsadm's `-b` names: `flag-1|sh-fallback|mh-fallback`,
/// `flag-2|sh-port|mh-port`, `flag-3`, comma separated. Unknown names are
/// rejected by the config check, so they are ignored here.
pub fn sched_flags(text: &str) -> u32 {
    text.split(',')
        .map(str::trim)
        .map(|name| match name {
            "flag-1" | "sh-fallback" | "mh-fallback" => ServiceFlags::SCHED1,
            "flag-2" | "sh-port" | "mh-port" => ServiceFlags::SCHED2,
            "flag-3" => ServiceFlags::SCHED3,
            _ => 0,
        })
        .fold(0, |acc, bit| acc | bit)
}

/// The kernel's key for a virtual block.
pub fn service_key(v: &Virtual) -> ServiceKey {
    match v.addr {
        VirtualAddr::Addr { addr, port } => ServiceKey::Addr {
            // The parser only builds address virtuals with a transport.
            protocol: v.protocol.transport().unwrap_or(crate::ipvs::Protocol::Tcp),
            addr,
            port,
        },
        VirtualAddr::Fwmark { mark, family } => ServiceKey::Fwmark { af: family, mark },
    }
}

/// The port the kernel stores a destination under: direct routing and
/// tunnelling keep the virtual's port, whatever the config says.
pub fn kernel_port(key: &ServiceKey, forward: ForwardMethod, port: u16) -> u16 {
    match key {
        ServiceKey::Addr { port: vport, .. }
            if matches!(forward, ForwardMethod::Route | ForwardMethod::Tunnel) =>
        {
            *vport
        }
        _ => port,
    }
}

/// A real's identity within the director: service, address, kernel port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealKey {
    pub service: ServiceKey,
    pub addr: IpAddr,
    pub port: u16,
}

impl ManagedVirtual {
    pub fn real_key(&self, real: &ManagedReal) -> RealKey {
        RealKey {
            service: self.service.key,
            addr: real.dest.addr,
            port: real.dest.port,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_str, OfflineEnvironment};

    fn parse(text: &str) -> Config {
        parse_str("t.cf", text, &OfflineEnvironment)
            .unwrap_or_else(|e| panic!("{e}"))
            .config
    }

    #[test]
    fn maps_directives_like_ldirectord() {
        let config = parse(
            "quiescent=yes\n\
             virtual=10.0.0.1:80\n\
             \treal=10.0.1.1:8080 gate 5\n\
             \treal=10.0.1.2->10.0.1.3:8080 masq 2\n\
             \tscheduler=wlc\n\
             \tpersistent=300\n\
             \tnetmask=255.255.255.0\n\
             \tfallback=127.0.0.1:80\n",
        );
        let vs = managed_virtuals(&config);
        assert_eq!(vs.len(), 1);
        let v = &vs[0];
        assert_eq!(v.service.scheduler, "wlc");
        assert!(v.service.flags.contains(ServiceFlags::PERSISTENT));
        assert_eq!(v.service.timeout, 300);
        assert_eq!(v.service.netmask, 0xffff_ff00);
        assert!(v.quiescent);
        let ports: Vec<(String, u16, u32)> = v
            .reals
            .iter()
            .map(|r| (r.dest.addr.to_string(), r.dest.port, r.dest.weight))
            .collect();
        assert_eq!(
            ports,
            vec![
                ("10.0.1.1".into(), 80, 5),
                ("10.0.1.2".into(), 8080, 2),
                ("10.0.1.3".into(), 8080, 2)
            ]
        );
        assert_eq!(v.reals[0].config_port, 8080);
        let fb = v.fallback.as_ref().expect("fallback");
        assert_eq!(
            (fb.addr.to_string(), fb.port, fb.weight),
            ("127.0.0.1".into(), 80, 1)
        );
    }

    #[test]
    fn sched_flag_names() {
        assert_eq!(
            sched_flags("sh-fallback,sh-port"),
            ServiceFlags::SCHED1 | ServiceFlags::SCHED2
        );
        assert_eq!(sched_flags("flag-3"), ServiceFlags::SCHED3);
    }
}
