// SPDX-License-Identifier: GPL-2.0-or-later
//! Parse time and memory for a large ldirectord.cf: 1000 virtual services
//! with 10 real servers each (plus the usual per-virtual directives).
//!
//! ```text
//! cargo bench --bench config_parse
//! ```
//!
//! Memory is measured with a counting global allocator: the peak heap in
//! use while parsing, and what the resulting `Config` keeps.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ldirector::config::{self, OfflineEnvironment};

struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const VIRTUALS: usize = 1000;
const REALS: usize = 10;
const ROUNDS: usize = 15;

fn generate() -> String {
    let mut text = String::from(
        "# generated: 1000 virtuals x 10 reals\nchecktimeout=5\ncheckinterval=10\nquiescent=yes\nlogfile=\"local0\"\n\n",
    );
    for v in 0..VIRTUALS {
        let (a, b) = (v / 250, v % 250);
        text.push_str(&format!("virtual=10.{a}.{b}.1:80\n"));
        for r in 0..REALS {
            text.push_str(&format!(
                "\treal=10.{}.{b}.{}:80 gate {}\n",
                100 + a,
                10 + r,
                1 + r % 3
            ));
        }
        text.push_str(
            "\tservice=http\n\trequest=\"health\"\n\treceive=\"ok\"\n\tscheduler=wlc\n\tprotocol=tcp\n\tchecktype=negotiate\n\tfallback=127.0.0.1:80 gate\n\n",
        );
    }
    text
}

fn main() {
    let text = generate();
    let env = OfflineEnvironment;

    // One measured parse for memory.
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let parsed = match config::parse_str("bench.cf", &text, &env) {
        Ok(p) => p,
        Err(e) => panic!("generated config is invalid: {e}"),
    };
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let retained = IN_USE.load(Ordering::Relaxed) - before;
    let reals: usize = parsed.config.virtuals.iter().map(|v| v.reals.len()).sum();
    assert_eq!(
        (parsed.config.virtuals.len(), reals),
        (VIRTUALS, VIRTUALS * REALS)
    );
    drop(parsed);

    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let parsed = config::parse_str("bench.cf", &text, &env);
            let elapsed = start.elapsed();
            std::hint::black_box(parsed.is_ok());
            elapsed
        })
        .collect();
    times.sort();
    let median = times[ROUNDS / 2];
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!(
        "config_parse: {VIRTUALS} virtuals x {REALS} reals, {} lines, {:.2} MiB of text",
        text.lines().count(),
        mib(text.len())
    );
    println!(
        "  time: median {:.1} ms, min {:.1} ms, max {:.1} ms over {ROUNDS} parses ({:.1} MiB/s)",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[ROUNDS - 1].as_secs_f64() * 1e3,
        mib(text.len()) / median.as_secs_f64()
    );
    println!(
        "  memory: peak heap while parsing {:.2} MiB, Config retained {:.2} MiB",
        mib(peak),
        mib(retained)
    );
}
