// SPDX-License-Identifier: GPL-2.0-or-later
//! Real-server (direct routing) mode: the VIP on `lo`, and ARP kept quiet
//! about it.
//!
//! In LVS-DR the director forwards packets to a real server by rewriting
//! only the destination MAC, so the real server must accept packets for the
//! VIP (hence the VIP on `lo`, as a host address: /32 or /128) without ever
//! claiming the VIP on the shared network (or clients would send to the
//! real server directly). For IPv4 that takes two sysctls, as the LVS-DR
//! HOWTO ("the ARP problem") and the keepalived and IPaddr2 `lvs_support`
//! documentation recommend:
//!
//! * `arp_ignore = 1`: answer an ARP request only if its target address is
//!   configured on the interface the request came in on. The VIP is on
//!   `lo`, so requests for it arriving on eth0 get no answer.
//! * `arp_announce = 2`: in our own ARP requests, always use the best local
//!   address for the target as the sender address, never the VIP.
//!
//! The kernel applies the *maximum* of `conf/all/<knob>` and
//! `conf/<interface>/<knob>` (Documentation/networking/ip-sysctl.rst), so
//! `all` alone covers every interface, including ones created later. Like
//! the HOWTO recipes we also set `lo` and every interface the operator
//! names (`--iface`), so the setting still holds if someone later lowers
//! `all`. IPv6 needs no sysctl: Linux answers a neighbour solicitation only
//! for addresses configured on the interface it arrived on.
//!
//! The values found before are saved in a state file under
//! `/run/ldirector/` (one per network namespace) *before* anything is
//! changed, and restored when the last IPv4 VIP leaves real-server mode, so
//! `off` undoes exactly what `on` did, across processes and reboots of the
//! daemon. A value someone changed in the meantime is left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::error::NetError;
use super::sysctl::{self, ArpSysctl};
use super::vip::{AddOptions, Change, VipAddr, VipHandle};

/// Where the saved sysctl values live by default.
pub const DEFAULT_STATE_DIR: &str = "/run/ldirector";
/// `arp_ignore` in real-server mode.
pub const ARP_IGNORE_REALSERVER: i64 = 1;
/// `arp_announce` in real-server mode.
pub const ARP_ANNOUNCE_REALSERVER: i64 = 2;

const LOOPBACK: &str = "lo";

/// Options for [`realserver_on`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerOptions {
    /// Interfaces to set the ARP sysctls on, besides `all` and `lo`.
    pub ifaces: Vec<String>,
    /// Put the VIP on `lo` even if another interface carries it.
    pub force: bool,
    /// Directory of the state file.
    pub state_dir: PathBuf,
}

impl Default for RealServerOptions {
    fn default() -> Self {
        RealServerOptions {
            ifaces: Vec::new(),
            force: false,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        }
    }
}

/// A sysctl write done (or deliberately not done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlChange {
    pub path: PathBuf,
    pub from: i64,
    pub to: i64,
}

/// What [`realserver_on`] or [`realserver_off`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerReport {
    /// The VIP on `lo`.
    pub address: Change,
    /// Sysctls written.
    pub changed: Vec<SysctlChange>,
    /// Sysctls not restored because someone changed them after `on`: `from`
    /// is the value found, `to` the value that would have been restored.
    pub left_alone: Vec<SysctlChange>,
    /// The state file now in force (absent once nothing is left to undo).
    pub state_file: PathBuf,
}

/// A sysctl as we found it and as we set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedSysctl {
    original: i64,
    ours: i64,
}

/// The state file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// VIPs currently on `lo` in real-server mode.
    vips: BTreeSet<IpAddr>,
    /// Sysctl path -> saved values, kept while any IPv4 VIP is on.
    sysctls: BTreeMap<PathBuf, SavedSysctl>,
}

impl State {
    fn has_ipv4(&self) -> bool {
        self.vips.iter().any(IpAddr::is_ipv4)
    }
}

/// The state file of the calling thread's network namespace, and its lock.
struct StateFile {
    path: PathBuf,
    _lock: Flock<File>,
}

