// SPDX-License-Identifier: GPL-2.0-or-later
//! The negotiate checkers against the real servers operators run, each
//! started by the test from its Debian package with its own configuration
//! in a temp dir, on 127.0.2.x and ::1, and killed by PID at the end:
//! exim4 (smtp, submission), dovecot (imap, imaps, pop, pops), vsftpd
//! (ftp), INN's nnrpd (nntp), kamailio (sip over UDP and TCP), slapd
//! (ldap, ldaps), mariadb (mysql), postgresql (pgsql), freeradius
//! (radius).
//!
//! One test per server: the server starts once and every case (up and
//! down, IPv4 and IPv6) runs concurrently against it through
//! `build_checker`, as the daemon builds checkers from the config. A
//! failing test lists every case that went wrong, with the server's log.
//!
//! Addresses: 127.0.2.10-119, one per server instance.

#[path = "negotiate/mod.rs"]
mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ldirector::check::{build_checker, Protocol, Service, TlsVerify};
use support::{exim, spec, Case};

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 2, last])
}

#[tokio::test]
async fn smtp_and_submission_against_exim() {
    let up = exim::start(ip(10), 2, exim::Verdict::Accept, exim::Verdict::Accept);
    let banner_denied = exim::start(ip(11), 1, exim::Verdict::Deny, exim::Verdict::Accept);
    let helo_denied = exim::start(ip(12), 1, exim::Verdict::Accept, exim::Verdict::Deny);
    let nothing = SocketAddr::new(ip(13), support::free_tcp_port(ip(13)));

    let mut cases = Vec::new();
    for (smtp, submission) in [(up.addrs[0], up.addrs[1]), (up.addrs6[0], up.addrs6[1])] {
        cases.push(Case::up("smtp", spec(Service::Smtp, smtp)));
        cases.push(Case::up(
            "submission",
            spec(Service::Submission, submission),
        ));
    }
    for addr in [banner_denied.addrs[0], banner_denied.addrs6[0]] {
        cases.push(Case::down(
            "smtp, banner 550",
            spec(Service::Smtp, addr),
            "SMTP banner 550 no service for you",
        ));
    }
    for addr in [helo_denied.addrs[0], helo_denied.addrs6[0]] {
        cases.push(Case::down(
            "submission, EHLO and HELO 550",
            spec(Service::Submission, addr),
            "SMTP EHLO rejected: 550 we do not talk to strangers; \
             HELO rejected: 550 we do not talk to strangers",
        ));
    }
    cases.push(Case::down(
        "smtp, nothing listening",
        spec(Service::Smtp, nothing),
        "connection refused",
    ));
    support::run_cases(cases, || {
        [&up, &banner_denied, &helo_denied]
            .iter()
            .map(|server| server.output())
            .collect::<Vec<_>>()
            .join("\n")
    })
    .await;
}

