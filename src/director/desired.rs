// SPDX-License-Identifier: GPL-2.0-or-later
//! The desired IPVS table: what config + health ask the kernel to hold.
//!
//! Built fresh on every reconcile from the config and the current health of
//! each real; the diff planner compares it with the kernel's dump.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::ipvs::{Destination, ForwardMethod, Service, ServiceKey};

/// What the director wants for one real server in one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RealIntent {
    /// Present with exactly this destination (weight included).
    Present(Destination),
    /// Down with `quiescent=yes` and `readdquiescent=no`: set weight 0 if the
    /// kernel has it, but do not add it back if it is missing. This is
    /// ldirectord's rule (reference §3 "Down").
    QuiescentIfPresent(Destination),
}

impl RealIntent {
    pub fn destination(&self) -> &Destination {
        match self {
            RealIntent::Present(d) | RealIntent::QuiescentIfPresent(d) => d,
        }
    }

    /// The identity the kernel uses for a destination within a service.
    pub fn id(&self) -> (IpAddr, u16) {
        let d = self.destination();
        (d.addr, d.port)
    }
}

/// One managed virtual service with the reals it should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredService {
    pub service: Service,
    /// Keyed by (address, port) as the kernel keys destinations.
    pub reals: BTreeMap<(IpAddr, u16), RealIntent>,
}

impl DesiredService {
    pub fn new(service: Service) -> Self {
        DesiredService {
            service,
            reals: BTreeMap::new(),
        }
    }

    /// Adds a real, normalising its port the way the kernel stores it.
    /// A later intent for the same (address, port) replaces an earlier one:
    /// the config layer rejects duplicates before this point.
    pub fn insert(&mut self, intent: RealIntent) {
        let intent = match intent {
            RealIntent::Present(d) => RealIntent::Present(self.normalise(d)),
            RealIntent::QuiescentIfPresent(d) => RealIntent::QuiescentIfPresent(self.normalise(d)),
        };
        self.reals.insert(intent.id(), intent);
    }

    /// Direct-routing and tunnelled packets keep the virtual's destination
    /// port, so ipvsadm stores such reals under the service's port whatever
    /// port the config names (ldirectord's "RIP:VPORT" retry). Fwmark
    /// services have no port of their own and keep the real's.
    fn normalise(&self, mut d: Destination) -> Destination {
        if let ServiceKey::Addr { port, .. } = self.service.key {
            if matches!(d.forward, ForwardMethod::Route | ForwardMethod::Tunnel) {
                d.port = port;
            }
        }
        d
    }
}

/// The whole desired table: every service the director manages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredTable {
    pub services: BTreeMap<ServiceKey, DesiredService>,
}

impl DesiredTable {
    pub fn insert(&mut self, svc: DesiredService) {
        self.services.insert(svc.service.key, svc);
    }
}
