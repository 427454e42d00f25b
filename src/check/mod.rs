// SPDX-License-Identifier: GPL-2.0-or-later
//! Health checks: one trait, one file per check type or negotiate service.
//!
//! A checker only probes and reports pass or fail with a reason; counting
//! consecutive failures (flap damping) is the threshold counter's job, and
//! scheduling is the scheduler's.
//!
//! - [`spec::CheckSpec`]: a self-contained, hashable description of one
//!   check of one real; identical specs are probed once (shared reals).
//! - [`build_checker`]: turns a spec into a [`Checker`].
//! - [`threshold`]: the pure failurecount counter (healthy vs enabled).
//! - [`scheduler`]: runs every spec concurrently on its interval.
//! - [`probe`]: runs every check once (`ldirectord --probe`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::BoxFuture;

pub mod connect;
pub mod dns;
pub mod external;
pub mod from_config;
pub mod ftp;
pub mod http;
pub mod imap;
pub mod imaps;
pub mod implicit_tls;
pub mod ldap;
pub mod ldaps;
pub mod misc;
pub mod mysql;
pub mod nntp;
pub mod oracle;
pub mod pgsql;
pub mod ping;
pub mod pop;
pub mod pops;
pub mod probe;
pub mod radius;
pub mod receive;
pub mod scheduler;
pub mod simpletcp;
pub mod sip;
pub mod smtp;
pub mod spec;
pub mod submission;
pub(crate) mod textproto;
pub mod threshold;
pub mod tls;

pub use spec::{CheckKind, CheckSpec, HttpMethod, Protocol, Service, TlsVerify};

/// Where a check goes, and which virtual it serves (external checks pass
/// both to the command: `VIP VPORT RIP RPORT`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckTarget {
    /// The real server's address and the port to probe (checkport, else the
    /// real's port, else the service's default port).
    pub addr: SocketAddr,
    /// The virtual's address (`None` for fwmark virtuals).
    pub virtual_addr: Option<IpAddr>,
    /// The virtual's port, or the fwmark for fwmark virtuals.
    pub virtual_port: u32,
    /// The real's configured port (0 for fwmark reals without a port).
    pub real_port: u16,
}

/// Why a check failed. `Display` is the human reason used in logs, status
/// and `--probe` output, so every variant reads as a short sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("connection refused")]
    Refused,
    #[error("timeout after {:.1}s", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("{0}")]
    Io(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Protocol(String),
    #[error("receive /{0}/ not found")]
    ReceiveMismatch(String),
    /// The receive regex did not match; `place` says what was searched
    /// ("body", "status line", "answer", ...), so the reason tells an
    /// operator where to look.
    #[error("receive /{pattern}/ not found in {place}")]
    ReceiveNotFoundIn {
        pattern: String,
        place: &'static str,
    },
    /// A non-2xx HTTP status (after following redirects).
    #[error("HTTP {0}")]
    HttpStatus(u16),
    #[error("{0}")]
    Other(String),
}

impl CheckError {
    /// The reason for an I/O error, with the common socket failures
    /// spelled the way operators expect to read them.
    pub fn from_io(err: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        match err.kind() {
            ErrorKind::ConnectionRefused => CheckError::Refused,
            ErrorKind::ConnectionReset => CheckError::Io("connection reset by peer".into()),
            ErrorKind::ConnectionAborted => CheckError::Io("connection aborted".into()),
            ErrorKind::BrokenPipe => {
                CheckError::Io("connection closed by peer (broken pipe)".into())
            }
            ErrorKind::UnexpectedEof => CheckError::Io("connection closed by peer".into()),
            ErrorKind::HostUnreachable => CheckError::Io("host unreachable".into()),
            ErrorKind::NetworkUnreachable => CheckError::Io("network unreachable".into()),
            ErrorKind::AddrNotAvailable => CheckError::Io("address not available".into()),
            _ => {
                // rustls reports handshake failures as io::Error wrapping
                // its own error; surface them as TLS reasons.
                if let Some(tls) = err
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    return CheckError::Tls(tls::describe_error(tls));
                }
                CheckError::Io(err.to_string())
            }
        }
    }
}

impl From<std::io::Error> for CheckError {
    fn from(err: std::io::Error) -> Self {
        CheckError::from_io(&err)
    }
}

/// Runs `fut` for at most `limit`; a late result becomes
/// [`CheckError::Timeout`]. Every checker wraps its whole exchange in this,
/// so a check costs at most its timeout whatever the server does.
///
///
/// Not an `async fn`: one keeps `fut` both as its argument and inside the
/// timeout, doubling the size of every check's future (a boxed future per
/// probe, thousands per second). `lazy` + `flatten` hold one or the other,
/// and create the timer only when first polled (inside the runtime).
pub fn within<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, CheckError>>,
) -> impl std::future::Future<Output = Result<T, CheckError>> {
    use futures::FutureExt;
    futures::future::lazy(move |_| tokio::time::timeout(limit, fut))
        .flatten()
        .map(move |bounded| bounded.unwrap_or_else(|_| Err(CheckError::Timeout(limit))))
}

