// SPDX-License-Identifier: GPL-2.0-or-later
//! What parsing needs from the outside world: host names, service names and
//! a writability test.
//!
//! ldirectord resolves names while it reads the file (so a name that does
//! not resolve is a configuration error), looks service-name ports up in
//! `/etc/services`, and opens `monitorfile` for append. The parser asks an
//! [`Environment`] for these, so tests and the fuzzer can run without DNS.

use std::collections::HashMap;
use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::ipvs::model::AddressFamily;

/// Name lookups and file probes used while parsing.
pub trait Environment {
    /// Resolve a host name or numeric address in one address family, as
    /// `getaddrinfo(name, "0", {family})` does; the first answer wins.
    fn resolve_host(&self, name: &str, family: AddressFamily) -> Option<IpAddr>;

    /// Look up a service name (`/etc/services`). `protocol` is `tcp`, `udp`,
    /// `sctp`, or `None` for any protocol.
    fn service_port(&self, name: &str, protocol: Option<&str>) -> Option<u16>;

    /// Can the file be opened for appending (monitorfile)? Must not create
    /// it: `--check` has no side effects.
    fn can_append(&self, path: &str) -> Result<(), String>;

    /// Is this an existing directory (maintenancedir)?
    fn is_dir(&self, path: &str) -> bool;

    /// The host name used for ftp/sip default logins (`ldirectord@HOST`).
    fn hostname(&self) -> String;
}

/// The real system: getaddrinfo, `/etc/services`, access(2).
#[derive(Debug, Default)]
pub struct SystemEnvironment {
    services: std::sync::OnceLock<Services>,
}

impl SystemEnvironment {
    pub fn new() -> Self {
        Self::default()
    }

    fn services(&self) -> &Services {
        self.services.get_or_init(|| {
            std::fs::read_to_string("/etc/services")
                .map(|text| Services::parse(&text))
                .unwrap_or_default()
        })
    }
}

impl Environment for SystemEnvironment {
    fn resolve_host(&self, name: &str, family: AddressFamily) -> Option<IpAddr> {
        // Nearly every address in a config is a plain literal: read it
        // here instead of a getaddrinfo call (two C strings and a result
        // list) per real. The standard parsers accept only the strict
        // forms (no octal, no short IPv4, no IPv6 scope), which
        // getaddrinfo reads the same; everything else still goes to it.
        let literal = match family {
            AddressFamily::Inet => name.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            AddressFamily::Inet6 => name.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        };
        literal.or_else(|| getaddrinfo_first(name, family))
    }

    fn service_port(&self, name: &str, protocol: Option<&str>) -> Option<u16> {
        self.services().lookup(name, protocol)
    }

    fn can_append(&self, path: &str) -> Result<(), String> {
        can_append(Path::new(path))
    }

    fn is_dir(&self, path: &str) -> bool {
        Path::new(path).is_dir()
    }

    fn hostname(&self) -> String {
        if let Ok(h) = std::env::var("HOSTNAME") {
            return h;
        }
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_string())
    }
}

/// An environment without the network or the file system: numeric
/// addresses only (plus `localhost`), a built-in service table, every file
/// writable. For tests, fuzzing and benchmarks.
#[derive(Debug, Default)]
pub struct OfflineEnvironment;

impl Environment for OfflineEnvironment {
    fn resolve_host(&self, name: &str, family: AddressFamily) -> Option<IpAddr> {
        match family {
            AddressFamily::Inet => {
                if name == "localhost" {
                    return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
                }
                name.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
            }
            AddressFamily::Inet6 => name.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        }
    }

    fn service_port(&self, name: &str, _protocol: Option<&str>) -> Option<u16> {
        let port = match name {
            "ftp" => 21,
            "ssh" => 22,
            "smtp" => 25,
            "domain" => 53,
            "http" | "www" => 80,
            "pop3" => 110,
            "nntp" => 119,
            "imap2" | "imap" => 143,
            "ldap" => 389,
            "https" => 443,
            "submission" => 587,
            "ldaps" => 636,
            "imaps" => 993,
            "pop3s" => 995,
            "mysql" => 3306,
            "sip" => 5060,
            "postgresql" => 5432,
            _ => return None,
        };
        Some(port)
    }

    fn can_append(&self, _path: &str) -> Result<(), String> {
        Ok(())
    }

    fn is_dir(&self, _path: &str) -> bool {
        true
    }

    fn hostname(&self) -> String {
        "localhost".to_string()
    }
}

