// SPDX-License-Identifier: GPL-2.0-or-later
//! The generic-netlink payload of the `IPVS` family: a command and its
//! first-level attributes.

use netlink_packet_core::{
    emit_u32, parse_u32, DecodeError, DefaultNla, Emitable, ErrorContext, Nla, NlaBuffer,
    NlasIterator, Parseable, ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use crate::ipvs::daemon::{parse_daemon_attributes, DaemonAttribute};
use crate::ipvs::destination::{parse_destination_attributes, DestinationAttribute};
use crate::ipvs::inet::find_u16;
use crate::ipvs::service::{parse_service_attributes, ServiceAttribute};

pub(crate) const IPVS_GENL_NAME: &str = "IPVS";
const IPVS_GENL_VERSION: u8 = 1;

const IPVS_CMD_NEW_SERVICE: u8 = 1;
const IPVS_CMD_SET_SERVICE: u8 = 2;
const IPVS_CMD_DEL_SERVICE: u8 = 3;
const IPVS_CMD_GET_SERVICE: u8 = 4;
const IPVS_CMD_NEW_DEST: u8 = 5;
const IPVS_CMD_SET_DEST: u8 = 6;
const IPVS_CMD_DEL_DEST: u8 = 7;
const IPVS_CMD_GET_DEST: u8 = 8;
const IPVS_CMD_NEW_DAEMON: u8 = 9;
const IPVS_CMD_DEL_DAEMON: u8 = 10;
const IPVS_CMD_GET_DAEMON: u8 = 11;
const IPVS_CMD_SET_CONFIG: u8 = 12;
const IPVS_CMD_GET_CONFIG: u8 = 13;
const IPVS_CMD_SET_INFO: u8 = 14;
const IPVS_CMD_GET_INFO: u8 = 15;
const IPVS_CMD_ZERO: u8 = 16;
const IPVS_CMD_FLUSH: u8 = 17;

const IPVS_CMD_ATTR_SERVICE: u16 = 1;
const IPVS_CMD_ATTR_DEST: u16 = 2;
const IPVS_CMD_ATTR_DAEMON: u16 = 3;
const IPVS_CMD_ATTR_TIMEOUT_TCP: u16 = 4;
const IPVS_CMD_ATTR_TIMEOUT_TCP_FIN: u16 = 5;
const IPVS_CMD_ATTR_TIMEOUT_UDP: u16 = 6;

// Replies to GET_INFO reuse the first-level numbers for their own attributes.
const IPVS_INFO_ATTR_VERSION: u16 = 1;
const IPVS_INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

// Service AF inside the service nest, to decode a sibling destination's
// address when it does not carry its own family.
const IPVS_SVC_ATTR_AF: u16 = 1;

/// `IPVS_CMD_*`. Replies to dumps come back as the matching `New*` command;
/// the reply to `GetInfo` is `SetInfo`, to `GetConfig` is `SetConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IpvsCmd {
    NewService,
    SetService,
    DelService,
    GetService,
    NewDest,
    SetDest,
    DelDest,
    GetDest,
    NewDaemon,
    DelDaemon,
    GetDaemon,
    SetConfig,
    GetConfig,
    SetInfo,
    GetInfo,
    Zero,
    Flush,
    Other(u8),
}

impl From<IpvsCmd> for u8 {
    fn from(cmd: IpvsCmd) -> u8 {
        match cmd {
            IpvsCmd::NewService => IPVS_CMD_NEW_SERVICE,
            IpvsCmd::SetService => IPVS_CMD_SET_SERVICE,
            IpvsCmd::DelService => IPVS_CMD_DEL_SERVICE,
            IpvsCmd::GetService => IPVS_CMD_GET_SERVICE,
            IpvsCmd::NewDest => IPVS_CMD_NEW_DEST,
            IpvsCmd::SetDest => IPVS_CMD_SET_DEST,
            IpvsCmd::DelDest => IPVS_CMD_DEL_DEST,
            IpvsCmd::GetDest => IPVS_CMD_GET_DEST,
            IpvsCmd::NewDaemon => IPVS_CMD_NEW_DAEMON,
            IpvsCmd::DelDaemon => IPVS_CMD_DEL_DAEMON,
            IpvsCmd::GetDaemon => IPVS_CMD_GET_DAEMON,
            IpvsCmd::SetConfig => IPVS_CMD_SET_CONFIG,
            IpvsCmd::GetConfig => IPVS_CMD_GET_CONFIG,
            IpvsCmd::SetInfo => IPVS_CMD_SET_INFO,
            IpvsCmd::GetInfo => IPVS_CMD_GET_INFO,
            IpvsCmd::Zero => IPVS_CMD_ZERO,
            IpvsCmd::Flush => IPVS_CMD_FLUSH,
            IpvsCmd::Other(v) => v,
        }
    }
}

