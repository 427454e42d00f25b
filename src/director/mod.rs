// SPDX-License-Identifier: GPL-2.0-or-later
//! Desired table, observed table, the pure diff planner and the single kernel writer.
