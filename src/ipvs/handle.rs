// SPDX-License-Identifier: GPL-2.0-or-later
//! The async IPVS client: one generic-netlink socket driven by
//! netlink-proto on tokio.
//!
//! Writes are idempotent (keepalived's rules): adding what exists and
//! deleting what is gone succeed. Many writes go out in one `sendmsg`
//! ([`IpvsHandle::apply_all`]): the kernel runs every message of a buffer in
//! order and acknowledges each, so a batch costs one system call instead of
//! one round trip per operation.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;
use netlink_proto::sys::protocols::NETLINK_GENERIC;
use netlink_proto::sys::{AsyncSocket, SocketAddr};
use netlink_proto::ConnectionHandle;
use tokio::sync::Mutex;

use crate::ipvs::daemon::{state_to_kernel, DaemonAttribute};
use crate::ipvs::destination::DestinationAttribute;
use crate::ipvs::error::IpvsError;
use crate::ipvs::message::{IpvsAttribute, IpvsCmd, IpvsMessage, IPVS_GENL_NAME};
use crate::ipvs::model::{
    AddressFamily, Destination, DestinationEntry, ForwardMethod, IpvsInfo, Service, ServiceEntry,
    ServiceKey, SyncDaemon, SyncState, Timeouts, TunnelType,
};
use crate::ipvs::service::ServiceAttribute;

type Message = NetlinkMessage<GenlMessage<IpvsMessage>>;

/// Receive buffer we ask for. Every acknowledgement of a batch is queued
/// while the kernel still runs the batch (inside our `sendmsg`), so the
/// buffer bounds how many operations fit in one batch: an acknowledgement
/// the buffer cannot take is dropped, and its operation would never be
/// answered.
const RECEIVE_BUFFER_BYTES: usize = 4 << 20;
/// What one queued acknowledgement costs in the receive buffer (the skb's
/// truesize, about 700 bytes on x86_64, rounded up generously).
const ACK_COST_BYTES: usize = 1024;
/// Upper bound on operations per `sendmsg`.
const MAX_BATCH: usize = 1024;
/// Send buffer we ask for. The kernel refuses (EMSGSIZE) a datagram larger
/// than the send buffer, and netlink-proto gives up the whole connection
/// when a send fails, so batches are also cut to fit it.
const SEND_BUFFER_BYTES: usize = 1 << 20;
/// Longest a batch (or any single request) may wait for its answers. The
/// kernel answers within microseconds; only a lost answer (a receive buffer
/// overrun) can make us wait, and then forever without this bound.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// A write to the kernel's IPVS table. Built by the director's planner and
/// handed to [`IpvsHandle::apply_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsOp {
    AddService(Service),
    EditService(Service),
    DeleteService(ServiceKey),
    AddDestination {
        service: ServiceKey,
        dest: Destination,
    },
    EditDestination {
        service: ServiceKey,
        dest: Destination,
    },
    DeleteDestination {
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
    },
}

impl fmt::Display for IpvsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = |addr: &IpAddr, port: u16| match addr {
            IpAddr::V4(a) => format!("{a}:{port}"),
            IpAddr::V6(a) => format!("[{a}]:{port}"),
        };
        match self {
            IpvsOp::AddService(s) => write!(f, "add service {}", s.key),
            IpvsOp::EditService(s) => write!(f, "edit service {}", s.key),
            IpvsOp::DeleteService(k) => write!(f, "delete service {k}"),
            IpvsOp::AddDestination { service, dest } => write!(
                f,
                "add destination {} to service {service}",
                endpoint(&dest.addr, dest.port)
            ),
            IpvsOp::EditDestination { service, dest } => write!(
                f,
                "edit destination {} in service {service}",
                endpoint(&dest.addr, dest.port)
            ),
            IpvsOp::DeleteDestination {
                service,
                addr,
                port,
            } => write!(
                f,
                "delete destination {} from service {service}",
                endpoint(addr, *port)
            ),
        }
    }
}

