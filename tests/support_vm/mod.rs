// SPDX-License-Identifier: GPL-2.0-or-later
//! Host side of the real-kernel harness, for integration tests that need
//! IPVS (which this machine's kernel lacks). A test boots Debian's kernel
//! ONCE through `tests/vm/run.sh`, runs a whole suite inside, and reads the
//! results back. See `tests/vm/README.md`.
//!
//! The usual shape is one `#[test]` that is both sides:
//!
//! ```ignore
//! #[path = "support_vm/mod.rs"]
//! mod support_vm;
//!
//! #[test]
//! fn my_suite() {
//!     if support_vm::in_guest() {
//!         run_every_case(); // panics if one fails
//!     } else {
//!         support_vm::run_this_test_in_vm("my_suite", 900).assert_passed();
//!     }
//! }
//! ```
//!
//! There is no skip: without root, without the VM packages, or when the VM
//! does not start, the test fails and says why.
#![allow(dead_code)] // each test binary uses a different part

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Set (to `1`) in the guest for the command `run_this_test_in_vm` starts.
pub const GUEST_ENV: &str = "LDIRECTOR_VM_GUEST";
/// The guest's writable folder, shared with the host (`OUTDIR` of run.sh).
pub const OUTDIR_ENV: &str = "LDIRECTOR_VM_OUTDIR";

/// Whether this process runs inside the VM on behalf of a host test.
pub fn in_guest() -> bool {
    std::env::var_os(GUEST_ENV).is_some_and(|v| v == "1")
}

/// In the guest: the folder whose files the host reads after the run.
pub fn guest_outdir() -> PathBuf {
    PathBuf::from(
        std::env::var_os(OUTDIR_ENV)
            .unwrap_or_else(|| panic!("{OUTDIR_ENV} is not set: not started by run_in_vm")),
    )
}

/// What a VM run left behind.
#[derive(Debug)]
pub struct VmRun {
    pub name: String,
    /// The guest command's exit status; 124 = timeout, 125 = the VM or
    /// the guest set-up failed (run.sh's convention).
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Files the guest wrote (and `console.log`, the kernel's console).
    pub outdir: PathBuf,
    /// Host wall time from start to power-off.
    pub wall: Duration,
}

impl VmRun {
    /// Panics unless the VM ran the command and it exited 0. The message
    /// carries the reason: the VM's, or the command's own output.
    pub fn assert_success(&self) {
        let console = self.outdir.join("console.log");
        match self.status {
            Some(0) => {}
            Some(124) => panic!(
                "VM run {}: timed out; output:\n{}\n{}\nconsole log: {}",
                self.name,
                self.stdout,
                self.stderr,
                console.display()
            ),
            Some(125) => panic!(
                "VM run {}: the VM did not run the command:\n{}\nconsole log: {}",
                self.name,
                self.stderr,
                console.display()
            ),
            other => panic!(
                "VM run {}: the guest command failed (status {other:?}):\n\
                 ----- stdout -----\n{}\n----- stderr -----\n{}",
                self.name, self.stdout, self.stderr
            ),
        }
    }

    /// For runs of a libtest binary (`run_this_test_in_vm`): the command
    /// succeeded AND libtest reported at least one passed test, so a
    /// filter that matches nothing is a failure, not a silent pass.
    pub fn assert_passed(&self) {
        self.assert_success();
        let passed = libtest_passed(&self.stdout);
        assert!(
            passed > 0,
            "VM run {}: the guest ran no test (filter matched nothing?):\n{}",
            self.name,
            self.stdout
        );
    }
}

/// Runs `command` as root in a fresh VM (Debian's kernel, IPVS and every
/// scheduler module loaded) through `tests/vm/run.sh`, in the project's
/// folder. `env` is set for the command in the guest, plus `OUTDIR_ENV`.
/// Needs root on the host; panics with the reason if it cannot even try.
pub fn run_in_vm(
    name: &str,
    timeout_secs: u32,
    env: &[(&str, &str)],
    command: &[OsString],
) -> VmRun {
    assert!(
        nix::unistd::geteuid().is_root(),
        "VM run {name}: needs root (the guest runs over the host's root \
         filesystem, and IPVS needs CAP_NET_ADMIN); run the tests as root, \
         after `bash tests/setup/install.sh`"
    );
    let outdir = fresh_outdir(name);
    let mut guest_command: Vec<OsString> = vec!["env".into()];
    guest_command.push(format!("{OUTDIR_ENV}={}", outdir.display()).into());
    for (key, value) in env {
        guest_command.push(format!("{key}={value}").into());
    }
    guest_command.extend(command.iter().cloned());

    let started = Instant::now();
    let output = Command::new("bash")
        .arg(manifest_dir().join("tests/vm/run.sh"))
        .arg("--timeout")
        .arg(timeout_secs.to_string())
        .arg(&outdir)
        .arg("--")
        .args(&guest_command)
        .current_dir(manifest_dir())
        .output()
        .unwrap_or_else(|e| panic!("VM run {name}: cannot run tests/vm/run.sh: {e}"));
    let run = VmRun {
        name: name.to_string(),
        status: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        outdir,
        wall: started.elapsed(),
    };
    // Shown by libtest when the test fails, or with --nocapture.
    println!(
        "===== VM run {name}: status {:?}, {:.1}s wall =====\n{}\n===== stderr =====\n{}",
        run.status,
        run.wall.as_secs_f64(),
        run.stdout,
        run.stderr
    );
    run
}

/// Runs the calling test binary's test `test_name` (exact name, with its
/// module path) in a VM, with `GUEST_ENV=1`, single-threaded and with
/// output shown. Variables named `LDIRECTOR_*` pass through to the guest
/// (for case filters and the like).
pub fn run_this_test_in_vm(test_name: &str, timeout_secs: u32) -> VmRun {
    let exe = std::env::current_exe().expect("current_exe");
    let passthrough: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("LDIRECTOR_") && k != GUEST_ENV && k != OUTDIR_ENV)
        .collect();
    let mut env: Vec<(&str, &str)> = vec![(GUEST_ENV, "1"), ("RUST_BACKTRACE", "1")];
    env.extend(passthrough.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let command: Vec<OsString> = vec![
        exe.into(),
        "--exact".into(),
        test_name.into(),
        // The boot tests are #[ignore]d on the host (tests/vm.rs runs them).
        "--include-ignored".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ];
    run_in_vm(test_name, timeout_secs, &env, &command)
}

/// Number of passed tests over libtest's `test result:` lines.
pub fn libtest_passed(stdout: &str) -> u64 {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: "))
        .filter_map(|rest| {
            // "ok. 3 passed; 0 failed; ..." / "FAILED. 2 passed; ..."
            let passed = rest.split(';').next()?.trim();
            passed
                .rsplit_once(". ")?
                .1
                .strip_suffix(" passed")?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>/vm-runs/<name>-<pid>`: visible in the guest (unlike
/// /var/tmp), private to this run, kept afterwards for inspection.
fn fresh_outdir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("unexpected test binary path {}", exe.display()));
    let dir = profile_dir
        .join("vm-runs")
        .join(format!("{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot clear {}: {e}", dir.display()));
    }
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}
