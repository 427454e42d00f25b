// SPDX-License-Identifier: GPL-2.0-or-later
//! PostgreSQL 15 (package postgresql) with a fresh cluster (initdb) whose
//! superuser `check` logs in with SCRAM-SHA-256 over TCP, on the IPv4
//! address and ::1. Runs as user postgres, which the server insists on.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use super::{chown_tree, free_port_both, require_binary, run_as, v6, Daemon, TempDir};

pub const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
pub const OS_USER: &str = "postgres";
pub const USER: &str = "check";
pub const PASSWORD: &str = "pw4check";

pub struct Postgres {
    pub daemon: Daemon,
    /// IPv4 then IPv6.
    pub addrs: [SocketAddr; 2],
}

pub fn start(ip: IpAddr) -> Postgres {
    let dir = TempDir::new("postgres");
    let data = dir.join("data");
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, PASSWORD).expect("write pwfile");
    chown_tree(dir.path(), OS_USER);
    let initdb = format!("{BIN_DIR}/initdb");
    require_binary(initdb.as_ref());
    let mut command = Command::new(initdb);
    command
        .arg("-D")
        .arg(&data)
        .args(["-U", USER, "--auth=scram-sha-256", "--no-sync"])
        .arg(format!("--pwfile={}", pwfile.display()));
    run_as(&mut command, OS_USER);
    let made = command.output().expect("run initdb");
    assert!(
        made.status.success(),
        "initdb failed: {}{}",
        String::from_utf8_lossy(&made.stdout),
        String::from_utf8_lossy(&made.stderr)
    );
    // Clients connect from any loopback address, not only 127.0.0.1.
    std::fs::write(
        data.join("pg_hba.conf"),
        "host all all 127.0.0.0/8 scram-sha-256\nhost all all ::1/128 scram-sha-256\n",
    )
    .expect("write pg_hba.conf");

    let port = free_port_both(ip);
    let mut command = Command::new(format!("{BIN_DIR}/postgres"));
    command
        .arg("-D")
        .arg(&data)
        .arg("-c")
        .arg(format!("listen_addresses={ip},::1"))
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(dir.path())
        .args(["-c", "fsync=off"]);
    run_as(&mut command, OS_USER);
    let mut daemon = Daemon::spawn("postgres", command, dir);
    let addrs = [SocketAddr::new(ip, port), SocketAddr::new(v6(), port)];
    // Listening comes before recovery ends; until then every login is
    // refused with "the database system is starting up".
    daemon.wait_output("database system is ready to accept connections");
    for addr in addrs {
        daemon.wait_tcp(addr);
    }
    Postgres { daemon, addrs }
}
