// SPDX-License-Identifier: GPL-2.0-or-later
//! `CheckSpec`: everything one check of one real needs, resolved from the
//! config (timeouts already resolved, check port already chosen), so a spec
//! can be probed, compared and hashed on its own.
//!
//! Two virtuals that contain the same real with the same check produce
//! equal specs; the scheduler keys its tasks by spec, so such a real is
//! probed once per interval and the result fans out to every virtual
//! (ldirectord's "shared reals").

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::CheckTarget;

/// ldirectord's default checktimeout when nothing is configured.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// ldirectord's default negotiatetimeout when nothing is configured.
pub const DEFAULT_NEGOTIATE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("unknown service {0:?}")]
    UnknownService(String),
    #[error("unknown httpmethod {0:?} (expected GET or HEAD)")]
    UnknownHttpMethod(String),
}

/// The negotiate services ldirectord knows (`service=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Http,
    Https,
    HttpProxy,
    Smtp,
    Submission,
    Pop,
    Pops,
    Imap,
    Imaps,
    Ftp,
    Ldap,
    Ldaps,
    Nntp,
    Dns,
    Radius,
    Sip,
    Mysql,
    Pgsql,
    Oracle,
    SimpleTcp,
    /// `service=none`: the negotiate check always passes.
    None,
}

impl Service {
    pub const ALL: [Service; 21] = [
        Service::Http,
        Service::Https,
        Service::HttpProxy,
        Service::Smtp,
        Service::Submission,
        Service::Pop,
        Service::Pops,
        Service::Imap,
        Service::Imaps,
        Service::Ftp,
        Service::Ldap,
        Service::Ldaps,
        Service::Nntp,
        Service::Dns,
        Service::Radius,
        Service::Sip,
        Service::Mysql,
        Service::Pgsql,
        Service::Oracle,
        Service::SimpleTcp,
        Service::None,
    ];

    /// The name as written in ldirectord.cf.
    pub fn name(self) -> &'static str {
        match self {
            Service::Http => "http",
            Service::Https => "https",
            Service::HttpProxy => "http_proxy",
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Pop => "pop",
            Service::Pops => "pops",
            Service::Imap => "imap",
            Service::Imaps => "imaps",
            Service::Ftp => "ftp",
            Service::Ldap => "ldap",
            Service::Ldaps => "ldaps",
            Service::Nntp => "nntp",
            Service::Dns => "dns",
            Service::Radius => "radius",
            Service::Sip => "sip",
            Service::Mysql => "mysql",
            Service::Pgsql => "pgsql",
            Service::Oracle => "oracle",
            Service::SimpleTcp => "simpletcp",
            Service::None => "none",
        }
    }

    /// The port a check goes to when neither checkport nor the real's port
    /// is set (ldirectord `ld_service_to_port`); `None` has no port.
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
            Service::SimpleTcp | Service::None => return None,
        })
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Service {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Service::ALL
            .iter()
            .copied()
            .find(|service| service.name() == s)
            .ok_or_else(|| SpecError::UnknownService(s.to_string()))
    }
}

/// `checktype=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// TCP connect within checktimeout (a UDP virtual pings instead).
    Connect,
    /// Speak the service's protocol within negotiatetimeout.
    Negotiate(Service),
    /// ICMP echo, up to `count` attempts (checkcount), each within
    /// checktimeout.
    Ping { count: u32 },
    /// `checkcommand VIP VPORT RIP RPORT`, exit 0 = up.
    External { command: PathBuf },
    /// The same, run as `perl SCRIPT VIP VPORT RIP RPORT` (ldirectord
    /// compiles the file into itself instead).
    ExternalPerl { script: PathBuf },
    /// Always up.
    On,
    /// Never up.
    Off,
    /// `checktype=N`: a negotiate, then N connects, then a negotiate; a
    /// failed connect forces a negotiate next.
    Combined { connects: u32, service: Service },
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckKind::Connect => f.write_str("connect"),
            CheckKind::Negotiate(service) => write!(f, "negotiate:{service}"),
            CheckKind::Ping { count } => write!(f, "ping({count})"),
            CheckKind::External { command } => write!(f, "external:{}", command.display()),
            CheckKind::ExternalPerl { script } => {
                write!(f, "external-perl:{}", script.display())
            }
            CheckKind::On => f.write_str("on"),
            CheckKind::Off => f.write_str("off"),
            CheckKind::Combined { connects, service } => {
                write!(f, "combined({connects}):{service}")
            }
        }
    }
}

