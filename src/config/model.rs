// SPDX-License-Identifier: GPL-2.0-or-later
//! The typed configuration model: what an `ldirectord.cf` *means*.
//!
//! Every value that came from a directive is wrapped in [`Spanned`], so later
//! stages (the daemon's reload, `--check`, status output) can point at the
//! exact line and column. Values that were not written keep `None`; the
//! accessor methods apply ldirectord 4.12's code defaults, which is where the
//! defaults live (one place, documented once).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use serde::Serialize;

use crate::ipvs::model::{AddressFamily, ForwardMethod, Protocol, SyncDaemon, SyncState};

/// Where a directive was written: file, 1-based line and 1-based column
/// (in characters of the original line, a tab counting as one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Span {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A value together with the place it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

/// Read the value of an optional spanned directive.
fn val<T: Copy>(v: &Option<Spanned<T>>) -> Option<T> {
    v.as_ref().map(|s| s.value)
}

/// The whole parsed file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// The file as it was named when it was read.
    pub file: Arc<str>,
    pub global: Global,
    pub virtuals: Vec<Virtual>,
}

/// ldirectord's built-in defaults (`set_defaults`, ldirectord.in L1276).
pub mod defaults {
    pub const CHECK_TIMEOUT: u64 = 5;
    pub const NEGOTIATE_TIMEOUT: u64 = 30;
    pub const CHECK_INTERVAL: u64 = 10;
    pub const CHECK_COUNT: u64 = 1;
    pub const FAILURE_COUNT: u64 = 1;
    pub const LOGFILE: &str = "/var/log/ldirectord.log";
    pub const CHECK_COMMAND: &str = "/bin/true";
    pub const REQUEST: &str = "/";
    pub const SCHEDULER: &str = "wrr";
    /// Extension: where `metrics=yes` listens (loopback only by default).
    pub const METRICS_LISTEN: std::net::SocketAddr = std::net::SocketAddr::V4(
        std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 9469),
    );
    /// Extension: gratuitous ARP / unsolicited NA per VIP takeover, and the
    /// gap between them (the IPaddr2 resource agent's defaults).
    pub const VIP_ANNOUNCE_COUNT: u32 = crate::net::garp::DEFAULT_COUNT;
    pub const VIP_ANNOUNCE_INTERVAL_MS: u64 = crate::net::garp::DEFAULT_INTERVAL.as_millis() as u64;
}

/// Global directives (column 0, outside any virtual block).
///
/// To add a directive: add a field here, an arm in
/// `parser::GlobalParser::directive`, and its name to `GLOBAL_DIRECTIVES`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Global {
    pub checktimeout: Option<Spanned<u64>>,
    pub negotiatetimeout: Option<Spanned<u64>>,
    pub checkinterval: Option<Spanned<u64>>,
    /// Deprecated in ldirectord (ping attempts); still honoured.
    pub checkcount: Option<Spanned<u64>>,
    pub failurecount: Option<Spanned<u64>>,
    /// Global IPv4 fallback, resolved once per protocol (a service-name port
    /// may differ between tcp and udp, and must exist for both).
    pub fallback: Option<Spanned<GlobalFallback>>,
    pub fallback6: Option<Spanned<GlobalFallback>>,
    pub fallbackcommand: Option<Spanned<String>>,
    pub autoreload: Option<Spanned<bool>>,
    pub callback: Option<Spanned<String>>,
    pub logfile: Option<Spanned<LogTarget>>,
    /// Other configurations whose instances start/stop/reload with this one.
    pub execute: Vec<Spanned<String>>,
    pub fork: Option<Spanned<bool>>,
    pub supervised: Option<Spanned<bool>>,
    pub quiescent: Option<Spanned<bool>>,
    pub readdquiescent: Option<Spanned<bool>>,
    pub emailalert: Option<Spanned<String>>,
    pub emailalertfreq: Option<Spanned<u64>>,
    pub emailalertstatus: Option<Spanned<EmailAlertStatus>>,
    pub emailalertfrom: Option<Spanned<String>>,
    pub cleanstop: Option<Spanned<bool>>,
    pub smtp: Option<Spanned<String>>,
    pub maintenancedir: Option<Spanned<String>>,

    /// Extension: the Prometheus endpoint (`metrics=yes|no|ADDR:PORT`);
    /// `None` inside = `metrics=no`. Off unless written.
    pub metrics: Option<Spanned<Option<SocketAddr>>>,
    /// Extension: the VIP settings every virtual inherits.
    pub vip: VipSettings,
    /// Extension: the IPVS connection synchronisation daemon.
    pub syncdaemon: Option<Spanned<SyncDaemonMode>>,
    pub syncinterface: Option<Spanned<String>>,
    pub syncid: Option<Spanned<u8>>,
}

