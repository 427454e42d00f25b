// SPDX-License-Identifier: GPL-2.0-or-later
//! Guest-side suite for the daemon's integrations: systemd notification
//! (`--foreground`, Type=notify), standalone VIP ownership
//! (`vipinterface=`), `execute=` instances, the `callback` on a config
//! change, and `emailalertfreq` resends.
//!
//! Runs only inside the VM (`tests/vm.rs`, which has IPVS); every test is
//! `#[ignore]` so the host never runs it. The reals use `checktype=on` or
//! `off`: these tests are about the daemon around the checks.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LDIRECTORD: &str = env!("CARGO_BIN_EXE_ldirectord");

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} {args:?}: {e}"))
}

fn ipvsadm_list() -> String {
    let out = run("ipvsadm", &["-Ln"]);
    assert!(out.status.success(), "ipvsadm -Ln failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {}s waiting for {what}", limit.as_secs());
}

/// A scratch directory per test: configs, pid files, logs.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ldir-feat-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }

    fn ldirectord(&self, config: &Path, args: &[&str]) -> Output {
        Command::new(LDIRECTORD)
            .arg(config)
            .args(args)
            .env("LDIRECTORD_RUN_DIR", &self.dir)
            .output()
            .expect("run ldirectord")
    }
}

/// A foreground daemon, stopped (TERM, then KILL) and reaped by pid on drop.
struct Foreground {
    child: Child,
}

impl Foreground {
    /// `ldirectord --foreground CONFIG start`, as systemd runs it, notifying
    /// on `notify_socket`.
    fn start(scratch: &Scratch, config: &Path, notify_socket: &Path) -> Foreground {
        Foreground {
            child: Command::new(LDIRECTORD)
                .arg("--foreground")
                .arg(config)
                .arg("start")
                .env("NOTIFY_SOCKET", notify_socket)
                .env("LDIRECTORD_RUN_DIR", &scratch.dir)
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn ldirectord --foreground"),
        }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        self.child.wait().expect("wait")
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn config(scratch: &Scratch, vip: &str, extra_global: &str, check: &str) -> String {
    format!(
        "checkinterval=1\nchecktimeout=3\nquiescent=yes\ncleanstop=yes\nlogfile=\"{}\"\n{extra_global}\
         virtual={vip}:80\n\treal=10.20.1.1:80 masq 1\n\tchecktype={check}\n\tscheduler=rr\n\n",
        scratch.path("daemon.log").display()
    )
}

/// The next datagram from systemd's side of the notify socket.
fn next_notification(socket: &UnixDatagram) -> String {
    let mut buffer = [0u8; 512];
    let n = socket
        .recv(&mut buffer)
        .expect("a notification before the socket's read timeout");
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

#[test]
#[ignore = "needs IPVS: runs in the VM via tests/vm.rs"]
fn foreground_daemon_notifies_systemd_of_ready_reload_and_stop() {
    let scratch = Scratch::new("notify");
    let config_path = scratch.write("notify.cf", &config(&scratch, "10.20.0.1", "", "on"));
    let socket_path = scratch.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut daemon = Foreground::start(&scratch, &config_path, &socket_path);

    // READY=1 only once the table is programmed.
    assert_eq!(next_notification(&socket), "READY=1", "{}", scratch.log());
    let listing = ipvsadm_list();
    assert!(
        listing.contains("10.20.0.1:80") && listing.contains("10.20.1.1:80"),
        "READY=1 before the table was programmed:\n{listing}"
    );
    // The pid file names the foreground process (`ldirectord reload` and
    // the OCF agent find it there).
    let pid_file = scratch.path("ldirectord.notify.cf.pid");
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(pid.trim(), daemon.child.id().to_string());

    let reload = scratch.ldirectord(&config_path, &["reload"]);
    assert!(reload.status.success(), "{:?}", reload);
    let reloading = next_notification(&socket);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    assert_eq!(next_notification(&socket), "READY=1");

    let status = daemon.terminate();
    assert!(status.success(), "exit status {status}\n{}", scratch.log());
    assert_eq!(next_notification(&socket), "STOPPING=1");
    assert!(
        !ipvsadm_list().contains("10.20.0.1:80"),
        "cleanstop=yes left the service"
    );
    assert!(!pid_file.exists(), "pid file left behind");
}

/// A HUP or TERM that arrives while the first round of checks runs is
/// queued, not fatal: the daemon installs its handlers before it writes the
/// pid file. The first round is made slow by an external check that sleeps.
#[test]
#[ignore = "needs IPVS: runs in the VM via tests/vm.rs"]
fn signals_during_the_first_round_are_queued() {
    use std::os::unix::fs::PermissionsExt as _;
    let scratch = Scratch::new("early-signals");
    let slow = scratch.write("slow-check.sh", "#!/bin/sh\nsleep 2\nexit 0\n");
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let check = format!("external\n\tcheckcommand=\"{}\"", slow.display());
    let config_path = scratch.write("early.cf", &config(&scratch, "10.20.0.4", "", &check));
    let socket_path = scratch.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let spawn = || Foreground::start(&scratch, &config_path, &socket_path);
    let started = |daemon: &Foreground| {
        let line = format!("with pid: {}", daemon.child.id());
        wait_for("the start line", Duration::from_secs(60), || {
            scratch.log().contains(&line)
        });
    };
    let signal = |daemon: &Foreground, name: &str| {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &daemon.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    };

    // HUP during the first round: the daemon starts, then reloads.
    let mut daemon = spawn();
    started(&daemon);
    signal(&daemon, "HUP");
    assert_eq!(next_notification(&socket), "READY=1", "{}", scratch.log());
    let reloading = next_notification(&socket);
    assert!(
        reloading.starts_with("RELOADING=1"),
        "the early HUP was lost: {reloading:?}\n{}",
        scratch.log()
    );
    assert_eq!(next_notification(&socket), "READY=1");
    assert!(
        matches!(daemon.child.try_wait(), Ok(None)),
        "the daemon died:\n{}",
        scratch.log()
    );
    assert!(daemon.terminate().success(), "{}", scratch.log());
    assert_eq!(next_notification(&socket), "STOPPING=1");

    // TERM during the first round: a normal stop, cleanup included.
    let mut daemon = spawn();
    started(&daemon);
    signal(&daemon, "TERM");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            break status;
        }
        assert!(Instant::now() < deadline, "TERM during start ignored");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "TERM during start: {status}\n{}",
        scratch.log()
    );
    assert!(
        !ipvsadm_list().contains("10.20.0.4:80"),
        "the stop during start left the service:\n{}",
        ipvsadm_list()
    );
    assert!(
        !scratch.path("ldirectord.early.cf.pid").exists(),
        "pid file left behind"
    );
}

/// A veth pair in the guest, deleted by name on drop.
struct Veth {
    name: String,
}

impl Veth {
    fn new(name: &str) -> Veth {
        let peer = format!("{name}p");
        let _ = run("ip", &["link", "del", name]);
        let out = run(
            "ip",
            &["link", "add", name, "type", "veth", "peer", "name", &peer],
        );
        assert!(out.status.success(), "ip link add: {:?}", out);
        for link in [name, peer.as_str()] {
            let out = run("ip", &["link", "set", link, "up"]);
            assert!(out.status.success(), "ip link set {link} up: {:?}", out);
        }
        Veth {
            name: name.to_owned(),
        }
    }

