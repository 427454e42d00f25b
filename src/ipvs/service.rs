// SPDX-License-Identifier: GPL-2.0-or-later
//! Attributes nested in `IPVS_CMD_ATTR_SERVICE`, and their conversion to and
//! from the semantic [`Service`] / [`ServiceEntry`].

use std::net::IpAddr;

use netlink_packet_core::{
    emit_u16, emit_u16_be, emit_u32, emit_u32_be, parse_string, parse_u16, parse_u16_be, parse_u32,
    parse_u32_be, DecodeError, DefaultNla, Emitable, ErrorContext, Nla, NlaBuffer, NlasIterator,
    Parseable, ParseableParametrized,
};

use crate::ipvs::error::IpvsError;
use crate::ipvs::inet::{
    af_from_kernel, af_to_kernel, emit_inet_addr, find_u16, parse_inet_addr, INET_ADDR_LEN,
};
use crate::ipvs::model::{
    AddressFamily, Protocol, Service, ServiceEntry, ServiceFlags, ServiceKey, Stats,
};
use crate::ipvs::stats::{parse_stats, parse_stats64, Stats64Attribute, StatsAttribute};

const IPVS_SVC_ATTR_AF: u16 = 1;
const IPVS_SVC_ATTR_PROTOCOL: u16 = 2;
const IPVS_SVC_ATTR_ADDR: u16 = 3;
const IPVS_SVC_ATTR_PORT: u16 = 4;
const IPVS_SVC_ATTR_FWMARK: u16 = 5;
const IPVS_SVC_ATTR_SCHED_NAME: u16 = 6;
const IPVS_SVC_ATTR_FLAGS: u16 = 7;
const IPVS_SVC_ATTR_TIMEOUT: u16 = 8;
const IPVS_SVC_ATTR_NETMASK: u16 = 9;
const IPVS_SVC_ATTR_STATS: u16 = 10;
const IPVS_SVC_ATTR_PE_NAME: u16 = 11;
const IPVS_SVC_ATTR_STATS64: u16 = 12;

const IP_VS_FLAGS_LEN: usize = 8;

/// `struct ip_vs_flags`: which bits to set (`flags`) among those the request
/// changes (`mask`). The kernel always answers with `mask = !0`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlagsWithMask {
    pub flags: u32,
    pub mask: u32,
}

#[derive(Debug, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ServiceAttribute {
    /// `AF_INET` or `AF_INET6`.
    AddressFamily(u16),
    /// `IPPROTO_*` of an address-based service.
    Protocol(u16),
    Address(IpAddr),
    /// Host order here; big-endian on the wire.
    Port(u16),
    Fwmark(u32),
    SchedulerName(String),
    Flags(FlagsWithMask),
    /// Persistence timeout, seconds.
    Timeout(u32),
    /// The kernel's `__be32 netmask` read as a big-endian number: an IPv4
    /// mask (`0xffffff00` is /24). For IPv6 services the kernel keeps the
    /// prefix length there in host order instead; the conversion to
    /// [`Service`] sorts that out.
    Netmask(u32),
    Stats(Vec<StatsAttribute>),
    PersistenceEngine(String),
    Stats64(Vec<Stats64Attribute>),
    Other(DefaultNla),
}

