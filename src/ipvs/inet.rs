// SPDX-License-Identifier: GPL-2.0-or-later
//! `union nf_inet_addr` on the wire: always 16 bytes, IPv4 in the first
//! four. Which of the two it is comes from a sibling attribute (the service's
//! `AF` or the destination's `ADDR_FAMILY`), so parsers take it as a
//! parameter.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{DecodeError, NlaBuffer, NlasIterator};

use crate::ipvs::model::AddressFamily;

pub(crate) const AF_INET: u16 = libc::AF_INET as u16;
pub(crate) const AF_INET6: u16 = libc::AF_INET6 as u16;

/// Size of `union nf_inet_addr`, what the kernel sends and ipvsadm sends.
pub(crate) const INET_ADDR_LEN: usize = 16;

pub(crate) fn af_to_kernel(af: AddressFamily) -> u16 {
    match af {
        AddressFamily::Inet => AF_INET,
        AddressFamily::Inet6 => AF_INET6,
    }
}

pub(crate) fn af_from_kernel(af: u16) -> Option<AddressFamily> {
    match af {
        AF_INET => Some(AddressFamily::Inet),
        AF_INET6 => Some(AddressFamily::Inet6),
        _ => None,
    }
}

/// Decodes an address attribute. `af` is the family from the sibling
/// attribute; without one (never the case in what the kernel sends), a
/// 4-byte value or a 16-byte value whose last 12 bytes are zero is IPv4.
pub(crate) fn parse_inet_addr(payload: &[u8], af: Option<u16>) -> Result<IpAddr, DecodeError> {
    let v4 = |p: &[u8]| IpAddr::V4(Ipv4Addr::new(p[0], p[1], p[2], p[3]));
    let v6 = |p: &[u8]| {
        let mut octets = [0u8; INET_ADDR_LEN];
        octets.copy_from_slice(p);
        IpAddr::V6(Ipv6Addr::from(octets))
    };
    let len = payload.len();
    match (af, len) {
        (Some(AF_INET), 4..) => Ok(v4(payload)),
        (Some(AF_INET6), INET_ADDR_LEN) => Ok(v6(payload)),
        (None, 4) => Ok(v4(payload)),
        (None, INET_ADDR_LEN) if payload[4..].iter().all(|b| *b == 0) => Ok(v4(payload)),
        (None, INET_ADDR_LEN) => Ok(v6(payload)),
        (af, len) => Err(DecodeError::from(format!(
            "invalid address: {len} bytes for address family {af:?}"
        ))),
    }
}

/// Encodes `addr` as the kernel does: 16 bytes, IPv4 zero-padded.
pub(crate) fn emit_inet_addr(buffer: &mut [u8], addr: &IpAddr) {
    buffer[..INET_ADDR_LEN].fill(0);
    match addr {
        IpAddr::V4(a) => buffer[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => buffer[..INET_ADDR_LEN].copy_from_slice(&a.octets()),
    }
}

/// Finds a `u16` attribute of `kind` in a nested list without decoding the
/// rest (used to learn the address family before decoding addresses).
pub(crate) fn find_u16(payload: &[u8], kind: u16) -> Option<u16> {
    NlasIterator::new(payload)
        .filter_map(Result::ok)
        .find(|nla: &NlaBuffer<&[u8]>| nla.kind() == kind)
        .and_then(|nla| netlink_packet_core::parse_u16(nla.value()).ok())
}