impl StateFile {
    /// Opens (creating the directory) and locks the state file: one
    /// `on`/`off` at a time per namespace, across processes.
    fn lock(state_dir: &Path) -> Result<StateFile, NetError> {
        let state_error = |path: &Path, detail: String| NetError::State {
            path: path.to_path_buf(),
            detail,
        };
        fs::create_dir_all(state_dir).map_err(|error| state_error(state_dir, error.to_string()))?;
        // Sysctls are per network namespace, so is the state: key it by the
        // namespace's inode (stable while the namespace lives). thread-self,
        // not self: the namespace is a per-thread property.
        let namespace = fs::metadata("/proc/thread-self/ns/net")
            .map_err(|error| state_error(Path::new("/proc/thread-self/ns/net"), error.to_string()))?
            .ino();
        let path = state_dir.join(format!("realserver-netns{namespace}.json"));
        let lock_path = path.with_extension("lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|error| state_error(&lock_path, error.to_string()))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| state_error(&lock_path, errno.to_string()))?;
        Ok(StateFile { path, _lock: lock })
    }

    fn load(&self) -> Result<State, NetError> {
        match fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).map_err(|error| NetError::State {
                path: self.path.clone(),
                detail: format!("unreadable ({error}); fix or remove it"),
            }),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(State::default()),
            Err(error) => Err(NetError::State {
                path: self.path.clone(),
                detail: error.to_string(),
            }),
        }
    }

    /// Saves `state` atomically, or removes the file when there is nothing
    /// left to undo.
    fn store(&self, state: &State) -> Result<(), NetError> {
        let state_error = |detail: String| NetError::State {
            path: self.path.clone(),
            detail,
        };
        if state.vips.is_empty() && state.sysctls.is_empty() {
            return match fs::remove_file(&self.path) {
                Err(error) if error.kind() != ErrorKind::NotFound => {
                    Err(state_error(error.to_string()))
                }
                _ => Ok(()),
            };
        }
        let text =
            serde_json::to_string_pretty(state).map_err(|error| state_error(error.to_string()))?;
        let temporary = self.path.with_extension("json.new");
        fs::write(&temporary, text + "\n").map_err(|error| state_error(error.to_string()))?;
        fs::rename(&temporary, &self.path).map_err(|error| state_error(error.to_string()))
    }
}

/// Puts `addr` on `lo` as a host address for DR mode. For IPv4, first sets
/// `arp_ignore=1` and `arp_announce=2` on `all`, `lo` and `options.ifaces`
/// (before the VIP appears, so it is never answered for, not even for a
/// moment). On any failure everything this call changed is undone.
pub async fn realserver_on(
    handle: &VipHandle,
    addr: IpAddr,
    options: &RealServerOptions,
) -> Result<RealServerReport, NetError> {
    let vip = VipAddr::host(addr)?;
    // Every check before any change: interfaces exist, address not in use.
    let loopback = handle.link(LOOPBACK).await?;
    for iface in &options.ifaces {
        handle.link(iface).await?;
    }
    if !options.force {
        if let Some(other) = handle
            .addresses()
            .await?
            .into_iter()
            .find(|assigned| assigned.addr == addr && assigned.index != loopback.index)
        {
            return Err(NetError::AddressInUse {
                addr,
                iface: LOOPBACK.to_string(),
                other_iface: handle.link_name(other.index).await,
            });
        }
    }

    let state_file = StateFile::lock(&options.state_dir)?;
    let before = state_file.load()?;
    let mut state = before.clone();
    state.vips.insert(addr);

    // Decide the writes and remember the original values, then save the
    // state before touching anything: if we die half-way, `off` still knows
    // what to restore.
    let mut writes = Vec::new();
    if addr.is_ipv4() {
        for device in devices(&options.ifaces) {
            for (knob, ours) in [
                (ArpSysctl::Ignore, ARP_IGNORE_REALSERVER),
                (ArpSysctl::Announce, ARP_ANNOUNCE_REALSERVER),
            ] {
                let path = sysctl::path(&device, knob);
                let current = sysctl::read(&path)?;
                state
                    .sysctls
                    .entry(path.clone())
                    .and_modify(|saved| saved.ours = ours)
                    .or_insert(SavedSysctl {
                        original: current,
                        ours,
                    });
                if current != ours {
                    writes.push(SysctlChange {
                        path,
                        from: current,
                        to: ours,
                    });
                }
            }
        }
    }
    state_file.store(&state)?;

    let mut done: Vec<SysctlChange> = Vec::new();
    let mut outcome = Ok(Change::Unchanged);
    for write in &writes {
        if let Err(error) = sysctl::write(&write.path, write.to) {
            outcome = Err(error);
            break;
        }
        done.push(write.clone());
    }
    if outcome.is_ok() {
        let add_options = AddOptions {
            label: None,
            force: options.force,
        };
        outcome = handle.add(LOOPBACK, vip, &add_options).await;
    }

    match outcome {
        Ok(address) => Ok(RealServerReport {
            address,
            changed: done,
            left_alone: Vec::new(),
            state_file: state_file.path.clone(),
        }),
        Err(error) => {
            // Undo in reverse order, then put the old state back.
            let mut rollback = Ok(());
            for write in done.iter().rev() {
                if let Err(undo) = sysctl::write(&write.path, write.from) {
                    rollback = Err(undo);
                }
            }
            if let Err(undo) = state_file.store(&before) {
                rollback = Err(undo);
            }
            match rollback {
                Ok(()) => Err(error),
                Err(rollback) => Err(NetError::RollbackFailed {
                    error: Box::new(error),
                    rollback: Box::new(rollback),
                }),
            }
        }
    }
}