#[tokio::test]
async fn imap_imaps_pop_pops_against_dovecot() {
    use support::dovecot::{self, PASSWORD, USER};
    let server = dovecot::start(ip(20));
    let mut cases = Vec::new();
    for family in 0..2 {
        let imap = server.addrs(server.imap)[family];
        let imaps = server.addrs(server.imaps)[family];
        let pop = server.addrs(server.pop3)[family];
        let pops = server.addrs(server.pop3s)[family];
        // Without login, the greeting decides (ldirectord's rule).
        cases.push(Case::up("imap, greeting", spec(Service::Imap, imap)));
        cases.push(Case::up("pop, greeting", spec(Service::Pop, pop)));
        for (service, addr) in [
            (Service::Imap, imap),
            (Service::Imaps, imaps),
            (Service::Pop, pop),
            (Service::Pops, pops),
        ] {
            cases.push(Case::up(
                format!("{service}, login"),
                spec(service, addr).login(USER, PASSWORD),
            ));
        }
        for (service, addr, reason) in [
            (
                Service::Imap,
                imap,
                "IMAP login failed: L1 NO [AUTHENTICATIONFAILED] Authentication failed.",
            ),
            (
                Service::Imaps,
                imaps,
                "IMAP login failed: L1 NO [AUTHENTICATIONFAILED] Authentication failed.",
            ),
            (
                Service::Pop,
                pop,
                "POP3 login failed: -ERR [AUTH] Authentication failed.",
            ),
            (
                Service::Pops,
                pops,
                "POP3 login failed: -ERR [AUTH] Authentication failed.",
            ),
        ] {
            cases.push(Case::down(
                format!("{service}, wrong password"),
                spec(service, addr).login(USER, "wrong"),
                reason,
            ));
        }
        // TLS expected where the server speaks plain text.
        cases.push(Case::down_starting(
            "imaps on the plain imap port",
            spec(Service::Imaps, imap),
            "TLS: ",
        ));
    }
    // Certificate verification on: the generated certificate names the
    // virtualhost, so it passes with that CA and fails with the system's.
    let imaps = server.addrs(server.imaps)[0];
    let cert = server.daemon.dir.join("cert.pem");
    cases.push(Case::up(
        "imaps, verified against its CA",
        spec(Service::Imaps, imaps)
            .virtualhost("mail.ldirector.test")
            .tls_verify(TlsVerify::CaFile(cert)),
    ));
    cases.push(Case::down(
        "imaps, verified against the system CAs",
        spec(Service::Imaps, imaps)
            .virtualhost("mail.ldirector.test")
            .tls_verify(TlsVerify::System),
        "TLS: certificate signed by unknown authority",
    ));
    support::run_cases(cases, || server.output()).await;
}

#[tokio::test]
async fn ftp_against_vsftpd() {
    use support::vsftpd::{self, FILE};
    let server = vsftpd::start(ip(30));
    let mut cases = Vec::new();
    for addr in server.addrs {
        cases.push(Case::up(
            "ftp, file content matches",
            spec(Service::Ftp, addr)
                .request(FILE)
                .receive("health: all go+d"),
        ));
        cases.push(Case::up(
            "ftp, no request: login only",
            spec(Service::Ftp, addr),
        ));
        cases.push(Case::down(
            "ftp, content does not match",
            spec(Service::Ftp, addr).request(FILE).receive("all bad"),
            "receive /all bad/ not found in file",
        ));
        cases.push(Case::down(
            "ftp, no such file",
            spec(Service::Ftp, addr).request("missing.txt"),
            "FTP RETR /missing.txt: 550 Failed to open file.",
        ));
        cases.push(Case::down(
            "ftp, user refused",
            spec(Service::Ftp, addr)
                .request(FILE)
                .login("bob", "secret"),
            "FTP login failed: 530 This FTP server is anonymous only.",
        ));
    }
    support::run_cases(cases, || server.output()).await;
}

#[tokio::test]
async fn nntp_against_inn() {
    use support::nnrpd;
    let serving = nnrpd::start(ip(40), None);
    let refusing = nnrpd::start(ip(41), Some("down for maintenance"));
    let mut cases = Vec::new();
    for addr in serving.addrs {
        cases.push(Case::up("nntp", spec(Service::Nntp, addr)));
    }
    for addr in refusing.addrs {
        cases.push(Case::down(
            "nntp, server refusing readers",
            spec(Service::Nntp, addr),
            "NNTP greeting: 400 down for maintenance",
        ));
    }
    support::run_cases(cases, || {
        format!("{}\n{}", serving.daemon.output(), refusing.daemon.output())
    })
    .await;
}

#[tokio::test]
async fn sip_against_kamailio() {
    use support::kamailio;
    let server = kamailio::start(ip(50));
    let mut cases = Vec::new();
    for addr in server.addrs {
        for protocol in [Protocol::Udp, Protocol::Tcp] {
            cases.push(Case::up(
                format!("sip over {protocol:?}"),
                spec(Service::Sip, addr).protocol(protocol),
            ));
            cases.push(Case::down(
                format!("sip over {protocol:?}, 503"),
                spec(Service::Sip, addr)
                    .protocol(protocol)
                    .login("down@ldirector.test", ""),
                "SIP 503 Service Unavailable",
            ));
        }
    }
    support::run_cases(cases, || server.daemon.output()).await;
}