/// The virtual's protocol: decides TCP vs UDP for connect, dns, sip and
/// simpletcp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
    /// fwmark virtuals: checks use TCP, as in ldirectord.
    Fwm,
}

/// `httpmethod=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
}

impl FromStr for HttpMethod {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "GET" => Ok(HttpMethod::Get),
            "HEAD" => Ok(HttpMethod::Head),
            other => Err(SpecError::UnknownHttpMethod(other.to_string())),
        }
    }
}

/// HTTPS certificate verification. ldirectord never verifies (kept as the
/// default); a per-virtual directive turns it on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum TlsVerify {
    /// Complete the handshake with any certificate (ldirectord's LWP
    /// setting `verify_hostname => 0`).
    #[default]
    Off,
    /// Verify the chain against the system trust store and the name
    /// against `virtualhost` (or the real's IP).
    System,
    /// Verify against the CA certificates in this PEM file only.
    CaFile(PathBuf),
}

/// One check of one real, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckSpec {
    pub kind: CheckKind,
    pub protocol: Protocol,
    /// Address and check port of the real, plus the virtual for external
    /// checks.
    pub target: CheckTarget,
    /// `request=`, with the leading `/` ldirectord adds (default `/`).
    pub request: String,
    /// True when the request came from the real's own `"REQ","RECV"`:
    /// only then may it be a whole URL (`http://host/path`) for http
    /// checks, as in ldirectord.
    pub request_per_real: bool,
    /// `receive=`: a regex; empty means "anything".
    pub receive: String,
    pub http_method: HttpMethod,
    pub virtualhost: Option<String>,
    pub login: Option<String>,
    pub passwd: Option<String>,
    pub database: Option<String>,
    pub secret: Option<String>,
    /// checktimeout, resolved (virtual, then global, then 5 s).
    pub check_timeout: Duration,
    /// negotiatetimeout, resolved (virtual, then global, then 30 s).
    pub negotiate_timeout: Duration,
    pub tls_verify: TlsVerify,
}

impl CheckSpec {
    /// A spec with ldirectord's defaults: TCP, request `/`, empty receive,
    /// GET, timeouts 5 s / 30 s, no certificate verification. The virtual
    /// is left empty; set it with [`CheckSpec::virtual_service`].
    pub fn new(kind: CheckKind, real: SocketAddr) -> Self {
        CheckSpec {
            kind,
            protocol: Protocol::Tcp,
            target: CheckTarget {
                addr: real,
                virtual_addr: None,
                virtual_port: 0,
                real_port: real.port(),
            },
            request: "/".to_string(),
            request_per_real: false,
            receive: String::new(),
            http_method: HttpMethod::Get,
            virtualhost: None,
            login: None,
            passwd: None,
            database: None,
            secret: None,
            check_timeout: DEFAULT_CHECK_TIMEOUT,
            negotiate_timeout: DEFAULT_NEGOTIATE_TIMEOUT,
            tls_verify: TlsVerify::Off,
        }
    }

    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The virtual this real serves: its address (None for fwmark) and
    /// port (or fwmark).
    pub fn virtual_service(mut self, addr: Option<IpAddr>, port_or_fwmark: u32) -> Self {
        self.target.virtual_addr = addr;
        self.target.virtual_port = port_or_fwmark;
        self
    }

    /// The real's configured port when it differs from the check port
    /// (checkport set, or a fwmark real without port).
    pub fn real_port(mut self, port: u16) -> Self {
        self.target.real_port = port;
        self
    }

    /// Sets `request=`, adding the leading `/` ldirectord adds.
    pub fn request(mut self, request: impl Into<String>) -> Self {
        let request = request.into();
        self.request = if request.starts_with('/') {
            request
        } else {
            format!("/{request}")
        };
        self
    }

    /// Sets a per-real request (the `"REQ","RECV"` pair of a `real=` line).
    pub fn real_request(mut self, request: impl Into<String>, receive: impl Into<String>) -> Self {
        self = self.request(request);
        self.request_per_real = true;
        self.receive = receive.into();
        self
    }