/// Takes `addr` off `lo`; once no IPv4 VIP is left in real-server mode,
/// restores the ARP sysctls saved by [`realserver_on`] (those still at the
/// value it set). Success without change if `addr` was not on.
pub async fn realserver_off(
    handle: &VipHandle,
    addr: IpAddr,
    state_dir: &Path,
) -> Result<RealServerReport, NetError> {
    let state_file = StateFile::lock(state_dir)?;
    let mut state = state_file.load()?;
    // The VIP goes first: while it is still on lo, the sysctls must stay.
    let address = handle.del(LOOPBACK, addr, None).await?;
    state.vips.remove(&addr);

    let mut changed = Vec::new();
    let mut left_alone = Vec::new();
    let mut failure = None;
    if !state.has_ipv4() {
        let saved = std::mem::take(&mut state.sysctls);
        for (path, saved) in saved {
            let current = match sysctl::read(&path) {
                Ok(current) => current,
                // The interface is gone, and its sysctls with it.
                Err(NetError::Sysctl { source, .. }) if source.kind() == ErrorKind::NotFound => {
                    continue
                }
                Err(error) => {
                    failure.get_or_insert(error);
                    state.sysctls.insert(path, saved);
                    continue;
                }
            };
            let change = SysctlChange {
                path: path.clone(),
                from: current,
                to: saved.original,
            };
            if current != saved.ours {
                left_alone.push(change);
            } else if current != saved.original {
                match sysctl::write(&path, saved.original) {
                    Ok(()) => changed.push(change),
                    Err(error) => {
                        failure.get_or_insert(error);
                        state.sysctls.insert(path, saved);
                    }
                }
            }
        }
    }
    state_file.store(&state)?;
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(RealServerReport {
        address,
        changed,
        left_alone,
        state_file: state_file.path.clone(),
    })
}

/// `all`, `lo`, then the operator's interfaces, without duplicates.
fn devices(ifaces: &[String]) -> Vec<String> {
    let mut devices = vec!["all".to_string(), LOOPBACK.to_string()];
    for iface in ifaces {
        if !devices.contains(iface) {
            devices.push(iface.clone());
        }
    }
    devices
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_all_lo_then_named_ones() {
        assert_eq!(devices(&[]), ["all", "lo"]);
        assert_eq!(
            devices(&["eth0".into(), "lo".into(), "eth1".into(), "eth0".into()]),
            ["all", "lo", "eth0", "eth1"]
        );
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut state = State::default();
        state.vips.insert("203.0.113.10".parse().unwrap());
        state.vips.insert("2001:db8::10".parse().unwrap());
        state.sysctls.insert(
            sysctl::path("all", ArpSysctl::Ignore),
            SavedSysctl {
                original: 0,
                ours: 1,
            },
        );
        let text = serde_json::to_string(&state).unwrap();
        assert!(text.contains("\"203.0.113.10\""), "{text}");
        assert!(
            text.contains("/proc/sys/net/ipv4/conf/all/arp_ignore"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<State>(&text).unwrap(), state);
        assert!(state.has_ipv4());
    }
}