impl From<u8> for IpvsCmd {
    fn from(value: u8) -> Self {
        match value {
            IPVS_CMD_NEW_SERVICE => IpvsCmd::NewService,
            IPVS_CMD_SET_SERVICE => IpvsCmd::SetService,
            IPVS_CMD_DEL_SERVICE => IpvsCmd::DelService,
            IPVS_CMD_GET_SERVICE => IpvsCmd::GetService,
            IPVS_CMD_NEW_DEST => IpvsCmd::NewDest,
            IPVS_CMD_SET_DEST => IpvsCmd::SetDest,
            IPVS_CMD_DEL_DEST => IpvsCmd::DelDest,
            IPVS_CMD_GET_DEST => IpvsCmd::GetDest,
            IPVS_CMD_NEW_DAEMON => IpvsCmd::NewDaemon,
            IPVS_CMD_DEL_DAEMON => IpvsCmd::DelDaemon,
            IPVS_CMD_GET_DAEMON => IpvsCmd::GetDaemon,
            IPVS_CMD_SET_CONFIG => IpvsCmd::SetConfig,
            IPVS_CMD_GET_CONFIG => IpvsCmd::GetConfig,
            IPVS_CMD_SET_INFO => IpvsCmd::SetInfo,
            IPVS_CMD_GET_INFO => IpvsCmd::GetInfo,
            IPVS_CMD_ZERO => IpvsCmd::Zero,
            IPVS_CMD_FLUSH => IpvsCmd::Flush,
            other => IpvsCmd::Other(other),
        }
    }
}

/// First-level attributes.
#[derive(Debug, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum IpvsAttribute {
    Service(Vec<ServiceAttribute>),
    Destination(Vec<DestinationAttribute>),
    Daemon(Vec<DaemonAttribute>),
    /// Seconds.
    TimeoutTcp(u32),
    TimeoutTcpFin(u32),
    TimeoutUdp(u32),
    /// `IP_VS_VERSION_CODE` (0x010201 is 1.2.1); only in `SetInfo` replies.
    Version(u32),
    /// Connection hash table size; only in `SetInfo` replies.
    ConnTableSize(u32),
    Other(DefaultNla),
}

impl Nla for IpvsAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Service(nlas) => nlas.as_slice().buffer_len(),
            Self::Destination(nlas) => nlas.as_slice().buffer_len(),
            Self::Daemon(nlas) => nlas.as_slice().buffer_len(),
            Self::TimeoutTcp(_)
            | Self::TimeoutTcpFin(_)
            | Self::TimeoutUdp(_)
            | Self::Version(_)
            | Self::ConnTableSize(_) => 4,
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Service(nlas) => nlas.as_slice().emit(buffer),
            Self::Destination(nlas) => nlas.as_slice().emit(buffer),
            Self::Daemon(nlas) => nlas.as_slice().emit(buffer),
            Self::TimeoutTcp(v)
            | Self::TimeoutTcpFin(v)
            | Self::TimeoutUdp(v)
            | Self::Version(v)
            | Self::ConnTableSize(v) => emit_u32(buffer, *v).unwrap(),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }

    // The kernel nests without NLA_F_NESTED (nla_nest_start_noflag) and
    // accepts either; leaving it out keeps our bytes equal to its bytes.
    fn kind(&self) -> u16 {
        match self {
            Self::Service(_) => IPVS_CMD_ATTR_SERVICE,
            Self::Destination(_) => IPVS_CMD_ATTR_DEST,
            Self::Daemon(_) => IPVS_CMD_ATTR_DAEMON,
            Self::TimeoutTcp(_) => IPVS_CMD_ATTR_TIMEOUT_TCP,
            Self::TimeoutTcpFin(_) => IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
            Self::TimeoutUdp(_) => IPVS_CMD_ATTR_TIMEOUT_UDP,
            Self::Version(_) => IPVS_INFO_ATTR_VERSION,
            Self::ConnTableSize(_) => IPVS_INFO_ATTR_CONN_TAB_SIZE,
            Self::Other(nla) => nla.kind(),
        }
    }
}

/// What decoding a first-level attribute depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttributeContext {
    /// The info commands give attribute numbers 1 and 2 another meaning.
    pub cmd: IpvsCmd,
    /// The service's address family, for destinations without their own.
    pub service_af: Option<u16>,
}