#[tokio::test]
async fn ldap_and_ldaps_against_slapd() {
    use support::slapd::{self, ADMIN_DN, ADMIN_PASSWORD, HEALTH_DN};
    let server = slapd::start(ip(60));
    let mut cases = Vec::new();
    for family in 0..2 {
        let (ldap, ldaps) = (server.ldap[family], server.ldaps[family]);
        for (service, addr) in [(Service::Ldap, ldap), (Service::Ldaps, ldaps)] {
            cases.push(Case::up(
                format!("{service}, anonymous, root DSE"),
                spec(service, addr),
            ));
            cases.push(Case::up(
                format!("{service}, bound, DN matches"),
                spec(service, addr)
                    .login(ADMIN_DN, ADMIN_PASSWORD)
                    .request(HEALTH_DN)
                    .receive("^ou=health,"),
            ));
            cases.push(Case::down(
                format!("{service}, wrong password"),
                spec(service, addr).login(ADMIN_DN, "wrong"),
                "LDAP bind failed: invalidCredentials",
            ));
        }
        cases.push(Case::down(
            "ldap, DN does not match",
            spec(Service::Ldap, ldap)
                .request(HEALTH_DN)
                .receive("^ou=other,"),
            format!("LDAP entry DN \"{HEALTH_DN}\" does not match /^ou=other,/"),
        ));
        cases.push(Case::down(
            "ldap, no such base",
            spec(Service::Ldap, ldap).request("ou=missing,dc=ldirector,dc=test"),
            "LDAP search of \"ou=missing,dc=ldirector,dc=test\" failed: noSuchObject",
        ));
    }
    support::run_cases(cases, || server.daemon.output()).await;
}

#[tokio::test]
async fn mysql_against_mariadb() {
    use support::mariadb::{self, DATABASE, PASSWORD, USER};
    let server = mariadb::start(ip(70));
    let mut cases = Vec::new();
    for addr in server.addrs {
        let sql = |query: &str| {
            spec(Service::Mysql, addr)
                .login(USER, PASSWORD)
                .database(DATABASE)
                .request(query)
        };
        cases.push(Case::up(
            "mysql, rows",
            sql("SELECT name FROM status WHERE up = 1"),
        ));
        cases.push(Case::down(
            "mysql, no rows",
            sql("SELECT name FROM status WHERE up = 2"),
            "MySQL: query returned 0 rows",
        ));
        cases.push(Case::down(
            "mysql, no such table",
            sql("SELECT * FROM nope"),
            "MySQL: Table 'health.nope' doesn't exist (error 1146)",
        ));
        cases.push(Case::down_starting(
            "mysql, wrong password",
            sql("SELECT 1").login(USER, "wrong"),
            "MySQL: Access denied for user 'check'@",
        ));
        cases.push(Case::down(
            "mysql, database not granted",
            sql("SELECT 1").database("mysql"),
            "MySQL: Access denied for user 'check'@'%' to database 'mysql' (error 1044)",
        ));
        cases.push(Case::down(
            "mysql, no login",
            spec(Service::Mysql, addr).request("SELECT 1"),
            "MySQL check needs login and request",
        ));
    }
    support::run_cases(cases, || server.output()).await;
}

#[tokio::test]
async fn pgsql_against_postgresql() {
    use support::postgres::{self, PASSWORD, USER};
    let server = postgres::start(ip(80));
    let mut cases = Vec::new();
    for addr in server.addrs {
        let sql = |query: &str| {
            spec(Service::Pgsql, addr)
                .login(USER, PASSWORD)
                .database("postgres")
                .request(query)
        };
        cases.push(Case::up("pgsql, rows", sql("SELECT 1")));
        cases.push(Case::down(
            "pgsql, no rows",
            sql("SELECT 1 WHERE false"),
            "PostgreSQL: query returned 0 rows",
        ));
        cases.push(Case::down(
            "pgsql, wrong password",
            sql("SELECT 1").login(USER, "wrong"),
            "PostgreSQL: password authentication failed for user \"check\" (SQLSTATE 28P01)",
        ));
        cases.push(Case::down(
            "pgsql, no such database",
            sql("SELECT 1").database("nope"),
            "PostgreSQL: database \"nope\" does not exist (SQLSTATE 3D000)",
        ));
        cases.push(Case::down(
            "pgsql, no such table",
            sql("SELECT * FROM nope"),
            "PostgreSQL: relation \"nope\" does not exist (SQLSTATE 42P01)",
        ));
    }
    support::run_cases(cases, || server.daemon.output()).await;
}

