// SPDX-License-Identifier: GPL-2.0-or-later
//! The connection table (`ipvs-ls -c`, as `ipvsadm -L -c`).
//!
//! The kernel has no netlink dump of connections; ipvsadm reads
//! `/proc/net/ip_vs_conn` (of the caller's network namespace), so we do
//! too, and print each line as its `print_conn` does. The kernel writes
//! IPv4 addresses as 8 hex digits and IPv6 ones in full (`%pI6`); ports
//! are 4 hex digits; the persistence engine's name and data follow when
//! a connection has them.

use std::fmt::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

use crate::inspect::names::Namer;
use crate::ipvs::Protocol;

/// Where the kernel lists connections.
pub const CONNECTIONS_FILE: &str = "/proc/net/ip_vs_conn";

/// One line of `/proc/net/ip_vs_conn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// As the kernel spells it (`TCP`, `UDP`, `SCTP`, ...).
    pub protocol: String,
    pub client: IpAddr,
    pub client_port: u16,
    pub virtual_addr: IpAddr,
    pub virtual_port: u16,
    pub dest: IpAddr,
    pub dest_port: u16,
    pub state: String,
    /// Seconds until the entry expires.
    pub expires: u32,
    /// Persistence engine name and data (`sip`, the Call-ID).
    pub pe: Option<(String, String)>,
}

impl Connection {
    /// Parses one line; `None` for lines that are not a connection.
    pub fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 {
            return None;
        }
        let (client, virtual_addr, dest) = (
            connection_address(fields[1])?,
            connection_address(fields[3])?,
            connection_address(fields[5])?,
        );
        let pe = match (fields.get(9), fields.get(10)) {
            (Some(name), Some(data)) => Some(((*name).to_owned(), (*data).to_owned())),
            _ => None,
        };
        Some(Self {
            protocol: fields[0].to_owned(),
            client,
            client_port: u16::from_str_radix(fields[2], 16).ok()?,
            virtual_addr,
            virtual_port: u16::from_str_radix(fields[4], 16).ok()?,
            dest,
            dest_port: u16::from_str_radix(fields[6], 16).ok()?,
            state: fields[7].to_owned(),
            expires: fields[8].parse().ok()?,
            pe,
        })
    }

    fn name_protocol(&self) -> Protocol {
        match self.protocol.as_str() {
            "UDP" => Protocol::Udp,
            "SCTP" => Protocol::Sctp,
            _ => Protocol::Tcp,
        }
    }
}

/// An IPv6 address in any textual form, or an IPv4 one as the kernel
/// prints it: `C0A80001` (`%08X` of the host-order value).
fn connection_address(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>().ok().or_else(|| {
        u32::from_str_radix(text, 16)
            .ok()
            .map(|v| IpAddr::V4(Ipv4Addr::from(v)))
    })
}

/// Parses the whole file: the first line is the kernel's title.
pub fn parse_connections(text: &str) -> Vec<Connection> {
    text.lines().skip(1).filter_map(Connection::parse).collect()
}

/// `ipvsadm -L -c [--persistent-conn]`.
pub fn write_connections(
    out: &mut impl Write,
    connections: &[Connection],
    persistent_conn: bool,
    namer: &dyn Namer,
) -> fmt::Result {
    out.write_str("IPVS connection entries\n")?;
    if persistent_conn {
        writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        )?;
    } else {
        writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        )?;
    }
    for c in connections {
        let protocol = c.name_protocol();
        let client = namer.endpoint(&c.client, c.client_port, protocol);
        let virtual_name = namer.endpoint(&c.virtual_addr, c.virtual_port, protocol);
        let dest = namer.endpoint(&c.dest, c.dest_port, protocol);
        let expire = format!("{:02}:{:02}", c.expires / 60, c.expires % 60);
        match (&c.pe, persistent_conn) {
            (Some((pe_name, pe_data)), true) => writeln!(
                out,
                "{:<3} {expire:<6} {:<11} {client:<18} {virtual_name:<18} {dest:<16} \
                 {pe_name:<18} {pe_data}",
                c.protocol, c.state
            )?,
            _ => writeln!(
                out,
                "{:<3} {expire:<6} {:<11} {client:<18} {virtual_name:<18} {dest}",
                c.protocol, c.state
            )?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::names::Numeric;

    /// Captured in the VM (kernel 6.1) after local TCP and UDP traffic to
    /// two masq services; ipvsadm -Lnc printed the expected text.
    const CAPTURED: &str = "\
Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0A01FFFE CF92 0A010001 0050 0A020001 1F90 SYN_RECV         49
UDP 0A01FFFE 0000 0A010001 0035 0A020003 0035 NONE             20
";

    #[test]
    fn prints_like_ipvsadm_lnc() {
        let mut out = String::new();
        write_connections(&mut out, &parse_connections(CAPTURED), false, &Numeric).unwrap();
        assert_eq!(
            out,
            "IPVS connection entries\n\
             pro expire state       source             virtual            destination\n\
             TCP 00:49  SYN_RECV    10.1.255.254:53138 10.1.0.1:80        10.2.0.1:8080\n\
             UDP 00:20  NONE        10.1.255.254:0     10.1.0.1:53        10.2.0.3:53\n"
        );
        let mut out = String::new();
        write_connections(&mut out, &parse_connections(CAPTURED), true, &Numeric).unwrap();
        assert!(out.starts_with(
            "IPVS connection entries\n\
             pro expire state       source             virtual            destination        \
             pe name          pe_data\n\
             TCP 00:49  SYN_RECV    10.1.255.254:53138 10.1.0.1:80        10.2.0.1:8080\n"
        ));
    }

    #[test]
    fn ipv6_and_persistence_engine_fields() {
        let line = "UDP 2001:0db8:0000:0000:0000:0000:0000:0002 13C4 \
                    2001:0db8:0000:0000:0000:0000:0000:0001 13C4 0A020001 13C4 \
                    NONE           125 sip abc@host";
        let c = Connection::parse(line).unwrap();
        assert_eq!(c.client, "2001:db8::2".parse::<IpAddr>().unwrap());
        assert_eq!(c.dest, "10.2.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(c.expires, 125);
        let mut out = String::new();
        write_connections(&mut out, std::slice::from_ref(&c), true, &Numeric).unwrap();
        assert_eq!(
            out.lines().nth(2).unwrap(),
            "UDP 02:05  NONE        [2001:db8::2]:5060 [2001:db8::1]:5060 10.2.0.1:5060    \
             sip                abc@host"
        );
        assert!(Connection::parse("garbage").is_none());
    }
}
