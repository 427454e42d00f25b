// SPDX-License-Identifier: GPL-2.0-or-later
//! Failure detection (issue 5): the time from a real stopping to its weight
//! being 0 in the kernel, with checkinterval=1, checktimeout=1, for 10 and
//! for 1,000 reals. Goal: under interval + timeout + 100 ms = 2.1 s, the
//! same for 10 reals as for 1,000.
//!
//!     sudo cargo bench --bench failure_detection
//!
//! This machine's kernel has no IPVS, so the bench boots Debian's kernel in
//! a VM (`tests/vm/run.sh`) and runs itself inside: the real `ldirectord`
//! binary (`--foreground`, quiescent=yes) against N reals on the guest's
//! loopback (`support_reals`). For each sample it stops a random real, at a
//! random moment, and polls the kernel table over netlink (the library's
//! `IpvsHandle`) until that real's weight is 0. Two ways to stop: the
//! listener closes (**refused**: the next check fails at once) and SYNs are
//! dropped (**black hole**: the check has to time out). Connect checks and
//! http negotiate checks (negotiatetimeout=1).
//!
//! The VM emulates the CPU (TCG), 10-30x slower than a real machine for
//! CPU-bound work, and shares the host's cores: the absolute times include
//! that slowness; the comparison between 10 and 1,000 reals is the point.
//!
//! Sizes 10, 100 and 1,000 by default. A size whose reals are not all up
//! within 90 s (the guest cannot run that many checks a second under TCG)
//! is reported as not measured, with the guest's CPU figures, instead of
//! failing the whole run.
//!
//! Environment: `LDIRECTOR_BENCH_SAMPLES` (default 10) samples per case;
//! `LDIRECTOR_BENCH_SIZES` (default `10,100,1000`); `LDIRECTOR_BENCH_PROFILE=1`
//! records the daemon with perf (10 s, into the run's folder) when its
//! reals take more than 15 s to come up.
//! Under `cargo test` (no `--bench` argument) it only says how to run it.
//!
//! Measured 2026-11-23 (TCG, 2 vCPUs, host load average 4-9, with the
//! daemon's one-reconcile-per-burst change): refused rows meet the goal
//! (max 0.99-1.48 s at 10 reals, 1.16-1.20 s at 100); black-hole rows sit
//! at the edge (max 1.84-2.29 s at 10, 2.11-2.16 s at 100) because the
//! inherent wait is already up to interval + timeout = 2.0 s and the
//! emulated daemon + kernel take 50 ms (10 reals) to 140-220 ms (100
//! reals) after the failing probe's deadline (median `ovh`). 1,000 reals
//! were not measurable: the guest is 99 % busy at ~360 checks/s and only
//! 351 of 1,000 reals were up after 90 s, and `status` showed results 93 s
//! stale: the check tasks queued ahead of the event loop. With the checks
//! on their own runtime (same day), 1,000 connect reals all came up and
//! results stayed fresh, but the guest, still 99 % busy, made every check
//! late: refused median 2.6 s (max 7.8 s), black hole median 5.7 s (max
//! 11.8 s), 6 samples each; 1,000 http checks timed out at 1 s in the
//! saturated guest. Those figures measure the emulator, not the daemon.
//! `detection_native` measures the daemon's path at 1,000 and 10,000
//! reals natively, up to the kernel write.
//!
//! Measured 2026-12-07, with the daemon's runtimes down from two workers
//! each to a current-thread event loop and a one-worker check runtime
//! (TCG, 2 vCPUs, host load average under 2, 10 samples per row,
//! `LDIRECTOR_BENCH_SIZES=1000,100`): 1,000 reals now run in the guest.
//! Every real was up 9.0 s (connect) / 9.5 s (http) after the start; the
//! daemon used 0.45 / 0.69 cores while sampling. Refused: max 1.10 s
//! (connect) and 1.07 s (http), goal met. Black hole: max 2.14 s for both,
//! 35-42 ms over the goal, with `ovh` (from the failing probe's deadline
//! to weight 0 seen in the kernel) 100-211 ms, of which one kernel dump of
//! 1,000 reals (the measurement's resolution) takes 43-49 ms under TCG.
//! 100 reals: every row met (max 0.80 / 2.00 / 0.71 / 1.88 s, `ovh`
//! 20-36 ms). Natively (`detection_native`) the same path's `ovh` is 1-10
//! ms at 1,000 reals.
//! Again with the final layout (one worker per runtime), same settings:
//! 1,000 reals up after 8.9 s / 10.2 s, daemon 0.47 / 0.72 cores; max
//! refused 0.92 s (connect) / 1.17 s (http), black hole 2.05 s (met) /
//! 2.17 s (66 ms over, one dump 51 ms); 100 reals: every row met.

