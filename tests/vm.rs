// SPDX-License-Identifier: GPL-2.0-or-later
//! Real-kernel suites: each test here boots Debian's kernel (which has IPVS)
//! in a VM once, runs one whole guest-side test binary inside it as root,
//! and fails when that suite fails or runs no test at all.
//!
//! Guest-side suites are ordinary integration-test files whose tests are all
//! `#[ignore]` (so the host, which has no IPVS, never runs them); here they
//! run with `--ignored --test-threads=1`. Adding a suite is one more
//! `#[test]` calling [`run_suite_in_vm`].
//!
//! Needs root and the packages from `tests/setup/install.sh`; there is no
//! skip: if the VM cannot start, the test fails and says why. See
//! `tests/vm/README.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Boot budget plus the suite's own run time, under software emulation.
const VM_TIMEOUT_SECS: u32 = 1200;

#[test]
fn daemon_suite_in_vm() {
    run_suite_in_vm("daemon_kernel", &[]);
}

/// The load-balancer lab (`tests/daemon_lab.rs`): real nginx reals and a
/// client in network namespaces, NAT and DR. Three VMs, each within the
/// budget on a loaded 2-core machine: each failure schedule side by side
/// with the Perl ldirectord (about 9-10 min of guest time each when the host
/// is busy; both in one VM took 1177 s), and everything else (failurecount,
/// reload, kill -9). `LDIRECTOR_LAB_FILTER` (libtest filter words) replaces
/// the selection while developing.
#[test]
fn daemon_lab_suite_in_vm() {
    run_lab_in_vm(&["--skip", "schedule_matches_ldirectord"]);
}

#[test]
fn daemon_lab_quiescent_side_by_side_in_vm() {
    run_lab_in_vm(&["quiescent_cleanstop_schedule_matches_ldirectord"]);
}

#[test]
fn daemon_lab_removing_side_by_side_in_vm() {
    run_lab_in_vm(&[
        "removing_no_cleanstop_schedule_matches_ldirectord",
        "reload_and_restart_schedule_matches_ldirectord",
    ]);
}

fn run_lab_in_vm(selection: &[&str]) {
    // --nocapture: the lab's progress lines (elapsed time per checkpoint)
    // show where a run spends its time.
    let mut args = vec!["--nocapture"];
    let filter = std::env::var("LDIRECTOR_LAB_FILTER").unwrap_or_default();
    if filter.trim().is_empty() {
        args.extend_from_slice(selection);
    } else {
        args.extend(filter.split_whitespace());
    }
    run_suite_in_vm("daemon_lab", &args);
}

