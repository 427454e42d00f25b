// SPDX-License-Identifier: GPL-2.0-or-later
//! FreeRADIUS 3 (package freeradius) with a minimal configuration of its
//! own: one `files` user checked by `pap`, clients on loopback with a
//! shared secret, auth listeners on the IPv4 address and ::1, in the
//! foreground (`-f`), logging to stdout.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use super::{free_port_both, v6, Daemon, TempDir};

pub const BINARY: &str = "/usr/sbin/freeradius";
pub const SECRET: &str = "s3cret-radius";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "pw4alice";

pub struct Freeradius {
    pub daemon: Daemon,
    /// IPv4 then IPv6.
    pub addrs: [SocketAddr; 2],
}

pub fn start(ip: IpAddr) -> Freeradius {
    let dir = TempDir::new("freeradius");
    let d = dir.path().display();
    let port = free_port_both(ip);
    let users = dir.join("users");
    std::fs::write(
        &users,
        format!("{USER} Cleartext-Password := \"{PASSWORD}\"\n"),
    )
    .expect("write users");
    let conf = format!(
        r#"prefix = /usr
confdir = {d}
logdir = {d}
run_dir = {d}
raddbdir = {d}
libdir = /usr/lib/freeradius
pidfile = {d}/radiusd.pid
max_request_time = 5
log {{
    destination = stdout
}}
security {{
    allow_core_dumps = no
}}
client loopback4 {{
    ipaddr = 127.0.0.0/8
    secret = {SECRET}
}}
client loopback6 {{
    ipv6addr = ::1
    secret = {SECRET}
}}
modules {{
    files {{
        filename = {users}
    }}
    pap {{
    }}
}}
server default {{
    listen {{
        type = auth
        ipaddr = {ip}
        port = {port}
    }}
    listen {{
        type = auth
        ipv6addr = ::1
        port = {port}
    }}
    authorize {{
        files
        pap
    }}
    authenticate {{
        pap
    }}
}}
"#,
        users = users.display()
    );
    std::fs::write(dir.join("radiusd.conf"), conf).expect("write radiusd.conf");
    let mut command = Command::new(BINARY);
    command
        .args(["-f", "-l", "stdout", "-n", "radiusd", "-d"])
        .arg(dir.path());
    let mut daemon = Daemon::spawn("freeradius", command, dir);
    // UDP only: nothing to connect to, so wait for its own word.
    daemon.wait_output("Ready to process requests");
    Freeradius {
        daemon,
        addrs: [SocketAddr::new(ip, port), SocketAddr::new(v6(), port)],
    }
}
