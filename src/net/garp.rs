// SPDX-License-Identifier: GPL-2.0-or-later
//! Announcing a VIP on takeover: gratuitous ARP (IPv4) and unsolicited
//! neighbour advertisement (IPv6), built with pnet's packet types and sent
//! on the interface through an AF_PACKET socket.
//!
//! # Defaults, and where they come from
//!
//! resource-agents' IPaddr2 (heartbeat/IPaddr2) declares
//! `OCF_RESKEY_arp_count_default=5` and `OCF_RESKEY_arp_interval_default=200`
//! (milliseconds), and by default hands them to `send_arp` as
//! `send_arp -i 200 -r 5 -p PIDFILE NIC IP auto not_used not_used`, in the
//! background (`arp_bg=true`). For IPv6 it runs `send_ua -i 200 -c 5 IP
//! PREFIX NIC` with the same two parameters. We use the same numbers:
//! [`DEFAULT_COUNT`] = 5 announcements, [`DEFAULT_INTERVAL`] = 200 ms apart,
//! the first one at once.
//!
//! What the frames look like, per those tools:
//!
//! * `send_arp` (tools/send_arp.linux.c, iputils arping in unsolicited
//!   `-U` mode) sends ARP *requests* whose sender and target protocol
//!   addresses are both the VIP, to the Ethernet broadcast address. (It
//!   accepts `-i` only for compatibility and paces its packets one second
//!   apart; `send_ua` and the older libnet `send_arp` do honour the 200 ms.)
//!   [`ArpOperation::Reply`] (arping `-A`, IPaddr2's `send_arp_opts=-A`
//!   advice) is available for networks whose gear only learns from replies.
//! * `send_ua` (heartbeat/IPv6addr_utils.c) sends a neighbour advertisement
//!   from the VIP to ff02::1 with hop limit 255, the override flag and a
//!   target link-layer address option: exactly what [`unsolicited_na`]
//!   builds.
//!
//! One deliberate difference: in the ARP request, arping copies the
//! broadcast address into the *target hardware address* field; we put zeroes
//! there, as RFC 5227 section 2.3 asks of an ARP Announcement and as the
//! Linux kernel's own gratuitous ARP (`arp_notify`) does. Receivers ignore
//! the field in a request, so both update neighbour caches alike. A
//! gratuitous *reply* carries our own MAC as target hardware address,
//! because Linux only treats a reply as gratuitous when sender and target
//! hardware addresses match (`arp_is_garp`), and only a gratuitous packet
//! overrides an entry within its lock time.
//!
//! # How receivers take it (Linux, checked by tests/net_announce.rs)
//!
//! * IPv4: a gratuitous ARP updates an *existing* neighbour entry to our
//!   MAC (state STALE) with the default `arp_accept=0`; creating an entry
//!   that did not exist needs `arp_accept=1` on the receiver.
//! * IPv6: an unsolicited NA with the override flag updates an existing
//!   entry (state STALE) unless the entry is FAILED; it creates no entry
//!   unless the receiver sets `accept_untracked_na`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
use pnet_base::MacAddr;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{
    Icmpv6Codes, MutableNeighborAdvertPacket, NdpOption, NdpOptionTypes, NeighborAdvertFlags,
};
use pnet_packet::icmpv6::{self, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::MutableIpv6Packet;

use super::error::NetError;
use super::vip::{Link, VipHandle};

/// Announcements sent per takeover: IPaddr2's `arp_count` default.
pub const DEFAULT_COUNT: u32 = 5;
/// Time between announcements: IPaddr2's `arp_interval` default (200 ms).
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);

/// The capability AF_PACKET sockets need.
const CAP_NET_RAW: &str = "CAP_NET_RAW";

const ETHERNET_HEADER_LEN: usize = 14;
const ARP_LEN: usize = 28;
const IPV6_HEADER_LEN: usize = 40;
/// ICMPv6 NA header (type, code, checksum, flags, reserved, target) plus one
/// 8-byte target link-layer address option.
const NA_LEN: usize = 24 + 8;

/// Length of a gratuitous ARP frame (no padding: the NIC pads to 60 bytes).
pub const ARP_FRAME_LEN: usize = ETHERNET_HEADER_LEN + ARP_LEN;
/// Length of an unsolicited neighbour advertisement frame.
pub const NA_FRAME_LEN: usize = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + NA_LEN;

/// ff02::1, all nodes on the link.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// The Ethernet multicast address of ff02::1 (RFC 2464: 33:33 + low 32 bits).
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x01];
const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// RFC 4861 section 7.1.2: receivers drop ND messages whose hop limit is not
/// 255, which proves they were not forwarded by a router.
const ND_HOP_LIMIT: u8 = 255;