#[tokio::test]
async fn radius_against_freeradius() {
    use support::freeradius::{self, PASSWORD, SECRET, USER};
    let server = freeradius::start(ip(90));
    let mut cases = Vec::new();
    for addr in server.addrs {
        let radius = || spec(Service::Radius, addr).secret(SECRET);
        cases.push(Case::up(
            "radius, Access-Accept",
            radius().login(USER, PASSWORD),
        ));
        cases.push(Case::down(
            "radius, wrong password",
            radius().login(USER, "wrong"),
            "RADIUS Access-Reject",
        ));
        cases.push(Case::down(
            "radius, unknown user",
            radius().login("mallory", PASSWORD),
            "RADIUS Access-Reject",
        ));
        // A request signed with another secret is dropped by the server
        // (its Message-Authenticator does not verify): no answer at all.
        cases.push(Case::down(
            "radius, wrong secret",
            radius()
                .login(USER, PASSWORD)
                .secret("not-the-secret")
                .timeouts(Duration::from_secs(1), Duration::from_secs(1)),
            "timeout after 1.0s",
        ));
    }
    support::run_cases(cases, || server.daemon.output()).await;
}

/// ldirectord's oracle check needs Oracle's C client; there is no checker,
/// and a spec that asks for one says why instead of going silently down.
#[tokio::test]
async fn oracle_is_not_supported() {
    let spec = spec(Service::Oracle, SocketAddr::new(ip(100), 1521));
    let err = build_checker(&spec)
        .check(&spec.target)
        .await
        .expect_err("no oracle checker");
    assert!(
        err.to_string()
            .starts_with("service=oracle is not supported"),
        "{err}"
    );
}

/// A server that accepts and never says a word (in-process: no real
/// server hangs on demand): every TCP negotiate check ends at its timeout.
#[tokio::test]
async fn every_check_ends_at_its_timeout_when_the_server_hangs() {
    let listener = tokio::net::TcpListener::bind((ip(101), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    // A UDP socket that reads nothing: radius and sip over UDP wait.
    let udp = std::net::UdpSocket::bind((ip(101), 0)).unwrap();
    let udp_addr = udp.local_addr().unwrap();

    let limit = Duration::from_millis(500);
    let mut specs = Vec::new();
    for service in [
        Service::Smtp,
        Service::Submission,
        Service::Pop,
        Service::Pops,
        Service::Imap,
        Service::Imaps,
        Service::Ftp,
        Service::Nntp,
        Service::Sip,
        Service::Ldap,
        Service::Ldaps,
        Service::Mysql,
        Service::Pgsql,
    ] {
        specs.push(
            spec(service, addr)
                .login("user", "password")
                .request("SELECT 1")
                .timeouts(limit, limit),
        );
    }
    specs.push(
        spec(Service::Radius, udp_addr)
            .login("user", "password")
            .secret("s")
            .timeouts(limit, limit),
    );
    specs.push(
        spec(Service::Sip, udp_addr)
            .protocol(Protocol::Udp)
            .timeouts(limit, limit),
    );
    let started = Instant::now();
    let results = futures::future::join_all(
        specs
            .iter()
            .map(|spec| async move { build_checker(spec).check(&spec.target).await }),
    )
    .await;
    let elapsed = started.elapsed();
    hold.abort();
    for (spec, result) in specs.iter().zip(results) {
        assert_eq!(
            result.map_err(|err| err.to_string()),
            Err("timeout after 0.5s".to_owned()),
            "{}",
            spec.kind
        );
    }
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}
