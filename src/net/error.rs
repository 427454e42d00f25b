// SPDX-License-Identifier: GPL-2.0-or-later
//! Errors of the `net` module (VIP management, announcements, DR mode).
//!
//! Messages are written for the operator who typed the command: they name
//! the interface, the address and, for permission problems, the capability
//! that is missing, so the fix is obvious from the message alone.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

/// Everything that can go wrong while owning, announcing or releasing a VIP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The named interface is not in this network namespace.
    #[error("interface {iface} does not exist")]
    InterfaceNotFound { iface: String },

    /// The kernel refused the operation for lack of a capability.
    #[error("{operation}: permission denied (needs {capability})")]
    PermissionDenied {
        operation: String,
        capability: &'static str,
    },

    /// The address is already configured on another interface of this
    /// namespace. Adding it a second time would answer ARP/ND for it from
    /// two places, which is almost always a configuration mistake.
    #[error(
        "{addr} is already in use on interface {other_iface}; refusing to add it to {iface} too"
    )]
    AddressInUse {
        addr: IpAddr,
        iface: String,
        other_iface: String,
    },

    /// The address is on the interface, but with another prefix length than
    /// the one asked for. Nothing was changed.
    #[error("{addr} is present on {iface} as /{present}, not /{requested}; nothing changed")]
    PrefixMismatch {
        addr: IpAddr,
        iface: String,
        present: u8,
        requested: u8,
    },

    /// An address or prefix the caller gave cannot be a VIP.
    #[error("invalid address {input:?}: {reason}")]
    InvalidAddress { input: String, reason: String },

    /// An address label the kernel would reject (or mangle).
    #[error("invalid label {label:?}: {reason}")]
    InvalidLabel { label: String, reason: String },

    /// An announcement was asked for on an interface that cannot carry it.
    #[error("cannot announce on interface {iface}: {reason}")]
    NotAnnounceable { iface: String, reason: String },

    /// The interface exists but is administratively down.
    #[error("interface {iface} is down")]
    InterfaceDown { iface: String },

    /// Any other refusal from the kernel over rtnetlink.
    #[error("{operation}: {source}")]
    Netlink {
        operation: String,
        #[source]
        source: io::Error,
    },

    /// The rtnetlink conversation itself failed (socket, unexpected reply).
    #[error("{operation}: rtnetlink: {detail}")]
    Rtnetlink { operation: String, detail: String },

    /// Sending announcement frames failed.
    #[error("{operation}: {source}")]
    Send {
        operation: String,
        #[source]
        source: io::Error,
    },

    /// Reading or writing a sysctl under /proc/sys failed.
    #[error("sysctl {path}: {source}")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A sysctl held something that is not a number.
    #[error("sysctl {path}: unexpected value {value:?}")]
    SysctlValue { path: PathBuf, value: String },

    /// The real-server state file could not be read or written.
    #[error("real-server state {path}: {detail}")]
    State { path: PathBuf, detail: String },

    /// A step failed, and undoing the steps before it failed too: the
    /// system may be left half-configured, and this says exactly how.
    #[error("{error}; and rolling back failed too: {rollback}")]
    RollbackFailed {
        error: Box<NetError>,
        rollback: Box<NetError>,
    },
}

impl NetError {
    /// Whether this error means the caller lacks privileges.
    pub fn is_permission_denied(&self) -> bool {
        match self {
            NetError::PermissionDenied { .. } => true,
            NetError::RollbackFailed { error, .. } => error.is_permission_denied(),
            _ => false,
        }
    }

    /// Maps an error returned by the kernel for `operation` to the error an
    /// operator can act on: EPERM/EACCES name the capability that is needed.
    pub(crate) fn from_os(
        operation: impl Into<String>,
        capability: &'static str,
        source: io::Error,
    ) -> NetError {
        let operation = operation.into();
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => NetError::PermissionDenied {
                operation,
                capability,
            },
            _ => NetError::Netlink { operation, source },
        }
    }
}
