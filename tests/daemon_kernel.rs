// SPDX-License-Identifier: GPL-2.0-or-later
//! Guest-side end-to-end suite for the director daemon: the real
//! `ldirectord` binary against the real IPVS kernel, with real HTTP servers
//! (Debian's python3 http.server) as reals on the guest's loopback.
//! ipvsadm is the oracle for what the kernel holds.
//!
//! Runs only inside the VM (`tests/vm.rs`); every test is `#[ignore]` so the
//! host, which has no IPVS, never runs it.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LDIRECTORD: &str = env!("CARGO_BIN_EXE_ldirectord");

fn ipvsadm(args: &[&str]) -> String {
    let out = Command::new("ipvsadm")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ipvsadm {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ipvsadm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A real server: python3's http.server on a loopback address, killed by
/// pid when dropped.
struct HttpReal {
    child: Child,
}

impl HttpReal {
    fn start(dir: &Path, addr: &str, port: u16) -> HttpReal {
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", addr, &port.to_string()])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 http.server");
        let sock: SocketAddr = format!("{addr}:{port}").parse().unwrap();
        wait_for("http server to listen", Duration::from_secs(60), || {
            TcpStream::connect_timeout(&sock, Duration::from_millis(200)).is_ok()
        });
        HttpReal { child }
    }
}

impl Drop for HttpReal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "timed out after {}s waiting for {what}\nipvsadm -Ln:\n{}\ndaemon log:\n{}",
        limit.as_secs(),
        ipvsadm(&["-Ln"]),
        daemon_log()
    );
}

/// The weight of `real` in the listing, `None` if absent.
fn weight(listing: &str, real: &str) -> Option<u32> {
    listing.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.len() >= 3 && fields[0] == "->" && fields[1] == real)
            .then(|| fields[3].parse().ok())
            .flatten()
    })
}

/// The log of the lab's daemon (every lab logs to the same file, one
/// test at a time), for failure messages.
fn daemon_log() -> String {
    std::fs::read_to_string(log_path()).unwrap_or_else(|e| format!("(no log: {e})"))
}

fn log_path() -> PathBuf {
    std::env::temp_dir().join(format!("ldir-e2e-{}.log", std::process::id()))
}

struct Lab {
    dir: PathBuf,
    config: PathBuf,
}

