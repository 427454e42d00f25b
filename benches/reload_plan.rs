// SPDX-License-Identifier: GPL-2.0-or-later
//! Reload cost for a large config: 1,000 virtual services x 10 reals, with
//! one real's weight changed between the running and the new config.
//!
//! ```text
//! cargo bench --bench reload_plan
//! ```
//!
//! Measures what the daemon does natively at a reload (`runner.rs`,
//! `Daemon::reload` then `reconcile`) up to the kernel write: parse the new
//! file, build the check plan, carry the health over
//! (`DirectorState::reconfigure`), compute the desired table and plan the
//! difference against the kernel's table (here: the table the running
//! config produced with every real up). Prints the time and the number of
//! IPVS operations planned, which must be exactly one. The kernel write
//! itself (one netlink request for that one operation) is not part of this
//! native figure; `tests/daemon_lab.rs` proves the op count in the kernel.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it does one
//! round only, so it stays quick.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use ldirector::check::from_config::CheckPlan;
use ldirector::config::{self, Config, OfflineEnvironment};
use ldirector::daemon::checks;
use ldirector::director::managed::managed_virtuals;
use ldirector::director::state::{DirectorState, Observation};
use ldirector::director::{plan, Op, RealIntent};
use ldirector::ipvs::{DestinationEntry, ServiceEntry};

const VIRTUALS: usize = 1000;
const REALS: usize = 10;
/// The real whose weight the new config changes.
const CHANGED_VIRTUAL: usize = 617;
const CHANGED_REAL: usize = 4;

fn generate(changed_weight: Option<u32>) -> String {
    let mut text =
        String::from("checktimeout=5\ncheckinterval=10\nquiescent=yes\nlogfile=\"local0\"\n\n");
    for v in 0..VIRTUALS {
        let (a, b) = (v / 250, v % 250);
        text.push_str(&format!("virtual=10.{a}.{b}.1:80\n"));
        for r in 0..REALS {
            let weight = match changed_weight {
                Some(w) if v == CHANGED_VIRTUAL && r == CHANGED_REAL => w,
                _ => 1 + (r as u32) % 3,
            };
            text.push_str(&format!(
                "\treal=10.{}.{b}.{}:80 masq {weight}\n",
                100 + a,
                10 + r
            ));
        }
        text.push_str(
            "\tservice=http\n\trequest=\"health\"\n\treceive=\"ok\"\n\tscheduler=wlc\n\
             \tprotocol=tcp\n\tchecktype=negotiate\n\tfallback=127.0.0.1:80 masq\n\n",
        );
    }
    text
}

fn parse(text: &str) -> Config {
    match config::parse_str("bench.cf", text, &OfflineEnvironment) {
        Ok(p) => p.config,
        Err(e) => panic!("generated config is invalid: {e}"),
    }
}

/// The running director: every real of `config` checked up once.
fn running_state(config: &Config) -> DirectorState {
    let labels = checks::labels(config);
    let mut state = DirectorState::adopt(managed_virtuals(config), &[], |v| {
        labels.get(&v.service.key).cloned().unwrap_or_default()
    });
    let keys: Vec<_> = state.keys().copied().collect();
    for key in keys {
        state.observe(Observation {
            key,
            success: true,
            reason: "ok".to_owned(),
            latency_ms: 1.0,
            at: SystemTime::now(),
        });
    }
    state
}

/// The kernel table the running state produced.
fn kernel_table(state: &DirectorState) -> Vec<ServiceEntry> {
    state
        .desired()
        .services
        .values()
        .map(|want| ServiceEntry {
            service: want.service.clone(),
            stats: Default::default(),
            destinations: want
                .reals
                .values()
                .filter_map(|intent| match intent {
                    RealIntent::Present(d) => Some(DestinationEntry {
                        dest: d.clone(),
                        conns: Default::default(),
                        stats: Default::default(),
                    }),
                    _ => None,
                })
                .collect(),
        })
        .collect()
}

/// Time spent in each phase of one reload.
#[derive(Default, Clone, Copy)]
struct Phases {
    parse: Duration,
    check_plan: Duration,
    plan: Duration,
}

/// One reload: parse, check plan, reconfigure, desired, plan.
fn reload(running: &DirectorState, kernel: &[ServiceEntry], text: &str) -> (Vec<Op>, Phases) {
    let t0 = Instant::now();
    let config = parse(text);
    let t1 = Instant::now();
    let check_plan = CheckPlan::from_config(&config);
    std::hint::black_box(&check_plan);
    let t2 = Instant::now();
    let labels = checks::labels(&config);
    let next = running.reconfigure(managed_virtuals(&config), kernel, |v| {
        labels.get(&v.service.key).cloned().unwrap_or_default()
    });
    let mut managed: BTreeSet<_> = running.managed_keys();
    managed.extend(next.managed_keys());
    let ops = plan(&next.desired(), kernel, &managed);
    let t3 = Instant::now();
    let phases = Phases {
        parse: t1 - t0,
        check_plan: t2 - t1,
        plan: t3 - t2,
    };
    (ops, phases)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let rounds = if benching { 21 } else { 1 };

    let running = running_state(&parse(&generate(None)));
    let kernel = kernel_table(&running);
    let destinations: usize = kernel.iter().map(|e| e.destinations.len()).sum();
    assert_eq!((kernel.len(), destinations), (VIRTUALS, VIRTUALS * REALS));

    // Sanity: the same config again plans nothing.
    let (unchanged, _) = reload(&running, &kernel, &generate(None));
    assert!(unchanged.is_empty(), "{unchanged:?}");

    let new_text = generate(Some(9));
    let mut times: Vec<(Duration, Phases)> = Vec::with_capacity(rounds);
    let mut ops = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        let (planned, phases) = reload(&running, &kernel, &new_text);
        times.push((start.elapsed(), phases));
        ops = planned;
    }
    assert_eq!(
        ops.len(),
        1,
        "one changed weight must be one operation: {ops:?}"
    );
    assert!(
        matches!(&ops[0], Op::EditDest(_, d) if d.weight == 9),
        "{ops:?}"
    );
    times.sort_by_key(|(total, _)| *total);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (median, phases) = times[rounds / 2];
    println!(
        "reload_plan: {VIRTUALS} virtuals x {REALS} reals, one weight changed: \
         {} IPVS operation(s) planned ({:?})",
        ops.len(),
        ops[0]
    );
    println!(
        "  parse + check plan + reconfigure + desired + plan: median {:.1} ms, \
         min {:.1} ms, max {:.1} ms over {rounds} round(s)",
        ms(median),
        ms(times[0].0),
        ms(times[rounds - 1].0)
    );
    println!(
        "  median round: parse {:.1} ms, check plan {:.1} ms, \
         reconfigure + desired + plan {:.1} ms",
        ms(phases.parse),
        ms(phases.check_plan),
        ms(phases.plan)
    );
}
