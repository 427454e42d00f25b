// SPDX-License-Identifier: GPL-2.0-or-later
//! http, https and http_proxy checks against a real nginx (Debian package
//! nginx-light): a plain site, a virtual host, a 503, redirects, TLS with a
//! generated CA, an expired certificate, and nginx as a forward proxy.
//!
//! simpletcp runs against the same nginx: it sends `request` as raw bytes
//! and matches `receive` line by line, which is how operators use it to
//! check a plain-text protocol.
//!
//! Addresses: 127.0.3.10-39, one per test.

#[path = "support_checks/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use ldirector::check::{build_checker, CheckKind, CheckSpec, HttpMethod, Service, TlsVerify};
use support::{ip, start_nginx, target, CERT_NAME};

const TIMEOUT: Duration = Duration::from_secs(5);

fn http(addr: std::net::SocketAddr) -> CheckSpec {
    CheckSpec::new(CheckKind::Negotiate(Service::Http), addr).timeouts(TIMEOUT, TIMEOUT)
}

fn https(addr: std::net::SocketAddr) -> CheckSpec {
    CheckSpec::new(CheckKind::Negotiate(Service::Https), addr).timeouts(TIMEOUT, TIMEOUT)
}

async fn reason(spec: CheckSpec) -> Result<(), String> {
    build_checker(&spec)
        .check(&spec.target)
        .await
        .map_err(|err| err.to_string())
}

#[tokio::test]
async fn http_up_when_body_matches_receive() {
    let nginx = start_nginx(ip(10));
    assert_eq!(
        reason(http(nginx.http).receive("al+ive")).await,
        Ok(()),
        "{}",
        nginx.daemon.log()
    );
    // An empty receive only needs a 2xx.
    assert_eq!(reason(http(nginx.http)).await, Ok(()));
}

#[tokio::test]
async fn http_down_when_body_does_not_match() {
    let nginx = start_nginx(ip(11));
    assert_eq!(
        reason(http(nginx.http).receive("dead")).await,
        Err("receive /dead/ not found in body".into())
    );
}

#[tokio::test]
async fn http_status_codes_are_reasons() {
    let nginx = start_nginx(ip(12));
    assert_eq!(
        reason(http(nginx.http).request("down")).await,
        Err("HTTP 503".into())
    );
    assert_eq!(
        reason(http(nginx.http).request("/notfound")).await,
        Err("HTTP 404".into())
    );
}

#[tokio::test]
async fn http_follows_redirects_but_not_forever() {
    let nginx = start_nginx(ip(13));
    assert_eq!(
        reason(http(nginx.http).request("/redir").receive("alive")).await,
        Ok(())
    );
    assert_eq!(
        reason(http(nginx.http).request("/loop")).await,
        Err("too many redirects (more than 7)".into())
    );
}

#[tokio::test]
async fn http_virtualhost_is_the_host_header() {
    let nginx = start_nginx(ip(14));
    assert_eq!(
        reason(
            http(nginx.http)
                .virtualhost(CERT_NAME)
                .request("/page")
                .receive("vhost page /page")
        )
        .await,
        Ok(())
    );
    // Without it the Host is the real's IP: the default server answers.
    assert_eq!(
        reason(http(nginx.http).receive("vhost page")).await,
        Err("receive /vhost page/ not found in body".into())
    );
}

#[tokio::test]
async fn http_receive_starting_with_http_matches_the_status_line() {
    let nginx = start_nginx(ip(15));
    assert_eq!(
        reason(http(nginx.http).receive("HTTP/1.1 200 OK")).await,
        Ok(())
    );
    assert_eq!(
        reason(http(nginx.http).receive("HTTP/1.1 204")).await,
        Err("receive /HTTP/1.1 204/ not found in status line".into())
    );
}

#[tokio::test]
async fn http_head_and_ipv6() {
    let nginx = start_nginx(ip(16));
    assert_eq!(
        reason(http(nginx.http).http_method(HttpMethod::Head)).await,
        Ok(())
    );
    assert_eq!(
        reason(
            http(nginx.http)
                .http_method(HttpMethod::Head)
                .request("/down")
        )
        .await,
        Err("HTTP 503".into())
    );
    assert_eq!(
        reason(http(nginx.http6).receive("alive")).await,
        Ok(()),
        "{}",
        nginx.daemon.log()
    );
}

#[tokio::test]
async fn http_down_when_nothing_listens() {
    let nginx = start_nginx(ip(17));
    let addr = nginx.http;
    drop(nginx);
    assert_eq!(reason(http(addr)).await, Err("connection refused".into()));
}

