// SPDX-License-Identifier: GPL-2.0-or-later
//! Takeover latency: the time from "add the VIP and announce it" to the
//! first announcement frame seen on the wire by the peer. Goal: < 10 ms.
//!
//! Runs as root in two network namespaces joined by a veth pair
//! (`ldn-net-<pid>-bench-*`, removed at the end). A thread in the peer
//! namespace reads an AF_PACKET capture as frames arrive; the director side
//! repeats, per sample:
//!
//! * `owner`: [`VipOwner::acquire`] (what the daemon does at start: a fresh
//!   rtnetlink socket, link lookup, address dump, add, packet socket, first
//!   frame), then `release`;
//! * `cli`: a fresh [`VipHandle`], `add`, then [`garp::announce`] with
//!   `--count 1` (what `ldirectord vip add` + `vip announce` do, minus the
//!   process start of each command), then `del`.
//!
//! Each for IPv4 (gratuitous ARP) and IPv6 (unsolicited NA). The measured
//! time ends when the capture thread's `recvfrom` returns, so it includes
//! that thread's wake-up: an upper bound on the wire time.
//!
//! ```text
//! sudo -E cargo bench --bench vip_announce            # 500 samples each
//! sudo -E cargo bench --bench vip_announce -- 2000    # more samples
//! ```

#[path = "../tests/support_net/mod.rs"]
mod support;

use std::net::IpAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ldirector::net::garp;
use ldirector::net::{AddOptions, AnnounceOptions, VipAddr, VipHandle, VipOwner};
use support::{Capture, Frame, Pair};

const WARMUP: usize = 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Owner,
    Cli,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Owner => "owner (VipOwner::acquire)",
            Path::Cli => "cli (vip add + vip announce --count 1)",
        }
    }
}

/// What a sample holds until it is measured.
enum Held {
    Owner(VipOwner),
    Added(VipHandle),
}

fn is_announcement(frame: &Frame, vip: IpAddr) -> bool {
    let ethertype = frame.ethertype();
    let kind_matches = match vip {
        IpAddr::V4(_) => ethertype == 0x0806,
        // ICMPv6 (next header 58) neighbour advertisement (type 136).
        IpAddr::V6(_) => {
            ethertype == 0x86dd
                && frame.bytes.len() > 54
                && frame.bytes[20] == 58
                && frame.bytes[54] == 136
        }
    };
    kind_matches && frame.mentions(vip)
}

/// One run of `samples` (+ warm-up) takeovers; returns the latencies.
fn measure(pair: &Pair, vip: VipAddr, path: Path, samples: usize) -> Vec<Duration> {
    let total = WARMUP + samples;
    let (arrivals_tx, arrivals_rx) = mpsc::channel::<Instant>();
    let capture = Capture::open(&pair.peer, "eth0");
    let reader = std::thread::spawn(move || {
        for _ in 0..total {
            let frames = capture.collect(1, Duration::from_secs(5), |frame| {
                is_announcement(frame, vip.addr)
            });
            let Some(frame) = frames.first() else {
                return;
            };
            if arrivals_tx.send(frame.at).is_err() {
                return;
            }
        }
    });

    let announce = AnnounceOptions {
        count: 1,
        ..AnnounceOptions::default()
    };
    let latencies = pair.director.block_on(|| async move {
        let mut latencies = Vec::with_capacity(samples);
        for sample in 0..total {
            let started = Instant::now();
            let held = match path {
                Path::Owner => Held::Owner(
                    VipOwner::acquire("eth0", vip, announce)
                        .await
                        .expect("acquire"),
                ),
                Path::Cli => {
                    let handle = VipHandle::new().expect("rtnetlink");
                    handle
                        .add("eth0", vip, &AddOptions::default())
                        .await
                        .expect("add");
                    garp::announce(&handle, "eth0", vip.addr, &announce)
                        .await
                        .expect("announce");
                    Held::Added(handle)
                }
            };
            let arrived = arrivals_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("the peer saw the announcement");
            if sample >= WARMUP {
                latencies.push(arrived.saturating_duration_since(started));
            }
            match held {
                Held::Owner(owner) => {
                    owner.release().await.expect("release");
                }
                Held::Added(handle) => {
                    handle
                        .del("eth0", vip.addr, Some(vip.prefix))
                        .await
                        .expect("del");
                }
            }
        }
        latencies
    });
    reader.join().expect("capture thread");
    latencies
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    // cargo bench passes `--bench`; a bare number is the sample count.
    let samples = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse::<usize>().ok())
        .unwrap_or(500);
    let pair = Pair::new("bench");
    println!("vip_announce: {samples} samples per row (+{WARMUP} warm-up)");
    println!(
        "{:<42} {:>6} {:>10} {:>10} {:>10} {:>10}",
        "path", "family", "min", "median", "p99", "max"
    );
    for (family, vip) in [
        ("IPv4", "198.51.100.10".parse::<VipAddr>().unwrap()),
        ("IPv6", "2001:db8:5::10".parse::<VipAddr>().unwrap()),
    ] {
        for path in [Path::Owner, Path::Cli] {
            let mut latencies = measure(&pair, vip, path, samples);
            latencies.sort();
            println!(
                "{:<42} {:>6} {:>10.3?} {:>10.3?} {:>10.3?} {:>10.3?}",
                path.name(),
                family,
                latencies[0],
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99),
                latencies[latencies.len() - 1],
            );
        }
    }
}
