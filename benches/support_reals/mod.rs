// SPDX-License-Identifier: GPL-2.0-or-later
//! Many real servers for the VM benchmarks (`failure_detection`,
//! `keepalived_compare`): one tiny HTTP responder per real on its own
//! guest loopback address, in the bench process.
//!
//! A thousand nginx or python servers would cost more CPU and memory than
//! the directors being measured under TCG; what is measured here is the
//! director, so the reals only need to answer, count what they answered,
//! and fail on demand in the two ways real servers fail:
//! - **refused**: the listener is closed, a SYN gets a RST;
//! - **black hole**: SYNs are dropped (no reply at all), so the director's
//!   connect has to time out. The guest has no nftables/iptables, so the
//!   address is taken by a listener with a zero backlog whose accept queue
//!   is filled: Linux drops further SYNs to a listener with a full queue.
#![allow(dead_code)] // each bench uses a different part

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// The port every real listens on (each real has its own address).
pub const REAL_PORT: u16 = 8080;

/// What every responder answers to any request.
const RESPONSE: &[u8] =
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";

/// Real number `i` (0-based): 127.10.x.y:8080, unique for i < 62,500.
pub fn real_addr(i: usize) -> SocketAddr {
    let i = u32::try_from(i).expect("real index fits u32");
    let ip = Ipv4Addr::new(127, 10, (i / 250) as u8, (i % 250 + 1) as u8);
    SocketAddr::new(IpAddr::V4(ip), REAL_PORT)
}

/// Raises this process's open-file limit to `wanted` (1,000 listeners plus
/// their connections exceed the usual 1,024); children inherit it. Where
/// the hard limit cannot be raised (a container without CAP_SYS_RESOURCE)
/// it settles for the hard limit and says so.
pub fn raise_nofile_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let hard = limit.rlim_max;
        limit.rlim_cur = limit.rlim_cur.max(wanted);
        limit.rlim_max = hard.max(wanted);
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            let err = std::io::Error::last_os_error();
            limit.rlim_cur = hard;
            limit.rlim_max = hard;
            assert_eq!(
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit),
                0,
                "setrlimit(NOFILE, {hard}): {}",
                std::io::Error::last_os_error()
            );
            eprintln!("open files: {hard}, not {wanted} ({err})");
        }
    }
}

enum Slot {
    Serving(JoinHandle<()>),
    Refusing,
    /// The zero-backlog listener and the connection that fills its queue.
    BlackHole {
        _listener: Socket,
        _queued: Vec<TcpStream>,
    },
}

/// `n` HTTP responders, counting the requests they answered.
pub struct Reals {
    slots: Vec<Slot>,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    /// Per real: when it last accepted a connection (nanoseconds since
    /// `epoch`, 0 = never): tells when the director's last probe came.
    last_accept: Arc<Vec<AtomicU64>>,
    epoch: Instant,
}

impl Reals {
    /// Starts `n` responders on `runtime`.
    pub fn start(runtime: &Runtime, n: usize) -> Reals {
        let mut reals = Reals {
            slots: Vec::with_capacity(n),
            requests: Arc::new(AtomicU64::new(0)),
            connections: Arc::new(AtomicU64::new(0)),
            last_accept: Arc::new((0..n).map(|_| AtomicU64::new(0)).collect()),
            epoch: Instant::now(),
        };
        for i in 0..n {
            let task = reals.spawn_listener(runtime, i);
            reals.slots.push(Slot::Serving(task));
        }
        reals
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// HTTP requests answered so far (a connect check makes none).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// When real `i` last accepted a connection (a probe), if ever.
    pub fn last_accept(&self, i: usize) -> Option<Instant> {
        match self.last_accept[i].load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(self.epoch + Duration::from_nanos(nanos)),
        }
    }