impl IpvsOp {
    fn to_message(&self) -> IpvsMessage {
        use IpvsAttribute::{Destination as Dest, Service as Svc};
        match self {
            IpvsOp::AddService(s) => IpvsMessage::new(
                IpvsCmd::NewService,
                vec![Svc(ServiceAttribute::from_service(s))],
            ),
            IpvsOp::EditService(s) => IpvsMessage::new(
                IpvsCmd::SetService,
                vec![Svc(ServiceAttribute::from_service(s))],
            ),
            IpvsOp::DeleteService(k) => IpvsMessage::new(
                IpvsCmd::DelService,
                vec![Svc(ServiceAttribute::from_key(k))],
            ),
            IpvsOp::AddDestination { service, dest } => IpvsMessage::new(
                IpvsCmd::NewDest,
                vec![
                    Svc(ServiceAttribute::from_key(service)),
                    Dest(DestinationAttribute::from_destination(dest)),
                ],
            ),
            IpvsOp::EditDestination { service, dest } => IpvsMessage::new(
                IpvsCmd::SetDest,
                vec![
                    Svc(ServiceAttribute::from_key(service)),
                    Dest(DestinationAttribute::from_destination(dest)),
                ],
            ),
            IpvsOp::DeleteDestination {
                service,
                addr,
                port,
            } => IpvsMessage::new(
                IpvsCmd::DelDest,
                vec![
                    Svc(ServiceAttribute::from_key(service)),
                    Dest(DestinationAttribute::from_address(*addr, *port)),
                ],
            ),
        }
    }

    /// Catches what the kernel would refuse with a bare EINVAL, so the
    /// operator gets a reason instead.
    fn validate(&self) -> Result<(), IpvsError> {
        match self {
            IpvsOp::AddService(s) | IpvsOp::EditService(s) => validate_service(s),
            IpvsOp::AddDestination { service, dest }
            | IpvsOp::EditDestination { service, dest } => validate_destination(service, dest),
            IpvsOp::DeleteService(_) | IpvsOp::DeleteDestination { .. } => Ok(()),
        }
    }

    /// Turns the kernel's answer (0 or a positive errno) into the result
    /// of this operation, applying the idempotency rules.
    fn interpret(&self, errno: i32) -> Result<(), IpvsError> {
        if errno == 0 {
            return Ok(());
        }
        if errno == libc::EPERM {
            return Err(IpvsError::PermissionDenied);
        }
        let scheduler_missing = |s: &Service| match &s.pe_name {
            Some(engine) => IpvsError::SchedulerOrEngineNotAvailable {
                scheduler: s.scheduler.clone(),
                engine: engine.clone(),
            },
            None => IpvsError::SchedulerNotAvailable(s.scheduler.clone()),
        };
        // IPVS answers ESRCH for a missing service and ENOENT for a
        // missing destination or scheduler (net/netfilter/ipvs/ip_vs_ctl.c).
        match (self, errno) {
            (IpvsOp::AddService(_), libc::EEXIST) => Ok(()),
            (IpvsOp::AddService(s) | IpvsOp::EditService(s), libc::ENOENT) => {
                Err(scheduler_missing(s))
            }
            (IpvsOp::EditService(s), libc::ESRCH) => Err(IpvsError::ServiceNotFound(s.key)),
            (IpvsOp::DeleteService(_), libc::ESRCH) => Ok(()),
            (IpvsOp::AddDestination { .. }, libc::EEXIST) => Ok(()),
            (
                IpvsOp::AddDestination { service, .. } | IpvsOp::EditDestination { service, .. },
                libc::ESRCH,
            ) => Err(IpvsError::DestinationServiceMissing {
                operation: self.to_string(),
                service: *service,
            }),
            (IpvsOp::EditDestination { service, dest }, libc::ENOENT) => {
                Err(IpvsError::DestinationNotFound {
                    service: *service,
                    addr: dest.addr,
                    port: dest.port,
                })
            }
            (
                IpvsOp::AddDestination { service, dest }
                | IpvsOp::EditDestination { service, dest },
                libc::ERANGE,
            ) => Err(IpvsError::ThresholdRange {
                service: *service,
                addr: dest.addr,
                port: dest.port,
                lower: dest.lower_threshold,
                upper: dest.upper_threshold,
            }),
            // A missing service has no destinations either.
            (IpvsOp::DeleteDestination { .. }, libc::ENOENT | libc::ESRCH) => Ok(()),
            _ => Err(IpvsError::Kernel {
                operation: self.to_string(),
                source: io::Error::from_raw_os_error(errno),
            }),
        }
    }
}

fn invalid(what: String, reason: String) -> IpvsError {
    IpvsError::Invalid { what, reason }
}

/// Longest scheduler, persistence engine and interface name the kernel
/// takes (`IP_VS_SCHEDNAME_MAXLEN`, `IP_VS_PENAME_MAXLEN`,
/// `IP_VS_IFNAME_MAXLEN`, all 16 with the terminating NUL).
const NAME_MAX: usize = 15;

