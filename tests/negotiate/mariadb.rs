// SPDX-License-Identifier: GPL-2.0-or-later
//! MariaDB (mariadb-server) with a fresh data dir (mariadb-install-db), a
//! `health` database with one row and a `check` user allowed to read it,
//! set up by an init file at start. Listens on the IPv4 address and ::1.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use super::{free_port_both, require_binary, v6, Daemon, TempDir};

pub const BINARY: &str = "/usr/sbin/mariadbd";
pub const INSTALL_DB: &str = "/usr/bin/mariadb-install-db";
pub const USER: &str = "check";
pub const PASSWORD: &str = "pw4check";
pub const DATABASE: &str = "health";

pub struct Mariadb {
    pub daemon: Daemon,
    /// IPv4 then IPv6.
    pub addrs: [SocketAddr; 2],
}

pub fn start(ip: IpAddr) -> Mariadb {
    let dir = TempDir::new("mariadb");
    let data = dir.join("data");
    require_binary(INSTALL_DB.as_ref());
    let installed = Command::new(INSTALL_DB)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args([
            "--user=root",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ])
        .output()
        .expect("run mariadb-install-db");
    assert!(
        installed.status.success(),
        "mariadb-install-db failed: {}{}",
        String::from_utf8_lossy(&installed.stdout),
        String::from_utf8_lossy(&installed.stderr)
    );
    let init = dir.join("init.sql");
    std::fs::write(
        &init,
        format!(
            "CREATE DATABASE IF NOT EXISTS {DATABASE};\n\
             CREATE TABLE IF NOT EXISTS {DATABASE}.status (name VARCHAR(20), up INT);\n\
             INSERT INTO {DATABASE}.status VALUES ('web1', 1), ('web2', 0);\n\
             CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';\n\
             GRANT SELECT ON {DATABASE}.* TO '{USER}'@'%';\n"
        ),
    )
    .expect("write init.sql");

    let port = free_port_both(ip);
    let mut command = Command::new(BINARY);
    command
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg(format!("--log-error={}", dir.join("error.log").display()))
        .arg(format!("--init-file={}", init.display()))
        .arg(format!("--bind-address={ip},::1"))
        .arg(format!("--port={port}"))
        .args([
            "--user=root",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=8M",
        ]);
    let mut daemon = Daemon::spawn("mariadb", command, dir);
    let addrs = [SocketAddr::new(ip, port), SocketAddr::new(v6(), port)];
    for addr in addrs {
        daemon.wait_tcp(addr);
    }
    Mariadb { daemon, addrs }
}

impl Mariadb {
    pub fn output(&self) -> String {
        let mut text = self.daemon.output();
        text.push_str(
            &std::fs::read_to_string(self.daemon.dir.join("error.log")).unwrap_or_default(),
        );
        text
    }
}