#[tokio::test]
async fn https_without_verification_accepts_any_certificate() {
    let nginx = start_nginx(ip(18));
    assert_eq!(
        reason(https(nginx.https).receive("secure")).await,
        Ok(()),
        "{}",
        nginx.daemon.log()
    );
    // ldirectord never verified: an expired certificate is still up.
    assert_eq!(
        reason(https(nginx.https_expired).receive("expired")).await,
        Ok(())
    );
}

#[tokio::test]
async fn https_verification_with_the_right_ca_and_name() {
    let nginx = start_nginx(ip(19));
    let ca = TlsVerify::CaFile(nginx.certs.ca.clone());
    assert_eq!(
        reason(
            https(nginx.https)
                .virtualhost(CERT_NAME)
                .tls_verify(ca.clone())
                .receive("secure")
        )
        .await,
        Ok(())
    );
    assert_eq!(
        reason(
            https(nginx.https_expired)
                .virtualhost(CERT_NAME)
                .tls_verify(ca.clone())
        )
        .await,
        Err("TLS: certificate expired".into())
    );
    let wrong_name = reason(
        https(nginx.https)
            .virtualhost("other.example.test")
            .tls_verify(ca.clone()),
    )
    .await
    .unwrap_err();
    assert!(
        wrong_name.starts_with("TLS: certificate not valid for name other.example.test"),
        "{wrong_name}"
    );
}

#[tokio::test]
async fn https_sslverify_uses_the_system_roots() {
    let nginx = start_nginx(ip(20));
    // `sslverify=yes`: our test CA is not in the system store.
    assert_eq!(
        reason(
            https(nginx.https)
                .virtualhost(CERT_NAME)
                .tls_verify(TlsVerify::System)
        )
        .await,
        Err("TLS: certificate signed by unknown authority".into())
    );
}

#[tokio::test]
async fn https_against_plain_http_is_a_tls_reason() {
    let nginx = start_nginx(ip(21));
    let started = Instant::now();
    assert_eq!(
        reason(https(nginx.http)).await,
        Err("TLS: the server does not speak TLS on this port".into())
    );
    assert!(started.elapsed() < TIMEOUT);
}

#[tokio::test]
async fn http_proxy_fetches_the_absolute_url_through_the_real() {
    let nginx = start_nginx(ip(22));
    let spec = CheckSpec::new(CheckKind::Negotiate(Service::HttpProxy), nginx.http)
        .timeouts(TIMEOUT, TIMEOUT)
        .request(format!("http://{CERT_NAME}/through-proxy"))
        .receive("vhost page /through-proxy");
    assert_eq!(reason(spec).await, Ok(()), "{}", nginx.daemon.log());
}

#[tokio::test]
async fn many_checks_of_one_nginx_run_concurrently() {
    let nginx = start_nginx(ip(23));
    let spec = http(nginx.http).receive("alive");
    let checker = build_checker(&spec);
    let target = target(nginx.http);
    let results = futures::future::join_all((0..200).map(|_| checker.check(&target))).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
}

#[tokio::test]
async fn simpletcp_against_nginx_matches_lines_of_the_answer() {
    let nginx = start_nginx(ip(24));
    let simpletcp = |addr| {
        CheckSpec::new(CheckKind::Negotiate(Service::SimpleTcp), addr)
            .timeouts(TIMEOUT, TIMEOUT)
            // As written in ldirectord.cf: the leading `/` is dropped and
            // a literal \n becomes a newline.
            .request("/GET / HTTP/1.0\\n\\n")
    };
    // Up: the status line and the body are lines of the answer.
    assert_eq!(
        reason(simpletcp(nginx.http).receive("^HTTP/1.1 200")).await,
        Ok(()),
        "{}",
        nginx.daemon.log()
    );
    assert_eq!(
        reason(simpletcp(nginx.http6).receive("^alive$")).await,
        Ok(())
    );
    // Receive not matching any line.
    assert_eq!(
        reason(simpletcp(nginx.http).receive("^HTTP/1.1 503")).await,
        Err("receive /^HTTP/1.1 503/ not found in any line".into())
    );
    // Down: nothing listens.
    let closed = std::net::SocketAddr::new(ip(25), support::free_port(ip(25)));
    assert_eq!(
        reason(simpletcp(closed).receive("^HTTP")).await,
        Err("connection refused".into())
    );
}