/// What the kernel would refuse with a bare EINVAL (or silently take as
/// something else) in a service.
fn validate_service(s: &Service) -> Result<(), IpvsError> {
    let what = || format!("service {}", s.key);
    if let ServiceKey::Fwmark { mark: 0, .. } = s.key {
        return Err(invalid(what(), "a firewall mark must not be 0".into()));
    }
    if s.key.af() == AddressFamily::Inet6 && !(1..=128).contains(&s.netmask) {
        return Err(invalid(
            what(),
            format!(
                "IPv6 persistence netmask must be a prefix length from 1 to 128, not {}",
                s.netmask
            ),
        ));
    }
    if s.scheduler.is_empty() || s.scheduler.len() > NAME_MAX {
        return Err(invalid(
            what(),
            format!(
                "scheduler name '{}' must have 1 to {NAME_MAX} characters",
                s.scheduler
            ),
        ));
    }
    if let Some(pe) = &s.pe_name {
        if pe.is_empty() || pe.len() > NAME_MAX {
            return Err(invalid(
                what(),
                format!("persistence engine name '{pe}' must have 1 to {NAME_MAX} characters"),
            ));
        }
    }
    Ok(())
}

/// What the kernel would refuse with a bare EINVAL or ERANGE in a
/// destination (`ip_vs_genl_set_cmd`, `ip_vs_add_dest`,
/// `ip_vs_new_dest` in net/netfilter/ipvs/ip_vs_ctl.c).
fn validate_destination(service: &ServiceKey, dest: &Destination) -> Result<(), IpvsError> {
    let what = || {
        let endpoint = match dest.addr {
            IpAddr::V4(a) => format!("{a}:{}", dest.port),
            IpAddr::V6(a) => format!("[{a}]:{}", dest.port),
        };
        format!("destination {endpoint} in service {service}")
    };
    // The kernel's rule, even when the upper threshold is 0 (none).
    if dest.lower_threshold > dest.upper_threshold {
        return Err(IpvsError::ThresholdRange {
            service: *service,
            addr: dest.addr,
            port: dest.port,
            lower: dest.lower_threshold,
            upper: dest.upper_threshold,
        });
    }
    if i32::try_from(dest.weight).is_err() {
        return Err(invalid(
            what(),
            format!("weight {} is above {}", dest.weight, i32::MAX),
        ));
    }
    let not_unicast = match dest.addr {
        IpAddr::V4(a) => a.is_unspecified() || a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_unspecified() || a.is_multicast(),
    };
    if not_unicast {
        return Err(invalid(
            what(),
            "a real server needs a unicast address".into(),
        ));
    }
    if AddressFamily::of(&dest.addr) != service.af() && dest.forward != ForwardMethod::Tunnel {
        return Err(invalid(
            what(),
            "a real server of the other address family than its service \
             needs tunnel forwarding (ipip)"
                .into(),
        ));
    }
    if dest.forward == ForwardMethod::Tunnel
        && dest.tunnel.tun_type == TunnelType::Gue
        && dest.tunnel.port == 0
    {
        return Err(invalid(what(), "a GUE tunnel needs a port".into()));
    }
    Ok(())
}

/// A connection to the kernel's IPVS over generic netlink. Cheap to clone;
/// clones share the socket. Needs a tokio runtime (the socket is driven by
/// a spawned task, which ends when the last clone is dropped).
#[derive(Clone)]
pub struct IpvsHandle {
    handle: ConnectionHandle<GenlMessage<IpvsMessage>>,
    family_id: u16,
    /// Operations per `sendmsg`, sized to the receive buffer we got.
    batch_size: usize,
    /// Bytes per `sendmsg`, sized to the send buffer we got.
    batch_bytes: usize,
    /// The kernel runs one dump per socket at a time (a second one gets
    /// EBUSY), so dumps take turns.
    dump_lock: Arc<Mutex<()>>,
}

impl fmt::Debug for IpvsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpvsHandle")
            .field("family_id", &self.family_id)
            .field("batch_size", &self.batch_size)
            .field("batch_bytes", &self.batch_bytes)
            .finish()
    }
}

impl IpvsHandle {
    /// Resolves the `IPVS` family (loading `ip_vs` once if the kernel does
    /// not know it yet) and opens the socket.
    pub async fn connect() -> Result<Self, IpvsError> {
        let family_id = resolve_family().await?;
        let (mut connection, handle, _unsolicited) =
            netlink_proto::new_connection::<GenlMessage<IpvsMessage>>(NETLINK_GENERIC)
                .map_err(IpvsError::Socket)?;
        // One answer per operation, acknowledgements included: that is how
        // a batch reports which of its operations failed.
        connection.set_forward_ack(true);
        let socket = connection.socket_mut().socket_mut();
        // Errors carry only the failed request's header, not its body.
        socket.set_cap_ack(true).map_err(IpvsError::Socket)?;
        let fd = socket.as_raw_fd();
        let receive_buffer = grow_buffer(fd, Buffer::Receive, RECEIVE_BUFFER_BYTES);
        let send_buffer = grow_buffer(fd, Buffer::Send, SEND_BUFFER_BYTES);
        let batch_size = (receive_buffer / ACK_COST_BYTES).clamp(1, MAX_BATCH);
        // The kernel's own bookkeeping takes part of what getsockopt
        // reports (it doubles the value asked for); half stays clear of it.
        let batch_bytes = send_buffer / 2;
        tokio::spawn(connection);
        Ok(Self {
            handle,
            family_id,
            batch_size,
            batch_bytes,
            dump_lock: Arc::new(Mutex::new(())),
        })
    }

