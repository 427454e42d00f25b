// SPDX-License-Identifier: GPL-2.0-or-later
//! Attributes nested in `IPVS_CMD_ATTR_DAEMON` (the connection
//! synchronisation daemon), and their conversion to and from
//! [`SyncDaemon`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    emit_u16, emit_u32, parse_ip, parse_string, parse_u16, parse_u32, parse_u8, DecodeError,
    DefaultNla, ErrorContext, Nla, NlaBuffer, NlasIterator, Parseable,
};

use crate::ipvs::error::IpvsError;
use crate::ipvs::model::{SyncDaemon, SyncState};

const IPVS_DAEMON_ATTR_STATE: u16 = 1;
const IPVS_DAEMON_ATTR_MCAST_IFN: u16 = 2;
const IPVS_DAEMON_ATTR_SYNC_ID: u16 = 3;
const IPVS_DAEMON_ATTR_SYNC_MAXLEN: u16 = 4;
const IPVS_DAEMON_ATTR_MCAST_GROUP: u16 = 5;
const IPVS_DAEMON_ATTR_MCAST_GROUP6: u16 = 6;
const IPVS_DAEMON_ATTR_MCAST_PORT: u16 = 7;
const IPVS_DAEMON_ATTR_MCAST_TTL: u16 = 8;

const IP_VS_STATE_MASTER: u32 = 1;
const IP_VS_STATE_BACKUP: u32 = 2;

pub(crate) fn state_to_kernel(state: SyncState) -> u32 {
    match state {
        SyncState::Master => IP_VS_STATE_MASTER,
        SyncState::Backup => IP_VS_STATE_BACKUP,
    }
}

#[derive(Debug, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum DaemonAttribute {
    /// `IP_VS_STATE_MASTER` (1) or `IP_VS_STATE_BACKUP` (2).
    State(u32),
    McastInterface(String),
    SyncId(u32),
    /// Largest sync message payload, bytes.
    SyncMaxLen(u16),
    McastGroup(Ipv4Addr),
    McastGroup6(Ipv6Addr),
    /// Host order (the kernel declares it `NLA_U16`).
    McastPort(u16),
    McastTtl(u8),
    Other(DefaultNla),
}

impl Nla for DaemonAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::State(_) | Self::SyncId(_) | Self::McastGroup(_) => 4,
            Self::McastInterface(s) => s.len() + 1,
            Self::SyncMaxLen(_) | Self::McastPort(_) => 2,
            Self::McastGroup6(_) => 16,
            Self::McastTtl(_) => 1,
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::State(v) | Self::SyncId(v) => emit_u32(buffer, *v).unwrap(),
            Self::McastInterface(s) => {
                buffer[..s.len()].copy_from_slice(s.as_bytes());
                buffer[s.len()] = 0;
            }
            Self::SyncMaxLen(v) | Self::McastPort(v) => emit_u16(buffer, *v).unwrap(),
            Self::McastGroup(a) => buffer[..4].copy_from_slice(&a.octets()),
            Self::McastGroup6(a) => buffer[..16].copy_from_slice(&a.octets()),
            Self::McastTtl(v) => buffer[0] = *v,
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::State(_) => IPVS_DAEMON_ATTR_STATE,
            Self::McastInterface(_) => IPVS_DAEMON_ATTR_MCAST_IFN,
            Self::SyncId(_) => IPVS_DAEMON_ATTR_SYNC_ID,
            Self::SyncMaxLen(_) => IPVS_DAEMON_ATTR_SYNC_MAXLEN,
            Self::McastGroup(_) => IPVS_DAEMON_ATTR_MCAST_GROUP,
            Self::McastGroup6(_) => IPVS_DAEMON_ATTR_MCAST_GROUP6,
            Self::McastPort(_) => IPVS_DAEMON_ATTR_MCAST_PORT,
            Self::McastTtl(_) => IPVS_DAEMON_ATTR_MCAST_TTL,
            Self::Other(nla) => nla.kind(),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DaemonAttribute {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        Ok(match buf.kind() {
            IPVS_DAEMON_ATTR_STATE => {
                Self::State(parse_u32(payload).context("invalid IPVS_DAEMON_ATTR_STATE value")?)
            }
            IPVS_DAEMON_ATTR_MCAST_IFN => Self::McastInterface(
                parse_string(payload).context("invalid IPVS_DAEMON_ATTR_MCAST_IFN value")?,
            ),
            IPVS_DAEMON_ATTR_SYNC_ID => {
                Self::SyncId(parse_u32(payload).context("invalid IPVS_DAEMON_ATTR_SYNC_ID value")?)
            }
            IPVS_DAEMON_ATTR_SYNC_MAXLEN => Self::SyncMaxLen(
                parse_u16(payload).context("invalid IPVS_DAEMON_ATTR_SYNC_MAXLEN value")?,
            ),
            IPVS_DAEMON_ATTR_MCAST_GROUP => match parse_ip(payload) {
                Ok(IpAddr::V4(a)) => Self::McastGroup(a),
                _ => {
                    return Err(DecodeError::invalid_ip_address(payload.len()))
                        .context("invalid IPVS_DAEMON_ATTR_MCAST_GROUP value")
                }
            },
            IPVS_DAEMON_ATTR_MCAST_GROUP6 => match parse_ip(payload) {
                Ok(IpAddr::V6(a)) => Self::McastGroup6(a),
                _ => {
                    return Err(DecodeError::invalid_ip_address(payload.len()))
                        .context("invalid IPVS_DAEMON_ATTR_MCAST_GROUP6 value")
                }
            },
            IPVS_DAEMON_ATTR_MCAST_PORT => Self::McastPort(
                parse_u16(payload).context("invalid IPVS_DAEMON_ATTR_MCAST_PORT value")?,
            ),
            IPVS_DAEMON_ATTR_MCAST_TTL => Self::McastTtl(
                parse_u8(payload).context("invalid IPVS_DAEMON_ATTR_MCAST_TTL value")?,
            ),
            _ => Self::Other(DefaultNla::parse(buf).context("invalid daemon attribute")?),
        })
    }
}

