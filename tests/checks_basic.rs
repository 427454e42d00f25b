// SPDX-License-Identifier: GPL-2.0-or-later
//! The check types without a negotiate protocol: connect (TCP), ping (ICMP
//! echo over IPv4 and IPv6), external (a program, its process group killed
//! at the timeout), external-perl (run with perl), on and off, and
//! `checktype=N` over real sockets.
//!
//! Addresses: 127.0.3.90-119, one per test.

#[path = "support_checks/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ldirector::check::{build_checker, CheckKind, CheckSpec, CheckTarget, Service};
use support::ip;

const TIMEOUT: Duration = Duration::from_secs(1);

async fn reason(spec: &CheckSpec) -> Result<(), String> {
    build_checker(spec)
        .check(&spec.target)
        .await
        .map_err(|err| err.to_string())
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn external_spec(command: PathBuf, real: &str) -> CheckSpec {
    CheckSpec::new(CheckKind::External { command }, real.parse().expect("addr"))
        .timeouts(TIMEOUT, TIMEOUT)
        .virtual_service(Some("127.0.3.90".parse().expect("ip")), 80)
        .real_port(8080)
}

#[tokio::test]
async fn connect_up_and_refused() {
    let listener = tokio::net::TcpListener::bind((ip(91), 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let spec = CheckSpec::new(CheckKind::Connect, addr).timeouts(TIMEOUT, TIMEOUT);
    assert_eq!(reason(&spec).await, Ok(()));
    drop(listener);
    assert_eq!(reason(&spec).await, Err("connection refused".into()));
}

#[tokio::test]
async fn ping_answers_on_ipv4_and_ipv6() {
    // Root here (and in CI) uses a raw socket when the unprivileged ICMP
    // socket is not allowed by net.ipv4.ping_group_range.
    for addr in ["127.0.3.92:0", "[::1]:0"] {
        let spec = CheckSpec::new(CheckKind::Ping { count: 2 }, addr.parse().expect("addr"))
            .timeouts(TIMEOUT, TIMEOUT);
        assert_eq!(reason(&spec).await, Ok(()), "{addr}");
    }
}

#[tokio::test]
async fn external_gets_vip_vport_rip_rport_and_exit_status_decides() {
    let dir = tempfile::tempdir().expect("temp dir");
    let args_file = dir.path().join("args");
    let command = script(
        dir.path(),
        "check",
        &format!(
            "#!/bin/sh\necho \"$@\" > {}\n[ \"$3\" = 127.0.3.93 ]\n",
            args_file.display()
        ),
    );
    let up = external_spec(command.clone(), "127.0.3.93:8081");
    assert_eq!(reason(&up).await, Ok(()));
    assert_eq!(
        std::fs::read_to_string(&args_file).expect("args"),
        "127.0.3.90 80 127.0.3.93 8080\n"
    );
    let down = external_spec(command.clone(), "127.0.3.94:8081");
    assert_eq!(
        reason(&down).await,
        Err(format!("{} exited with status 1", command.display()))
    );
    let missing = external_spec(dir.path().join("absent"), "127.0.3.93:1");
    let err = reason(&missing).await.unwrap_err();
    assert!(err.starts_with("cannot run "), "{err}");
}

fn alive(pid: i32) -> bool {
    // Signal 0 only checks the process exists (a zombie would too, but
    // our grandchild is reaped by init once the group is killed).
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[tokio::test]
async fn external_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pid_file = dir.path().join("pid");
    // The script starts a grandchild and waits for it: both must go.
    let command = script(
        dir.path(),
        "hang",
        &format!(
            "#!/bin/sh\nsleep 30 &\necho $! > {}\nwait\n",
            pid_file.display()
        ),
    );
    let spec = external_spec(command, "127.0.3.95:80");
    let started = Instant::now();
    assert_eq!(reason(&spec).await, Err("timeout after 1.0s".into()));
    assert!(started.elapsed() < TIMEOUT + Duration::from_millis(1500));
    let grandchild: i32 = std::fs::read_to_string(&pid_file)
        .expect("the script wrote its child's pid")
        .trim()
        .parse()
        .expect("a pid");
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive(grandchild) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(grandchild),
        "grandchild {grandchild} survived the timeout"
    );
}

#[tokio::test]
async fn external_perl_runs_the_script_with_perl() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Not executable, no #! line: it must be run by perl, not exec'd.
    let path = dir.path().join("check.pl");
    std::fs::write(
        &path,
        "exit($ARGV[2] eq '127.0.3.96' && $ARGV[3] == 8080 ? 0 : 3);\n",
    )
    .expect("write");
    let spec = |real: &str| {
        CheckSpec::new(
            CheckKind::ExternalPerl {
                script: path.clone(),
            },
            real.parse().expect("addr"),
        )
        .timeouts(TIMEOUT, TIMEOUT)
        .virtual_service(Some("127.0.3.90".parse().expect("ip")), 80)
        .real_port(8080)
    };
    assert_eq!(reason(&spec("127.0.3.96:1")).await, Ok(()));
    assert_eq!(
        reason(&spec("127.0.3.97:1")).await,
        Err(format!("{} exited with status 3", path.display()))
    );
}

#[tokio::test]
async fn on_is_up_off_is_down_whatever_the_real() {
    let nowhere = "127.0.3.98:1".parse().expect("addr");
    assert_eq!(
        reason(&CheckSpec::new(CheckKind::On, nowhere)).await,
        Ok(())
    );
    assert_eq!(
        reason(&CheckSpec::new(CheckKind::Off, nowhere)).await,
        Err("checktype is off".into())
    );
    // service=none negotiates nothing.
    assert_eq!(
        reason(&CheckSpec::new(
            CheckKind::Negotiate(Service::None),
            nowhere
        ))
        .await,
        Ok(())
    );
}

#[tokio::test]
async fn combined_negotiates_then_connects() {
    // Answers HTTP on the first connection only; later connections are
    // accepted and held silent, so a connect succeeds and a negotiate
    // times out.
    let listener = tokio::net::TcpListener::bind((ip(99), 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        let mut first = true;
        while let Ok((mut stream, _)) = listener.accept().await {
            if std::mem::take(&mut first) {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 1024];
                    let _ = stream.read(&mut buf).await;
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await;
                });
            } else {
                held.push(stream);
            }
        }
    });
    let spec = CheckSpec::new(
        CheckKind::Combined {
            connects: 2,
            service: Service::Http,
        },
        addr,
    )
    .timeouts(TIMEOUT, Duration::from_millis(300));
    let checker = build_checker(&spec);
    let target: &CheckTarget = &spec.target;
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(checker.check(target).await.map_err(|e| e.to_string()));
    }
    let timeout = Err("timeout after 0.3s".to_string());
    // negotiate (ok), connect, connect, negotiate (times out), and a failed
    // negotiate is followed by another negotiate.
    assert_eq!(outcomes, [Ok(()), Ok(()), Ok(()), timeout.clone(), timeout]);
}

