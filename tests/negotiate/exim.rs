// SPDX-License-Identifier: GPL-2.0-or-later
//! exim4 (Debian's exim4-daemon-light) as an SMTP and submission server.
//!
//! Run as `exim4 -bdf -C <conf>`: a config given with -C is not in
//! Debian's trusted list, so exim drops root for its own user
//! (Debian-exim) before listening; the spool and log dirs are handed to
//! that user. No queue runner, no deliveries: the checks never send mail.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use super::{chown_to, free_port_both, v6, Daemon, TempDir};

pub const BINARY: &str = "/usr/sbin/exim4";
pub const USER: &str = "Debian-exim";

/// What the server does with the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Deny in the given ACL (`connect` gives a 550 banner, `helo` a 550
    /// reply to EHLO and HELO).
    Deny,
}

pub struct Exim {
    pub daemon: Daemon,
    /// One listener per requested port on the IPv4 address...
    pub addrs: Vec<SocketAddr>,
    /// ...and the same ports on ::1.
    pub addrs6: Vec<SocketAddr>,
}

impl Exim {
    /// exim's stdout plus its main and panic logs.
    pub fn output(&self) -> String {
        let mut text = self.daemon.output();
        for log in ["mainlog", "paniclog", "rejectlog"] {
            let path = self.daemon.dir.join("log").join(log);
            if let Ok(content) = std::fs::read_to_string(&path) {
                text.push_str(&format!("--- {log}\n{content}"));
            }
        }
        text
    }
}

/// Starts exim with `listeners` free ports, each on `ip` and on ::1.
pub fn start(ip: IpAddr, listeners: usize, on_connect: Verdict, on_helo: Verdict) -> Exim {
    let ports: Vec<u16> = (0..listeners).map(|_| free_port_both(ip)).collect();
    let dir = TempDir::new("exim");
    let spool = dir.join("spool");
    let log = dir.join("log");
    std::fs::create_dir(&spool).expect("mkdir spool");
    std::fs::create_dir(&log).expect("mkdir log");
    chown_to(&spool, USER);
    chown_to(&log, USER);

    // Exim writes IPv6 addresses with colons, so lists use ';' as separator
    // and '.' between address and port.
    let listeners: Vec<String> = ports
        .iter()
        .flat_map(|port| [format!("{ip}.{port}"), format!("::1.{port}")])
        .collect();
    let acl = |verdict: Verdict, message: &str| match verdict {
        Verdict::Accept => "  accept\n".to_owned(),
        Verdict::Deny => format!("  deny message = {message}\n"),
    };
    let mut conf = String::new();
    writeln!(conf, "primary_hostname = mx.ldirector.test").unwrap();
    writeln!(conf, "spool_directory = {}", spool.display()).unwrap();
    writeln!(conf, "log_file_path = {}/%slog", log.display()).unwrap();
    writeln!(conf, "pid_file_path = {}", dir.join("exim.pid").display()).unwrap();
    writeln!(conf, "local_interfaces = <; {}", listeners.join(" ; ")).unwrap();
    writeln!(conf, "keep_environment =").unwrap();
    writeln!(conf, "tls_advertise_hosts =").unwrap();
    writeln!(conf, "acl_smtp_connect = acl_connect").unwrap();
    writeln!(conf, "acl_smtp_helo = acl_helo").unwrap();
    writeln!(conf, "begin acl").unwrap();
    writeln!(conf, "acl_connect:").unwrap();
    conf.push_str(&acl(on_connect, "no service for you"));
    writeln!(conf, "acl_helo:").unwrap();
    conf.push_str(&acl(on_helo, "we do not talk to strangers"));
    let conf_path = dir.join("exim.conf");
    std::fs::write(&conf_path, conf).expect("write exim.conf");

    let mut command = Command::new(BINARY);
    command.arg("-bdf").arg("-C").arg(&conf_path);
    let mut daemon = Daemon::spawn("exim", command, dir);
    let addrs: Vec<SocketAddr> = ports
        .iter()
        .map(|port| SocketAddr::new(ip, *port))
        .collect();
    let addrs6: Vec<SocketAddr> = ports
        .iter()
        .map(|port| SocketAddr::new(v6(), *port))
        .collect();
    for addr in addrs.iter().chain(&addrs6) {
        daemon.wait_tcp(*addr);
    }
    Exim {
        daemon,
        addrs,
        addrs6,
    }
}
