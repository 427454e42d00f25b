// SPDX-License-Identifier: GPL-2.0-or-later
//! The daemon: run loop, signals, pid file, reload, control socket, metrics.

pub mod checks;
pub mod control;
pub mod email;
pub mod instances;
pub mod log;
pub mod metrics;
pub mod monitorfile;
pub mod notify;
pub mod pidfile;
pub mod runner;
pub mod status;
pub mod vips;