#[test]
fn daemon_features_suite_in_vm() {
    let filters: Vec<String> = std::env::var("LDIRECTOR_VM_FILTER")
        .map(|f| f.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
    run_suite_in_vm("daemon_features", &filters);
}

#[test]
fn ocf_agent_suite_in_vm() {
    // The agent driven directly and by ocf-tester against the real table.
    run_suite_in_vm(
        "ocf_agent",
        &[
            "lifecycle_programs_and_cleans_the_kernel_table",
            "monitor_fails_when_the_kernel_table_lost_a_virtual_service",
            "deep_monitor_reports_an_invalid_config_on_disk_as_degraded",
            "stop_cleans_up_when_the_config_file_is_gone",
            "the_agent_owns_its_vip",
            "ocf_tester_passes",
        ],
    );
}

// Real corosync + Pacemaker driving the agent. Under software emulation a
// Pacemaker stack takes minutes to settle, so each cluster test gets its own
// VM and budget.

#[test]
fn ocf_one_node_cluster_in_vm() {
    run_suite_in_vm(
        "ocf_agent",
        &[
            "one_node_cluster_starts_recovers_and_stops_the_director",
            // Streams the script's progress, so a timeout shows how far it got.
            "--nocapture",
        ],
    );
}

/// Two Pacemaker stacks in one guest: more memory, and more time (on a
/// loaded 2-core host one guest run took 1108 s, most of it Pacemaker
/// starting twice and moving the group under emulation).
#[test]
fn ocf_two_node_failover_in_vm() {
    run_suite_in_vm_with(
        "ocf_agent",
        &[
            "two_node_cluster_fails_over_with_traffic_and_synced_connections",
            // Streams the script's progress and shows the FAILOVER-RESULT
            // figures, which this suite exists to produce.
            "--nocapture",
        ],
        2048,
        1800,
    );
}

/// The IPVS codec against the real kernel (`tests/ipvs_kernel.rs` boots its
/// own VM). Its boot test is `#[ignore]`d there and run from here, in this
/// binary's pool of parallel boots: cargo runs test binaries one after
/// another, so a boot on its own left the other core idle for minutes.
#[test]
fn ipvs_kernel_suite_in_vm() {
    run_host_harness("ipvs_kernel", "ipvs_kernel_suite");
}

/// `ipvs-ls` against `ipvsadm` on the real kernel (`tests/ipvs_ls_kernel.rs`
/// boots its own VM), run from here for the same reason.
#[test]
fn ipvs_ls_kernel_in_vm() {
    run_host_harness(
        "ipvs_ls_kernel",
        "ipvs_ls_output_is_ipvsadm_output_on_the_real_kernel",
    );
}

/// Runs the `#[ignore]`d host-side test `test` of `tests/<binary_name>.rs`,
/// which boots its own VM, and panics unless it passed.
fn run_host_harness(binary_name: &str, test: &str) {
    let binary = locate_test_binary(binary_name);
    let output = Command::new(&binary)
        .args(["--ignored", "--exact", test, "--nocapture"])
        .current_dir(manifest_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("===== {binary_name}: stdout =====\n{stdout}");
    println!("===== {binary_name}: stderr =====\n{stderr}");
    assert!(
        output.status.success(),
        "{binary_name} {test} failed (status {:?}); output above",
        output.status.code()
    );
    // The harness prints the guest's libtest output too: its own summary
    // is the last one.
    let own_summary = stdout
        .lines()
        .rfind(|l| l.starts_with("test result: "))
        .unwrap_or_default();
    assert_eq!(
        tests_run(own_summary),
        1,
        "{binary_name} did not run {test}; output above"
    );
}

/// Guest memory for most suites; the cluster suite runs two Pacemaker
/// stacks and asks for more.
const DEFAULT_MEMORY_MB: u32 = 1024;

/// Builds (if needed) and locates the integration-test binary
/// `test_binary_name` (a file `tests/<name>.rs`), runs it in a fresh VM with
/// `--ignored --test-threads=1` followed by `args`, prints the guest's
/// output, and panics unless the suite passed with at least one test run.
fn run_suite_in_vm(test_binary_name: &str, args: &[&str]) {
    run_suite_in_vm_with(test_binary_name, args, DEFAULT_MEMORY_MB, VM_TIMEOUT_SECS);
}

/// [`run_suite_in_vm`] with `memory_mb` of guest memory and a VM budget of
/// `timeout_secs`.
fn run_suite_in_vm_with(test_binary_name: &str, args: &[&str], memory_mb: u32, timeout_secs: u32) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the VM suites need root (the guest runs over the host's root filesystem and \
         IPVS needs CAP_NET_ADMIN): run `sudo cargo test --test vm`, after \
         `sudo bash tests/setup/install.sh`"
    );
    let binary = locate_test_binary(test_binary_name);
    let outdir = fresh_outdir(test_binary_name);

    let output = Command::new("bash")
        .arg(manifest_dir().join("tests/vm/run.sh"))
        .arg("--timeout")
        .arg(timeout_secs.to_string())
        .arg("--memory")
        .arg(memory_mb.to_string())
        .arg(&outdir)
        .arg("--")
        .args(["env", "RUST_BACKTRACE=1"])
        // Guest suites that keep logs (the cluster scripts) write them here,
        // the only folder the guest can write to the host.
        .arg(format!("LDIRECTOR_VM_OUTDIR={}", outdir.display()))
        .arg(&binary)
        .args(["--ignored", "--test-threads=1"])
        .args(args)
        .current_dir(manifest_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run tests/vm/run.sh: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Shown by the test harness when the test fails, or with --nocapture.
    println!("===== {test_binary_name} in the VM: stdout =====\n{stdout}");
    println!("===== {test_binary_name} in the VM: stderr =====\n{stderr}");

    let code = output.status.code();
    assert!(
        code != Some(125) && code != Some(124),
        "the VM for suite {test_binary_name} did not run it (status {code:?}); \
         reason above, console log in {}",
        outdir.join("console.log").display()
    );
    assert!(
        output.status.success(),
        "suite {test_binary_name} failed in the VM (status {code:?}); output above"
    );
    let ran = tests_run(&stdout);
    assert!(
        ran > 0,
        "suite {test_binary_name} ran no test in the VM (are its tests #[ignore]d \
         and does the filter {args:?} match any?)"
    );
}

/// Number of tests that passed, summed over libtest's `test result:` lines.
fn tests_run(libtest_stdout: &str) -> u64 {
    libtest_stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: "))
        .filter_map(|rest| {
            let passed = rest.split(';').next()?.trim();
            // "ok. 3 passed" / "FAILED. 2 passed"
            passed
                .rsplit_once(". ")?
                .1
                .strip_suffix(" passed")?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A new, empty folder under the target dir (which the guest can see) that
/// no concurrent run shares.
fn fresh_outdir(suite: &str) -> PathBuf {
    // Several tests here boot the same suite (the lab's three selections,
    // the agent's two) and libtest runs them in parallel: each boot needs
    // its own folder, or one run clears the other's results.
    static BOOTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let boot = BOOTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile_dir = profile_dir();
    let dir = profile_dir
        .join("vm-runs")
        .join(format!("{suite}-{}-{boot}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot clear {}: {e}", dir.display()));
    }
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// `target/<profile>`, from this test binary's own path
/// (`target/<profile>/deps/vm-<hash>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("unexpected test binary path {}", exe.display()))
}

/// Asks cargo for the test binary, building it with the profile this test
/// binary was built with, so the guest never runs a stale build.
fn locate_test_binary(name: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let profile = profile_dir()
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .expect("profile dir name");
    let mut cmd = Command::new(cargo);
    cmd.args(["test", "--test", name, "--no-run", "--message-format=json"])
        .current_dir(manifest_dir());
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build test {name}: {e}"));
    assert!(
        output.status.success(),
        "cargo test --test {name} --no-run failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| {
            msg["reason"] == "compiler-artifact"
                && msg["target"]["name"] == name
                && msg["target"]["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k == "test"))
        })
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo built no test executable named {name}"))
}

#[test]
fn counts_tests_from_libtest_summaries() {
    let out = "running 2 tests\ntest a ... ok\ntest b ... ok\n\n\
               test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; \
               0 filtered out; finished in 0.01s\n";
    assert_eq!(tests_run(out), 2);
    let none = "running 0 tests\n\ntest result: ok. 0 passed; 0 failed; 3 ignored; \
                0 measured; 0 filtered out; finished in 0.00s\n";
    assert_eq!(tests_run(none), 0);
    assert_eq!(tests_run("garbage"), 0);
}
