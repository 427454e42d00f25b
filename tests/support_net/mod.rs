// SPDX-License-Identifier: GPL-2.0-or-later
//! Network-namespace plumbing for the `net` tests and the VIP bench:
//! namespaces that delete themselves, running library code inside one (a
//! thread that `setns`es), dropping capabilities for one thread, and an
//! AF_PACKET capture on a peer interface.
//!
//! Namespace names are `ldn-net-<pid>-<tag>`; each is deleted by name when
//! its guard drops, also when the test panics. Only documentation and
//! private addresses are used inside them (198.51.100.0/24, 203.0.113.0/24,
//! 10.x, 2001:db8::/32).

#![allow(dead_code)] // each test file uses a different part

use std::ffi::CString;
use std::fs::File;
use std::future::Future;
use std::io;
use std::mem;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

/// `linux/if_packet.h`: a frame this host sent.
pub const PACKET_OUTGOING: u8 = 4;

/// Fails the test with a clear reason unless it runs as root: network
/// namespaces and veth pairs need it (CI runs as root).
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the net tests create network namespaces: run them as root \
         (sudo -E cargo test --test net_vip --test net_announce)"
    );
    assert!(
        Command::new("ip").arg("-V").output().is_ok(),
        "`ip` (iproute2) is missing: run tests/setup/install.sh"
    );
}

