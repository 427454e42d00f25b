// SPDX-License-Identifier: GPL-2.0-or-later
//! `ipvs-ls`: reads the kernel's IPVS table over generic netlink and
//! prints it exactly as `ipvsadm -Ln` does (every list mode), or as JSON,
//! optionally with the director's health of each real server.
//!
//! `format` holds the ipvsadm-identical text, `sort` ipvsadm's order,
//! `conn` the connection table, `json` the JSON schema, `health` the
//! control-socket lookup and `names` numeric or resolved spelling. This
//! module ties them to the kernel through [`IpvsHandle`]. See
//! `docs/ipvs-ls.md` for the user-facing description.

pub mod conn;
pub mod format;
pub mod health;
pub mod json;
pub mod names;
pub mod sort;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::inspect::format::ListFormat;
use crate::inspect::health::HealthIndex;
use crate::inspect::names::{Namer, Numeric, Resolver};
use crate::ipvs::{AddressFamily, IpvsError, IpvsHandle, Protocol, ServiceEntry, ServiceKey};

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Ipvs(#[from] IpvsError),

    #[error("no such service: {0}")]
    ServiceNotFound(ServiceKey),

    #[error("invalid service '{text}': {reason}")]
    BadService { text: String, reason: String },

    #[error("cannot read {path}: {source} (is the ip_vs module loaded?)")]
    Connections {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),

    #[error("the health lookup task failed: {0}")]
    HealthTask(String),
}

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Every service (`ipvsadm -L`).
    All,
    /// One service (`ipvsadm -L -t|-u|--sctp-service|-f`).
    Service(ServiceKey),
    /// The connection table (`ipvsadm -L -c`).
    Connections,
    /// `ipvsadm -L --timeout`.
    Timeouts,
    /// `ipvsadm -L --daemon`.
    Daemons,
}

/// Where `--health` finds the running directors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthSource {
    /// Every control socket in this directory (default `/run/ldirector`).
    RunDir(PathBuf),
    /// These sockets only.
    Sockets(Vec<PathBuf>),
}

/// A complete `ipvs-ls` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub subject: Subject,
    pub format: ListFormat,
    /// ipvsadm's order (the default); `false` keeps the kernel's order.
    pub sort: bool,
    /// Host and port names instead of numbers.
    pub resolve: bool,
    /// JSON instead of text (services only).
    pub json: bool,
    /// With the director's health of each real.
    pub health: Option<HealthSource>,
}

impl Default for Request {
    fn default() -> Self {
        Self {
            subject: Subject::All,
            format: ListFormat::default(),
            sort: true,
            resolve: false,
            json: false,
            health: None,
        }
    }
}

/// What a request produced: the text for stdout, and notes for stderr
/// (a director that did not answer, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub warnings: Vec<String>,
}

/// Runs `request` against the kernel of the caller's network namespace.
pub async fn run(request: &Request) -> Result<Output, InspectError> {
    let namer: Box<dyn Namer + Send + Sync> = if request.resolve {
        Box::new(Resolver::from_system())
    } else {
        Box::new(Numeric)
    };
    let mut output = Output::default();

    if request.subject == Subject::Connections {
        let text = tokio::fs::read_to_string(conn::CONNECTIONS_FILE)
            .await
            .map_err(|source| InspectError::Connections {
                path: conn::CONNECTIONS_FILE.to_owned(),
                source,
            })?;
        let persistent = request.format.columns == format::Columns::PersistentConn;
        format::infallible(conn::write_connections(
            &mut output.stdout,
            &conn::parse_connections(&text),
            persistent,
            namer.as_ref(),
        ));
        return Ok(output);
    }

    let ipvs = IpvsHandle::connect().await?;
    match &request.subject {
        Subject::Timeouts => {
            let timeouts = ipvs.timeouts().await?;
            format::infallible(format::write_timeouts(&mut output.stdout, &timeouts));
            return Ok(output);
        }
        Subject::Daemons => {
            let daemons = ipvs.daemons().await?;
            format::infallible(format::write_daemons(&mut output.stdout, &daemons));
            return Ok(output);
        }
        Subject::All | Subject::Service(_) | Subject::Connections => {}
    }

    let health = match &request.health {
        Some(source) => {
            let index = collect_health(source.clone()).await?;
            output.warnings.extend(
                index
                    .unreachable
                    .iter()
                    .map(|u| format!("no health from {u}")),
            );
            if index.answered.is_empty() && index.unreachable.is_empty() {
                output.warnings.push(match source {
                    HealthSource::RunDir(dir) => format!(
                        "no director running (no control socket in {}): health shows '-'",
                        dir.display()
                    ),
                    HealthSource::Sockets(_) => "no control socket given".to_owned(),
                });
            }
            Some(index)
        }
        None => None,
    };

    let services = match &request.subject {
        Subject::Service(key) => {
            let entry = ipvs
                .service(key)
                .await?
                .ok_or(InspectError::ServiceNotFound(*key))?;
            vec![entry]
        }
        _ => ipvs.services().await?,
    };
    let mut services = services;
    if request.sort {
        sort::sort_like_ipvsadm(&mut services);
    }

    if request.json {
        let info = ipvs.info().await?;
        let (timeouts, daemons) = match request.subject {
            Subject::All => (Some(ipvs.timeouts().await?), ipvs.daemons().await?),
            _ => (None, Vec::new()),
        };
        let document = json::document(
            &info,
            timeouts.as_ref(),
            &daemons,
            &services,
            health.as_ref(),
        );
        output.stdout = serde_json::to_string_pretty(&document)?;
        output.stdout.push('\n');
        return Ok(output);
    }

    match &request.subject {
        Subject::Service(_) => {
            if let Some(service) = services.first() {
                format::infallible(format::write_one_service(
                    &mut output.stdout,
                    service,
                    &request.format,
                    namer.as_ref(),
                    health.as_ref(),
                ));
            }
        }
        _ => {
            let info = ipvs.info().await?;
            output.stdout.reserve(services_size_hint(&services));
            format::infallible(format::write_listing(
                &mut output.stdout,
                &info,
                &services,
                &request.format,
                namer.as_ref(),
                health.as_ref(),
            ));
        }
    }
    Ok(output)
}