impl<'a, T: AsRef<[u8]> + ?Sized> ParseableParametrized<NlaBuffer<&'a T>, AttributeContext>
    for IpvsAttribute
{
    fn parse_with_param(
        buf: &NlaBuffer<&'a T>,
        context: AttributeContext,
    ) -> Result<Self, DecodeError> {
        let payload = buf.value();
        let info = matches!(context.cmd, IpvsCmd::SetInfo | IpvsCmd::GetInfo);
        Ok(match buf.kind() {
            IPVS_INFO_ATTR_VERSION if info => {
                Self::Version(parse_u32(payload).context("invalid IPVS_INFO_ATTR_VERSION value")?)
            }
            IPVS_INFO_ATTR_CONN_TAB_SIZE if info => Self::ConnTableSize(
                parse_u32(payload).context("invalid IPVS_INFO_ATTR_CONN_TAB_SIZE value")?,
            ),
            IPVS_CMD_ATTR_SERVICE => Self::Service(
                parse_service_attributes(payload).context("invalid IPVS_CMD_ATTR_SERVICE value")?,
            ),
            IPVS_CMD_ATTR_DEST => Self::Destination(
                parse_destination_attributes(payload, context.service_af)
                    .context("invalid IPVS_CMD_ATTR_DEST value")?,
            ),
            IPVS_CMD_ATTR_DAEMON => Self::Daemon(
                parse_daemon_attributes(payload).context("invalid IPVS_CMD_ATTR_DAEMON value")?,
            ),
            IPVS_CMD_ATTR_TIMEOUT_TCP => Self::TimeoutTcp(
                parse_u32(payload).context("invalid IPVS_CMD_ATTR_TIMEOUT_TCP value")?,
            ),
            IPVS_CMD_ATTR_TIMEOUT_TCP_FIN => Self::TimeoutTcpFin(
                parse_u32(payload).context("invalid IPVS_CMD_ATTR_TIMEOUT_TCP_FIN value")?,
            ),
            IPVS_CMD_ATTR_TIMEOUT_UDP => Self::TimeoutUdp(
                parse_u32(payload).context("invalid IPVS_CMD_ATTR_TIMEOUT_UDP value")?,
            ),
            _ => Self::Other(DefaultNla::parse(buf).context("invalid IPVS attribute")?),
        })
    }
}

/// The payload of a generic-netlink message of the `IPVS` family.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct IpvsMessage {
    pub cmd: IpvsCmd,
    pub attributes: Vec<IpvsAttribute>,
}

impl IpvsMessage {
    pub fn new(cmd: IpvsCmd, attributes: Vec<IpvsAttribute>) -> Self {
        Self { cmd, attributes }
    }

    /// The service nest, if the message has one.
    pub fn service(&self) -> Option<&[ServiceAttribute]> {
        self.attributes.iter().find_map(|a| match a {
            IpvsAttribute::Service(s) => Some(s.as_slice()),
            _ => None,
        })
    }

    /// The destination nest, if the message has one.
    pub fn destination(&self) -> Option<&[DestinationAttribute]> {
        self.attributes.iter().find_map(|a| match a {
            IpvsAttribute::Destination(d) => Some(d.as_slice()),
            _ => None,
        })
    }

    /// The daemon nest, if the message has one.
    pub fn daemon(&self) -> Option<&[DaemonAttribute]> {
        self.attributes.iter().find_map(|a| match a {
            IpvsAttribute::Daemon(d) => Some(d.as_slice()),
            _ => None,
        })
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        IPVS_GENL_NAME
    }

    fn command(&self) -> u8 {
        self.cmd.into()
    }

    fn version(&self) -> u8 {
        IPVS_GENL_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attributes.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attributes.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let cmd = IpvsCmd::from(header.cmd);
        let service_af = NlasIterator::new(buf)
            .filter_map(Result::ok)
            .find(|nla| nla.kind() == IPVS_CMD_ATTR_SERVICE)
            .and_then(|nla| find_u16(nla.value(), IPVS_SVC_ATTR_AF));
        let context = AttributeContext { cmd, service_af };
        let attributes = NlasIterator::new(buf)
            .map(|nla| nla.and_then(|nla| IpvsAttribute::parse_with_param(&nla, context)))
            .collect::<Result<Vec<_>, _>>()
            .context("failed to parse IPVS message attributes")?;
        Ok(Self { cmd, attributes })
    }
}
