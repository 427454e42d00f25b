// SPDX-License-Identifier: GPL-2.0-or-later
//! Desired table, observed table, the pure diff planner and the single kernel
//! writer.
//!
//! The kernel is the source of truth: every reconcile dumps the kernel's
//! table, plans the difference against the desired table, and applies only
//! that difference. Nothing here trusts a memory of what was programmed.

pub mod desired;
pub mod diff;
pub mod rules;

pub use desired::{DesiredService, DesiredTable, RealIntent};
pub use diff::{plan, Op};
pub use rules::{RealState, VirtualState};
pub mod managed;
pub mod state;
