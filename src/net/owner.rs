// SPDX-License-Identifier: GPL-2.0-or-later
//! A VIP the daemon owns in standalone mode (`vipinterface=`): added and
//! announced at start, removed at stop.
//!
//! ```ignore
//! let owner = VipOwner::acquire("eth0", "203.0.113.10".parse()?, options).await?;
//! // ... serve ...
//! owner.release().await?;
//! ```
//!
//! [`VipOwner::acquire`] returns once the address is on the interface and
//! the first announcement is on the wire; the rest of the burst runs in the
//! background, as IPaddr2 runs `send_arp` with `arp_bg=true`, so a daemon
//! with many VIPs does not wait `(count - 1) * interval` for each.
//! [`VipOwner::release`] stops that burst *before* it removes the address:
//! announcing an address we no longer hold would pull its traffic back from
//! the director that just took over.
//!
//! One owner per distinct (interface, address): several virtual services
//! on the same VIP (ports 80 and 443) share one owner.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use tokio::task::JoinHandle;

use super::error::NetError;
use super::garp::{AnnounceOptions, Announcer};
use super::vip::{AddOptions, Change, VipAddr, VipHandle};

/// Ownership of one VIP on one interface.
///
/// Dropping an owner without [`VipOwner::release`] stops the announcement
/// burst but leaves the address configured, as a crashed daemon would: the
/// next `acquire` adopts it, and the cluster manager's stop removes it.
pub struct VipOwner {
    handle: VipHandle,
    iface: String,
    vip: VipAddr,
    added: Change,
    burst: Option<JoinHandle<()>>,
}

impl fmt::Debug for VipOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VipOwner")
            .field("iface", &self.iface)
            .field("vip", &self.vip)
            .field("added", &self.added)
            .finish_non_exhaustive()
    }
}

impl Drop for VipOwner {
    fn drop(&mut self) {
        if let Some(burst) = self.burst.take() {
            burst.abort();
        }
    }
}

impl VipOwner {
    /// Adds `vip` to `iface` and announces it (gratuitous ARP or
    /// unsolicited NA, `announce.count` times `announce.interval` apart).
    ///
    /// Refuses a VIP that another interface carries, and an interface that
    /// is down (the VIP could not be announced, and owning it silently would
    /// leave clients talking to the old holder). If the first announcement
    /// cannot be sent, a VIP this call added is removed again: a failure
    /// leaves nothing behind. On a loopback or NOARP interface there is
    /// nothing to announce and the VIP is only added (as IPaddr2 does for
    /// `lo`). An address that is already there is adopted (a restarted
    /// daemon) and announced again, which is harmless.
    ///
    /// Acts on the network namespace of the calling thread; the owner keeps
    /// its netlink socket, so [`VipOwner::release`] acts on the same one.
    pub async fn acquire(
        iface: &str,
        vip: VipAddr,
        announce: AnnounceOptions,
    ) -> Result<VipOwner, NetError> {
        let handle = VipHandle::new()?;
        let link = handle.link(iface).await?;
        let announceable = !link.is_loopback && !link.no_arp && link.mac.is_some();
        if announceable && !link.is_up {
            return Err(NetError::InterfaceDown {
                iface: iface.to_string(),
            });
        }
        // Opened before the address is added, so a missing CAP_NET_RAW is
        // found before anything changes.
        let announcer = if announceable && announce.count > 0 {
            Some(Announcer::new(&link, vip.addr, announce.arp_operation)?)
        } else {
            None
        };
        let added = handle.add(iface, vip, &AddOptions::default()).await?;
        let mut owner = VipOwner {
            handle,
            iface: iface.to_string(),
            vip,
            added,
            burst: None,
        };
        tracing::info!(
            iface,
            vip = %vip,
            added = (added == Change::Changed),
            "VIP acquired"
        );
        let Some(announcer) = announcer else {
            if !announceable && !link.is_loopback && !link.no_arp {
                // InfiniBand and other non-Ethernet links resolve addresses
                // too, but with frames we do not build: say so, rather than
                // leave clients with a stale entry in silence.
                tracing::warn!(
                    iface,
                    vip = %vip,
                    "not an Ethernet interface: VIP added without announcement"
                );
            }
            return Ok(owner);
        };
        if let Err(error) = announcer.send(1, announce.count) {
            return Err(owner.undo(error).await);
        }
        if announce.count > 1 {
            let iface = owner.iface.clone();
            owner.burst = Some(tokio::spawn(async move {
                if let Err(error) = announcer.send_rest(&announce).await {
                    tracing::warn!(iface, vip = %vip, %error, "VIP announcement burst cut short");
                }
            }));
        }
        Ok(owner)
    }