/// Host names from a hosts file (`/etc/hosts` format), numeric addresses
/// read exactly as getaddrinfo reads them, and service names from a
/// services file; never DNS. With the same hosts file this resolves like
/// ldirectord does in a namespace without network, which is how the test
/// corpus's recorded verdicts were produced (tests/config/regen-verdicts.sh).
#[derive(Debug, Default)]
pub struct FilesEnvironment {
    /// (address, names) in file order.
    hosts: Vec<(IpAddr, Vec<String>)>,
    services: Services,
    hostname: String,
}

impl FilesEnvironment {
    /// Read `hosts` and `services` (either may be missing: empty tables).
    pub fn new(hosts: &Path, services: &Path, hostname: &str) -> Self {
        let hosts = std::fs::read_to_string(hosts)
            .map(|text| parse_hosts(&text))
            .unwrap_or_default();
        let services = std::fs::read_to_string(services)
            .map(|text| Services::parse(&text))
            .unwrap_or_default();
        FilesEnvironment {
            hosts,
            services,
            hostname: hostname.to_string(),
        }
    }
}

fn parse_hosts(text: &str) -> Vec<(IpAddr, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let addr: IpAddr = fields.next()?.parse().ok()?;
            Some((addr, fields.map(str::to_string).collect()))
        })
        .collect()
}

impl Environment for FilesEnvironment {
    fn resolve_host(&self, name: &str, family: AddressFamily) -> Option<IpAddr> {
        if let Some(addr) = getaddrinfo_numeric(name, family) {
            return Some(addr);
        }
        self.hosts.iter().find_map(|(addr, names)| {
            let family_matches = matches!(
                (addr, family),
                (IpAddr::V4(_), AddressFamily::Inet) | (IpAddr::V6(_), AddressFamily::Inet6)
            );
            // glibc compares host names without regard to case.
            (family_matches && names.iter().any(|n| n.eq_ignore_ascii_case(name))).then_some(*addr)
        })
    }

    fn service_port(&self, name: &str, protocol: Option<&str>) -> Option<u16> {
        self.services.lookup(name, protocol)
    }

    fn can_append(&self, path: &str) -> Result<(), String> {
        can_append(Path::new(path))
    }

    fn is_dir(&self, path: &str) -> bool {
        Path::new(path).is_dir()
    }

    fn hostname(&self) -> String {
        self.hostname.clone()
    }
}

/// `getaddrinfo` with a family hint and no flags, as Perl's Socket6 call in
/// ldirectord makes it: numeric forms `inet_aton` accepts (`5060`, `10.1`)
/// resolve too, exactly as they do for ldirectord.
fn getaddrinfo_first(name: &str, family: AddressFamily) -> Option<IpAddr> {
    getaddrinfo_with(name, family, 0)
}

/// getaddrinfo restricted to numeric forms (`AI_NUMERICHOST`): no lookup of
/// any kind, so no traffic.
fn getaddrinfo_numeric(name: &str, family: AddressFamily) -> Option<IpAddr> {
    getaddrinfo_with(name, family, libc::AI_NUMERICHOST)
}

fn getaddrinfo_with(name: &str, family: AddressFamily, flags: libc::c_int) -> Option<IpAddr> {
    let c_name = CString::new(name).ok()?;
    let c_service = CString::new("0").ok()?;
    // SAFETY: hints is plain old data, zeroed as getaddrinfo(3) requires for
    // the fields we do not set.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = match family {
        AddressFamily::Inet => libc::AF_INET,
        AddressFamily::Inet6 => libc::AF_INET6,
    };
    hints.ai_flags = flags;
    let mut result: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated strings, valid hints, and an out pointer
    // we free below with freeaddrinfo.
    let rc = unsafe { libc::getaddrinfo(c_name.as_ptr(), c_service.as_ptr(), &hints, &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    let mut found = None;
    let mut cursor = result;
    while !cursor.is_null() {
        // SAFETY: cursor walks the list getaddrinfo returned; each ai_addr
        // points to a sockaddr of the length and family the entry states.
        let entry = unsafe { &*cursor };
        if !entry.ai_addr.is_null() {
            match entry.ai_family {
                libc::AF_INET => {
                    let sa = unsafe { &*(entry.ai_addr as *const libc::sockaddr_in) };
                    found = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))));
                }
                libc::AF_INET6 => {
                    let sa = unsafe { &*(entry.ai_addr as *const libc::sockaddr_in6) };
                    found = Some(IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)));
                }
                _ => {}
            }
        }
        if found.is_some() {
            break;
        }
        cursor = entry.ai_next;
    }
    // SAFETY: result came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(result) };
    found
}