/// One probe of one real server.
pub trait Checker: Send + Sync {
    /// Short name for logs (`http`, `connect`, ...).
    fn name(&self) -> &'static str;

    /// Probe the target once. Implementations bound their own I/O by the
    /// timeout they were built with; callers still wrap the future in a
    /// timeout as a last line of defence.
    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>>;
}

/// Builds the checker a spec describes.
///
/// Every negotiate service has its own file; `oracle` has no checker (see
/// [`oracle`]).
pub fn build_checker(spec: &CheckSpec) -> Box<dyn Checker> {
    if spec.target.addr.port() == 0 && spec.needs_port() {
        // A fwmark real written without a port, on a service with no
        // well-known port: there is nothing to connect to.
        return Box::new(misc::BrokenChecker::new(
            "connect",
            CheckError::Other("no port to check: set checkport= or the real's port".into()),
        ));
    }
    match &spec.kind {
        CheckKind::Connect => {
            if spec.protocol == Protocol::Udp {
                // ldirectord pings UDP reals for checktype=connect: there is
                // no connection to open. The config conversion passes
                // checkcount through CheckKind::Ping; here it is one try.
                Box::new(ping::PingChecker::new(1, spec.check_timeout))
            } else {
                Box::new(connect::ConnectChecker::new(
                    spec.protocol,
                    spec.check_timeout,
                ))
            }
        }
        CheckKind::Negotiate(service) => build_negotiate(*service, spec),
        CheckKind::Ping { count } => Box::new(ping::PingChecker::new(*count, spec.check_timeout)),
        CheckKind::External { command } => Box::new(external::ExternalChecker::program(
            command.clone(),
            spec.check_timeout,
        )),
        CheckKind::ExternalPerl { script } => Box::new(external::ExternalChecker::perl(
            script.clone(),
            spec.check_timeout,
        )),
        CheckKind::On => Box::new(misc::OnChecker),
        CheckKind::Off => Box::new(misc::OffChecker),
        CheckKind::Combined { connects, service } => {
            // The cheap check between negotiates: a connect, or on UDP
            // (nothing to connect to) a ping, as for checktype=connect.
            let cheap: Box<dyn Checker> = if spec.protocol == Protocol::Udp {
                Box::new(ping::PingChecker::new(1, spec.check_timeout))
            } else {
                Box::new(connect::ConnectChecker::new(
                    spec.protocol,
                    spec.check_timeout,
                ))
            };
            Box::new(misc::CombinedChecker::new(
                *connects,
                cheap,
                build_negotiate(*service, spec),
            ))
        }
    }
}

fn build_negotiate(service: Service, spec: &CheckSpec) -> Box<dyn Checker> {
    match service {
        Service::Http | Service::Https | Service::HttpProxy => {
            match http::HttpChecker::new(service, spec) {
                Ok(checker) => Box::new(checker),
                Err(err) => Box::new(misc::BrokenChecker::new("http", err)),
            }
        }
        Service::SimpleTcp => match simpletcp::SimpleTcpChecker::new(spec) {
            Ok(checker) => Box::new(checker),
            Err(err) => Box::new(misc::BrokenChecker::new("simpletcp", err)),
        },
        Service::Dns => match dns::DnsChecker::new(spec) {
            Ok(checker) => Box::new(checker),
            Err(err) => Box::new(misc::BrokenChecker::new("dns", err)),
        },
        Service::None => Box::new(misc::OnChecker),
        Service::Smtp => Box::new(smtp::SmtpChecker::new(spec)),
        Service::Submission => Box::new(submission::SubmissionChecker::new(spec)),
        Service::Pop => Box::new(pop::PopChecker::new(spec)),
        Service::Pops => Box::new(pops::PopsChecker::new(spec)),
        Service::Imap => Box::new(imap::ImapChecker::new(spec)),
        Service::Imaps => Box::new(imaps::ImapsChecker::new(spec)),
        Service::Ftp => match ftp::FtpChecker::new(spec) {
            Ok(checker) => Box::new(checker),
            Err(err) => Box::new(misc::BrokenChecker::new("ftp", err)),
        },
        Service::Nntp => Box::new(nntp::NntpChecker::new(spec)),
        Service::Sip => Box::new(sip::SipChecker::new(spec)),
        Service::Ldap => match ldap::LdapChecker::new(spec) {
            Ok(checker) => Box::new(checker),
            Err(err) => Box::new(misc::BrokenChecker::new("ldap", err)),
        },
        Service::Ldaps => match ldaps::LdapsChecker::new(spec) {
            Ok(checker) => Box::new(checker),
            Err(err) => Box::new(misc::BrokenChecker::new("ldaps", err)),
        },
        Service::Mysql => Box::new(mysql::MysqlChecker::new(spec)),
        Service::Pgsql => Box::new(pgsql::PgsqlChecker::new(spec)),
        Service::Radius => Box::new(radius::RadiusChecker::new(spec)),
        // Configuration validation rejects service=oracle; a spec built by
        // hand still gets the reason instead of a silent "down".
        Service::Oracle => Box::new(misc::BrokenChecker::new(
            "oracle",
            CheckError::Other(oracle::NOT_SUPPORTED.to_string()),
        )),
    }
}