#[tokio::test]
async fn fwmark_real_without_port_has_a_reason() {
    let spec = CheckSpec::new(CheckKind::Connect, "127.0.3.100:0".parse().expect("addr"));
    assert_eq!(
        reason(&spec).await,
        Err("no port to check: set checkport= or the real's port".into())
    );
}

/// Runs `body` on a thread moved into a new, empty network namespace
/// (only `lo`, brought up here) where unprivileged ICMP sockets are
/// allowed for root's group. The namespace goes away with the thread.
fn in_fresh_netns<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread's network namespace.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET) failed (tests run as root): {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a plain socket and two ioctls on a zeroed, NUL-terminated
        // ifreq naming "lo".
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let mut req: libc::ifreq = std::mem::zeroed();
            for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
                *dst = *src as libc::c_char;
            }
            assert_eq!(libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req), 0);
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            assert_eq!(
                libc::ioctl(fd, libc::SIOCSIFFLAGS, &req),
                0,
                "lo up: {}",
                std::io::Error::last_os_error()
            );
            libc::close(fd);
        }
        // /proc/sys/net is the writing thread's namespace; make sure that
        // is the new one before touching it, never the host's.
        let ours = std::fs::read_link("/proc/thread-self/ns/net").expect("thread netns");
        let host = std::fs::read_link("/proc/self/ns/net").expect("process netns");
        assert_ne!(ours, host, "still in the host's network namespace");
        std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 0")
            .expect("allow unprivileged ICMP sockets in the test namespace");
        body()
    })
    .join()
    .expect("netns thread")
}

#[test]
fn ping_with_an_unprivileged_icmp_socket_and_down_when_unreachable() {
    let (dgram_v4, up_v4, up_v6, unreachable) = in_fresh_netns(|| {
        let dgram_v4 = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::ICMPV4),
        )
        .is_ok();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let ping = |addr: &str| {
                CheckSpec::new(CheckKind::Ping { count: 1 }, addr.parse().expect("addr"))
                    .timeouts(TIMEOUT, TIMEOUT)
            };
            (
                dgram_v4,
                reason(&ping("127.0.0.1:0")).await,
                reason(&ping("[::1]:0")).await,
                // No route at all in the new namespace: nothing leaves it.
                reason(&ping("10.255.0.1:0")).await,
            )
        })
    });
    assert!(
        dgram_v4,
        "ping_group_range did not allow ICMP datagram sockets"
    );
    assert_eq!(up_v4, Ok(()));
    assert_eq!(up_v6, Ok(()));
    assert_eq!(unreachable, Err("network unreachable".into()));
}
