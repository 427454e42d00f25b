// SPDX-License-Identifier: GPL-2.0-or-later
//! dns checks against a real dnsmasq (Debian package dnsmasq-base), over
//! UDP and TCP: A, AAAA and PTR answers, receive matching and not matching,
//! NXDOMAIN, and a server that is gone.
//!
//! Addresses: 127.0.3.40-59, one per test.

#[path = "support_checks/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ldirector::check::{build_checker, CheckKind, CheckSpec, Protocol, Service};
use support::{ip, start_dnsmasq};

const TIMEOUT: Duration = Duration::from_secs(3);

fn dns(addr: SocketAddr, protocol: Protocol) -> CheckSpec {
    CheckSpec::new(CheckKind::Negotiate(Service::Dns), addr)
        .protocol(protocol)
        .timeouts(TIMEOUT, TIMEOUT)
}

async fn reason(spec: CheckSpec) -> Result<(), String> {
    build_checker(&spec)
        .check(&spec.target)
        .await
        .map_err(|err| err.to_string())
}

#[tokio::test]
async fn a_record_over_udp_and_tcp() {
    let server = start_dnsmasq(ip(40));
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        assert_eq!(
            reason(
                dns(server.addr, protocol)
                    .request("www.example.test")
                    .receive("^10\\.1\\.2\\.3$")
            )
            .await,
            Ok(()),
            "{protocol:?}: {}",
            server.daemon.log()
        );
    }
}

#[tokio::test]
async fn aaaa_answers_count_too() {
    let server = start_dnsmasq(ip(41));
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        assert_eq!(
            reason(
                dns(server.addr, protocol)
                    .request("v6only.example.test")
                    .receive("2001:db8::6")
            )
            .await,
            Ok(()),
            "{protocol:?}"
        );
    }
}

#[tokio::test]
async fn ptr_when_the_request_is_an_address() {
    let server = start_dnsmasq(ip(42));
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        assert_eq!(
            reason(
                dns(server.addr, protocol)
                    .request("10.1.2.3")
                    .receive("^www\\.example\\.test$")
            )
            .await,
            Ok(()),
            "{protocol:?}"
        );
        assert_eq!(
            reason(
                dns(server.addr, protocol)
                    .request("2001:db8::3")
                    .receive("www.example")
            )
            .await,
            Ok(()),
            "{protocol:?}"
        );
    }
}

#[tokio::test]
async fn receive_not_matching_lists_what_came_back() {
    let server = start_dnsmasq(ip(43));
    assert_eq!(
        reason(
            dns(server.addr, Protocol::Udp)
                .request("www.example.test")
                .receive("^192\\.")
        )
        .await,
        Err("receive /^192\\./ not found in answer (10.1.2.3, 2001:db8::3)".into())
    );
}

#[tokio::test]
async fn unknown_name_is_nxdomain() {
    let server = start_dnsmasq(ip(44));
    assert_eq!(
        reason(
            dns(server.addr, Protocol::Tcp)
                .request("nope.example.test")
                .receive(".")
        )
        .await,
        Err("DNS A NXDOMAIN, AAAA NXDOMAIN for nope.example.test".into())
    );
}

#[tokio::test]
async fn empty_receive_is_down_as_in_ldirectord() {
    let server = start_dnsmasq(ip(45));
    let err = reason(dns(server.addr, Protocol::Udp).request("www.example.test"))
        .await
        .unwrap_err();
    assert!(err.starts_with("receive is empty"), "{err}");
}

#[tokio::test]
async fn server_gone_is_down_within_the_timeout() {
    let server = start_dnsmasq(ip(46));
    let addr = server.addr;
    drop(server);
    assert_eq!(
        reason(
            dns(addr, Protocol::Tcp)
                .request("www.example.test")
                .receive(".")
        )
        .await,
        Err("connection refused".into())
    );
    // Over UDP a closed port answers with ICMP port unreachable, which
    // the connected socket reports as refused.
    let started = Instant::now();
    assert_eq!(
        reason(
            dns(addr, Protocol::Udp)
                .request("www.example.test")
                .receive(".")
        )
        .await,
        Err("connection refused".into())
    );
    assert!(started.elapsed() < TIMEOUT);
}