    fn addresses(&self) -> String {
        String::from_utf8_lossy(&run("ip", &["-o", "addr", "show", "dev", &self.name]).stdout)
            .into_owned()
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &self.name]);
    }
}

#[test]
#[ignore = "needs IPVS: runs in the VM via tests/vm.rs"]
fn standalone_vip_is_owned_while_running_and_released_at_stop() {
    let veth = Veth::new("ldfvip0");
    let scratch = Scratch::new("vip");
    let config_path = scratch.write(
        "vip.cf",
        &config(
            &scratch,
            "10.20.0.2",
            "vipinterface=ldfvip0\nvipannouncecount=2\n",
            "on",
        ),
    );
    let out = scratch.ldirectord(&config_path, &["start"]);
    assert!(out.status.success(), "start: {:?}\n{}", out, scratch.log());
    let addresses = veth.addresses();
    assert!(
        addresses.contains("inet 10.20.0.2/32"),
        "VIP not on the interface:\n{addresses}\n{}",
        scratch.log()
    );
    assert!(ipvsadm_list().contains("10.20.0.2:80"));

    let out = scratch.ldirectord(&config_path, &["stop"]);
    assert!(out.status.success(), "stop: {:?}", out);
    let addresses = veth.addresses();
    assert!(
        !addresses.contains("10.20.0.2"),
        "VIP left on the interface after stop:\n{addresses}"
    );
}