    pub fn receive(mut self, receive: impl Into<String>) -> Self {
        self.receive = receive.into();
        self
    }

    pub fn http_method(mut self, method: HttpMethod) -> Self {
        self.http_method = method;
        self
    }

    pub fn virtualhost(mut self, host: impl Into<String>) -> Self {
        self.virtualhost = Some(host.into());
        self
    }

    pub fn login(mut self, login: impl Into<String>, passwd: impl Into<String>) -> Self {
        self.login = Some(login.into());
        self.passwd = Some(passwd.into());
        self
    }

    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    pub fn timeouts(mut self, check: Duration, negotiate: Duration) -> Self {
        self.check_timeout = check;
        self.negotiate_timeout = negotiate;
        self
    }

    pub fn tls_verify(mut self, verify: TlsVerify) -> Self {
        self.tls_verify = verify;
        self
    }

    /// True when the check connects to a port (a port of 0 cannot work).
    pub fn needs_port(&self) -> bool {
        match &self.kind {
            CheckKind::Connect | CheckKind::Combined { .. } => true,
            CheckKind::Negotiate(service) => *service != Service::None,
            _ => false,
        }
    }

    /// The longest a single probe of this spec may take, all attempts
    /// included; the scheduler's last-resort timeout is derived from it.
    pub fn probe_budget(&self) -> Duration {
        match &self.kind {
            CheckKind::Connect | CheckKind::External { .. } | CheckKind::ExternalPerl { .. } => {
                self.check_timeout
            }
            CheckKind::Ping { count } => self.check_timeout * (*count).max(1),
            CheckKind::Negotiate(_) => self.negotiate_timeout,
            CheckKind::Combined { .. } => self.check_timeout.max(self.negotiate_timeout),
            CheckKind::On | CheckKind::Off => Duration::ZERO,
        }
    }
}

/// The check port ldirectord uses: checkport, else the real's port if it
/// is non-zero, else the service's default port (`ld_checkport`).
pub fn check_port(checkport: Option<u16>, real_port: u16, service: Option<Service>) -> u16 {
    checkport
        .filter(|port| *port > 0)
        .or_else(|| (real_port > 0).then_some(real_port))
        .or_else(|| service.and_then(Service::default_port))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn real() -> SocketAddr {
        "127.0.1.1:80".parse().unwrap()
    }

    #[test]
    fn identical_specs_dedupe_in_a_set() {
        let a = CheckSpec::new(CheckKind::Negotiate(Service::Http), real()).receive("ok");
        let b = CheckSpec::new(CheckKind::Negotiate(Service::Http), real()).receive("ok");
        let c = CheckSpec::new(CheckKind::Negotiate(Service::Http), real()).receive("other");
        let set: HashSet<_> = [a, b, c].into_iter().collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn request_gets_a_leading_slash_once() {
        let spec = CheckSpec::new(CheckKind::Connect, real()).request("index.html");
        assert_eq!(spec.request, "/index.html");
        let spec = CheckSpec::new(CheckKind::Connect, real()).request("/x");
        assert_eq!(spec.request, "/x");
    }

    #[test]
    fn service_names_round_trip() {
        for service in Service::ALL {
            assert_eq!(service.name().parse::<Service>(), Ok(service));
        }
        assert!("gopher".parse::<Service>().is_err());
    }

    #[test]
    fn check_port_order_matches_ldirectord() {
        assert_eq!(check_port(Some(8080), 80, Some(Service::Http)), 8080);
        assert_eq!(check_port(None, 81, Some(Service::Http)), 81);
        assert_eq!(check_port(None, 0, Some(Service::Https)), 443);
        assert_eq!(check_port(None, 0, Some(Service::None)), 0);
    }

    #[test]
    fn probe_budget_counts_every_ping_attempt() {
        let spec = CheckSpec::new(CheckKind::Ping { count: 3 }, real())
            .timeouts(Duration::from_secs(2), Duration::from_secs(9));
        assert_eq!(spec.probe_budget(), Duration::from_secs(6));
        let spec = CheckSpec::new(CheckKind::Negotiate(Service::Dns), real())
            .timeouts(Duration::from_secs(2), Duration::from_secs(9));
        assert_eq!(spec.probe_budget(), Duration::from_secs(9));
    }
}
