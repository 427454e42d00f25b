// SPDX-License-Identifier: GPL-2.0-or-later
//! Attributes nested in `IPVS_CMD_ATTR_DEST`, and their conversion to and
//! from the semantic [`Destination`] / [`DestinationEntry`].

use std::net::IpAddr;

use netlink_packet_core::{
    emit_u16, emit_u16_be, emit_u32, parse_u16, parse_u16_be, parse_u32, parse_u8, DecodeError,
    DefaultNla, Emitable, ErrorContext, Nla, NlaBuffer, NlasIterator, Parseable,
    ParseableParametrized,
};

use crate::ipvs::error::IpvsError;
use crate::ipvs::inet::{
    af_from_kernel, af_to_kernel, emit_inet_addr, find_u16, parse_inet_addr, INET_ADDR_LEN,
};
use crate::ipvs::model::{
    AddressFamily, ConnCounts, Destination, DestinationEntry, ForwardMethod, Stats, TunnelSettings,
    TunnelType,
};
use crate::ipvs::stats::{parse_stats, parse_stats64, Stats64Attribute, StatsAttribute};

const IPVS_DEST_ATTR_ADDR: u16 = 1;
const IPVS_DEST_ATTR_PORT: u16 = 2;
const IPVS_DEST_ATTR_FWD_METHOD: u16 = 3;
const IPVS_DEST_ATTR_WEIGHT: u16 = 4;
const IPVS_DEST_ATTR_U_THRESH: u16 = 5;
const IPVS_DEST_ATTR_L_THRESH: u16 = 6;
const IPVS_DEST_ATTR_ACTIVE_CONNS: u16 = 7;
const IPVS_DEST_ATTR_INACT_CONNS: u16 = 8;
const IPVS_DEST_ATTR_PERSIST_CONNS: u16 = 9;
const IPVS_DEST_ATTR_STATS: u16 = 10;
const IPVS_DEST_ATTR_ADDR_FAMILY: u16 = 11;
const IPVS_DEST_ATTR_STATS64: u16 = 12;
const IPVS_DEST_ATTR_TUN_TYPE: u16 = 13;
const IPVS_DEST_ATTR_TUN_PORT: u16 = 14;
const IPVS_DEST_ATTR_TUN_FLAGS: u16 = 15;