/// Which ARP operation carries the gratuitous ARP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArpOperation {
    /// ARP request, sender = target = VIP (send_arp's and arping -U's choice).
    #[default]
    Request,
    /// ARP reply, sender = target = VIP, target MAC = ours (arping -A).
    Reply,
}

/// How many announcements to send, and how far apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceOptions {
    pub count: u32,
    pub interval: Duration,
    pub arp_operation: ArpOperation,
}

impl Default for AnnounceOptions {
    fn default() -> Self {
        AnnounceOptions {
            count: DEFAULT_COUNT,
            interval: DEFAULT_INTERVAL,
            arp_operation: ArpOperation::Request,
        }
    }
}

/// A gratuitous ARP for `vip`, claimed by `mac`, broadcast.
pub fn gratuitous_arp(mac: [u8; 6], vip: Ipv4Addr, operation: ArpOperation) -> [u8; ARP_FRAME_LEN] {
    let mut frame = [0u8; ARP_FRAME_LEN];
    {
        let mut ethernet = MutableEthernetPacket::new(&mut frame)
            .expect("the buffer is sized for an Ethernet header");
        ethernet.set_destination(MacAddr::from(BROADCAST_MAC));
        ethernet.set_source(MacAddr::from(mac));
        ethernet.set_ethertype(EtherTypes::Arp);
    }
    let mut arp = MutableArpPacket::new(&mut frame[ETHERNET_HEADER_LEN..])
        .expect("the buffer is sized for an ARP packet");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_sender_hw_addr(MacAddr::from(mac));
    arp.set_sender_proto_addr(vip);
    arp.set_target_proto_addr(vip);
    match operation {
        ArpOperation::Request => {
            arp.set_operation(ArpOperations::Request);
            arp.set_target_hw_addr(MacAddr::zero());
        }
        ArpOperation::Reply => {
            arp.set_operation(ArpOperations::Reply);
            arp.set_target_hw_addr(MacAddr::from(mac));
        }
    }
    frame
}

/// An unsolicited neighbour advertisement for `vip`, from `vip` to ff02::1:
/// override set, solicited and router clear, target link-layer address
/// option = `mac`, hop limit 255.
pub fn unsolicited_na(mac: [u8; 6], vip: Ipv6Addr) -> [u8; NA_FRAME_LEN] {
    let mut frame = [0u8; NA_FRAME_LEN];
    {
        let mut ethernet = MutableEthernetPacket::new(&mut frame)
            .expect("the buffer is sized for an Ethernet header");
        ethernet.set_destination(MacAddr::from(ALL_NODES_MAC));
        ethernet.set_source(MacAddr::from(mac));
        ethernet.set_ethertype(EtherTypes::Ipv6);
    }
    {
        let mut ipv6 = MutableIpv6Packet::new(&mut frame[ETHERNET_HEADER_LEN..])
            .expect("the buffer is sized for an IPv6 header");
        ipv6.set_version(6);
        ipv6.set_traffic_class(0);
        ipv6.set_flow_label(0);
        ipv6.set_payload_length(NA_LEN as u16);
        ipv6.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ipv6.set_hop_limit(ND_HOP_LIMIT);
        ipv6.set_source(vip);
        ipv6.set_destination(ALL_NODES);
    }
    let icmp = &mut frame[ETHERNET_HEADER_LEN + IPV6_HEADER_LEN..];
    {
        let mut na = MutableNeighborAdvertPacket::new(icmp)
            .expect("the buffer is sized for a neighbour advertisement");
        na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
        na.set_icmpv6_code(Icmpv6Codes::NoCode);
        // Override: replace whatever link-layer address the neighbour has.
        // Solicited stays clear (nobody asked; RFC 4861 also forbids it on a
        // multicast NA), Router stays clear (a director is no router here).
        na.set_flags(NeighborAdvertFlags::Override);
        na.set_reserved(0);
        na.set_target_addr(vip);
        na.set_options(&[NdpOption {
            option_type: NdpOptionTypes::TargetLLAddr,
            // In units of 8 bytes: type, length and the 6-byte MAC.
            length: 1,
            data: mac.to_vec(),
        }]);
    }
    let checksum = {
        let packet = Icmpv6Packet::new(icmp).expect("the buffer holds an ICMPv6 header");
        icmpv6::checksum(&packet, &vip, &ALL_NODES)
    };
    let mut na = MutableNeighborAdvertPacket::new(icmp)
        .expect("the buffer is sized for a neighbour advertisement");
    na.set_checksum(checksum);
    frame
}

/// The announcement frame for `vip`: a gratuitous ARP or an unsolicited NA.
pub fn announcement_frame(mac: [u8; 6], vip: IpAddr, arp_operation: ArpOperation) -> Vec<u8> {
    match vip {
        IpAddr::V4(vip) => gratuitous_arp(mac, vip, arp_operation).to_vec(),
        IpAddr::V6(vip) => unsolicited_na(mac, vip).to_vec(),
    }
}