    fn spawn_listener(&self, runtime: &Runtime, i: usize) -> JoinHandle<()> {
        let socket = bound_socket(real_addr(i), 1024);
        socket.set_nonblocking(true).expect("set_nonblocking");
        let std_listener: std::net::TcpListener = socket.into();
        let requests = self.requests.clone();
        let connections = self.connections.clone();
        let last_accept = self.last_accept.clone();
        let epoch = self.epoch;
        let _guard = runtime.enter();
        let listener = tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of descriptors, most likely: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                connections.fetch_add(1, Ordering::Relaxed);
                let nanos = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                last_accept[i].store(nanos.max(1), Ordering::Relaxed);
                tokio::spawn(answer(stream, requests.clone()));
            }
        })
    }

    /// Closes real `i`'s listener: from now on its SYNs get a RST.
    pub fn refuse(&mut self, runtime: &Runtime, i: usize) {
        self.stop_serving(runtime, i);
        self.slots[i] = Slot::Refusing;
    }

    /// Makes real `i` drop SYNs: connects to it time out.
    pub fn black_hole(&mut self, runtime: &Runtime, i: usize) {
        self.stop_serving(runtime, i);
        let addr = real_addr(i);
        let listener = bound_socket(addr, 0);
        // Fill the accept queue until a connect goes unanswered, which
        // proves the black hole works (backlog 0 admits one connection).
        let mut queued = Vec::new();
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(stream) => queued.push(stream),
                Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => {
                    break
                }
                Err(e) => panic!("filling the black hole at {addr}: {e}"),
            }
            assert!(queued.len() < 8, "{addr}: SYNs are not dropped");
        }
        self.slots[i] = Slot::BlackHole {
            _listener: listener,
            _queued: queued,
        };
    }

    /// Real `i` answers again.
    pub fn serve(&mut self, runtime: &Runtime, i: usize) {
        if matches!(self.slots[i], Slot::Serving(_)) {
            return;
        }
        // Drop the black hole (if any) before binding the address again.
        self.slots[i] = Slot::Refusing;
        let task = self.spawn_listener(runtime, i);
        self.slots[i] = Slot::Serving(task);
    }

    /// Closes every listener (and waits until they are closed), so the
    /// addresses can be bound again.
    pub fn shutdown(mut self, runtime: &Runtime) {
        for i in 0..self.slots.len() {
            self.stop_serving(runtime, i);
        }
    }

    fn stop_serving(&mut self, runtime: &Runtime, i: usize) {
        if let Slot::Serving(task) = std::mem::replace(&mut self.slots[i], Slot::Refusing) {
            task.abort();
            // Once the aborted task is reaped its listener is closed.
            let _ = runtime.block_on(task);
        }
    }
}

impl Drop for Reals {
    fn drop(&mut self) {
        // Without `shutdown` the listeners close once the runtime gets
        // to the aborted tasks.
        for slot in &self.slots {
            if let Slot::Serving(task) = slot {
                task.abort();
            }
        }
    }
}

fn bound_socket(addr: SocketAddr, backlog: i32) -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    socket
        .bind(&addr.into())
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    socket
        .listen(backlog)
        .unwrap_or_else(|e| panic!("listen {addr}: {e}"));
    socket
}

/// Reads one request head (or EOF) and answers 200.
async fn answer(mut stream: tokio::net::TcpStream, requests: Arc<AtomicU64>) {
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return, // a connect check: no request
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() > 8192 {
            break;
        }
    }
    requests.fetch_add(1, Ordering::Relaxed);
    let _ = stream.write_all(RESPONSE).await;
    let _ = stream.shutdown().await;
}