/// Runs `ip ARGS`, failing the test with its stderr if it fails.
pub fn ip(args: &[&str]) -> String {
    let output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run ip {args:?}: {error}"));
    assert!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A network namespace, deleted (by name) when dropped.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `ldn-net-<pid>-<tag>`, with `lo` up.
    pub fn new(tag: &str) -> Netns {
        require_root();
        let name = format!("ldn-net-{}-{tag}", std::process::id());
        // A leftover from a crashed run of the same pid is ours to remove.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let netns = Netns { name };
        netns.ip(&["link", "set", "lo", "up"]);
        netns
    }

    /// Runs `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// The addresses on `iface`, one `ADDR/PREFIX` per entry, followed by
    /// the label if it is not just the interface name (`ADDR/PREFIX
    /// LABEL`), read with `ip -n`.
    pub fn addresses(&self, iface: &str) -> Vec<String> {
        let json = self.ip(&["-j", "addr", "show", "dev", iface]);
        let links: serde_json::Value = serde_json::from_str(&json).expect("ip -j output");
        let mut found = Vec::new();
        for link in links.as_array().into_iter().flatten() {
            for info in link["addr_info"].as_array().into_iter().flatten() {
                let local = info["local"].as_str().unwrap_or_default();
                let prefix = info["prefixlen"].as_u64().unwrap_or_default();
                match info["label"].as_str() {
                    Some(label) if label != iface => {
                        found.push(format!("{local}/{prefix} {label}"))
                    }
                    _ => found.push(format!("{local}/{prefix}")),
                }
            }
        }
        found
    }

    /// Whether `addr` (any prefix) is on `iface`, per `ip -n`.
    pub fn has_address(&self, iface: &str, addr: IpAddr) -> bool {
        let prefix = format!("{addr}/");
        self.addresses(iface)
            .iter()
            .any(|entry| entry.starts_with(&prefix))
    }

    /// Every address in the namespace, as `IFACE ADDR/PREFIX`.
    pub fn all_addresses(&self) -> Vec<String> {
        let json = self.ip(&["-j", "addr", "show"]);
        let links: serde_json::Value = serde_json::from_str(&json).expect("ip -j output");
        let mut found = Vec::new();
        for link in links.as_array().into_iter().flatten() {
            let name = link["ifname"].as_str().unwrap_or_default();
            for info in link["addr_info"].as_array().into_iter().flatten() {
                let local = info["local"].as_str().unwrap_or_default();
                let prefix = info["prefixlen"].as_u64().unwrap_or_default();
                found.push(format!("{name} {local}/{prefix}"));
            }
        }
        found.sort();
        found
    }

    /// The MAC of `iface`.
    pub fn mac(&self, iface: &str) -> [u8; 6] {
        let json = self.ip(&["-j", "link", "show", "dev", iface]);
        let links: serde_json::Value = serde_json::from_str(&json).expect("ip -j output");
        parse_mac(links[0]["address"].as_str().expect("link has an address"))
    }

    /// The neighbour entry for `addr` on `iface`: (MAC, state), if any.
    pub fn neighbour(&self, iface: &str, addr: IpAddr) -> Option<([u8; 6], String)> {
        let json = self.ip(&["-j", "neigh", "show", &addr.to_string(), "dev", iface]);
        let entries: serde_json::Value = serde_json::from_str(&json).expect("ip -j output");
        let entry = entries.as_array()?.first()?;
        let mac = parse_mac(entry["lladdr"].as_str()?);
        let state = entry["state"]
            .as_array()
            .and_then(|states| states.first())
            .and_then(|state| state.as_str())
            .unwrap_or_default()
            .to_string();
        Some((mac, state))
    }

    /// Reads a file under /proc/sys/net inside the namespace.
    pub fn sysctl(&self, path: &str) -> i64 {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.name, "cat", path])
            .output()
            .expect("run ip netns exec cat");
        assert!(output.status.success(), "cannot read {path}");
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("a number")
    }

    /// Writes a file under /proc/sys/net inside the namespace.
    pub fn set_sysctl(&self, path: &str, value: i64) {
        in_netns(&self.name, || {
            std::fs::write(path, format!("{value}\n"))
                .unwrap_or_else(|error| panic!("write {path}: {error}"))
        });
    }

    /// Runs `future` (built inside the namespace) on a current-thread tokio
    /// runtime in a thread that has entered this namespace.
    pub fn block_on<F, Fut, T>(&self, make: F) -> T
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = T>,
        T: Send,
    {
        in_netns(&self.name, || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(make())
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

pub fn parse_mac(text: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = text.split(':').collect();
    assert_eq!(parts.len(), 6, "not a MAC: {text}");
    for (byte, part) in mac.iter_mut().zip(parts) {
        *byte = u8::from_str_radix(part, 16).expect("hex");
    }
    mac
}

pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs `f` in a new thread that has entered the namespace `name`
/// (network namespaces are per thread, so the rest of the test process is
/// untouched).
pub fn in_netns<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{name}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = File::open(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
                // SAFETY: a valid namespace fd; only this thread moves.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Linux capability numbers (linux/capability.h).
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;

/// Drops capabilities from the calling *thread* only (capset(2) with pid 0
/// acts on the caller; glibc does not broadcast it to other threads). Use it
/// inside [`in_netns`] / [`Netns::block_on`], whose thread ends afterwards.
pub fn drop_thread_capabilities(capabilities: &[u32]) {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and a two-element data array, as capget(2) wants.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut Header,
            data.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "capget: {}", io::Error::last_os_error());
    for &capability in capabilities {
        let word = (capability / 32) as usize;
        let bit = 1u32 << (capability % 32);
        data[word].effective &= !bit;
        data[word].permitted &= !bit;
    }
    // SAFETY: as above.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", io::Error::last_os_error());
}

/// Two namespaces joined by a veth pair: `eth0` in `director`, `eth0` in
/// `peer`, both up, with fixed MACs.
pub struct Pair {
    pub director: Netns,
    pub peer: Netns,
}

pub const DIRECTOR_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
pub const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x02];

impl Pair {
    pub fn new(tag: &str) -> Pair {
        let director = Netns::new(&format!("{tag}-d"));
        let peer = Netns::new(&format!("{tag}-p"));
        director.ip(&[
            "link",
            "add",
            "eth0",
            "address",
            &mac_string(DIRECTOR_MAC),
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "address",
            &mac_string(PEER_MAC),
            "netns",
            &peer.name,
        ]);
        director.ip(&["link", "set", "eth0", "up"]);
        peer.ip(&["link", "set", "eth0", "up"]);
        Pair { director, peer }
    }
}

/// A captured frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub bytes: Vec<u8>,
    /// `sll_pkttype`: PACKET_HOST, _BROADCAST, _MULTICAST, _OUTGOING...
    pub packet_type: u8,
    /// When `recvfrom` returned it: only meaningful while a thread reads
    /// the capture as frames arrive ([`Capture::collect_in_background`]).
    /// (Kernel receive stamps are no better here: the kernel turns
    /// timestamping on a little after it is asked to, so the first frames
    /// after opening come unstamped.)
    pub at: Instant,
}