#[path = "support_reals/mod.rs"]
mod support_reals;
#[path = "../tests/support_vm/mod.rs"]
mod support_vm;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ldirector::ipvs::{IpvsHandle, Protocol, ServiceKey};
use support_reals::{
    detection_config, failing_probe_deadline, percentile, real_addr, signed_secs, CheckType,
    Failure, Reals, Rng, GOAL, INTERVAL_S, TIMEOUT_S,
};
use tokio::runtime::Runtime;

const LDIRECTORD: &str = env!("CARGO_BIN_EXE_ldirectord");
/// Kernel poll period while waiting for the weight to drop.
const POLL: Duration = Duration::from_millis(5);
const VIP: &str = "10.10.0.1";
/// How long every real may take to come up before a size counts as more
/// than the guest can check (under TCG, 1,000 checks a second can be).
const STARTUP_LIMIT: Duration = Duration::from_secs(90);

fn main() {
    if support_vm::in_guest() {
        run_in_guest();
        return;
    }
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "failure_detection: runs in a VM; use `cargo bench --bench failure_detection` \
             (as root; LDIRECTOR_BENCH_SAMPLES=N for N samples per case, default 10)"
        );
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let samples = std::env::var("LDIRECTOR_BENCH_SAMPLES").unwrap_or_else(|_| "10".into());
    let sizes = std::env::var("LDIRECTOR_BENCH_SIZES").unwrap_or_else(|_| "10,100,1000".into());
    let run = support_vm::run_in_vm(
        "failure_detection",
        1500,
        &[
            (support_vm::GUEST_ENV, "1"),
            ("LDIRECTOR_BENCH_SAMPLES", &samples),
            ("LDIRECTOR_BENCH_SIZES", &sizes),
            (
                "LDIRECTOR_BENCH_PROFILE",
                if std::env::var_os("LDIRECTOR_BENCH_PROFILE").is_some() {
                    "1"
                } else {
                    ""
                },
            ),
        ],
        &[exe.into()],
    );
    run.assert_success();
    println!(
        "VM wall time {:.1}s; host load average after the run: {}",
        run.wall.as_secs_f64(),
        support_reals::load_average()
    );
}

fn service_key() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: VIP.parse().expect("VIP"),
        port: 80,
    }
}

