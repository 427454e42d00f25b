// SPDX-License-Identifier: GPL-2.0-or-later
//! INN's reader daemon nnrpd (package inn2) as a standalone NNTP server
//! (`nnrpd -D -f`), with its own inn.conf (INNCONF), run as user news.
//! No innd is needed for the greeting. A second instance started with
//! `-r <reason>` refuses every client with `400 <reason>`, INN's way of
//! taking a reader server out of service.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use super::{chown_tree, free_port_both, run_as, v6, Daemon, TempDir};

pub const BIN_DIR: &str = "/usr/lib/news/bin";
pub const USER: &str = "news";

pub struct Nnrpd {
    pub daemon: Daemon,
    /// IPv4 then IPv6.
    pub addrs: [SocketAddr; 2],
}

/// Starts nnrpd on `ip` and ::1; with `refuse`, every client is turned
/// away with that reason.
pub fn start(ip: IpAddr, refuse: Option<&str>) -> Nnrpd {
    let dir = TempDir::new("nnrpd");
    let d = dir.path().display();
    for sub in ["etc", "run", "log", "spool", "spool/overview", "db", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    let mut conf = String::new();
    // Names are given so INN never looks this host up in the DNS.
    writeln!(conf, "domain: ldirector.test").unwrap();
    writeln!(conf, "pathhost: news.ldirector.test").unwrap();
    writeln!(conf, "fromhost: ldirector.test").unwrap();
    writeln!(conf, "server: {ip}").unwrap();
    writeln!(conf, "organization: \"ldirector tests\"").unwrap();
    writeln!(conf, "mta: \"/usr/sbin/sendmail -oi -oem %s\"").unwrap();
    writeln!(conf, "pathnews: /usr/lib/news").unwrap();
    writeln!(conf, "pathbin: {BIN_DIR}").unwrap();
    for (key, sub) in [
        ("pathetc", "etc"),
        ("pathrun", "run"),
        ("pathlog", "log"),
        ("pathspool", "spool"),
        ("pathdb", "db"),
        ("pathtmp", "tmp"),
    ] {
        writeln!(conf, "{key}: {d}/{sub}").unwrap();
    }
    writeln!(conf, "ovmethod: tradindexed").unwrap();
    writeln!(conf, "hismethod: hisv6").unwrap();
    let inn_conf = dir.join("etc/inn.conf");
    std::fs::write(&inn_conf, conf).expect("write inn.conf");
    std::fs::write(
        dir.join("etc/readers.conf"),
        "auth \"everyone\" {\n    hosts: \"*\"\n    default: \"<anyone>\"\n}\n\
         access \"everyone\" {\n    users: \"*\"\n    newsgroups: \"*\"\n}\n",
    )
    .expect("write readers.conf");
    std::fs::write(
        dir.join("etc/storage.conf"),
        "method tradspool {\n    newsgroups: *\n    class: 0\n}\n",
    )
    .expect("write storage.conf");
    std::fs::write(dir.join("db/active"), "").expect("write active");
    std::fs::write(dir.join("db/newsgroups"), "").expect("write newsgroups");
    chown_tree(dir.path(), USER);

    // The (empty) overview index nnrpd opens for every client.
    let mut makehistory = Command::new(format!("{BIN_DIR}/makehistory"));
    makehistory.args(["-O", "-x"]).env("INNCONF", &inn_conf);
    run_as(&mut makehistory, USER);
    let made = makehistory.output().expect("run makehistory");
    assert!(
        dir.join("spool/overview/group.index").exists(),
        "makehistory did not create the overview index: {}",
        String::from_utf8_lossy(&made.stderr)
    );

    let port = free_port_both(ip);
    let mut command = Command::new(format!("{BIN_DIR}/nnrpd"));
    command
        .env("INNCONF", &inn_conf)
        .args(["-D", "-f", "-n"])
        .arg("-4")
        .arg(ip.to_string())
        .arg("-6")
        .arg("::1")
        .arg("-p")
        .arg(port.to_string());
    if let Some(reason) = refuse {
        command.arg("-r").arg(reason);
    }
    run_as(&mut command, USER);
    let mut daemon = Daemon::spawn("nnrpd", command, dir);
    let addrs = [SocketAddr::new(ip, port), SocketAddr::new(v6(), port)];
    for addr in addrs {
        daemon.wait_tcp(addr);
    }
    Nnrpd { daemon, addrs }
}
