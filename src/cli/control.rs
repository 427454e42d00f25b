// SPDX-License-Identifier: GPL-2.0-or-later
//! The ldirectord-compatible actions: start, stop, restart, try-restart,
//! reload, force-reload, status.
//!
//! Same pid file, same exit codes as ldirectord 4.12 (reference, "CLI"),
//! with two deliberate differences: `stop` waits until the daemon has
//! finished its cleanup, and `start` in daemon mode returns only after the
//! first round of checks has been applied to the kernel (or with the reason
//! the daemon could not start), so an init system or the OCF agent never
//! sees "started" for a director that is not directing.

use std::io::BufRead;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{fork, setsid, ForkResult, Pid};

use super::Action;
use crate::config::{self, ConfigError, Parsed, SystemEnvironment};
use crate::daemon::pidfile::{self, PidState};
use crate::daemon::runner::{self, Readiness, RunOptions};
use crate::director::managed::managed_virtuals;

/// Where pid files live (ldirectord's `$RUNPID`).
pub const RUN_DIR: &str = "/var/run";

/// One ldirectord-style invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRequest {
    /// The configuration as named on the command line.
    pub config_name: String,
    pub action: Action,
    pub debug: bool,
    /// `--foreground`: no detaching, for systemd's Type=notify.
    pub foreground: bool,
    pub verify_kernel: bool,
}

