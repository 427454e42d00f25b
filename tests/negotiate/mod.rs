// SPDX-License-Identifier: GPL-2.0-or-later
//! Launchers for the real servers the negotiate checker tests run against
//! (exim, dovecot, vsftpd, inn's nnrpd, kamailio, slapd, mariadb,
//! postgresql, freeradius), plus the plumbing they share: private temp
//! dirs, process-group cleanup, readiness waits, free ports, and a runner
//! that probes many cases concurrently and reports every mismatch.
//!
//! Every server is the test's own process, with its own configuration,
//! pid, log and data paths in a temp dir, listening on 127.0.2.x and ::1;
//! it is killed (its whole process group, by the pid the test holds) when
//! the guard drops, panics included. A missing server binary FAILS the
//! test, naming tests/setup/install.sh.

#![allow(dead_code)]

pub mod dovecot;
pub mod exim;
pub mod freeradius;
pub mod kamailio;
pub mod mariadb;
pub mod nnrpd;
pub mod postgres;
pub mod slapd;
pub mod vsftpd;

use std::fs;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ldirector::check::{build_checker, CheckKind, CheckSpec, CheckTarget, Service};

/// How long a server may take to start listening.
const STARTUP_LIMIT: Duration = Duration::from_secs(20);

/// A directory removed (recursively) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "ldirector-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A running server: its process group is terminated on drop.
pub struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
    /// Dropped after the process is gone (field order matters).
    pub dir: TempDir,
}

impl Daemon {
    /// Starts `command` in a new process group, stdout and stderr appended
    /// to `<dir>/<name>.out`.
    pub fn spawn(name: &str, mut command: Command, dir: TempDir) -> Self {
        let program = PathBuf::from(command.get_program());
        require_binary(&program);
        let log = dir.join(&format!("{name}.out"));
        let out = fs::File::create(&log).expect("create daemon output file");
        let err = out.try_clone().expect("clone daemon output file");
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Self {
            name: name.to_owned(),
            child,
            log,
            dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the daemon printed, plus any extra log files, for
    /// failure messages.
    pub fn output(&self) -> String {
        let mut text = String::new();
        let _ = fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// Panics (with the daemon's output) if it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}); output:\n{}",
                self.name,
                self.output()
            );
        }
    }