#[derive(Debug, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum DestinationAttribute {
    Address(IpAddr),
    /// Host order here; big-endian on the wire.
    Port(u16),
    /// `IP_VS_CONN_F_*` forwarding method (masked with `FWD_MASK`).
    ForwardMethod(u32),
    Weight(u32),
    UpperThreshold(u32),
    LowerThreshold(u32),
    ActiveConns(u32),
    InactiveConns(u32),
    PersistentConns(u32),
    Stats(Vec<StatsAttribute>),
    /// `AF_INET` or `AF_INET6`; may differ from the service's for tunnels.
    AddressFamily(u16),
    Stats64(Vec<Stats64Attribute>),
    /// `IP_VS_CONN_F_TUNNEL_TYPE_*`.
    TunnelType(u8),
    /// GUE port; host order here, big-endian on the wire.
    TunnelPort(u16),
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*`.
    TunnelFlags(u16),
    Other(DefaultNla),
}

impl Nla for DestinationAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Address(_) => INET_ADDR_LEN,
            Self::Port(_) | Self::AddressFamily(_) | Self::TunnelPort(_) | Self::TunnelFlags(_) => {
                2
            }
            Self::TunnelType(_) => 1,
            Self::ForwardMethod(_)
            | Self::Weight(_)
            | Self::UpperThreshold(_)
            | Self::LowerThreshold(_)
            | Self::ActiveConns(_)
            | Self::InactiveConns(_)
            | Self::PersistentConns(_) => 4,
            Self::Stats(nlas) => nlas.as_slice().buffer_len(),
            Self::Stats64(nlas) => nlas.as_slice().buffer_len(),
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Address(addr) => emit_inet_addr(buffer, addr),
            Self::Port(v) | Self::TunnelPort(v) => emit_u16_be(buffer, *v).unwrap(),
            Self::AddressFamily(v) | Self::TunnelFlags(v) => emit_u16(buffer, *v).unwrap(),
            Self::TunnelType(v) => buffer[0] = *v,
            Self::ForwardMethod(v)
            | Self::Weight(v)
            | Self::UpperThreshold(v)
            | Self::LowerThreshold(v)
            | Self::ActiveConns(v)
            | Self::InactiveConns(v)
            | Self::PersistentConns(v) => emit_u32(buffer, *v).unwrap(),
            Self::Stats(nlas) => nlas.as_slice().emit(buffer),
            Self::Stats64(nlas) => nlas.as_slice().emit(buffer),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Address(_) => IPVS_DEST_ATTR_ADDR,
            Self::Port(_) => IPVS_DEST_ATTR_PORT,
            Self::ForwardMethod(_) => IPVS_DEST_ATTR_FWD_METHOD,
            Self::Weight(_) => IPVS_DEST_ATTR_WEIGHT,
            Self::UpperThreshold(_) => IPVS_DEST_ATTR_U_THRESH,
            Self::LowerThreshold(_) => IPVS_DEST_ATTR_L_THRESH,
            Self::ActiveConns(_) => IPVS_DEST_ATTR_ACTIVE_CONNS,
            Self::InactiveConns(_) => IPVS_DEST_ATTR_INACT_CONNS,
            Self::PersistentConns(_) => IPVS_DEST_ATTR_PERSIST_CONNS,
            Self::Stats(_) => IPVS_DEST_ATTR_STATS,
            Self::AddressFamily(_) => IPVS_DEST_ATTR_ADDR_FAMILY,
            Self::Stats64(_) => IPVS_DEST_ATTR_STATS64,
            Self::TunnelType(_) => IPVS_DEST_ATTR_TUN_TYPE,
            Self::TunnelPort(_) => IPVS_DEST_ATTR_TUN_PORT,
            Self::TunnelFlags(_) => IPVS_DEST_ATTR_TUN_FLAGS,
            Self::Other(nla) => nla.kind(),
        }
    }
}

/// The parameter is the raw address family of the address: the
/// destination's own `ADDR_FAMILY`, or else its service's.
impl<'a, T: AsRef<[u8]> + ?Sized> ParseableParametrized<NlaBuffer<&'a T>, Option<u16>>
    for DestinationAttribute
{
    fn parse_with_param(buf: &NlaBuffer<&'a T>, af: Option<u16>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        let u32_of =
            |name: &str| parse_u32(payload).with_context(|| format!("invalid {name} value"));
        Ok(match buf.kind() {
            IPVS_DEST_ATTR_ADDR => Self::Address(
                parse_inet_addr(payload, af).context("invalid IPVS_DEST_ATTR_ADDR value")?,
            ),
            IPVS_DEST_ATTR_PORT => {
                Self::Port(parse_u16_be(payload).context("invalid IPVS_DEST_ATTR_PORT value")?)
            }
            IPVS_DEST_ATTR_FWD_METHOD => Self::ForwardMethod(u32_of("IPVS_DEST_ATTR_FWD_METHOD")?),
            IPVS_DEST_ATTR_WEIGHT => Self::Weight(u32_of("IPVS_DEST_ATTR_WEIGHT")?),
            IPVS_DEST_ATTR_U_THRESH => Self::UpperThreshold(u32_of("IPVS_DEST_ATTR_U_THRESH")?),
            IPVS_DEST_ATTR_L_THRESH => Self::LowerThreshold(u32_of("IPVS_DEST_ATTR_L_THRESH")?),
            IPVS_DEST_ATTR_ACTIVE_CONNS => {
                Self::ActiveConns(u32_of("IPVS_DEST_ATTR_ACTIVE_CONNS")?)
            }
            IPVS_DEST_ATTR_INACT_CONNS => {
                Self::InactiveConns(u32_of("IPVS_DEST_ATTR_INACT_CONNS")?)
            }
            IPVS_DEST_ATTR_PERSIST_CONNS => {
                Self::PersistentConns(u32_of("IPVS_DEST_ATTR_PERSIST_CONNS")?)
            }
            IPVS_DEST_ATTR_STATS => {
                Self::Stats(parse_stats(payload).context("invalid IPVS_DEST_ATTR_STATS value")?)
            }
            IPVS_DEST_ATTR_ADDR_FAMILY => Self::AddressFamily(
                parse_u16(payload).context("invalid IPVS_DEST_ATTR_ADDR_FAMILY value")?,
            ),
            IPVS_DEST_ATTR_STATS64 => Self::Stats64(
                parse_stats64(payload).context("invalid IPVS_DEST_ATTR_STATS64 value")?,
            ),
            IPVS_DEST_ATTR_TUN_TYPE => Self::TunnelType(
                parse_u8(payload).context("invalid IPVS_DEST_ATTR_TUN_TYPE value")?,
            ),
            IPVS_DEST_ATTR_TUN_PORT => Self::TunnelPort(
                parse_u16_be(payload).context("invalid IPVS_DEST_ATTR_TUN_PORT value")?,
            ),
            IPVS_DEST_ATTR_TUN_FLAGS => Self::TunnelFlags(
                parse_u16(payload).context("invalid IPVS_DEST_ATTR_TUN_FLAGS value")?,
            ),
            _ => Self::Other(DefaultNla::parse(buf).context("invalid destination attribute")?),
        })
    }
}

/// Decodes the content of an `IPVS_CMD_ATTR_DEST` nest; `service_af` is the
/// family of the enclosing message's service, used when the destination
/// does not name its own (ipvsadm before 1.28 did not).
pub(crate) fn parse_destination_attributes(
    payload: &[u8],
    service_af: Option<u16>,
) -> Result<Vec<DestinationAttribute>, DecodeError> {
    let af = find_u16(payload, IPVS_DEST_ATTR_ADDR_FAMILY).or(service_af);
    NlasIterator::new(payload)
        .map(|nla| nla.and_then(|nla| DestinationAttribute::parse_with_param(&nla, af)))
        .collect()
}

impl DestinationAttribute {
    /// The identifying attributes of a destination (what delete needs).
    pub fn from_address(addr: IpAddr, port: u16) -> Vec<Self> {
        vec![
            Self::Address(addr),
            Self::Port(port),
            Self::AddressFamily(af_to_kernel(AddressFamily::of(&addr))),
        ]
    }

    /// The full description of a destination, as add and edit need it.
    pub fn from_destination(dest: &Destination) -> Vec<Self> {
        let mut attributes = vec![
            Self::Address(dest.addr),
            Self::Port(dest.port),
            Self::ForwardMethod(dest.forward.to_kernel()),
            Self::Weight(dest.weight),
            Self::UpperThreshold(dest.upper_threshold),
            Self::LowerThreshold(dest.lower_threshold),
            Self::AddressFamily(af_to_kernel(AddressFamily::of(&dest.addr))),
        ];
        // The kernel resets the tunnel settings to zero when they are
        // absent, which is what every other method wants.
        if dest.forward == ForwardMethod::Tunnel {
            attributes.push(Self::TunnelType(dest.tunnel.tun_type.to_kernel()));
            attributes.push(Self::TunnelPort(dest.tunnel.port));
            attributes.push(Self::TunnelFlags(dest.tunnel.flags));
        }
        attributes
    }
}

impl TryFrom<&[DestinationAttribute]> for DestinationEntry {
    type Error = IpvsError;

    fn try_from(attributes: &[DestinationAttribute]) -> Result<Self, IpvsError> {
        let mut addr = None;
        let mut port = None;
        let mut forward = None;
        let mut weight = 0;
        let mut upper_threshold = 0;
        let mut lower_threshold = 0;
        let mut conns = ConnCounts::default();
        let mut tunnel = TunnelSettings::default();
        let mut af = None;
        let mut stats = None;
        let mut stats64 = None;
        for attribute in attributes {
            match attribute {
                DestinationAttribute::Address(v) => addr = Some(*v),
                DestinationAttribute::Port(v) => port = Some(*v),
                DestinationAttribute::ForwardMethod(v) => forward = Some(*v),
                DestinationAttribute::Weight(v) => weight = *v,
                DestinationAttribute::UpperThreshold(v) => upper_threshold = *v,
                DestinationAttribute::LowerThreshold(v) => lower_threshold = *v,
                DestinationAttribute::ActiveConns(v) => conns.active = *v,
                DestinationAttribute::InactiveConns(v) => conns.inactive = *v,
                DestinationAttribute::PersistentConns(v) => conns.persistent = *v,
                DestinationAttribute::Stats(v) => stats = Some(v),
                DestinationAttribute::AddressFamily(v) => af = Some(*v),
                DestinationAttribute::Stats64(v) => stats64 = Some(v),
                DestinationAttribute::TunnelType(v) => {
                    tunnel.tun_type = TunnelType::from_kernel(*v).ok_or_else(|| {
                        IpvsError::UnsupportedValue(format!("destination tunnel type {v}"))
                    })?
                }
                DestinationAttribute::TunnelPort(v) => tunnel.port = *v,
                DestinationAttribute::TunnelFlags(v) => tunnel.flags = *v,
                DestinationAttribute::Other(_) => {}
            }
        }
        let addr = addr.ok_or(IpvsError::MissingAttribute("IPVS_DEST_ATTR_ADDR"))?;
        if let Some(af) = af {
            if af_from_kernel(af) != Some(AddressFamily::of(&addr)) {
                return Err(IpvsError::UnsupportedValue(format!(
                    "destination address {addr} in address family {af}"
                )));
            }
        }
        let port = port.ok_or(IpvsError::MissingAttribute("IPVS_DEST_ATTR_PORT"))?;
        let method = forward.ok_or(IpvsError::MissingAttribute("IPVS_DEST_ATTR_FWD_METHOD"))?;
        let forward = ForwardMethod::from_kernel(method).ok_or_else(|| {
            IpvsError::UnsupportedValue(format!("destination forwarding method {method}"))
        })?;
        let stats = match (stats64, stats) {
            (Some(s), _) => Stats::from(s.as_slice()),
            (None, Some(s)) => Stats::from(s.as_slice()),
            (None, None) => Stats::default(),
        };
        Ok(DestinationEntry {
            dest: Destination {
                addr,
                port,
                forward,
                weight,
                upper_threshold,
                lower_threshold,
                tunnel,
            },
            conns,
            stats,
        })
    }
}

impl TryFrom<&[DestinationAttribute]> for Destination {
    type Error = IpvsError;

    fn try_from(attributes: &[DestinationAttribute]) -> Result<Self, IpvsError> {
        DestinationEntry::try_from(attributes).map(|entry| entry.dest)
    }
}
