// SPDX-License-Identifier: GPL-2.0-or-later
//! vsftpd serving one file to anonymous users, in the foreground
//! (`background=NO`). vsftpd listens on one address family per process, so
//! there are two: one on the IPv4 address, one on ::1.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use super::{free_tcp_port, v6, Daemon, TempDir};

pub const BINARY: &str = "/usr/sbin/vsftpd";
/// The file served, relative to the anonymous root, and its content.
pub const FILE: &str = "health.txt";
pub const CONTENT: &str = "ldirector health: all good\n";

pub struct Vsftpd {
    pub daemons: [Daemon; 2],
    /// IPv4 then IPv6.
    pub addrs: [SocketAddr; 2],
}

impl Vsftpd {
    pub fn output(&self) -> String {
        self.daemons
            .iter()
            .map(Daemon::output)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub fn start(ip: IpAddr) -> Vsftpd {
    let v4 = one(ip);
    let v6 = one(v6());
    Vsftpd {
        addrs: [v4.1, v6.1],
        daemons: [v4.0, v6.0],
    }
}

fn one(ip: IpAddr) -> (Daemon, SocketAddr) {
    let dir = TempDir::new("vsftpd");
    // The anonymous root and the chroot helper dir must not be writable
    // by the ftp user: vsftpd refuses to run otherwise.
    let anon = dir.join("anon");
    let empty = dir.join("empty");
    std::fs::create_dir(&anon).expect("mkdir anon");
    std::fs::create_dir(&empty).expect("mkdir empty");
    std::fs::write(anon.join(FILE), CONTENT).expect("write file");

    let port = free_tcp_port(ip);
    let mut conf = String::new();
    if ip.is_ipv6() {
        writeln!(conf, "listen=NO\nlisten_ipv6=YES\nlisten_address6={ip}").unwrap();
    } else {
        writeln!(conf, "listen=YES\nlisten_address={ip}").unwrap();
    }
    writeln!(conf, "listen_port={port}").unwrap();
    writeln!(conf, "background=NO").unwrap();
    writeln!(conf, "anonymous_enable=YES").unwrap();
    writeln!(conf, "anon_root={}", anon.display()).unwrap();
    writeln!(conf, "no_anon_password=YES").unwrap();
    writeln!(conf, "ftp_username=ftp").unwrap();
    writeln!(conf, "local_enable=NO").unwrap();
    writeln!(conf, "write_enable=NO").unwrap();
    writeln!(conf, "pasv_enable=YES").unwrap();
    writeln!(conf, "secure_chroot_dir={}", empty.display()).unwrap();
    writeln!(conf, "nopriv_user=nobody").unwrap();
    // The seccomp sandbox is not needed for a test server and trips over
    // syscalls some kernels/containers handle differently.
    writeln!(conf, "seccomp_sandbox=NO").unwrap();
    writeln!(conf, "xferlog_enable=NO").unwrap();
    writeln!(conf, "vsftpd_log_file={}/vsftpd.log", dir.path().display()).unwrap();
    let conf_path = dir.join("vsftpd.conf");
    std::fs::write(&conf_path, conf).expect("write vsftpd.conf");

    let mut command = Command::new(BINARY);
    command.arg(&conf_path);
    let mut daemon = Daemon::spawn("vsftpd", command, dir);
    let addr = SocketAddr::new(ip, port);
    daemon.wait_tcp(addr);
    (daemon, addr)
}