    /// Waits until `addr` accepts TCP connections.
    pub fn wait_tcp(&mut self, addr: SocketAddr) {
        let start = Instant::now();
        loop {
            self.assert_running();
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if start.elapsed() > STARTUP_LIMIT {
                panic!(
                    "{} not listening on {addr} after {STARTUP_LIMIT:?}; output:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the daemon's output contains `needle` (servers that
    /// only listen on UDP say when they are ready).
    pub fn wait_output(&mut self, needle: &str) {
        let start = Instant::now();
        while !self.output().contains(needle) {
            self.assert_running();
            if start.elapsed() > STARTUP_LIMIT {
                panic!(
                    "{} did not print {needle:?}; output:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until a file (a log line's file, a pid file) exists.
    pub fn wait_file(&mut self, path: &Path) {
        let start = Instant::now();
        while !path.exists() {
            self.assert_running();
            if start.elapsed() > STARTUP_LIMIT {
                panic!(
                    "{} did not create {}; output:\n{}",
                    self.name,
                    path.display(),
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // The group id is the child's pid (process_group(0)): this reaches
        // the daemon's workers too, and nothing else.
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails the test when a server binary is missing.
pub fn require_binary(program: &Path) {
    let found = if program.is_absolute() {
        program.exists()
    } else {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).exists()))
            .unwrap_or(false)
    };
    assert!(
        found,
        "{} is not installed: run tests/setup/install.sh as root",
        program.display()
    );
}

/// A TCP port on `ip` that nothing listens on right now (bound, then
/// released). Connecting to it is refused.
pub fn free_tcp_port(ip: IpAddr) -> u16 {
    TcpListener::bind((ip, 0))
        .expect("bind port 0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A port free for TCP and UDP on both `ip` and ::1 right now, so one
/// server can listen on the same port on both families.
pub fn free_port_both(ip: IpAddr) -> u16 {
    for _ in 0..50 {
        let port = free_tcp_port(ip);
        let v6 = IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
        let free = TcpListener::bind((v6, port)).is_ok()
            && UdpSocket::bind((ip, port)).is_ok()
            && UdpSocket::bind((v6, port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no port free on both {ip} and ::1 after 50 tries");
}

/// ::1, the IPv6 address every server also listens on.
pub fn v6() -> IpAddr {
    IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
}

/// Makes `command` run as the system user `user` (servers that refuse to
/// run as root: postgres, nnrpd).
pub fn run_as(command: &mut Command, user: &str) {
    let user = nix::unistd::User::from_name(user)
        .expect("look up user")
        .unwrap_or_else(|| panic!("system user {user} missing: run tests/setup/install.sh"));
    // With a uid set, std also drops root's supplementary groups.
    command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
}

/// Gives a whole tree to a system user.
pub fn chown_tree(path: &Path, user: &str) {
    chown_to(path, user);
    if path.is_dir() {
        for entry in fs::read_dir(path).expect("read dir") {
            chown_tree(&entry.expect("dir entry").path(), user);
        }
    }
}

/// What a case expects of the check.
#[derive(Debug, Clone)]
pub enum Want {
    Up,
    /// Down with exactly this reason.
    Down(String),
    /// Down with a reason starting with this text (the rest carries
    /// server-specific detail such as timestamps).
    DownStartingWith(String),
}

/// One probe of one server and what it must give.
pub struct Case {
    pub name: String,
    pub spec: CheckSpec,
    pub want: Want,
}

impl Case {
    pub fn up(name: impl Into<String>, spec: CheckSpec) -> Self {
        Self {
            name: name.into(),
            spec,
            want: Want::Up,
        }
    }

    pub fn down(name: impl Into<String>, spec: CheckSpec, reason: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            spec,
            want: Want::Down(reason.into()),
        }
    }

    pub fn down_starting(
        name: impl Into<String>,
        spec: CheckSpec,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            spec,
            want: Want::DownStartingWith(reason.into()),
        }
    }
}

/// Timeout given to every case (checktimeout and negotiatetimeout).
/// Generous: these tests judge verdicts and reasons, not speed, and run on
/// shared, loaded CI cores where a forking server (exim) or a debug-build
/// SCRAM exchange can take seconds. Timeouts themselves are tested with
/// in-process servers that hang.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(20);

/// A negotiate spec for `service` at `addr` with [`CASE_TIMEOUT`].
pub fn spec(service: Service, addr: SocketAddr) -> CheckSpec {
    CheckSpec::new(CheckKind::Negotiate(service), addr).timeouts(CASE_TIMEOUT, CASE_TIMEOUT)
}

/// Runs every case concurrently through `build_checker` (so the wiring
/// in build_negotiate is tested too) and panics listing every case whose
/// result differs, with the server's output for diagnosis.
pub async fn run_cases(cases: Vec<Case>, server_output: impl Fn() -> String) {
    assert!(!cases.is_empty(), "no cases");
    let results = futures::future::join_all(cases.iter().map(|case| async move {
        let checker = build_checker(&case.spec);
        let started = Instant::now();
        let result = checker.check(&case.spec.target).await;
        (result, started.elapsed())
    }))
    .await;
    let mut failures = Vec::new();
    for (case, (result, took)) in cases.iter().zip(results) {
        // Shown with --nocapture: what each check said and how long it took.
        println!(
            "{:>6} ms  {} ({}): {}",
            took.as_millis(),
            case.name,
            case.spec.target.addr,
            match &result {
                Ok(()) => "up".to_owned(),
                Err(err) => format!("down: {err}"),
            }
        );
        let ok = match (&case.want, &result) {
            (Want::Up, Ok(())) => true,
            (Want::Down(reason), Err(err)) => err.to_string() == *reason,
            (Want::DownStartingWith(prefix), Err(err)) => err.to_string().starts_with(prefix),
            _ => false,
        };
        if !ok {
            let got = match &result {
                Ok(()) => "up".to_owned(),
                Err(err) => format!("down: {err}"),
            };
            failures.push(format!(
                "  {} ({}): want {:?}, got {got}",
                case.name, case.spec.target.addr, case.want
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}\nserver output:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        server_output()
    );
}

/// A UDP port on `ip` that nothing listens on right now.
pub fn free_udp_port(ip: IpAddr) -> u16 {
    UdpSocket::bind((ip, 0))
        .expect("bind port 0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// The check target for a real at `addr` (virtual fields are irrelevant
/// to these checkers).
pub fn target(addr: SocketAddr) -> CheckTarget {
    CheckTarget {
        addr,
        virtual_addr: None,
        virtual_port: u32::from(addr.port()),
        real_port: addr.port(),
    }
}

/// A self-signed certificate for `name` (DNS) and `ip` made with the
/// openssl CLI; returns (certificate, key) paths inside `dir`.
pub fn self_signed_cert(dir: &Path, name: &str, ip: IpAddr) -> (PathBuf, PathBuf) {
    require_binary(Path::new("openssl"));
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .arg("-subj")
        .arg(format!("/CN={name}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{name},IP:{ip}"))
        // A server certificate, not a CA: webpki refuses a CA certificate
        // as the end entity when verification is on.
        .arg("-addext")
        .arg("basicConstraints=critical,CA:FALSE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run openssl req");
    assert!(
        status.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    (cert, key)
}

/// Sets the owner of `path` to a system user (servers that drop root
/// privileges must write their spool and logs).
pub fn chown_to(path: &Path, user: &str) {
    let user = nix::unistd::User::from_name(user)
        .expect("look up user")
        .unwrap_or_else(|| panic!("system user {user} missing: run tests/setup/install.sh"));
    nix::unistd::chown(path, Some(user.uid), Some(user.gid)).expect("chown");
}
