// SPDX-License-Identifier: GPL-2.0-or-later
//! IPVS over generic netlink: the wire codec (a sibling of the
//! netlink-packet-* crates), the typed model, and an async handle.
//!
//! `model` holds the semantic types shared by the codec, the director's
//! planner and `ipvs-ls`. The codec converts between them and attributes.

pub mod model;

pub use model::*;
