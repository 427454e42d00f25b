// SPDX-License-Identifier: GPL-2.0-or-later
//! Health checks: one trait, one file per check type or negotiate service.
//!
//! A checker only probes and reports pass or fail with a reason; counting
//! consecutive failures (flap damping) is the threshold counter's job, and
//! scheduling is the scheduler's.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::BoxFuture;

/// Where a check goes, and which virtual it serves (external checks pass
/// both to the command: `VIP VPORT RIP RPORT`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckTarget {
    /// The real server's address and the port to probe (checkport, else the
    /// real's port, else the service's default port).
    pub addr: SocketAddr,
    /// The virtual's address (`None` for fwmark virtuals).
    pub virtual_addr: Option<IpAddr>,
    /// The virtual's port, or the fwmark for fwmark virtuals.
    pub virtual_port: u32,
    /// The real's configured port (0 for fwmark reals without a port).
    pub real_port: u16,
}

/// Why a check failed. `Display` is the human reason used in logs, status
/// and `--probe` output, so every variant reads as a short sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("connection refused")]
    Refused,
    #[error("timeout after {:.1}s", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("{0}")]
    Io(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Protocol(String),
    #[error("receive /{0}/ not found")]
    ReceiveMismatch(String),
    #[error("{0}")]
    Other(String),
}

/// One probe of one real server.
pub trait Checker: Send + Sync {
    /// Short name for logs (`http`, `connect`, ...).
    fn name(&self) -> &'static str;

    /// Probe the target once. Implementations bound their own I/O by the
    /// timeout they were built with; callers still wrap the future in a
    /// timeout as a last line of defence.
    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>>;
}

pub mod ldap;
pub mod ldaps;
pub mod mysql;
pub mod oracle;
pub mod pgsql;
pub mod radius;