impl Global {
    pub fn checkinterval(&self) -> u64 {
        val(&self.checkinterval).unwrap_or(defaults::CHECK_INTERVAL)
    }
    pub fn checkcount(&self) -> u64 {
        val(&self.checkcount).unwrap_or(defaults::CHECK_COUNT)
    }
    pub fn failurecount(&self) -> u64 {
        val(&self.failurecount).unwrap_or(defaults::FAILURE_COUNT)
    }
    pub fn autoreload(&self) -> bool {
        val(&self.autoreload).unwrap_or(false)
    }
    pub fn fork(&self) -> bool {
        val(&self.fork).unwrap_or(false)
    }
    pub fn supervised(&self) -> bool {
        val(&self.supervised).unwrap_or(false)
    }
    /// The code default is `no` (ldirectord.in L1298), although its manual
    /// page says `yes`; the code is what users run.
    pub fn quiescent(&self) -> bool {
        val(&self.quiescent).unwrap_or(false)
    }
    pub fn readdquiescent(&self) -> bool {
        val(&self.readdquiescent).unwrap_or(false)
    }
    pub fn cleanstop(&self) -> bool {
        val(&self.cleanstop).unwrap_or(true)
    }
    pub fn emailalertfreq(&self) -> u64 {
        val(&self.emailalertfreq).unwrap_or(0)
    }
    pub fn emailalertstatus(&self) -> EmailAlertStatus {
        val(&self.emailalertstatus).unwrap_or(EmailAlertStatus::ALL)
    }
    /// Where the Prometheus endpoint listens, `None` when it is off (the
    /// default).
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|m| m.value)
    }

    /// The sync daemon to run, `None` when not configured or `none`. The
    /// parser guarantees an interface when the mode is master or backup.
    pub fn sync_daemon(&self) -> Option<SyncDaemon> {
        let state = match val(&self.syncdaemon)? {
            SyncDaemonMode::None => return None,
            SyncDaemonMode::Master => SyncState::Master,
            SyncDaemonMode::Backup => SyncState::Backup,
        };
        Some(SyncDaemon {
            state,
            mcast_ifname: self.syncinterface.as_ref()?.value.clone(),
            sync_id: val(&self.syncid).map_or(0, u32::from),
            sync_maxlen: 0,
            mcast_group: None,
            mcast_port: 0,
            mcast_ttl: 0,
        })
    }

    pub fn logfile(&self) -> LogTarget {
        self.logfile
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_else(|| LogTarget::File(defaults::LOGFILE.to_string()))
    }
}

/// Extension: `syncdaemon=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncDaemonMode {
    Master,
    Backup,
    None,
}

/// Extension: how the director owns a VIP in standalone mode (without
/// Pacemaker): the interface it is added to and how it is announced.
/// Written globally and/or per virtual; the virtual's value wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VipSettings {
    /// `vipinterface=IFACE`: the director adds the VIP to this interface.
    /// Not set: the VIP is someone else's business (Pacemaker, keepalived).
    pub interface: Option<Spanned<String>>,
    /// `vipannouncecount=N`: gratuitous ARPs / unsolicited NAs per takeover.
    pub announce_count: Option<Spanned<u32>>,
    /// `vipannounceinterval=MS`: milliseconds between announcements.
    pub announce_interval_ms: Option<Spanned<u64>>,
}

/// The VIP settings in force for one virtual.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveVip {
    pub interface: String,
    pub announce_count: u32,
    pub announce_interval_ms: u64,
}

/// Where log lines go: a file (value starts with `/`) or a syslog facility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "target", rename_all = "lowercase")]
pub enum LogTarget {
    File(String),
    Syslog(String),
}

/// Which daemon states send email alerts (`emailalertstatus`), a bit set
/// with ldirectord's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EmailAlertStatus(pub u8);

impl EmailAlertStatus {
    pub const STARTING: u8 = 0x1;
    pub const RUNNING: u8 = 0x2;
    pub const STOPPING: u8 = 0x4;
    pub const RELOADING: u8 = 0x8;
    pub const ALL: EmailAlertStatus = EmailAlertStatus(0xf);
    pub const NONE: EmailAlertStatus = EmailAlertStatus(0);