    /// The generic-netlink family id the kernel gave `IPVS`.
    pub fn family_id(&self) -> u16 {
        self.family_id
    }

    /// How many operations [`apply_all`](Self::apply_all) sends at most
    /// per system call (fewer when they would not fit
    /// [`batch_bytes`](Self::batch_bytes)).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// How many bytes [`apply_all`](Self::apply_all) sends at most per
    /// system call.
    pub fn batch_bytes(&self) -> usize {
        self.batch_bytes
    }

    /// Builds a netlink message of this family (for tools and tests that
    /// talk to the kernel themselves).
    pub fn message(&self, payload: IpvsMessage, flags: u16) -> Message {
        let mut genl = GenlMessage::from_payload(payload);
        genl.set_resolved_family_id(self.family_id);
        let mut message = NetlinkMessage::from(genl);
        message.header.flags = flags;
        message.finalize();
        message
    }

    // ---- reads ---------------------------------------------------------

    /// Every service with its destinations, in the kernel's order.
    pub async fn services(&self) -> Result<Vec<ServiceEntry>, IpvsError> {
        let replies = self
            .dump(
                IpvsMessage::new(IpvsCmd::GetService, vec![]),
                "list services",
            )
            .await?;
        let mut entries = Vec::with_capacity(replies.len());
        for reply in &replies {
            let attributes = service_nest(reply, "list services")?;
            entries.push(ServiceEntry::try_from(attributes)?);
        }
        for entry in &mut entries {
            entry.destinations = self.destinations(&entry.service.key).await?;
        }
        Ok(entries)
    }

    /// One service with its destinations; `None` if it does not exist.
    pub async fn service(&self, key: &ServiceKey) -> Result<Option<ServiceEntry>, IpvsError> {
        let operation = format!("get service {key}");
        let request = IpvsMessage::new(
            IpvsCmd::GetService,
            vec![IpvsAttribute::Service(ServiceAttribute::from_key(key))],
        );
        let reply = match self.get(request, &operation).await {
            Ok(reply) => reply,
            Err(Refusal::Errno(libc::ESRCH)) => return Ok(None),
            Err(refusal) => return Err(refusal.into_error(&operation)),
        };
        let mut entry = ServiceEntry::try_from(service_nest(&reply, &operation)?)?;
        entry.destinations = self.destinations(key).await?;
        Ok(Some(entry))
    }

    /// The destinations of one service (empty if the service is missing).
    pub async fn destinations(&self, key: &ServiceKey) -> Result<Vec<DestinationEntry>, IpvsError> {
        let operation = format!("list destinations of service {key}");
        let request = IpvsMessage::new(
            IpvsCmd::GetDest,
            vec![IpvsAttribute::Service(ServiceAttribute::from_key(key))],
        );
        let replies = self.dump(request, &operation).await?;
        replies
            .iter()
            .map(|reply| {
                let attributes = reply
                    .destination()
                    .ok_or_else(|| IpvsError::UnexpectedReply {
                        operation: operation.clone(),
                        reply: format!("{reply:?}"),
                    })?;
                DestinationEntry::try_from(attributes)
            })
            .collect()
    }

    /// Connection timeouts (`ipvsadm -L --timeout`).
    pub async fn timeouts(&self) -> Result<Timeouts, IpvsError> {
        let operation = "get timeouts";
        let reply = self
            .get(IpvsMessage::new(IpvsCmd::GetConfig, vec![]), operation)
            .await
            .map_err(|r| r.into_error(operation))?;
        let mut timeouts = Timeouts::default();
        for attribute in &reply.attributes {
            match attribute {
                IpvsAttribute::TimeoutTcp(v) => timeouts.tcp = *v,
                IpvsAttribute::TimeoutTcpFin(v) => timeouts.tcp_fin = *v,
                IpvsAttribute::TimeoutUdp(v) => timeouts.udp = *v,
                _ => {}
            }
        }
        Ok(timeouts)
    }

