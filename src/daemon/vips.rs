// SPDX-License-Identifier: GPL-2.0-or-later
//! Standalone VIP ownership (`vipinterface=`, an extension): which VIPs the
//! configuration asks the daemon to carry. The daemon adds and announces
//! them once the first round of checks is known, moves them on reload, and
//! removes them at stop; [`crate::net::VipSet`] does the netlink work.
//!
//! Under Pacemaker the cluster owns the VIP (IPaddr2 or the agent's `vip`
//! parameter) and `vipinterface` stays unset.

use std::time::Duration;

use crate::config::{Config, VirtualAddr};
use crate::net::{AnnounceOptions, ArpOperation, VipAddr, VipClaim};

/// One claim per virtual service that names an interface, as a host
/// address (/32 or /128: a VIP is not a subnet the director routes).
/// Several services on one address become one claim in [`crate::net::VipSet`].
pub fn claims(config: &Config) -> Vec<VipClaim> {
    config
        .virtuals
        .iter()
        .filter_map(|virtual_service| {
            let effective = virtual_service.effective_vip(&config.global)?;
            let VirtualAddr::Addr { addr, .. } = virtual_service.addr else {
                return None;
            };
            // The parser accepted the address as a virtual; a VIP that the
            // net layer still refuses (e.g. multicast) is left out and the
            // kernel table is programmed regardless.
            let vip = VipAddr::host(addr).ok()?;
            Some(VipClaim {
                iface: effective.interface,
                vip,
                announce: AnnounceOptions {
                    count: effective.announce_count,
                    interval: Duration::from_millis(effective.announce_interval_ms),
                    arp_operation: ArpOperation::Request,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_str, OfflineEnvironment};

    fn parse(text: &str) -> Config {
        match parse_str("test.cf", text, &OfflineEnvironment) {
            Ok(parsed) => parsed.config,
            Err(e) => panic!("config should parse: {e}"),
        }
    }

    #[test]
    fn no_interface_no_claim() {
        let config = parse("virtual=10.0.0.1:80\n\treal=10.0.1.1:80 gate\n");
        assert!(claims(&config).is_empty());
    }

    #[test]
    fn global_interface_applies_to_address_virtuals_but_not_fwmarks() {
        let config = parse(
            "vipinterface=eth1\nvipannouncecount=3\n\
             virtual=10.0.0.1:80\n\treal=10.0.1.1:80 gate\n\n\
             virtual=7\n\treal=10.0.1.1:80 gate\n\n\
             virtual6=[2001:db8::1]:443\n\treal6=[2001:db8:1::1]:443 gate\n",
        );
        let claims = claims(&config);
        assert_eq!(claims.len(), 2, "{claims:?}");
        assert_eq!(claims[0].iface, "eth1");
        assert_eq!(claims[0].vip.to_string(), "10.0.0.1/32");
        assert_eq!(claims[0].announce.count, 3);
        assert_eq!(claims[1].vip.to_string(), "2001:db8::1/128");
    }

    #[test]
    fn a_virtual_may_name_its_own_interface() {
        let config = parse(
            "vipinterface=eth1\n\
             virtual=10.0.0.1:80\n\treal=10.0.1.1:80 gate\n\tvipinterface=eth2\n",
        );
        let claims = claims(&config);
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].iface, "eth2");
    }
}