    pub fn contains(self, bit: u8) -> bool {
        self.0 & bit == bit
    }
}

/// A global fallback, resolved for both protocols it may serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlobalFallback {
    pub tcp: Fallback,
    pub udp: Fallback,
}

impl GlobalFallback {
    /// The fallback for a virtual of this protocol. ldirectord only keeps
    /// tcp and udp variants; sctp (an extension) uses the tcp resolution.
    pub fn for_protocol(&self, protocol: VirtualProtocol) -> &Fallback {
        match protocol {
            VirtualProtocol::Udp => &self.udp,
            _ => &self.tcp,
        }
    }
}

/// The server used when no real server is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fallback {
    pub addr: IpAddr,
    /// `None` when no port was written and none could be inherited (global
    /// fallbacks, fwmark virtuals): the virtual's port is used.
    pub port: Option<u16>,
    pub forward: ForwardMethod,
}

/// The protocol of a virtual service as ldirectord names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VirtualProtocol {
    Tcp,
    Udp,
    /// Extension: ldirectord 4.12 rejects `protocol=sctp`.
    Sctp,
    /// Firewall-mark virtual (`virtual=N`).
    Fwm,
}

impl VirtualProtocol {
    /// The transport protocol, `None` for fwmark virtuals.
    pub fn transport(self) -> Option<Protocol> {
        match self {
            VirtualProtocol::Tcp => Some(Protocol::Tcp),
            VirtualProtocol::Udp => Some(Protocol::Udp),
            VirtualProtocol::Sctp => Some(Protocol::Sctp),
            VirtualProtocol::Fwm => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            VirtualProtocol::Tcp => "tcp",
            VirtualProtocol::Udp => "udp",
            VirtualProtocol::Sctp => "sctp",
            VirtualProtocol::Fwm => "fwm",
        }
    }
}

impl fmt::Display for VirtualProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a `virtual=` / `virtual6=` line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum VirtualAddr {
    /// Address and port, the name already resolved (at parse time, as
    /// ldirectord does).
    Addr { addr: IpAddr, port: u16 },
    /// Firewall mark; `family` says whether it was `virtual=` or `virtual6=`.
    Fwmark { mark: u32, family: AddressFamily },
}

/// `checktype=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "connects", rename_all = "kebab-case")]
pub enum CheckType {
    Connect,
    Negotiate,
    Ping,
    Off,
    On,
    External,
    ExternalPerl,
    /// `checktype=N`: N connect checks between negotiate checks.
    Combined(u64),
}

impl CheckType {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckType::Connect => "connect",
            CheckType::Negotiate => "negotiate",
            CheckType::Ping => "ping",
            CheckType::Off => "off",
            CheckType::On => "on",
            CheckType::External => "external",
            CheckType::ExternalPerl => "external-perl",
            CheckType::Combined(_) => "combined",
        }
    }
}

/// `service=`: the protocol a negotiate check speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Dns,
    Ftp,
    Http,
    Https,
    HttpProxy,
    Imap,
    Imaps,
    Ldap,
    Ldaps,
    Mysql,
    Nntp,
    None,
    Oracle,
    Pgsql,
    Pop,
    Pops,
    Radius,
    Simpletcp,
    Sip,
    Smtp,
    Submission,
}