/// Would `open(F, ">>path")` succeed? Checked without creating the file:
/// an existing file must be writable, a new one needs a writable directory.
fn can_append(path: &Path) -> Result<(), String> {
    use nix::unistd::{access, AccessFlags};
    if path.as_os_str().is_empty() {
        return Err("No such file or directory".to_string());
    }
    if path.is_dir() {
        return Err("Is a directory".to_string());
    }
    if path.exists() {
        return access(path, AccessFlags::W_OK).map_err(|e| e.desc().to_string());
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err("No such file or directory".to_string());
    }
    access(parent, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| e.desc().to_string())
}

/// `/etc/services`, parsed once.
#[derive(Debug, Default)]
struct Services {
    /// name or alias -> [(protocol, port)] in file order.
    by_name: HashMap<String, Vec<(String, u16)>>,
}

impl Services {
    fn parse(text: &str) -> Self {
        let mut by_name: HashMap<String, Vec<(String, u16)>> = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for n in std::iter::once(name).chain(fields) {
                by_name
                    .entry(n.to_string())
                    .or_default()
                    .push((proto.to_string(), port));
            }
        }
        Services { by_name }
    }

    fn lookup(&self, name: &str, protocol: Option<&str>) -> Option<u16> {
        self.by_name
            .get(name)?
            .iter()
            .find_map(|(p, port)| match protocol {
                Some(want) if want != p => None,
                _ => Some(*port),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_resolve_as_getaddrinfo_reads_them() {
        let env = SystemEnvironment::new();
        let cases = [
            ("10.102.117.14", AddressFamily::Inet),
            ("0.0.0.0", AddressFamily::Inet),
            ("255.255.255.255", AddressFamily::Inet),
            ("127.0.3.1", AddressFamily::Inet),
            ("010.1.1.1", AddressFamily::Inet),
            ("10.1", AddressFamily::Inet),
            ("2001:db8::1", AddressFamily::Inet6),
            ("::ffff:10.0.0.1", AddressFamily::Inet6),
            ("::1", AddressFamily::Inet6),
            ("10.0.0.1", AddressFamily::Inet6),
            ("2001:db8::1", AddressFamily::Inet),
        ];
        for (name, family) in cases {
            assert_eq!(
                env.resolve_host(name, family),
                getaddrinfo_numeric(name, family),
                "{name} {family:?}"
            );
        }
        // The forms only getaddrinfo knows still work: octal, short.
        assert_eq!(
            env.resolve_host("010.1.1.1", AddressFamily::Inet),
            Some(IpAddr::V4(Ipv4Addr::new(8, 1, 1, 1)))
        );
    }

    #[test]
    fn services_file_lookup_respects_protocol() {
        let s = Services::parse("http 80/tcp www # web\nfoo 99/udp\n");
        assert_eq!(s.lookup("www", Some("tcp")), Some(80));
        assert_eq!(s.lookup("http", None), Some(80));
        assert_eq!(s.lookup("http", Some("udp")), None);
        assert_eq!(s.lookup("foo", None), Some(99));
    }

    #[test]
    fn files_environment_reads_hosts_and_numeric_forms_without_dns() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "10.0.0.5 web Web2 # c\n2001:db8::5 web\n").unwrap();
        let env = FilesEnvironment::new(&hosts, Path::new("/nonexistent"), "h");
        assert_eq!(
            env.resolve_host("WEB", AddressFamily::Inet),
            Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)))
        );
        assert_eq!(
            env.resolve_host("web", AddressFamily::Inet6),
            Some("2001:db8::5".parse().unwrap())
        );
        assert_eq!(
            env.resolve_host("5060", AddressFamily::Inet),
            Some(IpAddr::V4(Ipv4Addr::new(0, 0, 19, 196)))
        );
        assert_eq!(
            env.resolve_host("nosuchhost.test", AddressFamily::Inet),
            None
        );
    }

    #[test]
    fn getaddrinfo_takes_inet_aton_forms() {
        // ldirectord's sample `real=192.168.6.2::5060` ends up resolving
        // "5060" as an address: glibc reads it as 0.0.19.196.
        assert_eq!(
            getaddrinfo_first("5060", AddressFamily::Inet),
            Some(IpAddr::V4(Ipv4Addr::new(0, 0, 19, 196)))
        );
        assert_eq!(getaddrinfo_first("::1", AddressFamily::Inet), None);
        assert_eq!(
            getaddrinfo_first("::1", AddressFamily::Inet6),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
    }
}
