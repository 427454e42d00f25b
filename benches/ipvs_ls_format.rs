// SPDX-License-Identifier: GPL-2.0-or-later
//! How long `ipvs-ls` spends in its own code (ipvsadm's sort and the text
//! or JSON formatting) for 1,000 services x 10 reals, kernel I/O excluded.
//! The end-to-end comparison with `ipvsadm -Ln` on the real kernel is
//! printed by tests/ipvs_ls_kernel.rs.
//!
//!     cargo bench --bench ipvs_ls_format

use std::hint::black_box;
use std::time::{Duration, Instant};

use ldirector::inspect::format::{write_listing, Columns, ListFormat};
use ldirector::inspect::json;
use ldirector::inspect::names::Numeric;
use ldirector::inspect::sort::sort_like_ipvsadm;
use ldirector::ipvs::{
    ConnCounts, Destination, DestinationEntry, ForwardMethod, IpvsInfo, Protocol, Service,
    ServiceEntry, ServiceFlags, ServiceKey, Stats, TunnelSettings,
};

const SERVICES: u32 = 1_000;
const REALS: u32 = 10;
const ROUNDS: usize = 30;

/// The big table of tests/ipvs_ls_kernel.rs, in a scrambled order (the
/// kernel dumps in hash order).
fn table() -> Vec<ServiceEntry> {
    let mut services: Vec<ServiceEntry> = (0..SERVICES)
        .map(|s| {
            let protocol = if s % 3 == 1 {
                Protocol::Udp
            } else {
                Protocol::Tcp
            };
            let key = ServiceKey::Addr {
                protocol,
                addr: [10, 3, (s / 250) as u8, (s % 250 + 1) as u8].into(),
                port: 80,
            };
            let destinations = (1..=REALS)
                .rev()
                .map(|r| DestinationEntry {
                    dest: Destination {
                        addr: [10, 4, (s / 25) as u8, ((s % 25) * 10 + r) as u8].into(),
                        port: 8080,
                        forward: ForwardMethod::Masq,
                        weight: r,
                        upper_threshold: 0,
                        lower_threshold: 0,
                        tunnel: TunnelSettings::default(),
                    },
                    conns: ConnCounts::default(),
                    stats: Stats {
                        conns: u64::from(s * r),
                        inbytes: u64::from(s) << 24,
                        ..Stats::default()
                    },
                })
                .collect();
            ServiceEntry {
                service: Service {
                    key,
                    scheduler: "wrr".to_owned(),
                    flags: ServiceFlags::default(),
                    timeout: 0,
                    netmask: 0xffff_ffff,
                    pe_name: None,
                },
                stats: Stats::default(),
                destinations,
            }
        })
        .collect();
    // A fixed scramble: multiply the index by a unit modulo the length.
    let n = services.len();
    let mut scrambled: Vec<Option<ServiceEntry>> = services.drain(..).map(Some).collect();
    (0..n)
        .filter_map(|i| scrambled[(i * 7919) % n].take())
        .collect()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn measure(name: &str, mut run: impl FnMut() -> usize) {
    let mut bytes = 0;
    let samples = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            bytes = black_box(run());
            start.elapsed()
        })
        .collect();
    println!(
        "{name:<28} median {:>8.3} ms over {ROUNDS} rounds ({bytes} bytes of output)",
        median(samples).as_secs_f64() * 1e3
    );
}

fn main() {
    let base = table();
    let info = IpvsInfo {
        version: 0x010201,
        conn_table_size: 4096,
    };
    println!(
        "{} services x {} reals ({} lines), sort + format, no kernel I/O:",
        SERVICES,
        REALS,
        SERVICES * (REALS + 1)
    );
    measure("sort (ipvsadm order)", || {
        let mut t = base.clone();
        sort_like_ipvsadm(&mut t);
        t.len()
    });
    let mut sorted = base.clone();
    sort_like_ipvsadm(&mut sorted);
    for (name, columns) in [
        ("format -Ln", Columns::Default),
        ("format --stats", Columns::Stats),
        ("format --tun-info", Columns::TunInfo),
    ] {
        let format = ListFormat {
            columns,
            exact: false,
        };
        measure(name, || {
            let mut out = String::new();
            write_listing(&mut out, &info, &sorted, &format, &Numeric, None)
                .expect("formatting into a String");
            out.len()
        });
    }
    measure("json", || {
        let doc = json::document(&info, None, &[], &sorted, None);
        serde_json::to_string(&doc).map(|s| s.len()).unwrap_or(0)
    });
}