/// Runs the action; returns the exit code.
pub fn run(request: ActionRequest) -> i32 {
    let Some(config_path) = config::locate(&request.config_name) else {
        eprintln!("Config file {} not found", request.config_name);
        return 1;
    };
    // ldirectord parses the configuration for every action, so a broken
    // file makes even `stop` and `status` fail: keep that, init scripts
    // and the stock agent expect it.
    let parsed = match config::parse_file(&config_path, &SystemEnvironment::new()) {
        Ok(parsed) => parsed,
        Err(error) => return report_config_error(&error),
    };
    let run_dir = std::env::var_os("LDIRECTORD_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(RUN_DIR));
    let pid_path = pidfile::path_for(&run_dir, &config_path);
    let display = config_path.display().to_string();

    match (request.action, pidfile::read_state(&pid_path)) {
        (Action::Start, PidState::Running(_)) => 0,
        (Action::Stop, PidState::Running(pid)) => stop_and_wait(pid, &pid_path),
        (Action::Restart | Action::TryRestart, PidState::Running(pid)) => {
            match stop_and_wait(pid, &pid_path) {
                0 => start(&request, config_path, parsed, pid_path),
                code => code,
            }
        }
        (Action::Stop | Action::TryRestart, _) => 0,
        (Action::Start | Action::Restart, _) => start(&request, config_path, parsed, pid_path),
        (Action::Reload | Action::ForceReload, PidState::Running(pid)) => {
            match kill(Pid::from_raw(pid), Signal::SIGHUP) {
                Ok(()) => 0,
                Err(error) => {
                    eprintln!("ldirectord: cannot signal pid {pid}: {error}");
                    1
                }
            }
        }
        (Action::Reload | Action::ForceReload, _) => 1,
        (Action::Status, PidState::Running(pid)) => {
            eprintln!("ldirectord for {display} is running with pid: {pid}");
            // The daemon's own view (the config it runs, which a refused
            // reload may have left older than the file), if it answers.
            let socket =
                crate::daemon::control::socket_path(Path::new(runner::SOCKET_DIR), &config_path);
            let report = crate::daemon::control::status(&socket).ok();
            if let Some(report) = &report {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                print!("{}", report.render(now));
            }
            if request.verify_kernel {
                let keys: Vec<crate::ipvs::ServiceKey> = match &report {
                    Some(report) => report.virtuals.iter().map(|v| v.key).collect(),
                    None => managed_virtuals(&parsed.config)
                        .iter()
                        .map(|v| v.service.key)
                        .collect(),
                };
                return runner::verify_kernel(&keys);
            }
            0
        }
        (Action::Status, state) => {
            let code = if state == PidState::Stale {
                eprintln!(
                    "ldirectord stale pid file {} for {display}",
                    pid_path.display()
                );
                1
            } else {
                3
            };
            println!("ldirectord is stopped for {display}");
            code
        }
    }
}

fn report_config_error(error: &ConfigError) -> i32 {
    match error {
        ConfigError::Invalid(diagnostics) => {
            for diagnostic in diagnostics {
                eprintln!("{diagnostic}");
            }
        }
        other => eprintln!("{other}"),
    }
    2
}

/// SIGTERM, then wait until the process is gone and its pid file removed.
/// ldirectord returns at once; we wait, because "stopped" must mean the
/// cleanup (cleanstop) is done when a cluster manager moves the VIP on.
fn stop_and_wait(pid: i32, pid_path: &Path) -> i32 {
    let pid = Pid::from_raw(pid);
    if let Err(error) = kill(pid, Signal::SIGTERM) {
        if error != nix::errno::Errno::ESRCH {
            eprintln!("ldirectord: cannot signal pid {pid}: {error}");
            return 1;
        }
    }
    let patience = std::env::var("LDIRECTORD_STOP_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(120));
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        let alive = kill(pid, None).is_ok() && pidfile::read_state(pid_path) != PidState::Absent;
        if !alive {
            return 0;
        }
        sleep(Duration::from_millis(50));
    }
    eprintln!(
        "ldirectord: pid {pid} did not finish its cleanup within {}s",
        patience.as_secs()
    );
    1
}

fn start(request: &ActionRequest, config_path: PathBuf, parsed: Parsed, pid_path: PathBuf) -> i32 {
    let foreground = request.debug || request.foreground || parsed.config.global.supervised();
    let options = RunOptions {
        config_path,
        config_name: config::config_name(&request.config_name).to_owned(),
        debug: request.debug,
        foreground,
        pid_path,
    };
    if foreground {
        return runner::run(options, parsed, Readiness::systemd());
    }
    daemonize_and_run(options, parsed)
}

/// Double fork and setsid, as ldirectord does, with a pipe back to the
/// invoking process: it exits 0 once the daemon reports ready, or 1 with
/// the daemon's reason.
fn daemonize_and_run(options: RunOptions, parsed: Parsed) -> i32 {
    // Close-on-exec: programs the daemon spawns before it is ready (an
    // `execute=` instance, which daemonizes itself; external checks) must
    // not inherit the write end, or this side would wait for their exit.
    let (read_end, write_end) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(pair) => pair,
        Err(error) => {
            eprintln!("ldirectord: cannot create a pipe: {error}");
            return 1;
        }
    };
    // SAFETY: no other thread exists yet (the runtime starts in the
    // daemon), so the child may run arbitrary code after fork.
    match unsafe { fork() } {
        Err(error) => {
            eprintln!("ldirectord: fork failed: {error}");
            1
        }
        Ok(ForkResult::Parent { .. }) => {
            drop(write_end);
            wait_for_readiness(read_end)
        }
        Ok(ForkResult::Child) => {
            drop(read_end);
            let _ = setsid();
            // SAFETY: as above, still single-threaded.
            match unsafe { fork() } {
                Ok(ForkResult::Parent { .. }) => std::process::exit(0),
                Err(_) => std::process::exit(1),
                Ok(ForkResult::Child) => {}
            }
            let _ = std::env::set_current_dir("/");
            redirect_stdio_to_null();
            let code = runner::run(options, parsed, Readiness::pipe(write_end));
            std::process::exit(code);
        }
    }
}

fn wait_for_readiness(read_end: OwnedFd) -> i32 {
    // One line is the whole message: "ready", or the reason it failed.
    let mut pipe = std::io::BufReader::new(std::fs::File::from(read_end));
    let mut message = String::new();
    let _ = pipe.read_line(&mut message);
    match message.lines().next() {
        Some("ready") => 0,
        Some(reason) if !reason.is_empty() => {
            eprintln!("ldirectord: {reason}");
            1
        }
        _ => {
            eprintln!("ldirectord: the daemon exited before it was ready (see the log)");
            1
        }
    }
}

fn redirect_stdio_to_null() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for target in 0..=2 {
            // SAFETY: dup2 onto the standard descriptors.
            unsafe {
                libc::dup2(null.as_raw_fd(), target);
            }
        }
    }
}
