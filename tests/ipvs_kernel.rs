// SPDX-License-Identifier: GPL-2.0-or-later
//! Guest-side IPVS kernel suite (placeholder until the IPVS client's real
//! suite lands). Runs only inside the VM, started by `tests/vm.rs`:
//! every test is `#[ignore]` so a plain `cargo test` on the host (which has
//! no IPVS) does not run it.

use std::path::Path;
use std::process::Command;

fn ipvsadm(args: &[&str]) -> String {
    let out = Command::new("ipvsadm")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ipvsadm {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ipvsadm {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs the IPVS kernel: runs in the VM via tests/vm.rs"]
fn kernel_has_ipvs_and_ipvsadm_round_trips_a_service() {
    assert!(
        Path::new("/proc/net/ip_vs").exists(),
        "/proc/net/ip_vs is missing: this kernel has no IPVS (run inside the VM: cargo test --test vm)"
    );
    ipvsadm(&["-C"]);
    ipvsadm(&["-A", "-t", "10.0.0.1:80", "-s", "rr"]);
    let listing = ipvsadm(&["-Ln"]);
    assert!(
        listing.lines().any(|l| l == "TCP  10.0.0.1:80 rr"),
        "service missing from ipvsadm -Ln:\n{listing}"
    );
    ipvsadm(&["-C"]);
    let listing = ipvsadm(&["-Ln"]);
    assert!(
        !listing.contains("10.0.0.1:80"),
        "ipvsadm -C left the service behind:\n{listing}"
    );
}