    /// Version and connection table size.
    pub async fn info(&self) -> Result<IpvsInfo, IpvsError> {
        let operation = "get IPVS info";
        let reply = self
            .get(IpvsMessage::new(IpvsCmd::GetInfo, vec![]), operation)
            .await
            .map_err(|r| r.into_error(operation))?;
        let mut version = None;
        let mut conn_table_size = None;
        for attribute in &reply.attributes {
            match attribute {
                IpvsAttribute::Version(v) => version = Some(*v),
                IpvsAttribute::ConnTableSize(v) => conn_table_size = Some(*v),
                _ => {}
            }
        }
        Ok(IpvsInfo {
            version: version.ok_or(IpvsError::MissingAttribute("IPVS_INFO_ATTR_VERSION"))?,
            conn_table_size: conn_table_size
                .ok_or(IpvsError::MissingAttribute("IPVS_INFO_ATTR_CONN_TAB_SIZE"))?,
        })
    }

    /// The running connection-sync daemons (at most a master and a backup).
    pub async fn daemons(&self) -> Result<Vec<SyncDaemon>, IpvsError> {
        let operation = "list sync daemons";
        let replies = self
            .dump(IpvsMessage::new(IpvsCmd::GetDaemon, vec![]), operation)
            .await?;
        replies
            .iter()
            .map(|reply| {
                let attributes = reply.daemon().ok_or_else(|| IpvsError::UnexpectedReply {
                    operation: operation.to_string(),
                    reply: format!("{reply:?}"),
                })?;
                SyncDaemon::try_from(attributes)
            })
            .collect()
    }

    // ---- writes --------------------------------------------------------

    /// Adds a service; success if it already exists (its settings are then
    /// left alone: use [`edit_service`](Self::edit_service) to change them).
    pub async fn add_service(&self, service: &Service) -> Result<(), IpvsError> {
        self.apply_one(IpvsOp::AddService(service.clone())).await
    }

    /// Changes scheduler, flags, persistence of an existing service.
    pub async fn edit_service(&self, service: &Service) -> Result<(), IpvsError> {
        self.apply_one(IpvsOp::EditService(service.clone())).await
    }

    /// Deletes a service and its destinations; success if it is missing.
    pub async fn delete_service(&self, key: &ServiceKey) -> Result<(), IpvsError> {
        self.apply_one(IpvsOp::DeleteService(*key)).await
    }

    /// Adds a destination; success if it already exists.
    pub async fn add_destination(
        &self,
        service: &ServiceKey,
        dest: &Destination,
    ) -> Result<(), IpvsError> {
        self.apply_one(IpvsOp::AddDestination {
            service: *service,
            dest: dest.clone(),
        })
        .await
    }

    /// Changes forwarding, weight, thresholds, tunnel of a destination.
    pub async fn edit_destination(
        &self,
        service: &ServiceKey,
        dest: &Destination,
    ) -> Result<(), IpvsError> {
        self.apply_one(IpvsOp::EditDestination {
            service: *service,
            dest: dest.clone(),
        })
        .await
    }

    /// Deletes a destination; success if it (or its service) is missing.
    pub async fn delete_destination(
        &self,
        service: &ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), IpvsError> {
        self.apply_one(IpvsOp::DeleteDestination {
            service: *service,
            addr,
            port,
        })
        .await
    }

    /// Sets the connection timeouts; a zero field is left unchanged.
    pub async fn set_timeouts(&self, timeouts: &Timeouts) -> Result<(), IpvsError> {
        let mut attributes = Vec::new();
        if timeouts.tcp != 0 {
            attributes.push(IpvsAttribute::TimeoutTcp(timeouts.tcp));
        }
        if timeouts.tcp_fin != 0 {
            attributes.push(IpvsAttribute::TimeoutTcpFin(timeouts.tcp_fin));
        }
        if timeouts.udp != 0 {
            attributes.push(IpvsAttribute::TimeoutUdp(timeouts.udp));
        }
        let operation = "set timeouts";
        let errno = self
            .execute(IpvsMessage::new(IpvsCmd::SetConfig, attributes))
            .await?;
        simple_result(errno, operation)
    }