/// Announces `vip` on `iface`, after checking that `iface` carries it:
/// announcing an address we do not hold would steal it from its owner.
/// Sends the whole burst before returning; returns the number of frames
/// sent.
pub async fn announce(
    handle: &VipHandle,
    iface: &str,
    vip: IpAddr,
    options: &AnnounceOptions,
) -> Result<u32, NetError> {
    let link = handle.link(iface).await?;
    if !handle.is_present(iface, vip).await? {
        return Err(NetError::NotAnnounceable {
            iface: iface.to_string(),
            reason: format!(
                "{vip} is not configured on it (announcing it would take it from its owner)"
            ),
        });
    }
    announce_on(&link, vip, options).await
}

/// Announces `vip` on `link` without checking that the link carries it
/// (the caller just added it). One socket per burst; the first frame goes
/// out at once, the rest `options.interval` apart.
pub async fn announce_on(
    link: &Link,
    vip: IpAddr,
    options: &AnnounceOptions,
) -> Result<u32, NetError> {
    if options.count == 0 {
        Announcer::check_link(link)?;
        return Ok(0);
    }
    let announcer = Announcer::new(link, vip, options.arp_operation)?;
    announcer.send(1, options.count)?;
    announcer.send_rest(options).await?;
    Ok(options.count)
}

/// An open packet socket and the frame it announces `vip` with, so the
/// first announcement can be sent (and its errors reported) before the rest
/// of the burst is left to run in the background.
#[derive(Debug)]
pub struct Announcer {
    socket: PacketSocket,
    frame: Vec<u8>,
    ifindex: u32,
    iface: String,
    vip: IpAddr,
}

impl Announcer {
    /// Checks that `link` can carry an announcement, builds the frame and
    /// opens the socket (which needs CAP_NET_RAW).
    pub fn new(link: &Link, vip: IpAddr, arp_operation: ArpOperation) -> Result<Self, NetError> {
        let mac = Announcer::check_link(link)?;
        let socket = PacketSocket::open().map_err(|source| {
            NetError::from_os(
                format!("open a packet socket to announce {vip} on {}", link.name),
                CAP_NET_RAW,
                source,
            )
        })?;
        Ok(Announcer {
            socket,
            frame: announcement_frame(mac, vip, arp_operation),
            ifindex: link.index,
            iface: link.name.clone(),
            vip,
        })
    }

    /// The link's MAC if announcements make sense on it.
    fn check_link(link: &Link) -> Result<[u8; 6], NetError> {
        let not_announceable = |reason: &str| NetError::NotAnnounceable {
            iface: link.name.clone(),
            reason: reason.to_string(),
        };
        if link.is_loopback {
            return Err(not_announceable("it is a loopback interface"));
        }
        if link.no_arp {
            return Err(not_announceable("it has ARP turned off (NOARP)"));
        }
        let Some(mac) = link.mac else {
            return Err(not_announceable("it is not an Ethernet interface"));
        };
        if !link.is_up {
            return Err(NetError::InterfaceDown {
                iface: link.name.clone(),
            });
        }
        Ok(mac)
    }

    /// Sends announcement number `number` of `count` (for messages).
    pub fn send(&self, number: u32, count: u32) -> Result<(), NetError> {
        self.socket
            .send(self.ifindex, &self.frame)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::ENETDOWN) => NetError::InterfaceDown {
                    iface: self.iface.clone(),
                },
                // The interface was deleted since we looked it up.
                Some(libc::ENXIO) | Some(libc::ENODEV) => NetError::InterfaceNotFound {
                    iface: self.iface.clone(),
                },
                _ => NetError::from_os(
                    format!(
                        "send announcement {number} of {count} for {} on {}",
                        self.vip, self.iface
                    ),
                    CAP_NET_RAW,
                    source,
                ),
            })
    }

    /// Sends announcements 2 to `options.count`, `options.interval` apart,
    /// starting one interval from now.
    pub async fn send_rest(&self, options: &AnnounceOptions) -> Result<(), NetError> {
        for number in 2..=options.count {
            tokio::time::sleep(options.interval).await;
            self.send(number, options.count)?;
        }
        Ok(())
    }
}