#[test]
#[ignore = "needs IPVS: runs in the VM via tests/vm.rs"]
fn a_vip_that_cannot_be_owned_fails_the_start_with_the_reason() {
    let scratch = Scratch::new("vipbad");
    let config_path = scratch.write(
        "vipbad.cf",
        &config(&scratch, "10.20.0.3", "vipinterface=ldfmissing0\n", "on"),
    );
    let out = scratch.ldirectord(&config_path, &["start"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot own VIP 10.20.0.3/32 on ldfmissing0"),
        "{stderr}"
    );
    assert!(
        !ipvsadm_list().contains("10.20.0.3:80"),
        "a failed start programmed the table"
    );
}

#[test]
#[ignore = "needs IPVS: runs in the VM via tests/vm.rs"]
fn execute_instances_follow_and_callback_runs_on_change() {
    let scratch = Scratch::new("exec");
    let child_config = scratch.write("child.cf", &config(&scratch, "10.20.0.5", "", "on"));
    let callback_log = scratch.path("callback.out");
    let callback = scratch.write(
        "callback.sh",
        &format!("#!/bin/sh\necho \"$1\" >> {}\n", callback_log.display()),
    );
    run("chmod", &["755", &callback.display().to_string()]);
    let parent_text = config(
        &scratch,
        "10.20.0.4",
        &format!(
            "execute={}\ncallback=\"{}\"\n",
            child_config.display(),
            callback.display()
        ),
        "on",
    );
    let parent_config = scratch.write("parent.cf", &parent_text);

    let out = scratch.ldirectord(&parent_config, &["start"]);
    assert!(out.status.success(), "start: {:?}\n{}", out, scratch.log());
    let listing = ipvsadm_list();
    assert!(listing.contains("10.20.0.4:80"), "{listing}");
    assert!(
        listing.contains("10.20.0.5:80"),
        "the execute= instance is not directing:\n{listing}\n{}",
        scratch.log()
    );
    assert!(scratch.path("ldirectord.child.cf.pid").exists());

    // A real change of the bytes runs the callback with the config path
    // (autoreload is off: the running config stays).
    std::fs::write(&parent_config, format!("{parent_text}# edited\n")).expect("edit");
    wait_for("the callback to run", Duration::from_secs(30), || {
        std::fs::read_to_string(&callback_log)
            .is_ok_and(|text| text.contains(&parent_config.display().to_string()))
    });

    let out = scratch.ldirectord(&parent_config, &["stop"]);
    assert!(out.status.success(), "stop: {:?}", out);
    let listing = ipvsadm_list();
    assert!(
        !listing.contains("10.20.0.5:80") && !listing.contains("10.20.0.4:80"),
        "stop left services behind:\n{listing}"
    );
    assert!(
        !scratch.path("ldirectord.child.cf.pid").exists(),
        "the execute= instance still runs"
    );
}

/// An SMTP sink: Python's standard-library SMTP server, printing one line
/// per message received. Killed by pid on drop.
struct SmtpSink {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl SmtpSink {
    fn start(port: u16) -> SmtpSink {
        let script = format!(
            "import smtpd, asyncore, sys\n\
             class Sink(smtpd.SMTPServer):\n\
             \x20   def process_message(self, peer, mailfrom, rcpttos, data, **kw):\n\
             \x20       subject = [l for l in data.decode(errors='replace').splitlines() if l.startswith('Subject:')]\n\
             \x20       print(subject[0] if subject else 'Subject: ?', flush=True)\n\
             Sink(('127.0.0.1', {port}), None)\n\
             print('listening', flush=True)\n\
             asyncore.loop()\n"
        );
        let mut child = Command::new("python3")
            .args(["-W", "ignore", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 smtpd");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(60));
        assert_eq!(
            first.as_deref(),
            Ok("listening"),
            "the SMTP sink did not start"
        );
        SmtpSink { child, lines }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs IPVS: runs in the VM via tests/vm.rs"]
fn emailalertfreq_repeats_the_alert_while_a_real_stays_down() {
    // ldirectord's `smtp=` takes a host only (a `:port` is cut off), so the
    // sink listens on port 25 of the guest's loopback.
    let sink = SmtpSink::start(25);
    let scratch = Scratch::new("mail");
    let config_path = scratch.write(
        "mail.cf",
        &config(
            &scratch,
            "10.20.0.6",
            "emailalert=\"ops@example.test\"\nemailalertfreq=2\nsmtp=127.0.0.1\n",
            "off",
        ),
    );
    let out = scratch.ldirectord(&config_path, &["start"]);
    assert!(out.status.success(), "start: {:?}\n{}", out, scratch.log());

    let mut subjects = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline
        && subjects
            .iter()
            .filter(|s: &&String| s.contains("Inaccessible real server"))
            .count()
            < 2
    {
        if let Ok(line) = sink.lines.recv_timeout(Duration::from_millis(500)) {
            subjects.push(line);
        }
    }
    let out = scratch.ldirectord(&config_path, &["stop"]);
    assert!(out.status.success(), "stop: {:?}", out);
    let repeats: Vec<&String> = subjects
        .iter()
        .filter(|s| s.contains("Inaccessible real server: 10.20.1.1:80"))
        .collect();
    assert!(
        repeats.len() >= 2,
        "expected the alert repeated every 2 s; got {subjects:?}\n{}",
        scratch.log()
    );
}
