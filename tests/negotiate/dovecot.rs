// SPDX-License-Identifier: GPL-2.0-or-later
//! dovecot (dovecot-imapd, dovecot-pop3d) as an IMAP, IMAPS, POP3 and
//! POP3S server, run in the foreground (`dovecot -F -c <conf>`) with a
//! passwd-file holding one user and a self-signed certificate.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use super::{chown_tree, free_port_both, self_signed_cert, v6, Daemon, TempDir};

pub const BINARY: &str = "/usr/sbin/dovecot";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "pw4alice";

pub struct Dovecot {
    pub daemon: Daemon,
    pub imap: u16,
    pub imaps: u16,
    pub pop3: u16,
    pub pop3s: u16,
    pub ip: IpAddr,
}

impl Dovecot {
    /// The listener `port` on the IPv4 address and on ::1.
    pub fn addrs(&self, port: u16) -> [SocketAddr; 2] {
        [SocketAddr::new(self.ip, port), SocketAddr::new(v6(), port)]
    }

    /// dovecot's own log (its stdout says little).
    pub fn output(&self) -> String {
        let mut text = self.daemon.output();
        text.push_str(
            &std::fs::read_to_string(self.daemon.dir.join("dovecot.log")).unwrap_or_default(),
        );
        text
    }
}

pub fn start(ip: IpAddr) -> Dovecot {
    let dir = TempDir::new("dovecot");
    let (cert, key) = self_signed_cert(dir.path(), "mail.ldirector.test", ip);
    let users = dir.join("users");
    std::fs::write(&users, format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n")).expect("write users");
    // Mailboxes are opened as nobody after login.
    let mail = dir.join("mail");
    std::fs::create_dir(&mail).expect("mkdir mail");
    chown_tree(&mail, "nobody");

    let [imap, imaps, pop3, pop3s] = [(); 4].map(|()| free_port_both(ip));
    let d = dir.path().display();
    let mut conf = String::new();
    writeln!(conf, "base_dir = {d}/run").unwrap();
    writeln!(conf, "state_dir = {d}/state").unwrap();
    writeln!(conf, "log_path = {d}/dovecot.log").unwrap();
    writeln!(conf, "protocols = imap pop3").unwrap();
    writeln!(conf, "listen = {ip}, ::1").unwrap();
    writeln!(conf, "ssl = yes").unwrap();
    writeln!(conf, "ssl_cert = <{}", cert.display()).unwrap();
    writeln!(conf, "ssl_key = <{}", key.display()).unwrap();
    // Loopback counts as secure for dovecot anyway; say it for ::1 too.
    writeln!(conf, "disable_plaintext_auth = no").unwrap();
    writeln!(conf, "auth_mechanisms = plain").unwrap();
    // No 2 s penalty after a failed login: the tests fail logins on
    // purpose, concurrently, on two shared cores.
    writeln!(conf, "auth_failure_delay = 0").unwrap();
    // Nor dovecot's growing per-IP penalty after failures (2, 4, 8 s...),
    // which delays every login from that IP: all test logins come from
    // loopback. Closing anvil's penalty socket is the documented switch.
    writeln!(
        conf,
        "service anvil {{\n  unix_listener anvil-auth-penalty {{\n    mode = 0\n  }}\n}}"
    )
    .unwrap();
    writeln!(
        conf,
        "passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {}\n}}",
        users.display()
    )
    .unwrap();
    writeln!(
        conf,
        "userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={d}/mail/%u\n}}"
    )
    .unwrap();
    writeln!(conf, "mail_location = maildir:{d}/mail/%u").unwrap();
    writeln!(
        conf,
        "service imap-login {{\n  service_count = 0\n  process_min_avail = 1\n  inet_listener imap {{\n    port = {imap}\n  }}\n  \
         inet_listener imaps {{\n    port = {imaps}\n    ssl = yes\n  }}\n}}"
    )
    .unwrap();
    writeln!(
        conf,
        "service pop3-login {{\n  service_count = 0\n  process_min_avail = 1\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  \
         inet_listener pop3s {{\n    port = {pop3s}\n    ssl = yes\n  }}\n}}"
    )
    .unwrap();
    let conf_path = dir.join("dovecot.conf");
    std::fs::write(&conf_path, conf).expect("write dovecot.conf");

    let mut command = Command::new(BINARY);
    command.arg("-F").arg("-c").arg(&conf_path);
    let mut daemon = Daemon::spawn("dovecot", command, dir);
    for port in [imap, imaps, pop3, pop3s] {
        daemon.wait_tcp(SocketAddr::new(ip, port));
        daemon.wait_tcp(SocketAddr::new(v6(), port));
    }
    Dovecot {
        daemon,
        imap,
        imaps,
        pop3,
        pop3s,
        ip,
    }
}
