// SPDX-License-Identifier: GPL-2.0-or-later
//! From health to intent: ldirectord's quiescent, readdquiescent and
//! fallback rules (reference §3 "Up", "Down", "Fallback"), as a pure function.

use super::desired::{DesiredService, RealIntent};
use crate::ipvs::{Destination, Service};

/// A configured real with its current health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealState {
    /// The destination as configured (weight = the configured weight).
    pub dest: Destination,
    /// Whether the real counts as up (checks, maintenance and admin state
    /// already folded in).
    pub up: bool,
}

/// A managed virtual service and what decides its reals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualState {
    pub service: Service,
    pub reals: Vec<RealState>,
    /// The sorry server, added with weight 1 while no real is up.
    pub fallback: Option<Destination>,
    /// Down reals keep their entry at weight 0 instead of being deleted.
    pub quiescent: bool,
    /// With `quiescent`, a down real missing from the kernel is added back
    /// at weight 0 (otherwise it stays absent until it is up again).
    pub readd_quiescent: bool,
}

impl VirtualState {
    /// True when no real is up, which is when the fallback serves.
    pub fn all_down(&self) -> bool {
        !self.reals.iter().any(|r| r.up)
    }

    /// The service as the kernel should hold it.
    pub fn desired(&self) -> DesiredService {
        let mut out = DesiredService::new(self.service.clone());
        if self.all_down() {
            if let Some(fb) = &self.fallback {
                // ldirectord always adds the fallback with weight 1.
                out.insert(RealIntent::Present(Destination {
                    weight: 1,
                    ..fb.clone()
                }));
            }
        }
        for real in &self.reals {
            let intent = if real.up {
                RealIntent::Present(real.dest.clone())
            } else if self.quiescent {
                let quiesced = Destination {
                    weight: 0,
                    ..real.dest.clone()
                };
                if self.readd_quiescent {
                    RealIntent::Present(quiesced)
                } else {
                    RealIntent::QuiescentIfPresent(quiesced)
                }
            } else {
                continue;
            };
            // A real that is also the fallback wins: its own health decides.
            out.insert(intent);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::{ForwardMethod, Protocol, ServiceFlags, ServiceKey, TunnelSettings};

    fn service() -> Service {
        Service {
            key: ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: "10.0.0.1".parse().unwrap(),
                port: 80,
            },
            scheduler: "wrr".into(),
            flags: ServiceFlags(0),
            timeout: 0,
            netmask: 0xffff_ffff,
            pe_name: None,
        }
    }

    fn dest(ip: &str, weight: u32) -> Destination {
        Destination {
            addr: ip.parse().unwrap(),
            port: 80,
            forward: ForwardMethod::Masq,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
            tunnel: TunnelSettings::default(),
        }
    }

    fn state(up: &[bool], quiescent: bool, readd: bool, fallback: bool) -> VirtualState {
        VirtualState {
            service: service(),
            reals: up
                .iter()
                .enumerate()
                .map(|(i, up)| RealState {
                    dest: dest(&format!("10.1.0.{}", i + 1), 3),
                    up: *up,
                })
                .collect(),
            fallback: fallback.then(|| dest("127.0.0.1", 7)),
            quiescent,
            readd_quiescent: readd,
        }
    }

    fn intents(v: &VirtualState) -> Vec<RealIntent> {
        v.desired().reals.into_values().collect()
    }

    #[test]
    fn all_up_keeps_configured_weights_and_no_fallback() {
        let got = intents(&state(&[true, true], false, false, true));
        assert_eq!(
            got,
            vec![
                RealIntent::Present(dest("10.1.0.1", 3)),
                RealIntent::Present(dest("10.1.0.2", 3)),
            ]
        );
    }

    #[test]
    fn down_without_quiescent_is_removed() {
        let got = intents(&state(&[true, false], false, false, true));
        assert_eq!(got, vec![RealIntent::Present(dest("10.1.0.1", 3))]);
    }

    #[test]
    fn down_with_quiescent_is_weight_zero_if_present() {
        let got = intents(&state(&[true, false], true, false, true));
        assert_eq!(
            got,
            vec![
                RealIntent::Present(dest("10.1.0.1", 3)),
                RealIntent::QuiescentIfPresent(dest("10.1.0.2", 0)),
            ]
        );
    }

    #[test]
    fn readdquiescent_adds_back_at_weight_zero() {
        let got = intents(&state(&[true, false], true, true, true));
        assert_eq!(got[1], RealIntent::Present(dest("10.1.0.2", 0)));
    }

    #[test]
    fn all_down_adds_fallback_with_weight_one() {
        let got = intents(&state(&[false, false], false, false, true));
        assert_eq!(got, vec![RealIntent::Present(dest("127.0.0.1", 1))]);
        let quiesced = intents(&state(&[false, false], true, false, true));
        assert_eq!(quiesced.len(), 3, "fallback plus two quiesced reals");
        assert!(quiesced.contains(&RealIntent::Present(dest("127.0.0.1", 1))));
    }

    #[test]
    fn no_fallback_configured_means_empty_service() {
        assert!(intents(&state(&[false], false, false, false)).is_empty());
    }
}
