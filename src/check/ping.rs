// SPDX-License-Identifier: GPL-2.0-or-later
//! `checktype=ping` (and `connect` on UDP virtuals): ICMP echo, IPv4 and
//! IPv6, up to `checkcount` attempts, each waiting checktimeout.
//!
//! An unprivileged ICMP datagram socket (`SOCK_DGRAM`, `IPPROTO_ICMP`) is
//! used where `net.ipv4.ping_group_range` allows it: the kernel then picks
//! the identifier and only hands this socket its own replies. Otherwise a
//! raw socket (needs CAP_NET_RAW) is used, and replies are matched by
//! source, identifier, sequence and a random payload token.
//! ldirectord only pinged IPv4 (Net::Ping, root only).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::{CheckError, CheckTarget, Checker};

const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
const PAYLOAD_LEN: usize = 16;

static SEQUENCE: AtomicU16 = AtomicU16::new(1);

pub struct PingChecker {
    attempts: u32,
    timeout: Duration,
}

impl PingChecker {
    pub fn new(attempts: u32, timeout: Duration) -> Self {
        PingChecker {
            attempts: attempts.max(1),
            timeout,
        }
    }

    async fn run(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let ip = target.addr.ip();
        let socket = IcmpSocket::open(ip)?;
        for _attempt in 0..self.attempts {
            match tokio::time::timeout(self.timeout, socket.echo(ip)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(err)) => return Err(CheckError::from_io(&err)),
                Err(_) => continue,
            }
        }
        if self.attempts == 1 {
            Err(CheckError::Timeout(self.timeout))
        } else {
            Err(CheckError::Other(format!(
                "no echo reply in {} attempts of {:.1}s",
                self.attempts,
                self.timeout.as_secs_f64()
            )))
        }
    }
}

impl Checker for PingChecker {
    fn name(&self) -> &'static str {
        "ping"
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(self.run(target))
    }
}

struct IcmpSocket {
    fd: AsyncFd<Socket>,
    /// Raw sockets see the IPv4 header and everyone's ICMP.
    raw: bool,
    v6: bool,
    identifier: u16,
}

impl IcmpSocket {
    fn open(ip: IpAddr) -> Result<Self, CheckError> {
        let (domain, protocol) = match ip {
            IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
            IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
        };
        let (socket, raw) = match Socket::new(domain, Type::DGRAM.nonblocking(), Some(protocol)) {
            Ok(socket) => (socket, false),
            Err(dgram_err) => match Socket::new(domain, Type::RAW.nonblocking(), Some(protocol)) {
                Ok(socket) => (socket, true),
                Err(raw_err) => {
                    return Err(CheckError::Other(format!(
                        "cannot open an ICMP socket (datagram: {dgram_err}; raw: {raw_err}); \
                         run as root or allow our group in net.ipv4.ping_group_range"
                    )))
                }
            },
        };
        let fd = register(socket).map_err(|err| CheckError::from_io(&err))?;
        Ok(IcmpSocket {
            fd,
            raw,
            v6: ip.is_ipv6(),
            identifier: random_u64() as u16,
        })
    }

    /// Sends one echo request and waits (unbounded; the caller times out)
    /// for the matching reply.
    async fn echo(&self, ip: IpAddr) -> io::Result<()> {
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let token = random_u64().to_be_bytes();
        let request = self.echo_request(sequence, &token);
        let dest = SockAddr::from(SocketAddr::new(ip, 0));
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| fd.get_ref().send_to(&request, &dest)) {
                Ok(result) => {
                    result?;
                    break;
                }
                Err(_would_block) => continue,
            }
        }
        let mut buf = [MaybeUninit::<u8>::uninit(); 1500];
        loop {
            let mut guard = self.fd.readable().await?;
            let (len, from) = match guard.try_io(|fd| fd.get_ref().recv_from(&mut buf)) {
                Ok(result) => result?,
                Err(_would_block) => continue,
            };
            // SAFETY: recv_from initialised the first `len` bytes.
            let packet: &[u8] =
                unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
            let from_ip = from.as_socket().map(|addr| addr.ip());
            if from_ip == Some(ip) && self.is_our_reply(packet, sequence, &token) {
                return Ok(());
            }
        }
    }

    fn echo_request(&self, sequence: u16, token: &[u8; 8]) -> Vec<u8> {
        let mut packet = vec![0u8; 8 + PAYLOAD_LEN];
        packet[0] = if self.v6 {
            ICMPV6_ECHO_REQUEST
        } else {
            ICMP_ECHO_REQUEST
        };
        packet[4..6].copy_from_slice(&self.identifier.to_be_bytes());
        packet[6..8].copy_from_slice(&sequence.to_be_bytes());
        packet[8..16].copy_from_slice(token);
        // The kernel fills in the checksum for ICMP datagram sockets and
        // for ICMPv6; only raw IPv4 needs it from us.
        if self.raw && !self.v6 {
            let sum = checksum(&packet);
            packet[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        packet
    }

    fn is_our_reply(&self, packet: &[u8], sequence: u16, token: &[u8; 8]) -> bool {
        let icmp = if self.raw && !self.v6 {
            let header_len = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
            match packet.get(header_len..) {
                Some(icmp) => icmp,
                None => return false,
            }
        } else {
            packet
        };
        if icmp.len() < 16 {
            return false;
        }
        let reply_type = if self.v6 {
            ICMPV6_ECHO_REPLY
        } else {
            ICMP_ECHO_REPLY
        };
        // Datagram sockets get their identifier rewritten by the kernel
        // (and receive only their own replies), so it is checked only on
        // raw sockets.
        icmp[0] == reply_type
            && (!self.raw || icmp[4..6] == self.identifier.to_be_bytes())
            && icmp[6..8] == sequence.to_be_bytes()
            && icmp[8..16] == token[..]
    }
}

/// Registers a socket with the tokio reactor.
pub(crate) fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: a socket2::Socket owns its file descriptor and always
    // returns the same one from as_raw_fd until it is dropped, which the
    // AsyncFd that now owns it controls.
    unsafe { AsyncFd::register(socket) }.map_err(|err| err.into_parts().1)
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Unpredictable enough for matching our own replies; no crate needed.
pub(crate) fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_known_packet() {
        // Echo request, id 1, seq 1, no payload: sum = 0x0800 + 1 + 1.
        let packet = [8, 0, 0, 0, 0, 1, 0, 1];
        assert_eq!(checksum(&packet), !0x0802);
        // A packet including its own checksum sums to zero.
        let mut with_sum = packet;
        with_sum[2..4].copy_from_slice(&checksum(&packet).to_be_bytes());
        assert_eq!(checksum(&with_sum), 0);
    }
}
