// SPDX-License-Identifier: GPL-2.0-or-later
//! Counters nested in `IPVS_SVC_ATTR_STATS{,64}` and
//! `IPVS_DEST_ATTR_STATS{,64}`.
//!
//! The kernel sends both nests. The legacy one truncates every counter but
//! the byte counts to 32 bits, so it gets its own enum: keeping the wire
//! width in the type is what lets a parsed message re-emit byte for byte.

use netlink_packet_core::{
    emit_u32, emit_u64, parse_u32, parse_u64, DecodeError, DefaultNla, ErrorContext, Nla,
    NlaBuffer, NlasIterator, Parseable,
};

use crate::ipvs::model::Stats;

const IPVS_STATS_ATTR_CONNS: u16 = 1;
const IPVS_STATS_ATTR_INPKTS: u16 = 2;
const IPVS_STATS_ATTR_OUTPKTS: u16 = 3;
const IPVS_STATS_ATTR_INBYTES: u16 = 4;
const IPVS_STATS_ATTR_OUTBYTES: u16 = 5;
const IPVS_STATS_ATTR_CPS: u16 = 6;
const IPVS_STATS_ATTR_INPPS: u16 = 7;
const IPVS_STATS_ATTR_OUTPPS: u16 = 8;
const IPVS_STATS_ATTR_INBPS: u16 = 9;
const IPVS_STATS_ATTR_OUTBPS: u16 = 10;

/// One counter of the legacy `*_ATTR_STATS` nest (`struct ip_vs_stats_user`
/// widths: 32-bit counters, 64-bit byte counts).
#[derive(Debug, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum StatsAttribute {
    Conns(u32),
    InPackets(u32),
    OutPackets(u32),
    InBytes(u64),
    OutBytes(u64),
    ConnRate(u32),
    InPacketRate(u32),
    OutPacketRate(u32),
    InByteRate(u32),
    OutByteRate(u32),
    /// Unknown counters, and `IPVS_STATS_ATTR_PAD` on architectures that
    /// need 64-bit alignment.
    Other(DefaultNla),
}

impl Nla for StatsAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::InBytes(_) | Self::OutBytes(_) => 8,
            Self::Other(nla) => nla.value_len(),
            _ => 4,
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Conns(v)
            | Self::InPackets(v)
            | Self::OutPackets(v)
            | Self::ConnRate(v)
            | Self::InPacketRate(v)
            | Self::OutPacketRate(v)
            | Self::InByteRate(v)
            | Self::OutByteRate(v) => emit_u32(buffer, *v).unwrap(),
            Self::InBytes(v) | Self::OutBytes(v) => emit_u64(buffer, *v).unwrap(),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Conns(_) => IPVS_STATS_ATTR_CONNS,
            Self::InPackets(_) => IPVS_STATS_ATTR_INPKTS,
            Self::OutPackets(_) => IPVS_STATS_ATTR_OUTPKTS,
            Self::InBytes(_) => IPVS_STATS_ATTR_INBYTES,
            Self::OutBytes(_) => IPVS_STATS_ATTR_OUTBYTES,
            Self::ConnRate(_) => IPVS_STATS_ATTR_CPS,
            Self::InPacketRate(_) => IPVS_STATS_ATTR_INPPS,
            Self::OutPacketRate(_) => IPVS_STATS_ATTR_OUTPPS,
            Self::InByteRate(_) => IPVS_STATS_ATTR_INBPS,
            Self::OutByteRate(_) => IPVS_STATS_ATTR_OUTBPS,
            Self::Other(nla) => nla.kind(),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for StatsAttribute {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        let u32_of =
            |name: &str| parse_u32(payload).with_context(|| format!("invalid {name} value"));
        let u64_of =
            |name: &str| parse_u64(payload).with_context(|| format!("invalid {name} value"));
        Ok(match buf.kind() {
            IPVS_STATS_ATTR_CONNS => Self::Conns(u32_of("IPVS_STATS_ATTR_CONNS")?),
            IPVS_STATS_ATTR_INPKTS => Self::InPackets(u32_of("IPVS_STATS_ATTR_INPKTS")?),
            IPVS_STATS_ATTR_OUTPKTS => Self::OutPackets(u32_of("IPVS_STATS_ATTR_OUTPKTS")?),
            IPVS_STATS_ATTR_INBYTES => Self::InBytes(u64_of("IPVS_STATS_ATTR_INBYTES")?),
            IPVS_STATS_ATTR_OUTBYTES => Self::OutBytes(u64_of("IPVS_STATS_ATTR_OUTBYTES")?),
            IPVS_STATS_ATTR_CPS => Self::ConnRate(u32_of("IPVS_STATS_ATTR_CPS")?),
            IPVS_STATS_ATTR_INPPS => Self::InPacketRate(u32_of("IPVS_STATS_ATTR_INPPS")?),
            IPVS_STATS_ATTR_OUTPPS => Self::OutPacketRate(u32_of("IPVS_STATS_ATTR_OUTPPS")?),
            IPVS_STATS_ATTR_INBPS => Self::InByteRate(u32_of("IPVS_STATS_ATTR_INBPS")?),
            IPVS_STATS_ATTR_OUTBPS => Self::OutByteRate(u32_of("IPVS_STATS_ATTR_OUTBPS")?),
            _ => Self::Other(DefaultNla::parse(buf).context("invalid stats attribute")?),
        })
    }
}

/// One counter of the `*_ATTR_STATS64` nest: every counter is 64 bits.
#[derive(Debug, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum Stats64Attribute {
    Conns(u64),
    InPackets(u64),
    OutPackets(u64),
    InBytes(u64),
    OutBytes(u64),
    ConnRate(u64),
    InPacketRate(u64),
    OutPacketRate(u64),
    InByteRate(u64),
    OutByteRate(u64),
    Other(DefaultNla),
}