    /// Starts a sync daemon; success if one in that role already runs on
    /// the same interface with the same sync id.
    pub async fn start_daemon(&self, daemon: &SyncDaemon) -> Result<(), IpvsError> {
        let operation = format!(
            "start {} sync daemon on {}",
            state_name(daemon.state),
            daemon.mcast_ifname
        );
        if daemon.mcast_ifname.is_empty() || daemon.mcast_ifname.len() > NAME_MAX {
            return Err(invalid(
                operation,
                format!(
                    "interface name '{}' must have 1 to {NAME_MAX} characters",
                    daemon.mcast_ifname
                ),
            ));
        }
        let errno = self
            .execute(IpvsMessage::new(
                IpvsCmd::NewDaemon,
                vec![IpvsAttribute::Daemon(DaemonAttribute::from_daemon(daemon))],
            ))
            .await?;
        match errno {
            libc::EEXIST => {
                let running = self.daemons().await?;
                match running.iter().find(|d| d.state == daemon.state) {
                    Some(d)
                        if d.mcast_ifname == daemon.mcast_ifname && d.sync_id == daemon.sync_id =>
                    {
                        Ok(())
                    }
                    Some(d) => Err(IpvsError::SyncDaemonRunning {
                        state: state_name(d.state).to_string(),
                        running: format!("interface {}, sync id {}", d.mcast_ifname, d.sync_id),
                    }),
                    // Gone in between: the caller may try again.
                    None => simple_result(errno, &operation),
                }
            }
            libc::ENODEV => Err(IpvsError::SyncInterfaceMissing(daemon.mcast_ifname.clone())),
            _ => simple_result(errno, &operation),
        }
    }

    /// Stops the sync daemon in `state`; success if it is not running.
    pub async fn stop_daemon(&self, state: SyncState) -> Result<(), IpvsError> {
        let operation = format!("stop {} sync daemon", state_name(state));
        let errno = self
            .execute(IpvsMessage::new(
                IpvsCmd::DelDaemon,
                vec![IpvsAttribute::Daemon(vec![DaemonAttribute::State(
                    state_to_kernel(state),
                )])],
            ))
            .await?;
        if errno == libc::ESRCH {
            return Ok(());
        }
        simple_result(errno, &operation)
    }

    /// Zeroes the counters of one service, or of all with `None`.
    pub async fn zero(&self, key: Option<&ServiceKey>) -> Result<(), IpvsError> {
        let attributes = key
            .map(|k| vec![IpvsAttribute::Service(ServiceAttribute::from_key(k))])
            .unwrap_or_default();
        let errno = self
            .execute(IpvsMessage::new(IpvsCmd::Zero, attributes))
            .await?;
        match (key, errno) {
            (Some(k), libc::ESRCH) => Err(IpvsError::ServiceNotFound(*k)),
            _ => simple_result(errno, "zero counters"),
        }
    }

    /// Deletes every service (of this network namespace).
    pub async fn flush(&self) -> Result<(), IpvsError> {
        let errno = self
            .execute(IpvsMessage::new(IpvsCmd::Flush, vec![]))
            .await?;
        simple_result(errno, "flush")
    }

    /// Runs one operation in its own round trip.
    pub async fn apply_one(&self, op: IpvsOp) -> Result<(), IpvsError> {
        op.validate()?;
        let errno = self.execute(op.to_message()).await?;
        op.interpret(errno)
    }

    /// Runs `ops` in order, many per system call, and reports each one's
    /// result at its index. A failed operation does not stop the others
    /// (the kernel runs every message of a batch).
    pub async fn apply_all(&self, ops: &[IpvsOp]) -> Vec<Result<(), IpvsError>> {
        let mut results: Vec<Result<(), IpvsError>> = ops.iter().map(IpvsOp::validate).collect();
        let mut batch: Vec<(usize, Message)> = Vec::new();
        let mut batch_bytes = 0;
        for (index, op) in ops.iter().enumerate() {
            if results[index].is_err() {
                continue;
            }
            let message = self.message(op.to_message(), NLM_F_REQUEST | NLM_F_ACK);
            let len = message.buffer_len();
            if !batch.is_empty()
                && (batch.len() == self.batch_size || batch_bytes + len > self.batch_bytes)
            {
                self.run_batch(ops, std::mem::take(&mut batch), &mut results)
                    .await;
                batch_bytes = 0;
            }
            batch_bytes += len;
            batch.push((index, message));
        }
        if !batch.is_empty() {
            self.run_batch(ops, batch, &mut results).await;
        }
        results
    }

    /// Sends one batch and records each operation's result.
    async fn run_batch(
        &self,
        ops: &[IpvsOp],
        batch: Vec<(usize, Message)>,
        results: &mut [Result<(), IpvsError>],
    ) {
        let (indexes, messages): (Vec<usize>, Vec<Message>) = batch.into_iter().unzip();
        match self.send_batch(messages).await {
            Ok(errnos) => {
                for (i, errno) in indexes.iter().zip(errnos) {
                    results[*i] = ops[*i].interpret(errno);
                }
            }
            Err(failure) => {
                for i in indexes {
                    results[i] = Err(match &failure {
                        IpvsError::ConnectionClosed => IpvsError::ConnectionClosed,
                        other => IpvsError::UnexpectedReply {
                            operation: ops[i].to_string(),
                            reply: other.to_string(),
                        },
                    });
                }
            }
        }
    }