impl Nla for ServiceAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::AddressFamily(_) | Self::Protocol(_) | Self::Port(_) => 2,
            Self::Fwmark(_) | Self::Timeout(_) | Self::Netmask(_) => 4,
            Self::Address(_) => INET_ADDR_LEN,
            Self::SchedulerName(s) | Self::PersistenceEngine(s) => s.len() + 1,
            Self::Flags(_) => IP_VS_FLAGS_LEN,
            Self::Stats(nlas) => nlas.as_slice().buffer_len(),
            Self::Stats64(nlas) => nlas.as_slice().buffer_len(),
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::AddressFamily(v) | Self::Protocol(v) => emit_u16(buffer, *v).unwrap(),
            Self::Port(v) => emit_u16_be(buffer, *v).unwrap(),
            Self::Fwmark(v) | Self::Timeout(v) => emit_u32(buffer, *v).unwrap(),
            Self::Netmask(v) => emit_u32_be(buffer, *v).unwrap(),
            Self::Address(addr) => emit_inet_addr(buffer, addr),
            Self::SchedulerName(s) | Self::PersistenceEngine(s) => {
                buffer[..s.len()].copy_from_slice(s.as_bytes());
                buffer[s.len()] = 0;
            }
            Self::Flags(f) => {
                emit_u32(&mut buffer[..4], f.flags).unwrap();
                emit_u32(&mut buffer[4..], f.mask).unwrap();
            }
            Self::Stats(nlas) => nlas.as_slice().emit(buffer),
            Self::Stats64(nlas) => nlas.as_slice().emit(buffer),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::AddressFamily(_) => IPVS_SVC_ATTR_AF,
            Self::Protocol(_) => IPVS_SVC_ATTR_PROTOCOL,
            Self::Address(_) => IPVS_SVC_ATTR_ADDR,
            Self::Port(_) => IPVS_SVC_ATTR_PORT,
            Self::Fwmark(_) => IPVS_SVC_ATTR_FWMARK,
            Self::SchedulerName(_) => IPVS_SVC_ATTR_SCHED_NAME,
            Self::Flags(_) => IPVS_SVC_ATTR_FLAGS,
            Self::Timeout(_) => IPVS_SVC_ATTR_TIMEOUT,
            Self::Netmask(_) => IPVS_SVC_ATTR_NETMASK,
            Self::Stats(_) => IPVS_SVC_ATTR_STATS,
            Self::PersistenceEngine(_) => IPVS_SVC_ATTR_PE_NAME,
            Self::Stats64(_) => IPVS_SVC_ATTR_STATS64,
            Self::Other(nla) => nla.kind(),
        }
    }
}

/// The parameter is the raw address family found beside the attribute.
impl<'a, T: AsRef<[u8]> + ?Sized> ParseableParametrized<NlaBuffer<&'a T>, Option<u16>>
    for ServiceAttribute
{
    fn parse_with_param(buf: &NlaBuffer<&'a T>, af: Option<u16>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        Ok(match buf.kind() {
            IPVS_SVC_ATTR_AF => {
                Self::AddressFamily(parse_u16(payload).context("invalid IPVS_SVC_ATTR_AF value")?)
            }
            IPVS_SVC_ATTR_PROTOCOL => {
                Self::Protocol(parse_u16(payload).context("invalid IPVS_SVC_ATTR_PROTOCOL value")?)
            }
            IPVS_SVC_ATTR_ADDR => Self::Address(
                parse_inet_addr(payload, af).context("invalid IPVS_SVC_ATTR_ADDR value")?,
            ),
            IPVS_SVC_ATTR_PORT => {
                Self::Port(parse_u16_be(payload).context("invalid IPVS_SVC_ATTR_PORT value")?)
            }
            IPVS_SVC_ATTR_FWMARK => {
                Self::Fwmark(parse_u32(payload).context("invalid IPVS_SVC_ATTR_FWMARK value")?)
            }
            IPVS_SVC_ATTR_SCHED_NAME => Self::SchedulerName(
                parse_string(payload).context("invalid IPVS_SVC_ATTR_SCHED_NAME value")?,
            ),
            IPVS_SVC_ATTR_FLAGS => {
                if payload.len() != IP_VS_FLAGS_LEN {
                    return Err(DecodeError::invalid_buffer(
                        "IPVS_SVC_ATTR_FLAGS",
                        payload.len(),
                        IP_VS_FLAGS_LEN,
                    ));
                }
                Self::Flags(FlagsWithMask {
                    flags: parse_u32(&payload[..4]).context("invalid IPVS_SVC_ATTR_FLAGS flags")?,
                    mask: parse_u32(&payload[4..]).context("invalid IPVS_SVC_ATTR_FLAGS mask")?,
                })
            }
            IPVS_SVC_ATTR_TIMEOUT => {
                Self::Timeout(parse_u32(payload).context("invalid IPVS_SVC_ATTR_TIMEOUT value")?)
            }
            IPVS_SVC_ATTR_NETMASK => {
                Self::Netmask(parse_u32_be(payload).context("invalid IPVS_SVC_ATTR_NETMASK value")?)
            }
            IPVS_SVC_ATTR_STATS => {
                Self::Stats(parse_stats(payload).context("invalid IPVS_SVC_ATTR_STATS value")?)
            }
            IPVS_SVC_ATTR_PE_NAME => Self::PersistenceEngine(
                parse_string(payload).context("invalid IPVS_SVC_ATTR_PE_NAME value")?,
            ),
            IPVS_SVC_ATTR_STATS64 => Self::Stats64(
                parse_stats64(payload).context("invalid IPVS_SVC_ATTR_STATS64 value")?,
            ),
            _ => Self::Other(DefaultNla::parse(buf).context("invalid service attribute")?),
        })
    }
}

