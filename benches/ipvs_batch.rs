// SPDX-License-Identifier: GPL-2.0-or-later
//! Programming IPVS: many operations per `sendmsg` against one per round
//! trip, and against `ipvsadm -R` restoring the same table.
//!
//!     sudo cargo bench --bench ipvs_batch
//!
//! This machine's kernel has no IPVS, so the bench boots Debian's kernel in
//! a VM (`tests/vm/run.sh`) and runs itself inside. The VM emulates the CPU
//! (TCG): absolute figures are 10-30x below a real machine; compare the
//! ratios. Under `cargo test` (no `--bench` argument) it only says how to
//! run it, so the test suite does not pay for a VM boot.

#[path = "../tests/support_vm/mod.rs"]
mod support_vm;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ldirector::ipvs::{
    Destination, ForwardMethod, IpvsHandle, IpvsOp, Protocol, Service, ServiceFlags, ServiceKey,
    TunnelSettings,
};

/// How often each measurement runs; the best run is reported (the VM
/// shares two cores with everything else on the host).
const ROUNDS: usize = 3;

fn main() {
    if support_vm::in_guest() {
        run_in_guest();
        return;
    }
    if !std::env::args().any(|a| a == "--bench") {
        println!("ipvs_batch: runs in a VM; use `cargo bench --bench ipvs_batch` (as root)");
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let run = support_vm::run_in_vm(
        "ipvs_batch",
        1800,
        &[(support_vm::GUEST_ENV, "1")],
        &[exe.into()],
    );
    run.assert_success();
    println!("VM wall time {:.1}s", run.wall.as_secs_f64());
}

fn service(i: u32) -> Service {
    Service {
        key: ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: format!("10.{}.{}.1", 100 + i / 250, i % 250)
                .parse()
                .expect("address"),
            port: 80,
        },
        scheduler: "wlc".to_string(),
        flags: ServiceFlags(0),
        timeout: 0,
        netmask: 0xffff_ffff,
        pe_name: None,
    }
}

fn real(i: u32, j: u32) -> Destination {
    Destination {
        addr: format!("10.{}.{}.{}", 200 + i / 250, i % 250, j + 2)
            .parse()
            .expect("address"),
        port: 8080,
        forward: ForwardMethod::Masq,
        weight: 1,
        upper_threshold: 0,
        lower_threshold: 0,
        tunnel: TunnelSettings::default(),
    }
}

/// `services` services with `reals` destinations each, as client
/// operations and as `ipvsadm -R` input.
fn table(services: u32, reals: u32) -> (Vec<IpvsOp>, String) {
    let mut ops = Vec::new();
    let mut restore = String::new();
    for i in 0..services {
        let svc = service(i);
        let vip = match svc.key {
            ServiceKey::Addr { addr, port, .. } => format!("{addr}:{port}"),
            ServiceKey::Fwmark { .. } => unreachable!("address services only"),
        };
        restore.push_str(&format!("-A -t {vip} -s wlc\n"));
        ops.push(IpvsOp::AddService(svc.clone()));
        for j in 0..reals {
            let dest = real(i, j);
            restore.push_str(&format!("-a -t {vip} -r {}:8080 -m -w 1\n", dest.addr));
            ops.push(IpvsOp::AddDestination {
                service: svc.key,
                dest,
            });
        }
    }
    (ops, restore)
}

fn ipvsadm(args: &[&str], input: Option<&str>) {
    let mut child = Command::new("ipvsadm")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .spawn()
        .expect("run ipvsadm");
    if let Some(input) = input {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write to ipvsadm");
    }
    let status = child.wait().expect("wait for ipvsadm");
    assert!(status.success(), "ipvsadm {args:?}: {status}");
}

fn best_of(mut f: impl FnMut() -> Duration) -> Duration {
    (0..ROUNDS).map(|_| f()).min().expect("ROUNDS > 0")
}

struct Report(String);