    /// Like [`apply_all`](Self::apply_all), failing with the first error.
    pub async fn apply(&self, ops: &[IpvsOp]) -> Result<(), IpvsError> {
        self.apply_all(ops).await.into_iter().collect()
    }

    // ---- transport -----------------------------------------------------

    /// Sends `messages` in one `sendmsg` and returns each one's errno
    /// (0 for success), in the order sent.
    async fn send_batch(&self, messages: Vec<Message>) -> Result<Vec<i32>, IpvsError> {
        let count = messages.len();
        let mut responses = self
            .handle
            .request_batch(messages, SocketAddr::new(0, 0))
            .map_err(|_| IpvsError::ConnectionClosed)?;
        let mut answers = Vec::with_capacity(count);
        let collect = async {
            while let Some(message) = responses.next().await {
                let sequence = message.header.sequence_number;
                match message.payload {
                    NetlinkPayload::Error(e) => answers.push((sequence, e.raw_code().abs())),
                    other => {
                        return Err(IpvsError::UnexpectedReply {
                            operation: "batch".to_string(),
                            reply: format!("{other:?}"),
                        })
                    }
                }
            }
            Ok(())
        };
        match tokio::time::timeout(ANSWER_TIMEOUT, collect).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(IpvsError::UnexpectedReply {
                    operation: "batch".to_string(),
                    reply: format!(
                        "{} answers to {count} requests after {}s (receive buffer overrun?)",
                        answers.len(),
                        ANSWER_TIMEOUT.as_secs()
                    ),
                })
            }
        }
        if answers.len() != count {
            return Err(IpvsError::UnexpectedReply {
                operation: "batch".to_string(),
                reply: format!("{} answers to {count} requests", answers.len()),
            });
        }
        // netlink-proto numbers a batch's messages consecutively; sorting
        // the answers by sequence number puts them in request order. The
        // offset from one answer's number keeps that true across the
        // wrap-around of the 32-bit counter.
        let anchor = answers[0].0;
        answers
            .sort_by_key(|(sequence, _)| sequence.wrapping_sub(anchor).wrapping_add(count as u32));
        Ok(answers.into_iter().map(|(_, errno)| errno).collect())
    }

    /// Sends one acknowledged request; returns its errno (0 = success).
    async fn execute(&self, payload: IpvsMessage) -> Result<i32, IpvsError> {
        let errnos = self
            .send_batch(vec![self.message(payload, NLM_F_REQUEST | NLM_F_ACK)])
            .await?;
        errnos.first().copied().ok_or(IpvsError::ConnectionClosed)
    }

    /// A non-dump request answered by one message.
    async fn get(&self, payload: IpvsMessage, operation: &str) -> Result<IpvsMessage, Refusal> {
        let mut responses = self
            .handle
            .request(self.message(payload, NLM_F_REQUEST), SocketAddr::new(0, 0))
            .map_err(|_| Refusal::Error(IpvsError::ConnectionClosed))?;
        let mut reply = None;
        while let Some(message) = responses.next().await {
            match message.payload {
                NetlinkPayload::InnerMessage(genl) => reply = Some(genl.payload),
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(Refusal::Errno(e.raw_code().abs()))
                }
                _ => {}
            }
        }
        reply.ok_or_else(|| {
            Refusal::Error(IpvsError::UnexpectedReply {
                operation: operation.to_string(),
                reply: "no answer".to_string(),
            })
        })
    }

    /// A dump: every message until `NLMSG_DONE`.
    async fn dump(
        &self,
        payload: IpvsMessage,
        operation: &str,
    ) -> Result<Vec<IpvsMessage>, IpvsError> {
        let _turn = self.dump_lock.lock().await;
        let mut responses = self
            .handle
            .request(
                self.message(payload, NLM_F_REQUEST | NLM_F_DUMP),
                SocketAddr::new(0, 0),
            )
            .map_err(|_| IpvsError::ConnectionClosed)?;
        let mut replies = Vec::new();
        while let Some(message) = responses.next().await {
            match message.payload {
                NetlinkPayload::InnerMessage(genl) => replies.push(genl.payload),
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(Refusal::Errno(e.raw_code().abs()).into_error(operation))
                }
                NetlinkPayload::Overrun(_) => {
                    return Err(IpvsError::UnexpectedReply {
                        operation: operation.to_string(),
                        reply: "overrun: the dump lost messages".to_string(),
                    })
                }
                _ => {}
            }
        }
        Ok(replies)
    }
}

