// SPDX-License-Identifier: GPL-2.0-or-later
//! smtp, submission, pop, pops, imap and imaps checkers against the real
//! servers: exim4 for SMTP, dovecot for POP3 and IMAP (with TLS).
//!
//! Addresses: 127.0.2.10-39, one per test, so tests never share a port.

#[path = "support_mail/mod.rs"]
mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ldirector::check::smtp::SmtpChecker;
use ldirector::check::submission::SubmissionChecker;
use ldirector::check::{CheckError, CheckKind, CheckSpec, Checker, Service};
use support::exim::{self, Verdict};
use support::target;

const TIMEOUT: Duration = Duration::from_secs(5);

fn spec(service: Service) -> CheckSpec {
    CheckSpec::new(CheckKind::Negotiate(service), SocketAddr::new(ip(1), 25))
        .timeouts(TIMEOUT, TIMEOUT)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 2, last])
}

// ---- smtp / submission (exim4) ----

#[tokio::test]
async fn smtp_up_when_banner_and_ehlo_are_accepted() {
    let server = exim::start(ip(10), &[2525], Verdict::Accept, Verdict::Accept);
    let checker = SmtpChecker::with_timeout(TIMEOUT).helo_name("probe.ldirector.test");
    let result = checker.check(&target(server.addrs[0])).await;
    assert_eq!(result, Ok(()), "exim output:\n{}", server.daemon.output());
    assert_eq!(checker.name(), "smtp");
}

#[tokio::test]
async fn submission_up_on_the_submission_listener() {
    let server = exim::start(ip(11), &[2525, 2587], Verdict::Accept, Verdict::Accept);
    let checker = SubmissionChecker::new(&spec(Service::Submission));
    assert_eq!(checker.check(&target(server.addrs[1])).await, Ok(()));
    assert_eq!(checker.name(), "submission");
}

#[tokio::test]
async fn smtp_down_when_the_banner_is_a_rejection() {
    let server = exim::start(ip(12), &[2525], Verdict::Deny, Verdict::Accept);
    let checker = SmtpChecker::with_timeout(TIMEOUT);
    let err = checker.check(&target(server.addrs[0])).await.unwrap_err();
    assert_eq!(err.to_string(), "SMTP banner 550 no service for you");
}

#[tokio::test]
async fn smtp_down_when_ehlo_and_helo_are_rejected() {
    let server = exim::start(ip(13), &[2525], Verdict::Accept, Verdict::Deny);
    let checker = SubmissionChecker::new(&spec(Service::Submission));
    let err = checker.check(&target(server.addrs[0])).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "SMTP EHLO rejected: 550 we do not talk to strangers; HELO rejected: 550 we do not talk to strangers"
    );
}

#[tokio::test]
async fn smtp_down_when_nothing_listens() {
    let addr = SocketAddr::new(ip(14), support::free_tcp_port(ip(14)));
    let err = SmtpChecker::with_timeout(TIMEOUT)
        .check(&target(addr))
        .await
        .unwrap_err();
    assert_eq!(err, CheckError::Refused);
    assert_eq!(err.to_string(), "connection refused");
}

/// A server that accepts and never greets: the check ends at its timeout.
/// (In-process: no real server hangs on demand.)
#[tokio::test]
async fn smtp_down_at_the_timeout_when_the_server_never_greets() {
    let listener = tokio::net::TcpListener::bind((ip(15), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(socket);
    });
    let started = Instant::now();
    let err = SmtpChecker::with_timeout(Duration::from_millis(500))
        .check(&target(addr))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "timeout after 0.5s");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    hold.abort();
}