    /// Removes the address if this `acquire` added it, and returns `error`
    /// (or the rollback's failure along with it).
    async fn undo(mut self, error: NetError) -> NetError {
        if self.added == Change::Unchanged {
            return error;
        }
        self.added = Change::Unchanged;
        match self
            .handle
            .del(&self.iface, self.vip.addr, Some(self.vip.prefix))
            .await
        {
            Ok(_) => error,
            Err(rollback) => NetError::RollbackFailed {
                error: Box::new(error),
                rollback: Box::new(rollback),
            },
        }
    }

    /// Stops any announcement still pending, then removes the VIP
    /// (success if it is already gone).
    pub async fn release(mut self) -> Result<Change, NetError> {
        if let Some(burst) = self.burst.take() {
            burst.abort();
            // Wait until the task is really gone: abort() only requests it,
            // and a frame sent after the delete would undo a takeover.
            let _ = burst.await;
        }
        let change = self
            .handle
            .del(&self.iface, self.vip.addr, Some(self.vip.prefix))
            .await?;
        tracing::info!(
            iface = %self.iface,
            vip = %self.vip,
            removed = (change == Change::Changed),
            "VIP released"
        );
        Ok(change)
    }

    /// The interface the VIP is on.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The VIP.
    pub fn vip(&self) -> VipAddr {
        self.vip
    }

    /// The address itself.
    pub fn addr(&self) -> IpAddr {
        self.vip.addr
    }

    /// Whether `acquire` added the address (rather than finding it there).
    pub fn added(&self) -> bool {
        self.added == Change::Changed
    }

    /// Whether the background announcement burst has finished.
    pub fn announced(&self) -> bool {
        self.burst.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

/// One VIP the configuration asks the daemon to own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipClaim {
    pub iface: String,
    pub vip: VipAddr,
    pub announce: AnnounceOptions,
}

/// The VIPs a daemon owns, one [`VipOwner`] per (interface, address), so a
/// reload only touches the addresses whose claim changed.
#[derive(Debug, Default)]
pub struct VipSet {
    owners: BTreeMap<(String, IpAddr), VipOwner>,
}

impl VipSet {
    pub fn new() -> VipSet {
        VipSet::default()
    }

    /// Makes the owned VIPs those of `claims`: releases what is no longer
    /// claimed (or claimed with another prefix), then acquires what is new.
    /// Several claims of one (interface, address), e.g. virtual services on
    /// ports 80 and 443 of one VIP, are one VIP; the first claim's
    /// announcement options win. A VIP already owned is left alone (no new
    /// announcement). Carries on past failures and returns them, so one bad
    /// interface does not keep the other VIPs from being owned.
    pub async fn reconcile(&mut self, claims: &[VipClaim]) -> Vec<(VipClaim, NetError)> {
        let mut wanted: BTreeMap<(String, IpAddr), &VipClaim> = BTreeMap::new();
        for claim in claims {
            wanted
                .entry((claim.iface.clone(), claim.vip.addr))
                .or_insert(claim);
        }
        let mut failures = Vec::new();
        let stale: Vec<(String, IpAddr)> = self
            .owners
            .iter()
            .filter(|(key, owner)| {
                wanted
                    .get(*key)
                    .is_none_or(|claim| claim.vip != owner.vip())
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in stale {
            if let Some(owner) = self.owners.remove(&key) {
                let claim = VipClaim {
                    iface: owner.iface().to_string(),
                    vip: owner.vip(),
                    announce: AnnounceOptions::default(),
                };
                if let Err(error) = owner.release().await {
                    failures.push((claim, error));
                }
            }
        }
        for (key, claim) in wanted {
            if self.owners.contains_key(&key) {
                continue;
            }
            match VipOwner::acquire(&claim.iface, claim.vip, claim.announce).await {
                Ok(owner) => {
                    self.owners.insert(key, owner);
                }
                Err(error) => failures.push((claim.clone(), error)),
            }
        }
        failures
    }

    /// Releases every VIP (at stop); returns the failures.
    pub async fn release_all(&mut self) -> Vec<(VipClaim, NetError)> {
        self.reconcile(&[]).await
    }

    /// The VIPs owned now.
    pub fn owners(&self) -> impl Iterator<Item = &VipOwner> {
        self.owners.values()
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}