/// The daemon under test, in the foreground; TERM (then KILL) by pid on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, config: &Path) -> Daemon {
        let log = dir.join("daemon.stderr");
        let child = Command::new(LDIRECTORD)
            .arg("--foreground")
            .arg(config)
            .arg("start")
            .env("LDIRECTORD_RUN_DIR", dir)
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("daemon stderr file"))
            .spawn()
            .expect("start ldirectord");
        Daemon { child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `ldirectord CONFIG status`: the daemon's view of every real.
    fn status(&self, dir: &Path, config: &Path) -> String {
        match Command::new(LDIRECTORD)
            .arg(config)
            .arg("status")
            .env("LDIRECTORD_RUN_DIR", dir)
            .output()
        {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                let lines: Vec<&str> = text.lines().take(40).collect();
                lines.join("\n") + &String::from_utf8_lossy(&out.stderr)
            }
            Err(e) => format!("cannot run status: {e}"),
        }
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "ldirectord exited ({status}); its stderr:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Weights of our service's destinations, by real index (`None` = absent).
fn weights(runtime: &Runtime, handle: &IpvsHandle, n: usize) -> Vec<Option<u32>> {
    let dests = runtime
        .block_on(handle.destinations(&service_key()))
        .expect("dump destinations");
    let mut by_addr = std::collections::HashMap::with_capacity(dests.len());
    for d in dests {
        by_addr.insert((d.dest.addr, d.dest.port), d.dest.weight);
    }
    (0..n)
        .map(|i| {
            let a = real_addr(i);
            by_addr.get(&(a.ip(), a.port())).copied()
        })
        .collect()
}

fn weight_of(runtime: &Runtime, handle: &IpvsHandle, i: usize) -> Option<u32> {
    let a = real_addr(i);
    runtime
        .block_on(handle.destinations(&service_key()))
        .expect("dump destinations")
        .into_iter()
        .find(|d| d.dest.addr == a.ip() && d.dest.port == a.port())
        .map(|d| d.dest.weight)
}

/// With `LDIRECTOR_BENCH_PROFILE` set: where the daemon spends its CPU
/// when it is slow to bring every real up (perf, 10 s, call graphs), for
/// `perf report -i OUTDIR/perf-*.data` on the host.
fn profile(pid: u32, name: &str) {
    let data = support_vm::guest_outdir().join(format!("perf-{name}.data"));
    let status = Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-F", "250", "-g", "-p"])
        .arg(pid.to_string())
        .arg("-o")
        .arg(&data)
        .args(["--", "sleep", "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    eprintln!(
        "perf record of the daemon: {status:?} -> {}",
        data.display()
    );
}

/// CPU ticks of the daemon, of the bench (reals + poller) and of the
/// whole guest, and the reals' accept count, at one moment.
struct Usage {
    daemon: u64,
    bench: u64,
    guest_busy: u64,
    guest_total: u64,
    accepted: u64,
}

impl Usage {
    fn now(daemon: &Daemon, reals: &Reals) -> Usage {
        let (guest_busy, guest_total) = guest_cpu();
        Usage {
            daemon: support_reals::cpu_ticks(daemon.pid()).unwrap_or(0),
            bench: support_reals::cpu_ticks(std::process::id()).unwrap_or(0),
            guest_busy,
            guest_total,
            accepted: reals.connections(),
        }
    }

    fn since(&self, before: &Usage, elapsed: Duration) -> String {
        let hz = support_reals::ticks_per_second();
        let secs = elapsed.as_secs_f64();
        format!(
            "daemon {:.2} cores, bench {:.2} cores, guest busy {:.0}%, \
             reals accepted {:.0}/s",
            (self.daemon - before.daemon) as f64 / hz / secs,
            (self.bench - before.bench) as f64 / hz / secs,
            100.0 * (self.guest_busy - before.guest_busy) as f64
                / (self.guest_total - before.guest_total).max(1) as f64,
            (self.accepted - before.accepted) as f64 / secs,
        )
    }
}

/// (busy, total) jiffies over all CPUs from /proc/stat.
fn guest_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    // idle + iowait
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn wait_until(what: &str, limit: Duration, daemon: &mut Daemon, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok() {
            return;
        }
        daemon.assert_running();
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "timed out after {}s waiting for {what}; daemon stderr:\n{}",
        limit.as_secs(),
        std::fs::read_to_string(&daemon.log).unwrap_or_default()
    );
}

/// The daemon's config; its log goes to the folder the host reads.
fn config(dir: &Path, n: usize, check: CheckType) -> PathBuf {
    let log = support_vm::guest_outdir().join(format!("ldirectord-{n}-{}.log", check.name()));
    let body = detection_config(VIP, n, check, &format!("logfile=\"{}\"\n", log.display()));
    let path = dir.join(format!("bench-{n}-{}.cf", check.name()));
    std::fs::write(&path, body).expect("write config");
    path
}

struct CaseResult {
    n: usize,
    check: CheckType,
    failure: Failure,
    /// Seconds from the stop to the first dump showing weight 0.
    samples: Vec<f64>,
    /// Seconds from when the failing probe had to fail (its tick, plus the
    /// timeout for a black hole) to the dump showing weight 0: the daemon's
    /// and the kernel's share, without the wait for the next tick.
    overheads: Vec<f64>,
    /// Mean duration of one kernel dump (the measurement's resolution).
    dump_s: f64,
    /// Longest gap between two polls (a 5 ms sleep plus one dump): how
    /// long the guest stalled the bench itself, a measure of the VM's
    /// starvation on the shared host rather than of the daemon.
    max_poll_gap_s: f64,
    startup_s: f64,
    daemon_cpu_s: f64,
}

fn run_case(
    runtime: &Runtime,
    handle: &IpvsHandle,
    reals: &mut Reals,
    rng: &mut Rng,
    dir: &Path,
    check: CheckType,
    samples: usize,
) -> Result<Vec<CaseResult>, String> {
    let n = reals.len();
    support_reals::ipvsadm_clear();
    let config = config(dir, n, check);
    let started = Instant::now();
    let mut daemon = Daemon::start(dir, &config);
    // Every real up; every 5 s a line on who spends the guest's CPU, so a
    // run that does not get there says why.
    let mut last_report = Instant::now();
    let mut last_usage = Usage::now(&daemon, reals);
    let mut last_line = String::new();
    let mut profiled = std::env::var_os("LDIRECTOR_BENCH_PROFILE").is_none_or(|v| v != "1");
    loop {
        let up = weights(runtime, handle, n)
            .iter()
            .filter(|w| w.is_some_and(|w| w > 0))
            .count();
        if up == n {
            break;
        }
        daemon.assert_running();
        if last_report.elapsed() >= Duration::from_secs(5) {
            let usage = Usage::now(&daemon, reals);
            last_line = usage.since(&last_usage, last_report.elapsed());
            eprintln!(
                "n={n} {}: {:.0}s, {up} of {n} up; {last_line}",
                check.name(),
                started.elapsed().as_secs_f64(),
            );
            last_usage = usage;
            last_report = Instant::now();
        }
        if !profiled && started.elapsed() > Duration::from_secs(15) {
            profiled = true;
            profile(daemon.pid(), &format!("{n}-{}", check.name()));
        }
        if started.elapsed() > STARTUP_LIMIT {
            // Not a daemon failure to hide: the row says so in the table.
            eprintln!(
                "n={n} {}: `ldirectord status`:\n{}",
                check.name(),
                daemon.status(dir, &config)
            );
            return Err(format!(
                "only {up} of {n} reals up after {} s ({last_line})",
                STARTUP_LIMIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let startup_s = started.elapsed().as_secs_f64();
    let cpu_before = support_reals::cpu_ticks(daemon.pid()).unwrap_or(0);
    let mut results = Vec::new();
    for failure in [Failure::Refused, Failure::BlackHole] {
        let mut times = Vec::with_capacity(samples);
        let mut overheads = Vec::with_capacity(samples);
        let mut dump_total = Duration::ZERO;
        let mut dumps = 0u32;
        let mut max_poll_gap = Duration::ZERO;
        for _ in 0..samples {
            let i = rng.below(n as u64) as usize;
            // A random moment relative to the checks' one-second rhythm.
            std::thread::sleep(Duration::from_millis(rng.below(1000)));
            let last_probe = reals.last_accept(i);
            let stopped = Instant::now();
            failure.inflict(reals, runtime, i);
            let mut previous_poll = Instant::now();
            let detected = loop {
                let before = Instant::now();
                max_poll_gap = max_poll_gap.max(before - previous_poll);
                previous_poll = before;
                let w = weight_of(runtime, handle, i);
                let now = Instant::now();
                dump_total += now - before;
                dumps += 1;
                if w == Some(0) {
                    break now;
                }
                assert!(
                    now - stopped < Duration::from_secs(30),
                    "real {} ({}, {}) still has weight {w:?} 30 s after it stopped",
                    real_addr(i),
                    check.name(),
                    failure.name()
                );
                std::thread::sleep(POLL);
            };
            times.push((detected - stopped).as_secs_f64());
            if let Some(last) = last_probe {
                let fails_at = failing_probe_deadline(last, stopped, failure);
                overheads.push(signed_secs(detected, fails_at));
            }
            reals.serve(runtime, i);
            wait_until(
                &format!("{} to come back", real_addr(i)),
                Duration::from_secs(30),
                &mut daemon,
                || weight_of(runtime, handle, i).is_some_and(|w| w > 0),
            );
        }
        times.sort_by(f64::total_cmp);
        overheads.sort_by(f64::total_cmp);
        results.push(CaseResult {
            n,
            check,
            failure,
            samples: times,
            overheads,
            dump_s: dump_total.as_secs_f64() / f64::from(dumps.max(1)),
            max_poll_gap_s: max_poll_gap.as_secs_f64(),
            startup_s,
            daemon_cpu_s: 0.0,
        });
    }
    let cpu_after = support_reals::cpu_ticks(daemon.pid()).unwrap_or(0);
    let wall = started.elapsed().as_secs_f64() - startup_s;
    daemon.stop();
    let cpu_s = (cpu_after - cpu_before) as f64 / support_reals::ticks_per_second();
    for r in &mut results {
        // Daemon CPU while sampling, as a share of one core.
        r.daemon_cpu_s = cpu_s / wall;
    }
    Ok(results)
}

fn run_in_guest() {
    let samples: usize = std::env::var("LDIRECTOR_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    support_reals::raise_nofile_limit(65_536);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let handle = runtime
        .block_on(IpvsHandle::connect())
        .expect("IpvsHandle::connect");
    let dir = std::env::temp_dir().join(format!("failure-detection-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut rng = Rng::seeded();
    let seed = rng.seed();
    let mut results = Vec::new();
    let mut not_measured = Vec::new();
    let sizes: Vec<usize> = std::env::var("LDIRECTOR_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 1000]);
    for n in sizes {
        let mut reals = Reals::start(&runtime, n);
        for check in [CheckType::Connect, CheckType::Http] {
            let case = match run_case(
                &runtime, &handle, &mut reals, &mut rng, &dir, check, samples,
            ) {
                Ok(case) => case,
                Err(reason) => {
                    eprintln!("n={n} {}: not measured: {reason}", check.name());
                    not_measured.push(format!(
                        "{n:>6} {:>8}: not measured: {reason}",
                        check.name()
                    ));
                    // The other check type would not fare better.
                    break;
                }
            };
            for r in &case {
                eprintln!(
                    "n={} {} {}: {:?} overheads {:?}",
                    r.n,
                    r.check.name(),
                    r.failure.name(),
                    r.samples,
                    r.overheads
                );
            }
            results.extend(case);
        }
        reals.shutdown(&runtime);
    }
    support_reals::ipvsadm_clear();

    let mut report = String::new();
    writeln!(
        report,
        "failure_detection: time from a real stopping to weight 0 in the kernel \
         ({}; seed {seed})\n\
         checkinterval={INTERVAL_S} checktimeout={TIMEOUT_S} negotiatetimeout={TIMEOUT_S} \
         failurecount=1 quiescent=yes; goal < {:.1} s; {samples} samples per row, \
         kernel polled every {} ms + one dump\n\
         ovh = from the failing probe's deadline (its tick, plus the timeout for a black hole) \
         to weight 0 in the kernel: the daemon's + kernel's share + poll resolution (the rest \
         is the wait for the next tick); gap = longest stall of the bench's own 5 ms poll loop \
         (guest starvation on the shared host); cpu/core = daemon CPU while sampling",
        support_reals::guest_caveat(),
        GOAL.as_secs_f64(),
        POLL.as_millis(),
    )
    .expect("write to String");
    writeln!(
        report,
        "{:>6} {:>8} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>10} {:>8}",
        "reals",
        "check",
        "failure",
        "min s",
        "median",
        "p90",
        "max",
        "ovh50 ms",
        "ovhmax",
        "dump ms",
        "gap ms",
        "start s",
        "cpu/core",
        "goal"
    )
    .expect("write to String");
    for r in &results {
        let max = r.samples.last().copied().unwrap_or(f64::NAN);
        writeln!(
            report,
            "{:>6} {:>8} {:>11} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.0} {:>8.0} {:>9.1} {:>8.0} {:>8.1} {:>10.2} {:>8}",
            r.n,
            r.check.name(),
            r.failure.name(),
            r.samples.first().copied().unwrap_or(f64::NAN),
            percentile(&r.samples, 50.0),
            percentile(&r.samples, 90.0),
            max,
            percentile(&r.overheads, 50.0) * 1000.0,
            r.overheads.last().copied().unwrap_or(f64::NAN) * 1000.0,
            r.dump_s * 1000.0,
            r.max_poll_gap_s * 1000.0,
            r.startup_s,
            r.daemon_cpu_s,
            if max < GOAL.as_secs_f64() {
                "met"
            } else {
                "MISSED"
            }
        )
        .expect("write to String");
    }
    for line in &not_measured {
        writeln!(report, "{line}").expect("write to String");
    }
    print!("{report}");
    std::fs::write(support_vm::guest_outdir().join("bench.txt"), &report).expect("write bench.txt");
    let _ = std::fs::remove_dir_all(&dir);
}
