// SPDX-License-Identifier: GPL-2.0-or-later
//! Reading and writing the per-interface IPv4 ARP sysctls under
//! /proc/sys/net/ipv4/conf.
//!
//! /proc/sys/net is resolved in the network namespace of the calling
//! *thread* when a file is opened, so these functions act on the same
//! namespace as a [`super::vip::VipHandle`] opened on the same thread.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::error::NetError;

/// One of the IPv4 ARP knobs real-server mode sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ArpSysctl {
    /// `arp_ignore`: which ARP requests to answer.
    Ignore,
    /// `arp_announce`: which source address to put in our ARP requests.
    Announce,
}

impl ArpSysctl {
    pub fn name(self) -> &'static str {
        match self {
            ArpSysctl::Ignore => "arp_ignore",
            ArpSysctl::Announce => "arp_announce",
        }
    }
}

/// `/proc/sys/net/ipv4/conf/<device>/<knob>`; `device` may be `all`.
pub fn path(device: &str, knob: ArpSysctl) -> PathBuf {
    PathBuf::from("/proc/sys/net/ipv4/conf")
        .join(device)
        .join(knob.name())
}

/// Reads an integer sysctl.
pub fn read(path: &Path) -> Result<i64, NetError> {
    let text = fs::read_to_string(path).map_err(|source| sysctl_error("read", path, source))?;
    text.trim().parse().map_err(|_| NetError::SysctlValue {
        path: path.to_path_buf(),
        value: text.trim().to_string(),
    })
}

/// Writes an integer sysctl.
pub fn write(path: &Path, value: i64) -> Result<(), NetError> {
    fs::write(path, format!("{value}\n")).map_err(|source| sysctl_error("write", path, source))
}

fn sysctl_error(verb: &str, path: &Path, source: std::io::Error) -> NetError {
    if source.kind() == ErrorKind::PermissionDenied {
        NetError::PermissionDenied {
            operation: format!("{verb} {}", path.display()),
            capability: "root (or CAP_NET_ADMIN in the network namespace)",
        }
    } else {
        NetError::Sysctl {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_device_and_knob() {
        assert_eq!(
            path("all", ArpSysctl::Ignore),
            PathBuf::from("/proc/sys/net/ipv4/conf/all/arp_ignore")
        );
        assert_eq!(
            path("eth0.100", ArpSysctl::Announce),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/arp_announce")
        );
    }
}
