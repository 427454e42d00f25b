// SPDX-License-Identifier: GPL-2.0-or-later
//! How addresses and ports are spelled: numerically (the default, as
//! `ipvsadm -n`), or with host and service names (`--resolve`, as ipvsadm
//! without `-n`).
//!
//! IPv6 addresses are written with glibc's `inet_ntop` rules rather than
//! Rust's `Display`: the two differ for IPv4-compatible addresses
//! (`::1.2.3.4` against `::102:304`), and ipvsadm's output is the
//! reference.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::ipvs::Protocol;

/// Spells `addr:port` the way ipvsadm's `addrport_to_anyname` does.
pub trait Namer {
    /// `10.0.0.1:80`, `[2001:db8::1]:80`, or the resolved equivalents.
    /// `protocol` picks the services table for port names.
    fn endpoint(&self, addr: &IpAddr, port: u16, protocol: Protocol) -> String;
}

/// Numbers only (`ipvsadm -n`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Numeric;

impl Namer for Numeric {
    fn endpoint(&self, addr: &IpAddr, port: u16, _protocol: Protocol) -> String {
        match addr {
            IpAddr::V4(a) => format!("{a}:{port}"),
            IpAddr::V6(a) => format!("[{}]:{port}", inet_ntop6(a)),
        }
    }
}

/// Host names from the system resolver (`/etc/hosts`, DNS, ... as NSS is
/// configured) and port names from `/etc/services`; numbers where no name
/// is known.
#[derive(Debug, Default)]
pub struct Resolver {
    services: ServicesTable,
}

impl Resolver {
    /// Reads `/etc/services` once; a missing file only means no port names.
    pub fn from_system() -> Self {
        let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
        Self {
            services: ServicesTable::parse(&text),
        }
    }
}

impl Namer for Resolver {
    fn endpoint(&self, addr: &IpAddr, port: u16, protocol: Protocol) -> String {
        let host = reverse_lookup(addr).unwrap_or_else(|| match addr {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => inet_ntop6(a),
        });
        let port = self
            .services
            .name(port, protocol)
            .map(str::to_owned)
            .unwrap_or_else(|| port.to_string());
        match addr {
            IpAddr::V4(_) => format!("{host}:{port}"),
            IpAddr::V6(_) => format!("[{host}]:{port}"),
        }
    }
}

/// The name the resolver gives `addr`, if any (`getnameinfo` with
/// `NI_NAMEREQD`, what `gethostbyaddr` answers for ipvsadm).
fn reverse_lookup(addr: &IpAddr) -> Option<String> {
    let socket_addr = SocketAddr::new(*addr, 0);
    let (storage, length) = socket_address_to_c(&socket_addr);
    let mut host = [0 as libc::c_char; libc::NI_MAXHOST as usize];
    // SAFETY: `storage` holds a valid sockaddr of `length` bytes; `host`
    // is a writable buffer of the length passed; no service buffer.
    let rc = unsafe {
        libc::getnameinfo(
            (&storage as *const libc::sockaddr_storage).cast(),
            length,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

fn socket_address_to_c(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let length = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in.
            unsafe {
                std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin);
            }
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe {
                std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6);
            }
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, length as libc::socklen_t)
}

/// Port names by (port, protocol), first entry wins as with
/// `getservbyport` over the `files` source.
#[derive(Debug, Default)]
pub struct ServicesTable {
    names: HashMap<(u16, Protocol), String>,
}

impl ServicesTable {
    /// Parses `/etc/services` syntax: `name port/proto [aliases] [# ...]`.
    pub fn parse(text: &str) -> Self {
        let mut names = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut fields = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else {
                continue;
            };
            let protocol = match proto {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                _ => continue,
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            names
                .entry((port, protocol))
                .or_insert_with(|| name.to_owned());
        }
        Self { names }
    }

    pub fn name(&self, port: u16, protocol: Protocol) -> Option<&str> {
        self.names.get(&(port, protocol)).map(String::as_str)
    }
}