impl Service {
    pub const ALL: [Service; 21] = [
        Service::Dns,
        Service::Ftp,
        Service::Http,
        Service::Https,
        Service::HttpProxy,
        Service::Imap,
        Service::Imaps,
        Service::Ldap,
        Service::Ldaps,
        Service::Mysql,
        Service::Nntp,
        Service::None,
        Service::Oracle,
        Service::Pgsql,
        Service::Pop,
        Service::Pops,
        Service::Radius,
        Service::Simpletcp,
        Service::Sip,
        Service::Smtp,
        Service::Submission,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Dns => "dns",
            Service::Ftp => "ftp",
            Service::Http => "http",
            Service::Https => "https",
            Service::HttpProxy => "http_proxy",
            Service::Imap => "imap",
            Service::Imaps => "imaps",
            Service::Ldap => "ldap",
            Service::Ldaps => "ldaps",
            Service::Mysql => "mysql",
            Service::Nntp => "nntp",
            Service::None => "none",
            Service::Oracle => "oracle",
            Service::Pgsql => "pgsql",
            Service::Pop => "pop",
            Service::Pops => "pops",
            Service::Radius => "radius",
            Service::Simpletcp => "simpletcp",
            Service::Sip => "sip",
            Service::Smtp => "smtp",
            Service::Submission => "submission",
        }
    }

    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The service ldirectord infers from a virtual's port
    /// (`ld_port_to_service`); everything else is `none`.
    pub fn from_port(port: u16) -> Service {
        match port {
            21 => Service::Ftp,
            25 => Service::Smtp,
            53 => Service::Dns,
            80 => Service::Http,
            110 => Service::Pop,
            119 => Service::Nntp,
            143 => Service::Imap,
            389 => Service::Ldap,
            443 => Service::Https,
            587 => Service::Submission,
            636 => Service::Ldaps,
            993 => Service::Imaps,
            995 => Service::Pops,
            1521 => Service::Oracle,
            1812 => Service::Radius,
            3128 => Service::HttpProxy,
            3306 => Service::Mysql,
            5060 => Service::Sip,
            5432 => Service::Pgsql,
            _ => Service::None,
        }
    }

    /// The well-known port of a service (`ld_service_to_port`), used as the
    /// check port when neither checkport nor the real's port is set.
    pub fn default_port(self) -> Option<u16> {
        Some(match self {
            Service::Ftp => 21,
            Service::Smtp => 25,
            Service::Dns => 53,
            Service::Http => 80,
            Service::Pop => 110,
            Service::Nntp => 119,
            Service::Imap => 143,
            Service::Ldap => 389,
            Service::Https => 443,
            Service::Submission => 587,
            Service::Ldaps => 636,
            Service::Imaps => 993,
            Service::Pops => 995,
            Service::Oracle => 1521,
            Service::Radius => 1812,
            Service::HttpProxy => 3128,
            Service::Mysql => 3306,
            Service::Sip => 5060,
            Service::Pgsql => 5432,
            Service::None | Service::Simpletcp => return None,
        })
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `httpmethod=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Head,
}

/// Persistence netmask: a dotted quad (IPv4 virtuals) or a prefix length
/// (IPv6 virtuals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Netmask {
    V4(Ipv4Addr),
    Prefix(u8),
}

/// One `virtual=` / `virtual6=` block.
///
/// To add a per-virtual directive: add a field here, an arm in
/// `parser::VirtualParser::directive`, and its name to `VIRTUAL_DIRECTIVES`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Virtual {
    /// The `virtual=` line itself.
    pub span: Span,
    pub family: AddressFamily,
    pub addr: VirtualAddr,
    /// Final protocol: the default (tcp; udp for port `53`/`domain`; fwm for
    /// fwmarks) unless `protocol=` overrode it.
    pub protocol: VirtualProtocol,
    /// Final service: the `service=` directive, else derived from the port.
    pub service: Service,
    pub reals: Vec<Real>,

    pub service_directive: Option<Spanned<Service>>,
    pub protocol_directive: Option<Spanned<VirtualProtocol>>,
    pub checktype: Option<Spanned<CheckType>>,
    pub checkcommand: Option<Spanned<String>>,
    pub checktimeout: Option<Spanned<u64>>,
    pub negotiatetimeout: Option<Spanned<u64>>,
    pub checkcount: Option<Spanned<u64>>,
    pub failurecount: Option<Spanned<u64>>,
    pub checkinterval: Option<Spanned<u64>>,
    pub checkport: Option<Spanned<u16>>,
    /// Virtual-level request, with the leading `/` ldirectord adds.
    pub request: Option<Spanned<String>>,
    /// A Perl regular expression in ldirectord; see the check module for how
    /// it is matched.
    pub receive: Option<Spanned<String>>,
    /// Explicit `login=`, or the default `service=ftp` / `service=sip` fill
    /// in (spanned at the `service=` line) when no login was set before it.
    pub login: Option<Spanned<String>>,
    pub passwd: Option<Spanned<String>>,
    pub database: Option<Spanned<String>>,
    pub secret: Option<Spanned<String>>,
    /// Parsed and never used by ldirectord.
    pub load: Option<Spanned<String>>,
    pub scheduler: Option<Spanned<String>>,
    pub persistent: Option<Spanned<u64>>,
    pub schedflags: Option<Spanned<String>>,
    pub netmask: Option<Spanned<Netmask>>,
    pub ops: Option<Spanned<bool>>,
    pub httpmethod: Option<Spanned<HttpMethod>>,
    pub virtualhost: Option<Spanned<String>>,
    pub fallback: Option<Spanned<Fallback>>,
    pub fallbackcommand: Option<Spanned<String>>,
    pub quiescent: Option<Spanned<bool>>,
    pub emailalert: Option<Spanned<String>>,
    pub emailalertfreq: Option<Spanned<u64>>,
    pub emailalertstatus: Option<Spanned<EmailAlertStatus>>,
    pub monitorfile: Option<Spanned<String>>,
    pub cleanstop: Option<Spanned<bool>>,
    pub smtp: Option<Spanned<String>>,
    pub servicename: Option<Spanned<String>>,
    pub comment: Option<Spanned<String>>,
    /// Extension: verify the real server's certificate on https checks
    /// (`sslverify=yes`). ldirectord never verifies; default off.
    pub sslverify: Option<Spanned<bool>>,
    /// Extension: per-virtual VIP settings, overriding the global ones.
    pub vip: VipSettings,
}

impl Virtual {
    pub(crate) fn new(span: Span, family: AddressFamily, addr: VirtualAddr) -> Self {
        let protocol = match addr {
            VirtualAddr::Fwmark { .. } => VirtualProtocol::Fwm,
            VirtualAddr::Addr { .. } => VirtualProtocol::Tcp,
        };
        Virtual {
            span,
            family,
            addr,
            protocol,
            service: Service::None,
            reals: Vec::new(),
            service_directive: None,
            protocol_directive: None,
            checktype: None,
            checkcommand: None,
            checktimeout: None,
            negotiatetimeout: None,
            checkcount: None,
            failurecount: None,
            checkinterval: None,
            checkport: None,
            request: None,
            receive: None,
            login: None,
            passwd: None,
            database: None,
            secret: None,
            load: None,
            scheduler: None,
            persistent: None,
            schedflags: None,
            netmask: None,
            ops: None,
            httpmethod: None,
            virtualhost: None,
            fallback: None,
            fallbackcommand: None,
            quiescent: None,
            emailalert: None,
            emailalertfreq: None,
            emailalertstatus: None,
            monitorfile: None,
            cleanstop: None,
            smtp: None,
            servicename: None,
            comment: None,
            sslverify: None,
            vip: VipSettings::default(),
        }
    }

    /// ldirectord's id for the virtual (`tcp:10.0.0.1:80`, `fwm:5`,
    /// `fwm6:5`), used for duplicate detection and in messages.
    pub fn id(&self) -> String {
        match self.addr {
            VirtualAddr::Addr { addr, port } => match addr {
                IpAddr::V4(a) => format!("{}:{a}:{port}", self.protocol),
                IpAddr::V6(a) => format!("{}:[{a}]:{port}", self.protocol),
            },
            VirtualAddr::Fwmark { mark, family } => match family {
                AddressFamily::Inet => format!("fwm:{mark}"),
                AddressFamily::Inet6 => format!("fwm6:{mark}"),
            },
        }
    }

    /// The port of the virtual, 0 for fwmark virtuals.
    pub fn port(&self) -> u16 {
        match self.addr {
            VirtualAddr::Addr { port, .. } => port,
            VirtualAddr::Fwmark { .. } => 0,
        }
    }

    pub fn checktype(&self) -> CheckType {
        val(&self.checktype).unwrap_or(CheckType::Negotiate)
    }

    pub fn scheduler(&self) -> &str {
        self.scheduler
            .as_ref()
            .map_or(defaults::SCHEDULER, |s| s.value.as_str())
    }

    pub fn request(&self) -> &str {
        self.request
            .as_ref()
            .map_or(defaults::REQUEST, |s| s.value.as_str())
    }

    pub fn receive(&self) -> &str {
        self.receive.as_ref().map_or("", |s| s.value.as_str())
    }

    pub fn checkcommand(&self) -> &str {
        self.checkcommand
            .as_ref()
            .map_or(defaults::CHECK_COMMAND, |s| s.value.as_str())
    }

    pub fn httpmethod(&self) -> HttpMethod {
        val(&self.httpmethod).unwrap_or(HttpMethod::Get)
    }

    /// `ops=yes` only takes effect on UDP virtuals; ldirectord silently
    /// ignores it elsewhere.
    pub fn one_packet_scheduling(&self) -> bool {
        val(&self.ops).unwrap_or(false) && self.protocol == VirtualProtocol::Udp
    }

    /// The netmask only applies together with `persistent=`.
    pub fn persistence(&self) -> Option<(u64, Option<Netmask>)> {
        val(&self.persistent).map(|p| (p, val(&self.netmask)))
    }

    pub fn sslverify(&self) -> bool {
        val(&self.sslverify).unwrap_or(false)
    }

    /// Effective check timeout (ldirectord.in L2350): virtual checktimeout,
    /// then virtual negotiatetimeout, then the global checktimeout, then the
    /// global negotiatetimeout, then 5 seconds.
    pub fn effective_checktimeout(&self, global: &Global) -> u64 {
        val(&self.checktimeout)
            .or(val(&self.negotiatetimeout))
            .or(val(&global.checktimeout))
            .or(val(&global.negotiatetimeout))
            .unwrap_or(defaults::CHECK_TIMEOUT)
    }

    /// Effective negotiate timeout: the mirror order, ending in 30 seconds.
    pub fn effective_negotiatetimeout(&self, global: &Global) -> u64 {
        val(&self.negotiatetimeout)
            .or(val(&self.checktimeout))
            .or(val(&global.negotiatetimeout))
            .or(val(&global.checktimeout))
            .unwrap_or(defaults::NEGOTIATE_TIMEOUT)
    }

    /// Effective check interval. ldirectord honours a per-virtual value only
    /// with fork=yes; ldirector always honours it (reference §7).
    pub fn effective_checkinterval(&self, global: &Global) -> u64 {
        val(&self.checkinterval).unwrap_or_else(|| global.checkinterval())
    }

    pub fn effective_failurecount(&self, global: &Global) -> u64 {
        val(&self.failurecount).unwrap_or_else(|| global.failurecount())
    }

    pub fn effective_checkcount(&self, global: &Global) -> u64 {
        val(&self.checkcount).unwrap_or_else(|| global.checkcount())
    }

    pub fn effective_quiescent(&self, global: &Global) -> bool {
        val(&self.quiescent).unwrap_or_else(|| global.quiescent())
    }

    pub fn effective_cleanstop(&self, global: &Global) -> bool {
        val(&self.cleanstop).unwrap_or_else(|| global.cleanstop())
    }

    /// The fallback server: the virtual's own, else the global one of the
    /// virtual's address family and protocol. A fallback without a port
    /// takes the virtual's port.
    pub fn effective_fallback(&self, global: &Global) -> Option<Fallback> {
        let mut fallback = match &self.fallback {
            Some(f) => f.value.clone(),
            None => {
                let g = match self.family {
                    AddressFamily::Inet => global.fallback.as_ref(),
                    AddressFamily::Inet6 => global.fallback6.as_ref(),
                }?;
                g.value.for_protocol(self.protocol).clone()
            }
        };
        if fallback.port.is_none() && self.port() != 0 {
            fallback.port = Some(self.port());
        }
        Some(fallback)
    }

    /// The VIP this director owns for the virtual, if a `vipinterface` is
    /// set (per virtual, else globally). Fwmark virtuals have no address.
    pub fn effective_vip(&self, global: &Global) -> Option<EffectiveVip> {
        if matches!(self.addr, VirtualAddr::Fwmark { .. }) {
            return None;
        }
        let interface = self
            .vip
            .interface
            .as_ref()
            .or(global.vip.interface.as_ref())?;
        Some(EffectiveVip {
            interface: interface.value.clone(),
            announce_count: val(&self.vip.announce_count)
                .or(val(&global.vip.announce_count))
                .unwrap_or(defaults::VIP_ANNOUNCE_COUNT),
            announce_interval_ms: val(&self.vip.announce_interval_ms)
                .or(val(&global.vip.announce_interval_ms))
                .unwrap_or(defaults::VIP_ANNOUNCE_INTERVAL_MS),
        })
    }

    /// The port a check of `real` connects to (`ld_checkport`): checkport,
    /// else the real's port if it is > 0, else the service's default port.
    pub fn check_port(&self, real: &Real) -> Option<u16> {
        if let Some(p) = val(&self.checkport) {
            return Some(p);
        }
        if real.port > 0 {
            return Some(real.port);
        }
        self.service.default_port()
    }
}

/// The address part of a `real=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RealAddr {
    Single {
        addr: IpAddr,
    },
    /// `A->B`: every IPv4 address from A to B inclusive.
    Range {
        first: Ipv4Addr,
        last: Ipv4Addr,
    },
}

/// One `real=` / `real6=` line (a range is one line, several servers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Real {
    pub span: Span,
    pub addr: RealAddr,
    /// 0 when no port was written (fwmark virtuals).
    pub port: u16,
    pub forward: ForwardMethod,
    /// Default 1; 0 is allowed.
    pub weight: u32,
    /// Per-real request (leading `/` added) and receive, written as a pair.
    pub request: Option<String>,
    pub receive: Option<String>,
    /// `l:N` lower connection threshold (ipvsadm `-y`).
    pub lower_threshold: Option<u32>,
    /// `u:N` upper connection threshold (ipvsadm `-x`).
    pub upper_threshold: Option<u32>,
}