/// Why a request failed before it could be interpreted.
enum Refusal {
    Errno(i32),
    Error(IpvsError),
}

impl Refusal {
    fn into_error(self, operation: &str) -> IpvsError {
        match self {
            Refusal::Errno(errno) => match simple_result(errno, operation) {
                Err(e) => e,
                Ok(()) => IpvsError::UnexpectedReply {
                    operation: operation.to_string(),
                    reply: "no answer".to_string(),
                },
            },
            Refusal::Error(e) => e,
        }
    }
}

fn state_name(state: SyncState) -> &'static str {
    match state {
        SyncState::Master => "master",
        SyncState::Backup => "backup",
    }
}

fn simple_result(errno: i32, operation: &str) -> Result<(), IpvsError> {
    match errno {
        0 => Ok(()),
        libc::EPERM => Err(IpvsError::PermissionDenied),
        _ => Err(IpvsError::Kernel {
            operation: operation.to_string(),
            source: io::Error::from_raw_os_error(errno),
        }),
    }
}

fn service_nest<'a>(
    reply: &'a IpvsMessage,
    operation: &str,
) -> Result<&'a [ServiceAttribute], IpvsError> {
    reply.service().ok_or_else(|| IpvsError::UnexpectedReply {
        operation: operation.to_string(),
        reply: format!("{reply:?}"),
    })
}

#[derive(Clone, Copy)]
enum Buffer {
    Receive,
    Send,
}

/// Asks for a socket buffer of `size` bytes (forcing past `rmem_max` /
/// `wmem_max` works for root) and returns what the socket got.
fn grow_buffer(fd: std::os::fd::RawFd, buffer: Buffer, size: usize) -> usize {
    let (force, plain, default) = match buffer {
        Buffer::Receive => (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, 212_992 * 2),
        Buffer::Send => (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, 212_992 * 2),
    };
    let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    let set = |option| {
        // SAFETY: `fd` is an open socket owned by the connection, and the
        // option value is a live c_int of the size we pass.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if set(force) != 0 {
        // Not root: take what the sysctl maximum allows.
        set(plain);
    }
    let mut got: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: as above; `got` and `len` are live and sized for the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            plain,
            (&mut got as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    match usize::try_from(got) {
        Ok(got) if rc == 0 && got > 0 => got,
        // The kernel default (rmem_default / wmem_default, doubled).
        _ => default,
    }
}

/// Finds the `IPVS` family id; runs `modprobe ip_vs` once if the kernel
/// does not know the family yet.
async fn resolve_family() -> Result<u16, IpvsError> {
    if let Some(id) = lookup_family().await? {
        return Ok(id);
    }
    match tokio::process::Command::new("modprobe")
        .arg("ip_vs")
        .stdin(std::process::Stdio::null())
        .status()
        .await
    {
        Ok(status) if status.success() => {
            tracing::info!("loaded the ip_vs kernel module")
        }
        Ok(status) => tracing::warn!(%status, "modprobe ip_vs failed"),
        Err(error) => tracing::warn!(%error, "cannot run modprobe ip_vs"),
    }
    lookup_family().await?.ok_or(IpvsError::NoIpvs)
}

async fn lookup_family() -> Result<Option<u16>, IpvsError> {
    let (connection, handle, _unsolicited) =
        netlink_proto::new_connection::<GenlMessage<GenlCtrl>>(NETLINK_GENERIC)
            .map_err(IpvsError::Socket)?;
    let task = tokio::spawn(connection);
    let mut request = NetlinkMessage::from(GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(IPVS_GENL_NAME.to_string())],
    }));
    request.header.flags = NLM_F_REQUEST;
    request.finalize();
    let mut responses = handle
        .request(request, SocketAddr::new(0, 0))
        .map_err(|_| IpvsError::ConnectionClosed)?;
    let mut result = Ok(None);
    while let Some(message) = responses.next().await {
        match message.payload {
            NetlinkPayload::InnerMessage(genl) => {
                let id = genl.payload.nlas.iter().find_map(|nla| match nla {
                    GenlCtrlAttrs::FamilyId(id) => Some(*id),
                    _ => None,
                });
                if id.is_some() {
                    result = Ok(id);
                }
            }
            NetlinkPayload::Error(e) => match e.raw_code().abs() {
                0 | libc::ENOENT => {}
                errno => {
                    result = Err(IpvsError::Kernel {
                        operation: "resolve generic netlink family IPVS".to_string(),
                        source: io::Error::from_raw_os_error(errno),
                    })
                }
            },
            _ => {}
        }
    }
    task.abort();
    result
}