impl Nla for Stats64Attribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Other(nla) => nla.value_len(),
            _ => 8,
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Conns(v)
            | Self::InPackets(v)
            | Self::OutPackets(v)
            | Self::InBytes(v)
            | Self::OutBytes(v)
            | Self::ConnRate(v)
            | Self::InPacketRate(v)
            | Self::OutPacketRate(v)
            | Self::InByteRate(v)
            | Self::OutByteRate(v) => emit_u64(buffer, *v).unwrap(),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Conns(_) => IPVS_STATS_ATTR_CONNS,
            Self::InPackets(_) => IPVS_STATS_ATTR_INPKTS,
            Self::OutPackets(_) => IPVS_STATS_ATTR_OUTPKTS,
            Self::InBytes(_) => IPVS_STATS_ATTR_INBYTES,
            Self::OutBytes(_) => IPVS_STATS_ATTR_OUTBYTES,
            Self::ConnRate(_) => IPVS_STATS_ATTR_CPS,
            Self::InPacketRate(_) => IPVS_STATS_ATTR_INPPS,
            Self::OutPacketRate(_) => IPVS_STATS_ATTR_OUTPPS,
            Self::InByteRate(_) => IPVS_STATS_ATTR_INBPS,
            Self::OutByteRate(_) => IPVS_STATS_ATTR_OUTBPS,
            Self::Other(nla) => nla.kind(),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for Stats64Attribute {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        let value =
            |name: &str| parse_u64(payload).with_context(|| format!("invalid {name} value"));
        Ok(match buf.kind() {
            IPVS_STATS_ATTR_CONNS => Self::Conns(value("IPVS_STATS_ATTR_CONNS")?),
            IPVS_STATS_ATTR_INPKTS => Self::InPackets(value("IPVS_STATS_ATTR_INPKTS")?),
            IPVS_STATS_ATTR_OUTPKTS => Self::OutPackets(value("IPVS_STATS_ATTR_OUTPKTS")?),
            IPVS_STATS_ATTR_INBYTES => Self::InBytes(value("IPVS_STATS_ATTR_INBYTES")?),
            IPVS_STATS_ATTR_OUTBYTES => Self::OutBytes(value("IPVS_STATS_ATTR_OUTBYTES")?),
            IPVS_STATS_ATTR_CPS => Self::ConnRate(value("IPVS_STATS_ATTR_CPS")?),
            IPVS_STATS_ATTR_INPPS => Self::InPacketRate(value("IPVS_STATS_ATTR_INPPS")?),
            IPVS_STATS_ATTR_OUTPPS => Self::OutPacketRate(value("IPVS_STATS_ATTR_OUTPPS")?),
            IPVS_STATS_ATTR_INBPS => Self::InByteRate(value("IPVS_STATS_ATTR_INBPS")?),
            IPVS_STATS_ATTR_OUTBPS => Self::OutByteRate(value("IPVS_STATS_ATTR_OUTBPS")?),
            _ => Self::Other(DefaultNla::parse(buf).context("invalid stats64 attribute")?),
        })
    }
}

pub(crate) fn parse_stats(payload: &[u8]) -> Result<Vec<StatsAttribute>, DecodeError> {
    NlasIterator::new(payload)
        .map(|nla| nla.and_then(|nla| StatsAttribute::parse(&nla)))
        .collect()
}

pub(crate) fn parse_stats64(payload: &[u8]) -> Result<Vec<Stats64Attribute>, DecodeError> {
    NlasIterator::new(payload)
        .map(|nla| nla.and_then(|nla| Stats64Attribute::parse(&nla)))
        .collect()
}

impl From<&[StatsAttribute]> for Stats {
    fn from(attributes: &[StatsAttribute]) -> Self {
        let mut stats = Stats::default();
        for attribute in attributes {
            match *attribute {
                StatsAttribute::Conns(v) => stats.conns = v.into(),
                StatsAttribute::InPackets(v) => stats.inpkts = v.into(),
                StatsAttribute::OutPackets(v) => stats.outpkts = v.into(),
                StatsAttribute::InBytes(v) => stats.inbytes = v,
                StatsAttribute::OutBytes(v) => stats.outbytes = v,
                StatsAttribute::ConnRate(v) => stats.cps = v.into(),
                StatsAttribute::InPacketRate(v) => stats.inpps = v.into(),
                StatsAttribute::OutPacketRate(v) => stats.outpps = v.into(),
                StatsAttribute::InByteRate(v) => stats.inbps = v.into(),
                StatsAttribute::OutByteRate(v) => stats.outbps = v.into(),
                StatsAttribute::Other(_) => {}
            }
        }
        stats
    }
}

impl From<&[Stats64Attribute]> for Stats {
    fn from(attributes: &[Stats64Attribute]) -> Self {
        let mut stats = Stats::default();
        for attribute in attributes {
            match *attribute {
                Stats64Attribute::Conns(v) => stats.conns = v,
                Stats64Attribute::InPackets(v) => stats.inpkts = v,
                Stats64Attribute::OutPackets(v) => stats.outpkts = v,
                Stats64Attribute::InBytes(v) => stats.inbytes = v,
                Stats64Attribute::OutBytes(v) => stats.outbytes = v,
                Stats64Attribute::ConnRate(v) => stats.cps = v,
                Stats64Attribute::InPacketRate(v) => stats.inpps = v,
                Stats64Attribute::OutPacketRate(v) => stats.outpps = v,
                Stats64Attribute::InByteRate(v) => stats.inbps = v,
                Stats64Attribute::OutByteRate(v) => stats.outbps = v,
                Stats64Attribute::Other(_) => {}
            }
        }
        stats
    }
}
