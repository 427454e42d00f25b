// SPDX-License-Identifier: GPL-2.0-or-later
//! The guest's toolbox: a tokio runtime for the client, ipvsadm as the
//! oracle, and builders for the model values the cases expect.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

use ldirector::ipvs::{
    AddressFamily, Destination, DestinationEntry, ForwardMethod, IpvsHandle, Protocol, Service,
    ServiceEntry, ServiceFlags, ServiceKey, TunnelSettings,
};

pub struct Lab {
    runtime: tokio::runtime::Runtime,
    pub outdir: PathBuf,
}

impl Lab {
    pub fn new(outdir: PathBuf) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        Self { runtime, outdir }
    }

    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// A fresh client connection.
    pub fn handle(&self) -> IpvsHandle {
        self.block_on(IpvsHandle::connect())
            .unwrap_or_else(|e| panic!("IpvsHandle::connect: {e}"))
    }

    /// Runs ipvsadm; panics unless it succeeds. Returns its stdout.
    pub fn ipvsadm(&self, args: &[&str]) -> String {
        let out = Command::new("ipvsadm")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run ipvsadm {args:?}: {e}"));
        assert!(
            out.status.success(),
            "ipvsadm {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs one ipvsadm command line (words split on blanks).
    pub fn ipvsadm_line(&self, line: &str) -> String {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.ipvsadm(&args)
    }

    /// Feeds `lines` (in `ipvsadm -S` syntax) to one `ipvsadm -R`: one
    /// process instead of one per line, which matters under emulation.
    pub fn ipvsadm_restore(&self, lines: &[String]) {
        use std::io::Write as _;
        let mut child = Command::new("ipvsadm")
            .arg("-R")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run ipvsadm -R: {e}"));
        let mut input = lines.join("\n");
        input.push('\n');
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write to ipvsadm -R");
        let out = child.wait_with_output().expect("wait for ipvsadm -R");
        assert!(
            out.status.success(),
            "ipvsadm -R failed ({}): {}\ninput:\n{input}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs a shell command; panics unless it succeeds.
    pub fn sh(&self, script: &str) -> String {
        let start = std::time::Instant::now();
        let out = Command::new("sh")
            .args(["-ec", script])
            .output()
            .unwrap_or_else(|e| panic!("cannot run sh -c {script:?}: {e}"));
        assert!(
            out.status.success(),
            "`{script}` failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let took = start.elapsed();
        if took.as_secs() >= 10 {
            println!("  (slow: {:.1}s for `{script}`)", took.as_secs_f64());
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Empties the table (ipvsadm, so a client bug cannot hide here).
    pub fn flush(&self) {
        self.ipvsadm(&["-C"]);
    }

    /// What ipvsadm shows of the table in every list mode that depends on
    /// the configuration (not on traffic).
    pub fn listings(&self) -> Vec<(String, String)> {
        LIST_MODES
            .iter()
            .map(|mode| (mode.join(" "), self.ipvsadm(mode)))
            .collect()
    }
}

/// Together these show every configuration field: `-Sn` the service
/// settings, forwarding and weights; `--thresholds` and `--tun-info` the
/// rest. (ipvs-ls has its own byte-for-byte comparison of every mode.)
pub const LIST_MODES: &[&[&str]] = &[&["-Sn"], &["-Ln", "--thresholds"], &["-Ln", "--tun-info"]];

/// Panics with both texts, line by line, when they differ.
pub fn assert_same_text(context: &str, expected: &str, actual: &str) {
    if expected == actual {
        return;
    }
    let mut report = String::new();
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i).copied(), a.get(i).copied());
        if x == y {
            report.push_str(&format!("   {}\n", x.unwrap_or("")));
        } else {
            if let Some(x) = x {
                report.push_str(&format!(" - {x}\n"));
            }
            if let Some(y) = y {
                report.push_str(&format!(" + {y}\n"));
            }
        }
    }
    panic!("{context}: texts differ (- expected, + actual):\n{report}");
}

/// A service with its destinations, configuration only, in a stable order
/// (the kernel dumps in hash order).
pub type Table = Vec<(Service, Vec<Destination>)>;

pub fn normalize(mut table: Table) -> Table {
    table.sort_by_key(|a| a.0.key);
    for (_, dests) in &mut table {
        dests.sort_by_key(|a| (a.addr, a.port));
    }
    table
}

pub fn config_of(entries: &[ServiceEntry]) -> Table {
    normalize(
        entries
            .iter()
            .map(|e| {
                (
                    e.service.clone(),
                    e.destinations
                        .iter()
                        .map(|d: &DestinationEntry| d.dest.clone())
                        .collect(),
                )
            })
            .collect(),
    )
}

pub fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("bad address {s:?} in a test: {e}"))
}

fn addr_key(protocol: Protocol, addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol,
        addr: ip(addr),
        port,
    }
}

pub fn tcp(addr: &str, port: u16) -> ServiceKey {
    addr_key(Protocol::Tcp, addr, port)
}

pub fn udp(addr: &str, port: u16) -> ServiceKey {
    addr_key(Protocol::Udp, addr, port)
}

pub fn sctp(addr: &str, port: u16) -> ServiceKey {
    addr_key(Protocol::Sctp, addr, port)
}

pub fn fwmark(af: AddressFamily, mark: u32) -> ServiceKey {
    ServiceKey::Fwmark { af, mark }
}

/// A service as ipvsadm creates it without -p/-M/-b/-o/--pe: no flags,
/// the whole address as persistence granularity.
pub fn service(key: ServiceKey, scheduler: &str) -> Service {
    Service {
        key,
        scheduler: scheduler.to_string(),
        flags: ServiceFlags(0),
        timeout: 0,
        netmask: match key.af() {
            AddressFamily::Inet => 0xffff_ffff,
            AddressFamily::Inet6 => 128,
        },
        pe_name: None,
    }
}

/// A destination as ipvsadm creates it without -x/-y/--tun-*.
pub fn dest(addr: &str, port: u16, forward: ForwardMethod, weight: u32) -> Destination {
    Destination {
        addr: ip(addr),
        port,
        forward,
        weight,
        upper_threshold: 0,
        lower_threshold: 0,
        tunnel: TunnelSettings::default(),
    }
}