/// Decodes the content of an `IPVS_CMD_ATTR_SERVICE` nest.
pub(crate) fn parse_service_attributes(
    payload: &[u8],
) -> Result<Vec<ServiceAttribute>, DecodeError> {
    let af = find_u16(payload, IPVS_SVC_ATTR_AF);
    NlasIterator::new(payload)
        .map(|nla| nla.and_then(|nla| ServiceAttribute::parse_with_param(&nla, af)))
        .collect()
}

/// The kernel keeps an IPv6 prefix length in host order in a field it
/// declares big-endian; these two functions translate the model's plain
/// prefix length to and from the big-endian reading of those bytes.
fn netmask_to_wire(af: AddressFamily, netmask: u32) -> u32 {
    match af {
        AddressFamily::Inet => netmask,
        AddressFamily::Inet6 => u32::from_be_bytes(netmask.to_ne_bytes()),
    }
}

fn netmask_from_wire(af: AddressFamily, wire: u32) -> u32 {
    match af {
        AddressFamily::Inet => wire,
        AddressFamily::Inet6 => u32::from_ne_bytes(wire.to_be_bytes()),
    }
}

impl ServiceAttribute {
    /// The identifying attributes of a service (what delete, get, zero and
    /// the destination commands need).
    pub fn from_key(key: &ServiceKey) -> Vec<Self> {
        let mut attributes = vec![Self::AddressFamily(af_to_kernel(key.af()))];
        match *key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                attributes.push(Self::Protocol(protocol.number()));
                attributes.push(Self::Address(addr));
                attributes.push(Self::Port(port));
            }
            ServiceKey::Fwmark { mark, .. } => {
                attributes.push(Self::Fwmark(mark));
            }
        }
        attributes
    }

    /// The full description of a service, as add and edit need it.
    pub fn from_service(service: &Service) -> Vec<Self> {
        let af = service.key.af();
        let mut attributes = Self::from_key(&service.key);
        attributes.push(Self::SchedulerName(service.scheduler.clone()));
        if let Some(pe) = &service.pe_name {
            attributes.push(Self::PersistenceEngine(pe.clone()));
        }
        attributes.push(Self::Flags(FlagsWithMask {
            flags: service.flags.0 & !ServiceFlags::HASHED,
            mask: u32::MAX,
        }));
        attributes.push(Self::Timeout(service.timeout));
        attributes.push(Self::Netmask(netmask_to_wire(af, service.netmask)));
        attributes
    }
}

