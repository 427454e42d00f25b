// SPDX-License-Identifier: GPL-2.0-or-later
//! ldirector: a Linux Virtual Server director, compatible with ldirectord.
//!
//! Data flows one way (see README, "Architecture"):
//! `config` parses ldirectord.cf into a typed model; `check` probes real
//! servers and keeps their health; `director` plans the desired IPVS table
//! from config + health and diffs it against the kernel's table; `ipvs` is
//! the only code that writes to the kernel; `net` owns the VIP; `daemon`
//! ties it together with signals, reload and the control socket.

pub mod check;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod director;
pub mod inspect;
pub mod ipvs;
pub mod net;