impl Report {
    fn line(&mut self, text: String) {
        println!("{text}");
        self.0.push_str(&text);
        self.0.push('\n');
    }
}

fn ops_per_sec(ops: usize, took: Duration) -> f64 {
    ops as f64 / took.as_secs_f64()
}

fn run_in_guest() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let handle: IpvsHandle = runtime
        .block_on(IpvsHandle::connect())
        .expect("IpvsHandle::connect");
    let mut report = Report(String::new());
    report.line(format!(
        "ipvs_batch (TCG guest; best of {ROUNDS}; batch <= {} ops / {} bytes per sendmsg)",
        handle.batch_size(),
        handle.batch_bytes()
    ));

    // 1. One service, 1000 destinations.
    let (ops, _) = table(1, 1000);
    let (first, dests) = ops.split_at(1);
    let measure = |batched: bool| {
        best_of(|| {
            ipvsadm(&["-C"], None);
            runtime.block_on(handle.apply(first)).expect("add service");
            let start = Instant::now();
            if batched {
                runtime.block_on(handle.apply(dests)).expect("apply");
            } else {
                for op in dests {
                    runtime
                        .block_on(handle.apply_one(op.clone()))
                        .expect("apply_one");
                }
            }
            start.elapsed()
        })
    };
    let batched = measure(true);
    let single = measure(false);
    report.line(format!(
        "1000 destinations: batched {:.3}s ({:.0} ops/s), one per send {:.3}s ({:.0} ops/s): {:.1}x",
        batched.as_secs_f64(),
        ops_per_sec(dests.len(), batched),
        single.as_secs_f64(),
        ops_per_sec(dests.len(), single),
        single.as_secs_f64() / batched.as_secs_f64()
    ));

    // 2. 1000 services x 10 destinations from an empty table.
    let (ops, restore) = table(1000, 10);
    let program = |how: &str| {
        best_of(|| {
            ipvsadm(&["-C"], None);
            let start = Instant::now();
            match how {
                "batched" => runtime.block_on(handle.apply(&ops)).expect("apply"),
                "single" => {
                    for op in &ops {
                        runtime
                            .block_on(handle.apply_one(op.clone()))
                            .expect("apply_one");
                    }
                }
                _ => ipvsadm(&["-R"], Some(&restore)),
            }
            start.elapsed()
        })
    };
    let batched = program("batched");
    let single = program("single");
    let restored = program("ipvsadm");
    report.line(format!(
        "1000 services x 10 destinations ({} ops): batched {:.3}s ({:.0} ops/s), \
         one per send {:.3}s ({:.0} ops/s), ipvsadm -R {:.3}s ({:.0} ops/s); \
         ipvsadm -R / batched = {:.2}, one per send / batched = {:.2}",
        ops.len(),
        batched.as_secs_f64(),
        ops_per_sec(ops.len(), batched),
        single.as_secs_f64(),
        ops_per_sec(ops.len(), single),
        restored.as_secs_f64(),
        ops_per_sec(ops.len(), restored),
        restored.as_secs_f64() / batched.as_secs_f64(),
        single.as_secs_f64() / batched.as_secs_f64(),
    ));

    // 3. Reading that table back.
    let dump = best_of(|| {
        let start = Instant::now();
        let services = runtime.block_on(handle.services()).expect("services()");
        assert_eq!(services.len(), 1000);
        start.elapsed()
    });
    let save = best_of(|| {
        let start = Instant::now();
        ipvsadm(&["-Sn"], None);
        start.elapsed()
    });
    report.line(format!(
        "dump of that table: services() {:.3}s, ipvsadm -Sn {:.3}s",
        dump.as_secs_f64(),
        save.as_secs_f64()
    ));
    ipvsadm(&["-C"], None);
    let path = support_vm::guest_outdir().join("bench.txt");
    std::fs::write(&path, report.0).expect("write bench.txt");
}
