// SPDX-License-Identifier: GPL-2.0-or-later
//! Servers that misbehave in ways real servers do not on demand: accept
//! and hang, trickle one byte at a time, answer garbage, reset mid-answer,
//! stall a TLS handshake, never answer DNS. Each must be marked down with
//! a reason within its timeout, and none may delay another check.
//!
//! Addresses: 127.0.3.60-89, one per test.

#[path = "support_checks/mod.rs"]
mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldirector::check::from_config::{CheckPlan, Member, PlannedCheck, SpecId};
use ldirector::check::scheduler::Scheduler;
use ldirector::check::{build_checker, CheckKind, CheckSpec, Protocol, Service};
use support::ip;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const TIMEOUT: Duration = Duration::from_secs(1);
/// What a check may take beyond its timeout (scheduling, teardown). Wide,
/// because the test machine may be busy; an unbounded check would take
/// the server's hour, so the bound still tells.
const SLACK: Duration = Duration::from_millis(1500);

/// Starts a TCP server on `ip` whose every connection is handled by
/// `behave`; the server lives as long as the test's runtime.
async fn misbehaving<F, Fut>(ip: IpAddr, behave: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind((ip, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let behave = Arc::new(behave);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(behave(stream));
        }
    });
    addr
}

async fn hang(mut stream: TcpStream) {
    // Read whatever comes and never answer; keep the socket open.
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

async fn trickle(mut stream: TcpStream, bytes: &'static [u8]) {
    for byte in bytes.iter().cycle() {
        if stream.write_all(&[*byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spec(service: Service, addr: SocketAddr) -> CheckSpec {
    CheckSpec::new(CheckKind::Negotiate(service), addr).timeouts(TIMEOUT, TIMEOUT)
}

/// Runs the check and asserts it is down with `expected` (a prefix of the
/// reason) within the timeout.
async fn assert_down(spec: CheckSpec, expected: &str) {
    let checker = build_checker(&spec);
    let started = Instant::now();
    let result = checker.check(&spec.target).await;
    let elapsed = started.elapsed();
    let reason = result
        .expect_err("a misbehaving server must be down")
        .to_string();
    assert!(
        reason.starts_with(expected),
        "reason {reason:?} does not start with {expected:?}"
    );
    assert!(
        elapsed <= TIMEOUT + SLACK,
        "took {elapsed:?}, timeout is {TIMEOUT:?}"
    );
}

#[tokio::test]
async fn accept_and_hang_times_out() {
    let addr = misbehaving(ip(60), hang).await;
    for service in [Service::Http, Service::Https, Service::SimpleTcp] {
        assert_down(spec(service, addr), "timeout after 1.0s").await;
    }
    let dns_tcp = spec(Service::Dns, addr)
        .protocol(Protocol::Tcp)
        .request("www.example.test")
        .receive(".");
    assert_down(dns_tcp, "timeout after 1.0s").await;
}

#[tokio::test]
async fn trickling_one_byte_at_a_time_times_out() {
    let addr = misbehaving(ip(61), |s| trickle(s, b"HTTP/1.1 200 OK\r\nX-Slow: y")).await;
    assert_down(spec(Service::Http, addr), "timeout after 1.0s").await;
    // A server that never sends a newline never yields a line to match.
    let addr = misbehaving(ip(61), |s| trickle(s, b"aaaa")).await;
    assert_down(
        spec(Service::SimpleTcp, addr).receive("OK"),
        "timeout after 1.0s",
    )
    .await;
}

#[tokio::test]
async fn slow_loris_tls_handshake_times_out() {
    // The first bytes of a ServerHello record header, forever.
    let addr = misbehaving(ip(62), |s| trickle(s, &[0x16, 0x03, 0x03, 0x00])).await;
    assert_down(spec(Service::Https, addr), "timeout after 1.0s").await;
}

#[tokio::test]
async fn garbage_is_an_invalid_response() {
    let addr = misbehaving(ip(63), |mut stream: TcpStream| async move {
        let _ = stream.write_all(b"\x00\xffgarbage\r\n\r\n").await;
    })
    .await;
    assert_down(spec(Service::Http, addr), "invalid HTTP response").await;
    assert_down(spec(Service::Https, addr), "TLS: ").await;
}

#[tokio::test]
async fn reset_mid_response_is_down() {
    let addr = misbehaving(ip(64), |mut stream: TcpStream| async move {
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        // SO_LINGER 0: close sends RST instead of FIN.
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        drop(stream);
    })
    .await;
    let checker = build_checker(&spec(Service::Http, addr).receive("partial"));
    let reason = checker
        .check(&support::target(addr))
        .await
        .expect_err("a reset answer is down")
        .to_string();
    assert!(
        reason == "connection reset by peer"
            || reason == "connection closed before the HTTP response was complete",
        "{reason}"
    );
}

#[tokio::test]
async fn dns_that_never_answers_or_answers_garbage() {
    let silent = UdpSocket::bind((ip(65), 0)).await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let dns = |addr| {
        spec(Service::Dns, addr)
            .protocol(Protocol::Udp)
            .request("www.example.test")
            .receive(".")
    };
    assert_down(dns(silent_addr), "timeout after 1.0s").await;

    let garbage = UdpSocket::bind((ip(65), 0)).await.expect("bind");
    let garbage_addr = garbage.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((len, from)) = garbage.recv_from(&mut buf).await {
            // Our id, the response bit, then nonsense counts and no records.
            let mut answer = buf[..2.min(len)].to_vec();
            answer.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 9, 0, 0, 0, 0, 0xff]);
            let _ = garbage.send_to(&answer, from).await;
        }
    });
    assert_down(dns(garbage_addr), "DNS answer truncated or malformed").await;
    drop(silent);
}

/// A check against `addr` as the scheduler gets it.
fn planned(id: u64, spec: CheckSpec) -> PlannedCheck {
    PlannedCheck {
        id: SpecId(id),
        members: vec![Member {
            virtual_index: 0,
            real_index: 0,
            real: spec.target.addr,
            failurecount: 1,
        }],
        spec: Arc::new(spec),
        interval: Duration::from_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_reals_never_delay_a_healthy_one() {
    let hung = misbehaving(ip(66), hang).await;
    let healthy = TcpListener::bind((ip(67), 0)).await.expect("bind");
    let healthy_addr = healthy.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = healthy.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nalive")
                    .await;
            });
        }
    });
    // 200 checks of the hung real (all start within the first 60 ms of
    // their interval, by id), one of the healthy real.
    let mut checks: Vec<PlannedCheck> = (0..200u64)
        .map(|n| {
            planned(
                n * 60_000 + n % 60,
                spec(Service::Http, hung).request(format!("/{n}")),
            )
        })
        .collect();
    let healthy_id = 10_000_000 * 60_000 + 30;
    checks.push(planned(
        healthy_id,
        spec(Service::Http, healthy_addr).receive("alive"),
    ));
    let (mut scheduler, mut results) = Scheduler::new();
    let started = Instant::now();
    scheduler.apply(&CheckPlan { checks });

    let first = tokio::time::timeout(TIMEOUT, results.recv())
        .await
        .expect("the healthy real answers long before the hung ones time out")
        .expect("a result");
    assert_eq!(first.id, SpecId(healthy_id));
    assert!(first.is_up(), "{:?}", first.outcome);
    assert!(first.latency < TIMEOUT / 2, "{:?}", first.latency);

    let mut downs = 0;
    while downs < 200 {
        let result = tokio::time::timeout(TIMEOUT + SLACK, results.recv())
            .await
            .expect("every hung check ends at its timeout")
            .expect("a result");
        assert_eq!(
            result.outcome.as_ref().map_err(|e| e.to_string()),
            Err("timeout after 1.0s".to_string())
        );
        downs += 1;
    }
    // 200 hung checks cost about one timeout of wall time, not 200.
    assert!(started.elapsed() < TIMEOUT * 3, "{:?}", started.elapsed());
    scheduler.shutdown().await;
}