pub(crate) fn parse_daemon_attributes(payload: &[u8]) -> Result<Vec<DaemonAttribute>, DecodeError> {
    NlasIterator::new(payload)
        .map(|nla| nla.and_then(|nla| DaemonAttribute::parse(&nla)))
        .collect()
}

impl DaemonAttribute {
    /// What starting `daemon` needs; zero values are left out so the kernel
    /// applies its defaults.
    pub fn from_daemon(daemon: &SyncDaemon) -> Vec<Self> {
        let mut attributes = vec![
            Self::State(state_to_kernel(daemon.state)),
            Self::McastInterface(daemon.mcast_ifname.clone()),
            Self::SyncId(daemon.sync_id),
        ];
        if daemon.sync_maxlen != 0 {
            attributes.push(Self::SyncMaxLen(daemon.sync_maxlen));
        }
        match daemon.mcast_group {
            Some(IpAddr::V4(a)) => attributes.push(Self::McastGroup(a)),
            Some(IpAddr::V6(a)) => attributes.push(Self::McastGroup6(a)),
            None => {}
        }
        if daemon.mcast_port != 0 {
            attributes.push(Self::McastPort(daemon.mcast_port));
        }
        if daemon.mcast_ttl != 0 {
            attributes.push(Self::McastTtl(daemon.mcast_ttl));
        }
        attributes
    }
}

impl TryFrom<&[DaemonAttribute]> for SyncDaemon {
    type Error = IpvsError;

    fn try_from(attributes: &[DaemonAttribute]) -> Result<Self, IpvsError> {
        let mut state = None;
        let mut mcast_ifname = None;
        let mut sync_id = None;
        let mut daemon = SyncDaemon {
            state: SyncState::Master,
            mcast_ifname: String::new(),
            sync_id: 0,
            sync_maxlen: 0,
            mcast_group: None,
            mcast_port: 0,
            mcast_ttl: 0,
        };
        for attribute in attributes {
            match attribute {
                DaemonAttribute::State(v) => state = Some(*v),
                DaemonAttribute::McastInterface(v) => mcast_ifname = Some(v),
                DaemonAttribute::SyncId(v) => sync_id = Some(*v),
                DaemonAttribute::SyncMaxLen(v) => daemon.sync_maxlen = *v,
                DaemonAttribute::McastGroup(v) => daemon.mcast_group = Some(IpAddr::V4(*v)),
                DaemonAttribute::McastGroup6(v) => daemon.mcast_group = Some(IpAddr::V6(*v)),
                DaemonAttribute::McastPort(v) => daemon.mcast_port = *v,
                DaemonAttribute::McastTtl(v) => daemon.mcast_ttl = *v,
                DaemonAttribute::Other(_) => {}
            }
        }
        daemon.state = match state {
            Some(IP_VS_STATE_MASTER) => SyncState::Master,
            Some(IP_VS_STATE_BACKUP) => SyncState::Backup,
            Some(other) => {
                return Err(IpvsError::UnsupportedValue(format!(
                    "sync daemon state {other}"
                )))
            }
            None => return Err(IpvsError::MissingAttribute("IPVS_DAEMON_ATTR_STATE")),
        };
        daemon.mcast_ifname = mcast_ifname
            .ok_or(IpvsError::MissingAttribute("IPVS_DAEMON_ATTR_MCAST_IFN"))?
            .clone();
        daemon.sync_id = sync_id.ok_or(IpvsError::MissingAttribute("IPVS_DAEMON_ATTR_SYNC_ID"))?;
        Ok(daemon)
    }
}