/// Reads the identifying part of a service.
pub(crate) fn service_key_of(attributes: &[ServiceAttribute]) -> Result<ServiceKey, IpvsError> {
    let mut af = None;
    let mut protocol = None;
    let mut addr = None;
    let mut port = None;
    let mut fwmark = None;
    for attribute in attributes {
        match attribute {
            ServiceAttribute::AddressFamily(v) => af = Some(*v),
            ServiceAttribute::Protocol(v) => protocol = Some(*v),
            ServiceAttribute::Address(v) => addr = Some(*v),
            ServiceAttribute::Port(v) => port = Some(*v),
            ServiceAttribute::Fwmark(v) => fwmark = Some(*v),
            _ => {}
        }
    }
    let af = af.ok_or(IpvsError::MissingAttribute("IPVS_SVC_ATTR_AF"))?;
    let family = af_from_kernel(af)
        .ok_or_else(|| IpvsError::UnsupportedValue(format!("service address family {af}")))?;
    if let Some(mark) = fwmark {
        return Ok(ServiceKey::Fwmark { af: family, mark });
    }
    let number = protocol.ok_or(IpvsError::MissingAttribute("IPVS_SVC_ATTR_PROTOCOL"))?;
    let protocol = Protocol::from_number(number)
        .ok_or_else(|| IpvsError::UnsupportedValue(format!("service protocol {number}")))?;
    let addr = addr.ok_or(IpvsError::MissingAttribute("IPVS_SVC_ATTR_ADDR"))?;
    if AddressFamily::of(&addr) != family {
        return Err(IpvsError::UnsupportedValue(format!(
            "service address {addr} in address family {af}"
        )));
    }
    let port = port.ok_or(IpvsError::MissingAttribute("IPVS_SVC_ATTR_PORT"))?;
    Ok(ServiceKey::Addr {
        protocol,
        addr,
        port,
    })
}

/// A service as the kernel dumps it; `destinations` is left empty (they
/// come from a separate dump).
impl TryFrom<&[ServiceAttribute]> for ServiceEntry {
    type Error = IpvsError;

    fn try_from(attributes: &[ServiceAttribute]) -> Result<Self, IpvsError> {
        let key = service_key_of(attributes)?;
        let mut scheduler = None;
        let mut flags = 0;
        let mut timeout = 0;
        let mut netmask = 0;
        let mut pe_name = None;
        let mut stats = None;
        let mut stats64 = None;
        for attribute in attributes {
            match attribute {
                ServiceAttribute::SchedulerName(v) => scheduler = Some(v),
                ServiceAttribute::Flags(v) => flags = v.flags & v.mask,
                ServiceAttribute::Timeout(v) => timeout = *v,
                ServiceAttribute::Netmask(v) => netmask = *v,
                ServiceAttribute::PersistenceEngine(v) => pe_name = Some(v),
                ServiceAttribute::Stats(v) => stats = Some(v),
                ServiceAttribute::Stats64(v) => stats64 = Some(v),
                _ => {}
            }
        }
        let scheduler = scheduler.ok_or(IpvsError::MissingAttribute("IPVS_SVC_ATTR_SCHED_NAME"))?;
        // Prefer the 64-bit counters; kernels before 4.0 only send the
        // legacy nest.
        let stats = match (stats64, stats) {
            (Some(s), _) => Stats::from(s.as_slice()),
            (None, Some(s)) => Stats::from(s.as_slice()),
            (None, None) => Stats::default(),
        };
        Ok(ServiceEntry {
            service: Service {
                key,
                scheduler: scheduler.clone(),
                flags: ServiceFlags(flags & !ServiceFlags::HASHED),
                timeout,
                netmask: netmask_from_wire(key.af(), netmask),
                pe_name: pe_name.cloned(),
            },
            stats,
            destinations: Vec::new(),
        })
    }
}

impl TryFrom<&[ServiceAttribute]> for Service {
    type Error = IpvsError;

    fn try_from(attributes: &[ServiceAttribute]) -> Result<Self, IpvsError> {
        ServiceEntry::try_from(attributes).map(|entry| entry.service)
    }
}
