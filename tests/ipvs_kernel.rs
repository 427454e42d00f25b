// SPDX-License-Identifier: GPL-2.0-or-later
//! The IPVS client against the real kernel, with ipvsadm as the oracle.
//!
//! This machine's kernel has no IPVS, so `ipvs_kernel_suite` boots
//! Debian's kernel once in a VM (`tests/vm/run.sh`) and runs itself inside
//! with `LDIRECTOR_VM_GUEST=1`; there it runs every case of
//! `ipvs_kernel/cases.rs` in turn, and fails if any fails. On the host it
//! fails if the VM cannot start, if the guest suite fails, or if the guest
//! ran no case. Needs root and `tests/setup/install.sh`.
//!
//! `LDIRECTOR_IPVS_CASES=word,word` runs only the cases whose name
//! contains one of the words (while working on one).
//! The guest writes raw kernel replies to `<outdir>/captures`; copy them to
//! `src/ipvs/tests/captures/` to refresh the codec's fixtures.

#[path = "support_vm/mod.rs"]
mod support_vm;

#[path = "ipvs_kernel/capture.rs"]
mod capture;
#[path = "ipvs_kernel/cases.rs"]
mod cases;
#[path = "ipvs_kernel/lab.rs"]
mod lab;
#[path = "ipvs_kernel/oracle.rs"]
mod oracle;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Boot plus the suite under software emulation, on a loaded machine.
const VM_TIMEOUT_SECS: u32 = 900;

const SUMMARY_PREFIX: &str = "ipvs guest suite:";

#[test]
#[ignore = "boots a VM: run from tests/vm.rs (ipvs_kernel_suite_in_vm), or here with --ignored"]
fn ipvs_kernel_suite() {
    if support_vm::in_guest() {
        run_guest_suite();
        return;
    }
    let run = support_vm::run_this_test_in_vm("ipvs_kernel_suite", VM_TIMEOUT_SECS);
    run.assert_passed();
    let summary = run
        .stdout
        .lines()
        .find(|l| l.starts_with(SUMMARY_PREFIX))
        .unwrap_or_else(|| panic!("the guest printed no summary:\n{}", run.stdout));
    assert!(
        summary.contains(" 0 failed") && !summary.contains(" 0 cases"),
        "{summary}"
    );
    println!(
        "{summary}; VM wall time {:.1}s; captures in {}",
        run.wall.as_secs_f64(),
        run.outdir.join("captures").display()
    );
}

fn run_guest_suite() {
    let lab = lab::Lab::new(support_vm::guest_outdir());
    let filter: Vec<String> = std::env::var("LDIRECTOR_IPVS_CASES")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let mut failed = Vec::new();
    let mut ran = 0;
    let suite_start = Instant::now();
    for (name, case) in cases::CASES {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        println!("case {name} ...");
        let start = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            lab.flush();
            case(&lab);
        }));
        let secs = start.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("case {name} ... ok ({secs:.1}s)"),
            Err(_) => {
                println!("case {name} ... FAILED ({secs:.1}s)");
                failed.push(*name);
            }
        }
    }
    println!(
        "{SUMMARY_PREFIX} {ran} cases, {} failed ({:.1}s){}",
        failed.len(),
        suite_start.elapsed().as_secs_f64(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(": {}", failed.join(", "))
        }
    );
    assert!(ran > 0, "no case matches LDIRECTOR_IPVS_CASES={filter:?}");
    assert!(
        failed.is_empty(),
        "failed cases: {failed:?} (messages above)"
    );
}

#[test]
fn libtest_summaries_are_counted() {
    let out = "running 2 tests\ntest a ... ok\ntest b ... ok\n\n\
               test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; \
               0 filtered out; finished in 0.01s\n";
    assert_eq!(support_vm::libtest_passed(out), 2);
    let none = "running 0 tests\n\ntest result: ok. 0 passed; 0 failed; 3 ignored; \
                0 measured; 0 filtered out; finished in 0.00s\n";
    assert_eq!(support_vm::libtest_passed(none), 0);
    assert_eq!(support_vm::libtest_passed("garbage"), 0);
}
