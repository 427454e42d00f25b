// SPDX-License-Identifier: GPL-2.0-or-later
//! The virtual IP: rtnetlink address management, gratuitous ARP and
//! unsolicited NA, and real-server (LVS-DR) mode.
//!
//! * [`vip`]: add, remove and look up addresses over rtnetlink
//!   (idempotent; IPv6 VIPs without DAD).
//! * [`garp`]: gratuitous ARP / unsolicited NA frames (pnet) and their
//!   sending on an AF_PACKET socket, with IPaddr2's defaults.
//! * [`owner`]: a VIP the daemon owns in standalone mode
//!   ([`VipOwner::acquire`] at start, [`VipOwner::release`] at stop).
//! * [`realserver`] and [`sysctl`]: the VIP on `lo` with `arp_ignore=1`
//!   and `arp_announce=2`, undone exactly on removal.
//! * [`cli`]: the `ldirectord vip ...` subcommands.
//!
//! Everything acts on the network namespace of the calling thread.

pub mod cli;
pub mod error;
pub mod garp;
pub mod owner;
pub mod realserver;
pub mod sysctl;
pub mod vip;

pub use error::NetError;
pub use garp::{announce, AnnounceOptions, ArpOperation};
pub use owner::{VipClaim, VipOwner, VipSet};
pub use realserver::{realserver_off, realserver_on, RealServerOptions};
pub use vip::{AddOptions, Change, VipAddr, VipHandle};