/// glibc's `inet_ntop(AF_INET6, ...)`: the first longest run of two or
/// more zero words becomes `::`, and `::a.b.c.d` / `::ffff:a.b.c.d` keep
/// their embedded IPv4 address in dotted form.
pub fn inet_ntop6(addr: &Ipv6Addr) -> String {
    let words = addr.segments();
    // (start, length) of the first longest zero run.
    let mut best: Option<(usize, usize)> = None;
    let mut current: Option<(usize, usize)> = None;
    for (i, word) in words.iter().enumerate() {
        if *word == 0 {
            current = Some(match current {
                Some((start, len)) => (start, len + 1),
                None => (i, 1),
            });
        } else if let Some(run) = current.take() {
            if best.is_none_or(|b| run.1 > b.1) {
                best = Some(run);
            }
        }
    }
    if let Some(run) = current {
        if best.is_none_or(|b| run.1 > b.1) {
            best = Some(run);
        }
    }
    let best = best.filter(|(_, len)| *len >= 2);

    let mut out = String::with_capacity(40);
    let mut i = 0;
    while i < 8 {
        if let Some((start, len)) = best {
            if i >= start && i < start + len {
                if i == start {
                    out.push(':');
                }
                i += 1;
                continue;
            }
        }
        if i != 0 {
            out.push(':');
        }
        let embedded_v4 = i == 6
            && best.is_some_and(|(start, len)| {
                start == 0 && (len == 6 || (len == 5 && words[5] == 0xffff))
            });
        if embedded_v4 {
            let o = addr.octets();
            let _ = write!(out, "{}", Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            return out;
        }
        let _ = write!(out, "{:x}", words[i]);
        i += 1;
    }
    if best.is_some_and(|(start, len)| start + len == 8) {
        out.push(':');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ntop(text: &str) -> String {
        inet_ntop6(&text.parse().unwrap())
    }

    #[test]
    fn ipv6_spelled_like_glibc() {
        assert_eq!(ntop("2001:db8::1"), "2001:db8::1");
        assert_eq!(ntop("::"), "::");
        assert_eq!(ntop("::1"), "::1");
        assert_eq!(ntop("2001:db8::"), "2001:db8::");
        // A single zero word is not compressed.
        assert_eq!(ntop("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
        // The first of two equally long runs is compressed.
        assert_eq!(ntop("1:0:0:1:0:0:1:1"), "1::1:0:0:1:1");
        assert_eq!(ntop("1:0:0:1:0:0:0:1"), "1:0:0:1::1");
        assert_eq!(
            ntop("2001:0db8:0000:0000:0000:0000:0000:0010"),
            "2001:db8::10"
        );
        // Embedded IPv4 (mapped and compatible), unlike Rust's Display.
        assert_eq!(ntop("::ffff:10.1.2.3"), "::ffff:10.1.2.3");
        assert_eq!(ntop("::10.1.2.3"), "::10.1.2.3");
        assert_eq!(ntop("::2:3"), "::0.2.0.3");
    }

    #[test]
    fn numeric_endpoints_match_ipvsadm_n() {
        let namer = Numeric;
        assert_eq!(
            namer.endpoint(&"10.0.0.1".parse().unwrap(), 80, Protocol::Tcp),
            "10.0.0.1:80"
        );
        assert_eq!(
            namer.endpoint(&"2001:db8::1".parse().unwrap(), 0, Protocol::Udp),
            "[2001:db8::1]:0"
        );
    }

    #[test]
    fn services_table_takes_the_first_entry_per_port_and_protocol() {
        let table = ServicesTable::parse(
            "# comment\nhttp 80/tcp www # WorldWideWeb\nhttp 80/udp\n\
             alt 80/tcp\nsip 5060/sctp\nbroken x/tcp\n",
        );
        assert_eq!(table.name(80, Protocol::Tcp), Some("http"));
        assert_eq!(table.name(80, Protocol::Udp), Some("http"));
        assert_eq!(table.name(5060, Protocol::Sctp), Some("sip"));
        assert_eq!(table.name(443, Protocol::Tcp), None);
    }
}
