// SPDX-License-Identifier: GPL-2.0-or-later
//! kamailio as a SIP server on UDP and TCP, IPv4 and ::1, in the
//! foreground (`-DD -E`). Stateless routing: OPTIONS gets `200 OK`,
//! except for the user `down`, which gets `503 Service Unavailable`
//! (what a SIP server in maintenance answers).

use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use super::{free_port_both, v6, Daemon, TempDir};

pub const BINARY: &str = "/usr/sbin/kamailio";
pub const MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules/";

pub struct Kamailio {
    pub daemon: Daemon,
    /// IPv4 then IPv6 (the same port for UDP and TCP).
    pub addrs: [SocketAddr; 2],
}

pub fn start(ip: IpAddr) -> Kamailio {
    let dir = TempDir::new("kamailio");
    let port = free_port_both(ip);
    let conf = format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:{ip}:{port}
listen=tcp:{ip}:{port}
listen=udp:[::1]:{port}
listen=tcp:[::1]:{port}
mpath="{MODULES}"
loadmodule "sl.so"
loadmodule "pv.so"
request_route {{
    if ($rU == "down") {{
        sl_send_reply("503", "Service Unavailable");
        exit;
    }}
    if (method == "OPTIONS") {{
        sl_send_reply("200", "OK");
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}
"#
    );
    let conf_path = dir.join("kamailio.cfg");
    std::fs::write(&conf_path, conf).expect("write kamailio.cfg");
    let mut command = Command::new(BINARY);
    command
        .arg("-f")
        .arg(&conf_path)
        .args(["-DD", "-E"])
        .arg("-P")
        .arg(dir.join("kamailio.pid"))
        .arg("-Y")
        .arg(dir.path())
        .arg("-w")
        .arg(dir.path());
    let mut daemon = Daemon::spawn("kamailio", command, dir);
    let addrs = [SocketAddr::new(ip, port), SocketAddr::new(v6(), port)];
    // The TCP listeners open after the UDP ones: once they accept, the
    // server is up on both transports.
    for addr in addrs {
        daemon.wait_tcp(addr);
    }
    Kamailio { daemon, addrs }
}
