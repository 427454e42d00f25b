// SPDX-License-Identifier: GPL-2.0-or-later
//! A VIP the daemon owns in standalone mode: added and announced at start,
//! removed at stop.

use std::net::IpAddr;
use std::time::Duration;

use super::error::NetError;
use super::garp::{self, AnnounceOptions, ArpOperation};
use super::vip::{AddOptions, Change, VipAddr, VipHandle};

/// One VIP of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipSpec {
    pub iface: String,
    pub addr: IpAddr,
    pub prefix: u8,
    /// IPv4 label (`eth0:web`, or `web` for the same).
    pub label: Option<String>,
    /// Announcements sent after the VIP is added (0: none).
    pub arp_count: u32,
    /// Time between announcements.
    pub arp_interval: Duration,
}

impl VipSpec {
    /// A spec with IPaddr2's announcement defaults and no label.
    pub fn new(iface: impl Into<String>, vip: VipAddr) -> VipSpec {
        VipSpec {
            iface: iface.into(),
            addr: vip.addr,
            prefix: vip.prefix,
            label: None,
            arp_count: garp::DEFAULT_COUNT,
            arp_interval: garp::DEFAULT_INTERVAL,
        }
    }

    /// The address and prefix, validated.
    pub fn vip(&self) -> Result<VipAddr, NetError> {
        VipAddr::new(self.addr, self.prefix)
    }

    fn announce_options(&self) -> AnnounceOptions {
        AnnounceOptions {
            count: self.arp_count,
            interval: self.arp_interval,
            arp_operation: ArpOperation::Request,
        }
    }
}

/// What [`own`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owned {
    /// Whether the address was added or already there (a restarted daemon
    /// adopts its VIP, and announces it again, which is harmless).
    pub address: Change,
    /// Announcement frames sent.
    pub announcements: u32,
}

/// Adds the VIP and announces it, with a fresh rtnetlink handle.
pub async fn own(spec: &VipSpec) -> Result<Owned, NetError> {
    own_with(&VipHandle::new()?, spec).await
}

/// Removes the VIP, with a fresh rtnetlink handle.
pub async fn release(spec: &VipSpec) -> Result<Change, NetError> {
    release_with(&VipHandle::new()?, spec).await
}

/// Adds the VIP and announces it (the whole burst: spawn this if the
/// caller must not wait `(arp_count - 1) * arp_interval`). Refuses a VIP
/// another interface carries. If the announcement fails, a VIP this call
/// added is removed again, so a failure leaves nothing behind. On a
/// loopback, NOARP or non-Ethernet interface there is nothing to announce
/// and the VIP is only added (as IPaddr2 does for `lo`).
pub async fn own_with(handle: &VipHandle, spec: &VipSpec) -> Result<Owned, NetError> {
    let vip = spec.vip()?;
    let link = handle.link(&spec.iface).await?;
    let announceable = !link.is_loopback && !link.no_arp && link.mac.is_some();
    if announceable && !link.is_up {
        // Checked before adding: the VIP could not be announced, and
        // owning it silently would leave clients talking to the old holder.
        return Err(NetError::InterfaceDown {
            iface: spec.iface.clone(),
        });
    }
    let options = AddOptions {
        label: spec.label.clone(),
        force: false,
    };
    let address = handle.add(&spec.iface, vip, &options).await?;
    tracing::info!(iface = %spec.iface, vip = %vip, added = (address == Change::Changed), "VIP owned");
    if !announceable {
        return Ok(Owned {
            address,
            announcements: 0,
        });
    }
    match garp::announce_on(&link, vip.addr, &spec.announce_options()).await {
        Ok(announcements) => Ok(Owned {
            address,
            announcements,
        }),
        Err(error) if address == Change::Changed => {
            match handle.del(&spec.iface, vip.addr, Some(vip.prefix)).await {
                Ok(_) => Err(error),
                Err(rollback) => Err(NetError::RollbackFailed {
                    error: Box::new(error),
                    rollback: Box::new(rollback),
                }),
            }
        }
        Err(error) => Err(error),
    }
}

/// Removes the VIP (success if it is already gone).
pub async fn release_with(handle: &VipHandle, spec: &VipSpec) -> Result<Change, NetError> {
    let vip = spec.vip()?;
    let change = handle.del(&spec.iface, vip.addr, Some(vip.prefix)).await?;
    tracing::info!(iface = %spec.iface, vip = %vip, removed = (change == Change::Changed), "VIP released");
    Ok(change)
}