/// A send-only AF_PACKET socket.
#[derive(Debug)]
struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    fn open() -> io::Result<PacketSocket> {
        // Protocol 0: the kernel delivers no incoming frames to this socket,
        // so nothing piles up in its receive queue while we only send.
        let fd = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(io::Error::from)?;
        Ok(PacketSocket { fd })
    }

    /// Sends one complete Ethernet frame (header included) on `ifindex`.
    fn send(&self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        let ifindex = i32::try_from(ifindex).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "interface index too large")
        })?;
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let mut destination = [0u8; 8];
        destination[..6].copy_from_slice(&frame[..6]);
        let address = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: ethertype.to_be(),
            sll_ifindex: ifindex,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 6,
            sll_addr: destination,
        };
        // SAFETY: `frame` and `address` are live for the whole call, and the
        // lengths passed are exactly theirs; sendto(2) only reads them.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&address as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        if sent as usize != frame.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", frame.len()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0b, 0x01];

    #[test]
    fn gratuitous_arp_request_bytes() {
        let frame = gratuitous_arp(MAC, Ipv4Addr::new(203, 0, 113, 10), ArpOperation::Request);
        #[rustfmt::skip]
        let expected: [u8; 42] = [
            // Ethernet: broadcast destination, our MAC, ethertype ARP
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x02, 0x00, 0x00, 0x00, 0x0b, 0x01,
            0x08, 0x06,
            // ARP: hardware Ethernet, protocol IPv4, lengths 6 and 4, op request
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
            // sender MAC, sender IP = VIP
            0x02, 0x00, 0x00, 0x00, 0x0b, 0x01, 203, 0, 113, 10,
            // target MAC zero (RFC 5227), target IP = VIP
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 203, 0, 113, 10,
        ];
        assert_eq!(frame, expected);
    }

    #[test]
    fn gratuitous_arp_reply_bytes() {
        let frame = gratuitous_arp(MAC, Ipv4Addr::new(198, 51, 100, 7), ArpOperation::Reply);
        #[rustfmt::skip]
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x02, 0x00, 0x00, 0x00, 0x0b, 0x01,
            0x08, 0x06,
            // op reply
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,
            0x02, 0x00, 0x00, 0x00, 0x0b, 0x01, 198, 51, 100, 7,
            // target MAC = sender MAC, as Linux wants of a gratuitous reply
            0x02, 0x00, 0x00, 0x00, 0x0b, 0x01, 198, 51, 100, 7,
        ];
        assert_eq!(frame, expected);
    }

    #[test]
    fn unsolicited_na_bytes() {
        let vip: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let frame = unsolicited_na(MAC, vip);
        #[rustfmt::skip]
        let expected: [u8; 86] = [
            // Ethernet: 33:33:00:00:00:01 (ff02::1), our MAC, ethertype IPv6
            0x33, 0x33, 0x00, 0x00, 0x00, 0x01,
            0x02, 0x00, 0x00, 0x00, 0x0b, 0x01,
            0x86, 0xdd,
            // IPv6: version 6, no class/flow, payload 32, next header 58, hop limit 255
            0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,
            // source 2001:db8::10
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            // destination ff02::1
            0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
            // ICMPv6: type 136, code 0, checksum 0xee0c (see below)
            0x88, 0x00, 0xee, 0x0c,
            // flags: R=0 S=0 O=1, then 29 reserved bits
            0x20, 0x00, 0x00, 0x00,
            // target address 2001:db8::10
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            // option: target link-layer address (2), length 1 (8 bytes), MAC
            0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x0b, 0x01,
        ];
        // The checksum, by hand (RFC 1071 one's-complement sum of 16-bit words
        // over the pseudo-header and the message with checksum zero):
        //   source 2001+0db8+0010                          = 0x2dc9
        //   destination ff02+0001                          = 0xff03
        //   upper-layer length 0x0020, next header 0x003a  = 0x005a
        //   type/code 8800, flags 2000                     = 0xa800
        //   target 2001+0db8+0010                          = 0x2dc9
        //   option 0201+0200+0000+0b01                     = 0x0f02
        //   total 0x211f1 -> fold 0x11f3 -> complement 0xee0c
        assert_eq!(frame, expected);
        assert!(one_complement_sum_is_valid(&frame, vip));
    }

    /// An independent check of the ICMPv6 checksum: summing the pseudo-header
    /// and the message *including* the checksum must give 0xffff.
    fn one_complement_sum_is_valid(frame: &[u8], source: Ipv6Addr) -> bool {
        let icmp = &frame[54..];
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&source.octets());
        bytes.extend_from_slice(&ALL_NODES.octets());
        bytes.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 58]);
        bytes.extend_from_slice(icmp);
        let mut sum: u32 = bytes
            .chunks(2)
            .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    #[test]
    fn frame_choice_follows_the_address_family() {
        assert_eq!(
            announcement_frame(MAC, "203.0.113.10".parse().unwrap(), ArpOperation::Request).len(),
            ARP_FRAME_LEN
        );
        assert_eq!(
            announcement_frame(MAC, "2001:db8::10".parse().unwrap(), ArpOperation::Request).len(),
            NA_FRAME_LEN
        );
    }

    #[test]
    fn defaults_are_ipaddr2s() {
        let options = AnnounceOptions::default();
        assert_eq!(options.count, 5);
        assert_eq!(options.interval, Duration::from_millis(200));
        assert_eq!(options.arp_operation, ArpOperation::Request);
    }
}