impl Lab {
    fn new(name: &str, body: &str) -> Lab {
        let dir = std::env::temp_dir().join(format!("ldir-e2e-{name}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("www")).unwrap();
        std::fs::write(dir.join("www/health"), "ok\n").unwrap();
        let config = dir.join(format!("{name}.cf"));
        std::fs::write(&config, body).unwrap();
        Lab { dir, config }
    }

    fn ldirectord(&self, args: &[&str]) -> std::process::Output {
        Command::new(LDIRECTORD)
            .arg(&self.config)
            .args(args)
            .env("LDIRECTORD_RUN_DIR", &self.dir)
            .output()
            .expect("run ldirectord")
    }
}

const VIP: &str = "10.10.0.1:80";

fn config(extra: &str) -> String {
    format!(
        "checkinterval=1\nchecktimeout=10\nfailurecount=1\nquiescent=yes\nlogfile=\"{}\"\n{extra}\
         virtual={VIP}\n\
         \treal=127.0.0.2:8081 masq 2\n\
         \treal=127.0.0.3:8082 masq 3\n\
         \tfallback=127.0.0.9:80 masq\n\
         \tservice=http\n\trequest=\"health\"\n\treceive=\"ok\"\n\tscheduler=wlc\n\n",
        log_path().display()
    )
}

#[test]
#[ignore = "needs the IPVS kernel: runs in the VM via tests/vm.rs"]
fn start_quiesce_fallback_correct_reload_stop() {
    ipvsadm(&["-C"]);
    // A service that is not ours must survive everything below.
    ipvsadm(&["-A", "-t", "10.10.0.99:443", "-s", "rr"]);
    let lab = Lab::new("web", &config(""));
    let www = lab.dir.join("www");
    let real_a = HttpReal::start(&www, "127.0.0.2", 8081);
    let real_b = HttpReal::start(&www, "127.0.0.3", 8082);

    // start returns only when the first round has reached the kernel.
    let out = lab.ldirectord(&["start"]);
    assert!(
        out.status.success(),
        "start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = ipvsadm(&["-Ln"]);
    assert!(listing.contains("TCP  10.10.0.1:80 wlc"), "{listing}");
    assert_eq!(
        weight(&listing, "127.0.0.2:8081"),
        Some(2),
        "{listing}\n{}",
        daemon_log()
    );
    assert_eq!(weight(&listing, "127.0.0.3:8082"), Some(3), "{listing}");
    assert_eq!(
        weight(&listing, "127.0.0.9:80"),
        None,
        "fallback while reals are up\n{listing}"
    );
    let status = lab.ldirectord(&["status"]);
    assert_eq!(status.status.code(), Some(0));
    let verify = lab.ldirectord(&["status", "--verify-kernel"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // A failed real is quiesced (weight 0), not removed.
    drop(real_b);
    wait_for("real b quiesced", Duration::from_secs(60), || {
        weight(&ipvsadm(&["-Ln"]), "127.0.0.3:8082") == Some(0)
    });
    assert_eq!(weight(&ipvsadm(&["-Ln"]), "127.0.0.2:8081"), Some(2));

    // All down: the fallback serves with weight 1.
    drop(real_a);
    wait_for("fallback added", Duration::from_secs(60), || {
        weight(&ipvsadm(&["-Ln"]), "127.0.0.9:80") == Some(1)
    });

    // One back: the fallback leaves.
    let real_a = HttpReal::start(&www, "127.0.0.2", 8081);
    wait_for(
        "real a restored, fallback gone",
        Duration::from_secs(60),
        || {
            let l = ipvsadm(&["-Ln"]);
            weight(&l, "127.0.0.2:8081") == Some(2) && weight(&l, "127.0.0.9:80").is_none()
        },
    );

    // A hand-made change to a managed service is corrected.
    ipvsadm(&["-e", "-t", VIP, "-r", "127.0.0.2:8081", "-m", "-w", "7"]);
    ipvsadm(&["-a", "-t", VIP, "-r", "127.0.0.50:80", "-m", "-w", "1"]);
    wait_for(
        "hand-made change corrected",
        Duration::from_secs(60),
        || {
            let l = ipvsadm(&["-Ln"]);
            weight(&l, "127.0.0.2:8081") == Some(2) && weight(&l, "127.0.0.50:80").is_none()
        },
    );

    // A broken config at reload leaves the running one untouched.
    std::fs::write(
        &lab.config,
        "virtual=10.10.0.1:80\n\treal=not-an-address:80 masq\n",
    )
    .unwrap();
    let out = lab.ldirectord(&["reload"]);
    assert!(!out.status.success() || out.status.code() == Some(2) || out.status.code() == Some(0));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(weight(&ipvsadm(&["-Ln"]), "127.0.0.2:8081"), Some(2));

    // A good reload applies only the difference: a new weight.
    std::fs::write(&lab.config, config("").replace("masq 2", "masq 4")).unwrap();
    let out = lab.ldirectord(&["reload"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("reload applied", Duration::from_secs(60), || {
        weight(&ipvsadm(&["-Ln"]), "127.0.0.2:8081") == Some(4)
    });

    // stop waits for cleanstop: our service is gone, the foreign one stays.
    let out = lab.ldirectord(&["stop"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = ipvsadm(&["-Ln"]);
    assert!(
        !listing.contains("10.10.0.1:80"),
        "cleanstop left the service\n{listing}"
    );
    assert!(
        listing.contains("10.10.0.99:443"),
        "foreign service touched\n{listing}"
    );
    assert_eq!(lab.ldirectord(&["status"]).status.code(), Some(3));
    assert!(
        !lab.dir.join("ldirectord.web.cf.pid").exists(),
        "pid file left behind"
    );
    drop(real_a);
    ipvsadm(&["-C"]);
}

#[test]
#[ignore = "needs the IPVS kernel: runs in the VM via tests/vm.rs"]
fn restart_adopts_the_table_without_dropping_reals() {
    ipvsadm(&["-C"]);
    let lab = Lab::new("adopt", &config("cleanstop=no\n"));
    // The table as a previous instance left it (cleanstop=no).
    ipvsadm(&["-A", "-t", VIP, "-s", "wlc"]);
    ipvsadm(&["-a", "-t", VIP, "-r", "127.0.0.2:8081", "-m", "-w", "2"]);
    let www = lab.dir.join("www");
    let _real_a = HttpReal::start(&www, "127.0.0.2", 8081);
    let _real_b = HttpReal::start(&www, "127.0.0.3", 8082);
    let out = lab.ldirectord(&["start"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = ipvsadm(&["-Ln"]);
    assert_eq!(weight(&listing, "127.0.0.2:8081"), Some(2), "{listing}");
    assert_eq!(weight(&listing, "127.0.0.3:8082"), Some(3), "{listing}");
    let out = lab.ldirectord(&["stop"]);
    assert_eq!(out.status.code(), Some(0));
    // cleanstop=no: the table stays for the next instance.
    assert_eq!(weight(&ipvsadm(&["-Ln"]), "127.0.0.2:8081"), Some(2));
    ipvsadm(&["-C"]);
}

#[test]
#[ignore = "needs the IPVS kernel: runs in the VM via tests/vm.rs"]
fn bad_config_at_start_exits_2_with_locations() {
    let lab = Lab::new(
        "bad",
        "virtual=10.10.0.1:80\n\treal=10.0.0.1:80 sideways\nbogus=1\n",
    );
    let out = lab.ldirectord(&["start"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.cf:"), "{stderr}");
}