impl Frame {
    pub fn ethertype(&self) -> u16 {
        u16::from_be_bytes([self.bytes[12], self.bytes[13]])
    }

    /// Whether the frame carries `addr` anywhere (a cheap "is this about
    /// the VIP" test for frames we did not expect at all).
    pub fn mentions(&self, addr: IpAddr) -> bool {
        let needle: Vec<u8> = match addr {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        self.bytes
            .windows(needle.len())
            .any(|window| window == needle.as_slice())
    }
}

/// An AF_PACKET socket bound to one interface of one namespace, receiving
/// every frame (both directions) from the moment it is opened.
pub struct Capture {
    fd: OwnedFd,
}

impl Capture {
    pub fn open(netns: &Netns, iface: &str) -> Capture {
        let iface = iface.to_string();
        in_netns(&netns.name, move || {
            let protocol = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: plain socket(2).
            let raw = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    i32::from(protocol),
                )
            };
            assert!(raw >= 0, "packet socket: {}", io::Error::last_os_error());
            // SAFETY: raw is a fresh, owned descriptor.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let name = CString::new(iface.clone()).expect("interface name");
            // SAFETY: a NUL-terminated name.
            let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
            assert!(index > 0, "no interface {iface}");
            // SAFETY: zeroed sockaddr_ll is valid; we fill what bind needs.
            let mut address: libc::sockaddr_ll = unsafe { mem::zeroed() };
            address.sll_family = libc::AF_PACKET as u16;
            address.sll_protocol = protocol;
            address.sll_ifindex = index as i32;
            // SAFETY: address is a live sockaddr_ll of the length given.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&address as *const libc::sockaddr_ll).cast(),
                    mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0, "bind: {}", io::Error::last_os_error());
            Capture { fd }
        })
    }

    /// The next frame, or None after `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let mut poll = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let millis = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one live pollfd.
            let ready = unsafe { libc::poll(&mut poll, 1, millis) };
            if ready <= 0 {
                continue;
            }
            let mut buffer = vec![0u8; 65536];
            // SAFETY: zeroed sockaddr_ll is valid.
            let mut from: libc::sockaddr_ll = unsafe { mem::zeroed() };
            let mut from_len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buffer and address are live and sized as passed.
            let received = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut from_len,
                )
            };
            let at = Instant::now();
            if received < 14 {
                continue;
            }
            buffer.truncate(received as usize);
            return Some(Frame {
                bytes: buffer,
                packet_type: from.sll_pkttype,
                at,
            });
        }
    }

    /// Frames until `wanted` of them satisfy `keep`, or `timeout` passes;
    /// returns the kept ones.
    pub fn collect(
        &self,
        wanted: usize,
        timeout: Duration,
        mut keep: impl FnMut(&Frame) -> bool,
    ) -> Vec<Frame> {
        let deadline = Instant::now() + timeout;
        let mut kept = Vec::new();
        while kept.len() < wanted {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(frame) if keep(&frame) => kept.push(frame),
                Some(_) => {}
                None => break,
            }
        }
        kept
    }

    /// [`Capture::collect`] in a thread of its own, reading frames as they
    /// arrive (so [`Frame::at`] is when they arrived).
    pub fn collect_in_background(
        self,
        wanted: usize,
        timeout: Duration,
        keep: impl FnMut(&Frame) -> bool + Send + 'static,
    ) -> std::thread::JoinHandle<Vec<Frame>> {
        std::thread::spawn(move || self.collect(wanted, timeout, keep))
    }

    /// Every frame received within `window`.
    pub fn drain(&self, window: Duration) -> Vec<Frame> {
        let deadline = Instant::now() + window;
        let mut frames = Vec::new();
        while let Some(frame) = self.next(deadline.saturating_duration_since(Instant::now())) {
            frames.push(frame);
        }
        frames
    }
}

/// Polls `probe` every 10 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