/// A small xorshift generator: random reals and delays without a crate.
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9);
        Rng(nanos | 1)
    }

    pub fn seed(&self) -> u64 {
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Resident set size of `pid` in KiB (VmRSS), 0 if gone.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of `pid` in clock ticks, `None` if it is gone.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Nearest-rank percentile of sorted `values` (`p` in 0..=100).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Empties the guest's IPVS table between runs.
pub fn ipvsadm_clear() {
    let status = std::process::Command::new("ipvsadm")
        .arg("-C")
        .status()
        .expect("run ipvsadm -C");
    assert!(status.success(), "ipvsadm -C: {status}");
}

/// The load averages (1, 5, 15 min), for the caveat printed with every figure.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// "TCG guest, N vCPUs, guest load average A B C": the caveat every VM
/// bench prints with its figures.
pub fn guest_caveat() -> String {
    format!(
        "TCG guest, {} vCPUs, guest load average {}",
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        load_average()
    )
}

/// The check types the failure-detection benches run against the reals.
#[derive(Clone, Copy, PartialEq)]
pub enum CheckType {
    Connect,
    Http,
}

impl CheckType {
    pub fn name(self) -> &'static str {
        match self {
            CheckType::Connect => "connect",
            CheckType::Http => "http",
        }
    }

    /// The virtual's lines for this check (the responders answer "ok").
    pub fn config_lines(self) -> &'static str {
        match self {
            CheckType::Connect => "\tchecktype=connect\n",
            CheckType::Http => {
                "\tchecktype=negotiate\n\tservice=http\n\trequest=\"health\"\n\treceive=\"ok\"\n"
            }
        }
    }
}

/// How a real is stopped.
#[derive(Clone, Copy, PartialEq)]
pub enum Failure {
    Refused,
    BlackHole,
}

impl Failure {
    pub fn name(self) -> &'static str {
        match self {
            Failure::Refused => "refused",
            Failure::BlackHole => "black hole",
        }
    }

    /// Stops real `i` this way.
    pub fn inflict(self, reals: &mut Reals, runtime: &Runtime, i: usize) {
        match self {
            Failure::Refused => reals.refuse(runtime, i),
            Failure::BlackHole => reals.black_hole(runtime, i),
        }
    }
}

/// The failure-detection benches' checkinterval and checktimeout
/// (negotiatetimeout too), in seconds.
pub const INTERVAL_S: u64 = 1;
pub const TIMEOUT_S: u64 = 1;
/// The goal: interval + timeout + 100 ms.
pub const GOAL: Duration = Duration::from_millis(INTERVAL_S * 1000 + TIMEOUT_S * 1000 + 100);

/// The config both failure-detection benches give the director: `n`
/// reals behind `vip`:80, quiescent, failurecount=1, checked with `check`
/// every `INTERVAL_S`; `global_lines` (each ending in a newline) go with
/// the global settings.
pub fn detection_config(vip: &str, n: usize, check: CheckType, global_lines: &str) -> String {
    let mut text = format!(
        "checkinterval={INTERVAL_S}\nchecktimeout={TIMEOUT_S}\nnegotiatetimeout={TIMEOUT_S}\n\
         failurecount=1\nquiescent=yes\n{global_lines}\nvirtual={vip}:80\n"
    );
    for i in 0..n {
        text.push_str(&format!("\treal={} masq 1\n", real_addr(i)));
    }
    text.push_str(check.config_lines());
    text.push_str("\tscheduler=wlc\n");
    text
}

/// When the probe that meets a real stopped at `stopped` had to fail:
/// probes run every `INTERVAL_S` from `last_probe`, so it is the first
/// tick after the stop, plus the `TIMEOUT_S` it waits in a black hole.
pub fn failing_probe_deadline(last_probe: Instant, stopped: Instant, failure: Failure) -> Instant {
    let interval = Duration::from_secs(INTERVAL_S);
    let ticks = stopped
        .saturating_duration_since(last_probe)
        .as_nanos()
        .div_ceil(interval.as_nanos())
        .max(1);
    let tick = last_probe + interval * u32::try_from(ticks).unwrap_or(u32::MAX);
    match failure {
        Failure::Refused => tick,
        Failure::BlackHole => tick + Duration::from_secs(TIMEOUT_S),
    }
}

/// The seconds from `from` to `to`, negative when `to` came first.
pub fn signed_secs(to: Instant, from: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64(),
        None => -(from - to).as_secs_f64(),
    }
}
