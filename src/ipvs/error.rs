// SPDX-License-Identifier: GPL-2.0-or-later
//! Errors of the IPVS client, worded for the operator who reads them.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::DecodeError;

use crate::ipvs::model::ServiceKey;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpvsError {
    #[error(
        "the kernel has no IPVS: the generic netlink family IPVS is \
         unknown, even after `modprobe ip_vs` (a kernel without \
         CONFIG_IP_VS, or a container that cannot load modules: load \
         ip_vs on the host)"
    )]
    NoIpvs,

    #[error("needs CAP_NET_ADMIN (run as root)")]
    PermissionDenied,

    #[error("scheduler '{0}' is not available in this kernel")]
    SchedulerNotAvailable(String),

    #[error(
        "scheduler '{scheduler}' or persistence engine '{engine}' is not \
         available in this kernel"
    )]
    SchedulerOrEngineNotAvailable { scheduler: String, engine: String },

    #[error("service {0} does not exist")]
    ServiceNotFound(ServiceKey),

    /// A destination operation named a service the kernel does not have.
    #[error("{operation}: service {service} does not exist")]
    DestinationServiceMissing {
        operation: String,
        service: ServiceKey,
    },

    #[error("sync daemon: network interface '{0}' does not exist")]
    SyncInterfaceMissing(String),

    /// A start asked for settings other than those of the daemon that runs.
    #[error(
        "a {state} sync daemon already runs with other settings \
         ({running}); stop it first"
    )]
    SyncDaemonRunning { state: String, running: String },

    #[error("destination {} does not exist in service {service}", endpoint(.addr, *.port))]
    DestinationNotFound {
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
    },

    #[error(
        "destination {} in service {service}: lower threshold {lower} is \
         above upper threshold {upper}", endpoint(.addr, *.port)
    )]
    ThresholdRange {
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
        lower: u32,
        upper: u32,
    },

    /// A value the kernel would refuse, caught before sending it.
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },

    /// Any other refusal, with the operation it answered.
    #[error("{operation}: the kernel refused it: {source}")]
    Kernel {
        operation: String,
        #[source]
        source: io::Error,
    },

    #[error("the kernel sent an attribute list without {0}")]
    MissingAttribute(&'static str),

    #[error("the kernel sent an unsupported {0}")]
    UnsupportedValue(String),

    #[error("cannot decode the kernel's IPVS message: {0}")]
    Decode(#[from] DecodeError),

    #[error("unexpected reply from the kernel to {operation}: {reply}")]
    UnexpectedReply { operation: String, reply: String },

    #[error("netlink socket: {0}")]
    Socket(#[source] io::Error),

    #[error("the netlink connection closed")]
    ConnectionClosed,
}

fn endpoint(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}