impl Real {
    /// Every address this line stands for, ranges expanded in order.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let (first, last): (u64, u64) = match self.addr {
            RealAddr::Single { .. } => (0, 0),
            RealAddr::Range { first, last } => (u32::from(first).into(), u32::from(last).into()),
        };
        let single = match self.addr {
            RealAddr::Single { addr } => Some(addr),
            RealAddr::Range { .. } => None,
        };
        let range = match self.addr {
            RealAddr::Range { .. } => first..=last,
            #[allow(clippy::reversed_empty_ranges)]
            RealAddr::Single { .. } => 1..=0,
        };
        single.into_iter().chain(
            range.filter_map(|n| u32::try_from(n).ok().map(|n| IpAddr::V4(Ipv4Addr::from(n)))),
        )
    }

    /// How many servers this line stands for.
    pub fn count(&self) -> u64 {
        match self.addr {
            RealAddr::Single { .. } => 1,
            RealAddr::Range { first, last } => {
                u64::from(u32::from(last)).saturating_sub(u64::from(u32::from(first))) + 1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_str, OfflineEnvironment};

    fn parse(text: &str) -> Config {
        match parse_str("t.cf", text, &OfflineEnvironment) {
            Ok(p) => p.config,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn global_defaults_are_ldirectords_code_defaults() {
        let c = parse("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n");
        let g = &c.global;
        // The code says quiescent=no, whatever the manual page says.
        assert!(!g.quiescent());
        assert!(!g.readdquiescent());
        assert!(g.cleanstop());
        assert!(!g.autoreload());
        assert!(!g.fork());
        assert_eq!(
            (g.checkinterval(), g.checkcount(), g.failurecount()),
            (10, 1, 1)
        );
        assert_eq!(
            g.logfile(),
            LogTarget::File("/var/log/ldirectord.log".into())
        );
        assert_eq!(g.emailalertstatus(), EmailAlertStatus::ALL);
        assert_eq!(g.metrics_listen(), None);
        assert_eq!(g.sync_daemon(), None);
        let v = &c.virtuals[0];
        assert_eq!(v.checktype(), CheckType::Negotiate);
        assert_eq!(v.scheduler(), "wrr");
        assert_eq!(v.request(), "/");
        assert_eq!(v.receive(), "");
        assert_eq!(v.checkcommand(), "/bin/true");
        assert_eq!(v.httpmethod(), HttpMethod::Get);
        assert_eq!(v.effective_checktimeout(g), 5);
        assert_eq!(v.effective_negotiatetimeout(g), 30);
        assert!(!v.effective_quiescent(g));
        assert_eq!(v.effective_vip(g), None);
        let r = &v.reals[0];
        assert_eq!((r.weight, r.forward), (1, ForwardMethod::Route));
    }

    #[test]
    fn protocol_and_service_follow_the_port_as_written() {
        let c = parse(concat!(
            "virtual=10.0.0.1:53\n\treal=10.0.0.2:53 gate\n",
            "virtual=10.0.0.1:domain\n\treal=10.0.0.2:53 gate\n\tprotocol=tcp\n",
            "virtual=10.0.0.1:www\n\treal=10.0.0.2:80 gate\n",
            "virtual=10.0.0.3:080\n\treal=10.0.0.2:80 gate\n",
            "virtual=10.0.0.1:8080\n\treal=10.0.0.2:80 gate\n",
            "virtual=7\n\treal=10.0.0.2 gate\n",
        ));
        let got: Vec<(VirtualProtocol, Service, u16)> = c
            .virtuals
            .iter()
            .map(|v| (v.protocol, v.service, v.port()))
            .collect();
        assert_eq!(
            got,
            vec![
                (VirtualProtocol::Udp, Service::Dns, 53),
                (VirtualProtocol::Tcp, Service::Dns, 53),
                (VirtualProtocol::Tcp, Service::Http, 80),
                // ldirectord compares the port text with `eq`: 080 is no
                // service.
                (VirtualProtocol::Tcp, Service::None, 80),
                (VirtualProtocol::Tcp, Service::None, 8080),
                (VirtualProtocol::Fwm, Service::None, 0),
            ]
        );
        assert_eq!(c.virtuals[5].id(), "fwm:7");
        assert_eq!(c.virtuals[0].id(), "udp:10.0.0.1:53");
    }

    #[test]
    fn timeouts_resolve_in_ldirectords_order() {
        let c = parse(concat!(
            "negotiatetimeout=20\n",
            "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n",
            "virtual=10.0.0.1:81\n\treal=10.0.0.2:80 gate\n\tnegotiatetimeout=7\n",
            "virtual=10.0.0.1:82\n\treal=10.0.0.2:80 gate\n\tchecktimeout=3\n\tnegotiatetimeout=9\n",
        ));
        let g = &c.global;
        let t: Vec<(u64, u64)> = c
            .virtuals
            .iter()
            .map(|v| (v.effective_checktimeout(g), v.effective_negotiatetimeout(g)))
            .collect();
        // global negotiatetimeout stands in for the missing checktimeout;
        // a virtual's own value beats every global one.
        assert_eq!(t, vec![(20, 20), (7, 7), (3, 9)]);
    }

    #[test]
    fn service_defaults_fill_in_logins() {
        let c = parse(concat!(
            "virtual=10.0.0.1:21\n\treal=10.0.0.2:21 gate\n\tservice=ftp\n",
            "virtual=10.0.0.1:5060\n\treal=10.0.0.2:5060 gate\n\tlogin=\"probe\"\n\tservice=sip\n",
        ));
        let login = |i: usize| c.virtuals[i].login.as_ref().map(|l| l.value.clone());
        let passwd = c.virtuals[0].passwd.as_ref().map(|l| l.value.clone());
        assert_eq!(login(0).as_deref(), Some("anonymous"));
        assert_eq!(passwd.as_deref(), Some("ldirectord@localhost"));
        assert_eq!(login(1).as_deref(), Some("probe"));
    }

    #[test]
    fn extensions_resolve_with_their_defaults() {
        let c = parse(concat!(
            "metrics=yes\nvipinterface=eth0\nvipannouncecount=3\n",
            "syncdaemon=backup\nsyncinterface=eth1\nsyncid=9\n",
            "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n",
            "virtual=10.0.0.1:443\n\treal=10.0.0.2:443 gate\n\tvipinterface=eth2\n\tvipannounceinterval=50\n\tprotocol=sctp\n",
            "virtual=9\n\treal=10.0.0.2 gate\n",
        ));
        let g = &c.global;
        assert_eq!(g.metrics_listen(), Some(defaults::METRICS_LISTEN));
        let sync = g.sync_daemon().expect("sync daemon configured");
        assert_eq!(
            (sync.state, sync.mcast_ifname.as_str(), sync.sync_id),
            (SyncState::Backup, "eth1", 9)
        );
        let vip = |i: usize| c.virtuals[i].effective_vip(g);
        assert_eq!(
            vip(0),
            Some(EffectiveVip {
                interface: "eth0".into(),
                announce_count: 3,
                announce_interval_ms: defaults::VIP_ANNOUNCE_INTERVAL_MS,
            })
        );
        assert_eq!(
            vip(1),
            Some(EffectiveVip {
                interface: "eth2".into(),
                announce_count: 3,
                announce_interval_ms: 50,
            })
        );
        // A fwmark has no address to own.
        assert_eq!(vip(2), None);
        assert_eq!(c.virtuals[1].protocol.transport(), Some(Protocol::Sctp));
    }

    #[test]
    fn extension_values_are_validated_with_spans() {
        let err = parse_str(
            "t.cf",
            concat!(
                "metrics=127.0.0.1\nsyncdaemon=master\nsyncid=256\n",
                "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tvipinterface=eth0/1\n\tvipannouncecount=-1\n",
            ),
            &OfflineEnvironment,
        )
        .expect_err("invalid extensions");
        let places: Vec<String> = err
            .diagnostics()
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{}:{}", d.span.line, d.span.col))
            .collect();
        // metrics without a port, syncdaemon without syncinterface, syncid
        // out of range, a '/' in an interface name, a negative count.
        assert_eq!(places, vec!["1:9", "2:1", "3:8", "6:15", "7:19"]);
    }
}
