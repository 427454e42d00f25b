// SPDX-License-Identifier: GPL-2.0-or-later
//! Prometheus metrics over HTTP (hyper): per real its health, weight, check
//! latency and failures; per service the kernel's counters. Off unless
//! configured, and bound to loopback unless told otherwise, because
//! the table layout of a load balancer is not for everyone to read.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::status::StatusReport;
use crate::ipvs::{ServiceEntry, ServiceKey};

/// Default listen address when metrics are enabled without one.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9469";

fn svc_label(k: &ServiceKey) -> String {
    k.to_string()
}

fn real_label(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Reads one kernel counter of a service.
type ServiceCounter = fn(&ServiceEntry) -> u64;

/// Writes one metric family: its HELP/TYPE header, then every sample, so
/// the header precedes all of the family's samples as the format requires.
fn family<I>(out: &mut String, name: &str, kind: &str, help: &str, samples: I)
where
    I: IntoIterator<Item = (String, String)>,
{
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// Renders the text exposition format (version 0.0.4).
pub fn render(report: &StatusReport, kernel: &[ServiceEntry]) -> String {
    let mut out = String::with_capacity(4096);
    let reals = || {
        report.virtuals.iter().flat_map(|v| {
            v.reals.iter().map(move |r| {
                let labels = format!(
                    "virtual=\"{}\",real=\"{}\"",
                    svc_label(&v.key),
                    real_label(r.addr, r.port)
                );
                (labels, r)
            })
        })
    };
    family(
        &mut out,
        "ldirector_real_up",
        "gauge",
        "1 if the director counts the real server as up.",
        reals().map(|(l, r)| (l, u8::from(r.up).to_string())),
    );
    family(
        &mut out,
        "ldirector_real_weight",
        "gauge",
        "Configured weight of the real server.",
        reals().map(|(l, r)| (l, r.weight.to_string())),
    );
    family(
        &mut out,
        "ldirector_check_latency_seconds",
        "gauge",
        "Duration of the last check.",
        reals().filter_map(|(l, r)| r.latency_ms.map(|ms| (l, (ms / 1000.0).to_string()))),
    );
    family(
        &mut out,
        "ldirector_checks_total",
        "counter",
        "Checks run.",
        reals().map(|(l, r)| (l, r.checks_total.to_string())),
    );
    family(
        &mut out,
        "ldirector_check_failures_total",
        "counter",
        "Checks that failed.",
        reals().map(|(l, r)| (l, r.failures_total.to_string())),
    );
    family(
        &mut out,
        "ldirector_fallback_active",
        "gauge",
        "1 while the fallback server serves.",
        report.virtuals.iter().map(|v| {
            (
                format!("virtual=\"{}\"", svc_label(&v.key)),
                u8::from(v.fallback_active).to_string(),
            )
        }),
    );

    let counters: [(&str, &str, ServiceCounter); 5] = [
        (
            "ipvs_service_connections_total",
            "Connections scheduled.",
            |e| e.stats.conns,
        ),
        ("ipvs_service_incoming_packets_total", "Packets in.", |e| {
            e.stats.inpkts
        }),
        ("ipvs_service_outgoing_packets_total", "Packets out.", |e| {
            e.stats.outpkts
        }),
        ("ipvs_service_incoming_bytes_total", "Bytes in.", |e| {
            e.stats.inbytes
        }),
        ("ipvs_service_outgoing_bytes_total", "Bytes out.", |e| {
            e.stats.outbytes
        }),
    ];
    for (name, help, get) in counters {
        family(
            &mut out,
            name,
            "counter",
            help,
            kernel.iter().map(|e| {
                (
                    format!("virtual=\"{}\"", svc_label(&e.service.key)),
                    get(e).to_string(),
                )
            }),
        );
    }
    let dests = || {
        kernel.iter().flat_map(|e| {
            e.destinations.iter().map(move |d| {
                let labels = format!(
                    "virtual=\"{}\",real=\"{}\"",
                    svc_label(&e.service.key),
                    real_label(d.dest.addr, d.dest.port)
                );
                (labels, d)
            })
        })
    };
    family(
        &mut out,
        "ipvs_real_active_connections",
        "gauge",
        "Active connections per real.",
        dests().map(|(l, d)| (l, d.conns.active.to_string())),
    );
    family(
        &mut out,
        "ipvs_real_weight",
        "gauge",
        "Weight of the real in the kernel.",
        dests().map(|(l, d)| (l, d.dest.weight.to_string())),
    );
    out
}

/// Serves `GET /metrics` until `stop`; `snapshot` renders the body.
pub async fn serve<F>(listener: TcpListener, stop: CancellationToken, snapshot: Arc<F>)
where
    F: Fn() -> String + Send + Sync + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        let snapshot = snapshot.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let snapshot = snapshot.clone();
                async move {
                    let resp = if req.uri().path() == "/metrics" {
                        Response::builder()
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(Full::new(Bytes::from(snapshot())))
                    } else {
                        Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::from_static(b"see /metrics\n")))
                    };
                    resp
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Parses a metrics listen value; a bare port means loopback.
pub fn listen_addr(value: &str) -> Option<SocketAddr> {
    if let Ok(port) = value.parse::<u16>() {
        return Some(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::status::{DaemonState, RealStatus, VirtualStatus};
    use crate::ipvs::Protocol;

    #[test]
    fn renders_families_with_headers_first() {
        let key = ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        let report = StatusReport {
            state: DaemonState::Running,
            pid: 1,
            config: "x".into(),
            reload_errors: vec![],
            virtuals: vec![VirtualStatus {
                key,
                fallback_active: false,
                reals: vec![RealStatus {
                    addr: "10.1.0.2".parse().unwrap(),
                    port: 80,
                    up: false,
                    reason: "HTTP 503".into(),
                    check: "negotiate:http".into(),
                    last_check: Some(1.0),
                    latency_ms: Some(12.0),
                    weight: 3,
                    checks_total: 7,
                    failures_total: 2,
                }],
            }],
        };
        let text = render(&report, &[]);
        assert!(text
            .contains("ldirector_real_up{virtual=\"TCP 10.0.0.1:80\",real=\"10.1.0.2:80\"} 0\n"));
        assert!(text.contains("ldirector_check_latency_seconds{virtual=\"TCP 10.0.0.1:80\",real=\"10.1.0.2:80\"} 0.012\n"));
        assert!(text.contains(
            "ldirector_check_failures_total{virtual=\"TCP 10.0.0.1:80\",real=\"10.1.0.2:80\"} 2\n"
        ));
        // Every sample's family was declared before it.
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split('{').next().unwrap();
                assert!(declared.contains(name), "{name} before its TYPE");
            }
        }
        assert_eq!(listen_addr("9469"), Some("127.0.0.1:9469".parse().unwrap()));
        assert_eq!(
            listen_addr("[::1]:9000"),
            Some("[::1]:9000".parse().unwrap())
        );
    }
}