/// Roughly 80 bytes a line, so a big table is formatted without
/// reallocating.
fn services_size_hint(services: &[ServiceEntry]) -> usize {
    let lines: usize = services.iter().map(|s| 1 + s.destinations.len()).sum();
    (lines + 3) * 80
}

async fn collect_health(source: HealthSource) -> Result<HealthIndex, InspectError> {
    // The control client is blocking (a local socket, 5 s timeout).
    tokio::task::spawn_blocking(move || match source {
        HealthSource::RunDir(dir) => HealthIndex::collect(&dir),
        HealthSource::Sockets(sockets) => HealthIndex::collect_from(&sockets),
    })
    .await
    .map_err(|e| InspectError::HealthTask(e.to_string()))
}

/// Parses a `-t`/`-u`/`--sctp-service` argument as ipvsadm does, numeric
/// only: `10.0.0.1:80`, `10.0.0.1` (port 0), `[2001:db8::1]:80`,
/// `2001:db8::1` (port 0; without brackets the whole text is the
/// address).
pub fn parse_service(protocol: Protocol, text: &str) -> Result<ServiceKey, InspectError> {
    let bad = |reason: &str| InspectError::BadService {
        text: text.to_owned(),
        reason: reason.to_owned(),
    };
    let (addr, port): (IpAddr, Option<&str>) = if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("missing ']' after the IPv6 address"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| bad("expected ':PORT' after ']'"))?;
        let addr = addr
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| bad("not an IPv6 address inside [...]"))?;
        (IpAddr::V6(addr), Some(port))
    } else if let Ok(addr) = text.parse::<std::net::Ipv6Addr>() {
        (IpAddr::V6(addr), None)
    } else {
        let (addr, port) = match text.rsplit_once(':') {
            Some((addr, port)) => (addr, Some(port)),
            None => (text, None),
        };
        let addr = addr
            .parse::<Ipv4Addr>()
            .map_err(|_| bad("expected ADDRESS[:PORT] with a numeric address"))?;
        (IpAddr::V4(addr), port)
    };
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .map_err(|_| bad("the port must be a number from 0 to 65535"))?,
        None => 0,
    };
    Ok(ServiceKey::Addr {
        protocol,
        addr,
        port,
    })
}

/// A `-f MARK` service; `ipv6` is ipvsadm's `-6`.
pub fn fwmark_service(mark: u32, ipv6: bool) -> ServiceKey {
    ServiceKey::Fwmark {
        af: if ipv6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        },
        mark,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_arguments_parse_like_ipvsadm() {
        let tcp = |addr: &str, port| ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: addr.parse().unwrap(),
            port,
        };
        let parse = |text| parse_service(Protocol::Tcp, text);
        assert_eq!(parse("10.0.0.1:80").unwrap(), tcp("10.0.0.1", 80));
        assert_eq!(parse("10.0.0.1").unwrap(), tcp("10.0.0.1", 0));
        assert_eq!(parse("[2001:db8::1]:443").unwrap(), tcp("2001:db8::1", 443));
        assert_eq!(parse("2001:db8::1:80").unwrap(), tcp("2001:db8::1:80", 0));
        for bad in [
            "",
            "host:80",
            "10.0.0.1:http",
            "[2001:db8::1]",
            "[::1:80",
            "1.2.3.4:70000",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(
            fwmark_service(5, true),
            ServiceKey::Fwmark {
                af: AddressFamily::Inet6,
                mark: 5
            }
        );
    }
}
