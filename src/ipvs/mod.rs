// SPDX-License-Identifier: GPL-2.0-or-later
//! IPVS over generic netlink: the wire codec (a sibling of the
//! netlink-packet-* crates), the typed model, and an async handle.
//!
//! `model` holds the semantic types shared by the codec, the director's
//! planner and `ipvs-ls`. The codec (`message`, `service`, `destination`,
//! `daemon`, `stats`) mirrors `include/uapi/linux/ip_vs.h` attribute for
//! attribute, keeps unknown attributes, and converts to and from the model
//! with `TryFrom`. `handle` is the only code that talks to the kernel.

mod daemon;
mod destination;
mod error;
mod handle;
mod inet;
mod message;
pub mod model;
mod service;
mod stats;

#[cfg(test)]
mod tests;

pub use daemon::DaemonAttribute;
pub use destination::DestinationAttribute;
pub use error::IpvsError;
pub use handle::{IpvsHandle, IpvsOp};
pub use message::{IpvsAttribute, IpvsCmd, IpvsMessage};
pub use model::*;
pub use service::{FlagsWithMask, ServiceAttribute};
pub use stats::{Stats64Attribute, StatsAttribute};
