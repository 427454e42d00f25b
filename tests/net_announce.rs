// SPDX-License-Identifier: GPL-2.0-or-later
//! VIP announcements on the wire (tier 3: privileged, host): gratuitous
//! ARP and unsolicited NA captured on the peer side of a veth pair and
//! checked field by field, and a simulated failover on a bridge where the
//! client's neighbour entry for the VIP must move to the new director's MAC
//! without the client sending anything.
//!
//! Needs root (network namespaces). Namespaces are `ldn-net-<pid>-*`,
//! removed on drop. Addresses: 198.51.100.0/24, 2001:db8::/32, only inside
//! the namespaces.

#[path = "support_net/mod.rs"]
mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::time::Duration;

use ldirector::net::garp::{self, ArpOperation};
use ldirector::net::{AnnounceOptions, VipAddr, VipHandle, VipOwner};
use pnet_packet::arp::ArpPacket;
use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::icmpv6::ndp::{NeighborAdvertFlags, NeighborAdvertPacket};
use pnet_packet::icmpv6::Icmpv6Types;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::Packet;
use support::{
    in_netns, mac_string, wait_for, Capture, Frame, Netns, Pair, DIRECTOR_MAC, PACKET_OUTGOING,
};

const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;

fn is_arp_about(frame: &Frame, vip: Ipv4Addr) -> bool {
    frame.ethertype() == ETHERTYPE_ARP && frame.mentions(IpAddr::V4(vip))
}

/// An ICMPv6 neighbour advertisement (type 136) carrying `vip`.
fn is_na_about(frame: &Frame, vip: Ipv6Addr) -> bool {
    frame.ethertype() == ETHERTYPE_IPV6
        && frame.bytes.len() > 54
        && frame.bytes[20] == 58
        && frame.bytes[54] == 136
        && frame.mentions(IpAddr::V6(vip))
}

/// Checks a captured gratuitous ARP field by field.
fn assert_gratuitous_arp(frame: &Frame, mac: [u8; 6], vip: Ipv4Addr, operation: ArpOperation) {
    let ethernet = EthernetPacket::new(&frame.bytes).expect("an Ethernet frame");
    assert_eq!(ethernet.get_destination().octets(), [0xff; 6], "broadcast");
    assert_eq!(ethernet.get_source().octets(), mac);
    assert_eq!(ethernet.get_ethertype(), EtherTypes::Arp);
    let arp = ArpPacket::new(ethernet.payload()).expect("an ARP packet");
    assert_eq!(arp.get_hardware_type().0, 1, "hardware type Ethernet");
    assert_eq!(arp.get_protocol_type(), EtherTypes::Ipv4);
    assert_eq!(arp.get_hw_addr_len(), 6);
    assert_eq!(arp.get_proto_addr_len(), 4);
    assert_eq!(arp.get_sender_hw_addr().octets(), mac);
    assert_eq!(arp.get_sender_proto_addr(), vip);
    assert_eq!(
        arp.get_target_proto_addr(),
        vip,
        "gratuitous: target = sender"
    );
    match operation {
        ArpOperation::Request => {
            assert_eq!(arp.get_operation().0, 1, "request");
            assert_eq!(arp.get_target_hw_addr().octets(), [0; 6]);
        }
        ArpOperation::Reply => {
            assert_eq!(arp.get_operation().0, 2, "reply");
            assert_eq!(arp.get_target_hw_addr().octets(), mac);
        }
    }
}

/// Checks a captured unsolicited NA field by field, checksum included.
fn assert_unsolicited_na(frame: &Frame, mac: [u8; 6], vip: Ipv6Addr) {
    let ethernet = EthernetPacket::new(&frame.bytes).expect("an Ethernet frame");
    assert_eq!(
        ethernet.get_destination().octets(),
        [0x33, 0x33, 0, 0, 0, 1],
        "all-nodes multicast MAC"
    );
    assert_eq!(ethernet.get_source().octets(), mac);
    assert_eq!(ethernet.get_ethertype(), EtherTypes::Ipv6);
    let ipv6 = Ipv6Packet::new(ethernet.payload()).expect("an IPv6 packet");
    assert_eq!(ipv6.get_version(), 6);
    assert_eq!(ipv6.get_hop_limit(), 255, "RFC 4861 7.1.2");
    assert_eq!(ipv6.get_next_header().0, 58, "ICMPv6");
    assert_eq!(ipv6.get_source(), vip);
    assert_eq!(
        ipv6.get_destination(),
        "ff02::1".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(usize::from(ipv6.get_payload_length()), ipv6.payload().len());
    let na = NeighborAdvertPacket::new(ipv6.payload()).expect("an NA");
    assert_eq!(na.get_icmpv6_type(), Icmpv6Types::NeighborAdvert);
    assert_eq!(na.get_icmpv6_code().0, 0);
    assert_eq!(
        na.get_flags(),
        NeighborAdvertFlags::Override,
        "override only: not solicited, not a router"
    );
    assert_eq!(na.get_target_addr(), vip);
    let options = na.get_options();
    assert_eq!(options.len(), 1);
    assert_eq!(options[0].option_type.0, 2, "target link-layer address");
    assert_eq!(options[0].length, 1);
    assert_eq!(options[0].data, mac);
    // The receiving kernel drops an NA with a bad checksum; check it here
    // independently of pnet: the one's-complement sum over pseudo-header
    // and message must come to 0xffff.
    let icmp = ipv6.payload();
    let mut words = Vec::new();
    words.extend_from_slice(&vip.octets());
    words.extend_from_slice(&ipv6.get_destination().octets());
    words.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    words.extend_from_slice(&[0, 0, 0, 58]);
    words.extend_from_slice(icmp);
    let mut sum: u32 = words
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    assert_eq!(sum, 0xffff, "ICMPv6 checksum");
}

#[test]
fn gratuitous_arp_burst_is_seen_by_the_peer() {
    let pair = Pair::new("garp");
    let vip: Ipv4Addr = "198.51.100.20".parse().unwrap();
    let capture = Capture::open(&pair.peer, "eth0").collect_in_background(
        3,
        Duration::from_secs(3),
        move |frame| is_arp_about(frame, vip),
    );
    let options = AnnounceOptions {
        count: 3,
        interval: Duration::from_millis(100),
        arp_operation: ArpOperation::Request,
    };
    let sent = pair.director.block_on(|| async move {
        let handle = VipHandle::new().unwrap();
        handle
            .add(
                "eth0",
                VipAddr::host(vip.into()).unwrap(),
                &Default::default(),
            )
            .await
            .unwrap();
        garp::announce(&handle, "eth0", vip.into(), &options)
            .await
            .unwrap()
    });
    assert_eq!(sent, 3);
    let frames = capture.join().unwrap();
    assert_eq!(frames.len(), 3, "three gratuitous ARPs on the wire");
    for frame in &frames {
        assert_gratuitous_arp(frame, DIRECTOR_MAC, vip, ArpOperation::Request);
    }
    // Paced by the interval. A lower bound only, with slack for the reading
    // thread being scheduled late: frames are never sent early.
    for gap in frames.windows(2) {
        let gap = gap[1].at - gap[0].at;
        assert!(gap >= Duration::from_millis(50), "gap {gap:?}");
    }
}

#[test]
fn gratuitous_arp_reply_is_seen_by_the_peer() {
    let pair = Pair::new("garprep");
    let vip: Ipv4Addr = "198.51.100.21".parse().unwrap();
    let capture = Capture::open(&pair.peer, "eth0");
    let options = AnnounceOptions {
        count: 1,
        interval: Duration::from_millis(10),
        arp_operation: ArpOperation::Reply,
    };
    pair.director.block_on(|| async move {
        let handle = VipHandle::new().unwrap();
        handle
            .add(
                "eth0",
                VipAddr::host(vip.into()).unwrap(),
                &Default::default(),
            )
            .await
            .unwrap();
        garp::announce(&handle, "eth0", vip.into(), &options)
            .await
            .unwrap()
    });
    let frames = capture.collect(1, Duration::from_secs(3), |frame| is_arp_about(frame, vip));
    assert_eq!(frames.len(), 1);
    assert_gratuitous_arp(&frames[0], DIRECTOR_MAC, vip, ArpOperation::Reply);
}

#[test]
fn unsolicited_na_burst_is_seen_by_the_peer() {
    let pair = Pair::new("una");
    let vip: Ipv6Addr = "2001:db8:3::20".parse().unwrap();
    let capture = Capture::open(&pair.peer, "eth0");
    let options = AnnounceOptions {
        count: 2,
        interval: Duration::from_millis(50),
        ..AnnounceOptions::default()
    };
    pair.director.block_on(|| async move {
        let owner = VipOwner::acquire("eth0", VipAddr::host(vip.into()).unwrap(), options)
            .await
            .unwrap();
        // Let the background half of the burst finish before releasing.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(owner.announced());
        owner.release().await.unwrap();
    });
    let frames = capture.collect(2, Duration::from_secs(3), |frame| is_na_about(frame, vip));
    assert_eq!(frames.len(), 2, "two unsolicited NAs on the wire");
    for frame in &frames {
        assert_unsolicited_na(frame, DIRECTOR_MAC, vip);
    }
}

#[test]
fn release_stops_the_burst_before_removing_the_address() {
    let pair = Pair::new("stopburst");
    let vip: Ipv4Addr = "198.51.100.22".parse().unwrap();
    let capture = Capture::open(&pair.peer, "eth0");
    let options = AnnounceOptions {
        count: 10,
        interval: Duration::from_millis(100),
        ..AnnounceOptions::default()
    };
    pair.director.block_on(|| async move {
        let owner = VipOwner::acquire("eth0", VipAddr::host(vip.into()).unwrap(), options)
            .await
            .unwrap();
        owner.release().await.unwrap();
    });
    // Only the first announcement (sent inside acquire) may be seen: a
    // frame after release would claim an address we no longer hold.
    let frames = capture.collect(10, Duration::from_millis(600), |frame| {
        is_arp_about(frame, vip)
    });
    assert_eq!(frames.len(), 1, "{frames:?}");
}

#[test]
fn announce_refuses_an_address_the_interface_does_not_hold() {
    let pair = Pair::new("notours");
    let capture = Capture::open(&pair.peer, "eth0");
    let vip: Ipv4Addr = "198.51.100.23".parse().unwrap();
    let error = pair.director.block_on(|| async move {
        let handle = VipHandle::new().unwrap();
        garp::announce(&handle, "eth0", vip.into(), &AnnounceOptions::default())
            .await
            .unwrap_err()
    });
    assert_eq!(
        error.to_string(),
        "cannot announce on interface eth0: 198.51.100.23 is not configured on it \
         (announcing it would take it from its owner)"
    );
    let frames = capture.collect(1, Duration::from_millis(300), |frame| {
        is_arp_about(frame, vip)
    });
    assert!(frames.is_empty(), "{frames:?}");
}

/// Two directors and a client on one bridge ("switch" namespace).
struct Lan {
    a: Netns,
    b: Netns,
    client: Netns,
    _switch: Netns,
}

const A_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x20, 0x00, 0x0a];
const B_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x20, 0x00, 0x0b];
const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x20, 0x00, 0x0c];

impl Lan {
    fn new(tag: &str) -> Lan {
        let switch = Netns::new(&format!("{tag}-sw"));
        let a = Netns::new(&format!("{tag}-a"));
        let b = Netns::new(&format!("{tag}-b"));
        let client = Netns::new(&format!("{tag}-c"));
        switch.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        switch.ip(&["link", "set", "br0", "up"]);
        for (port, host, mac, v4, v6) in [
            ("pa", &a, A_MAC, "198.51.100.1/24", "2001:db8:4::1/64"),
            ("pb", &b, B_MAC, "198.51.100.2/24", "2001:db8:4::2/64"),
            (
                "pc",
                &client,
                CLIENT_MAC,
                "198.51.100.3/24",
                "2001:db8:4::3/64",
            ),
        ] {
            switch.ip(&[
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "address",
                &mac_string(mac),
                "netns",
                &host.name,
            ]);
            switch.ip(&["link", "set", port, "master", "br0", "up"]);
            host.ip(&["addr", "add", v4, "dev", "eth0"]);
            host.ip(&["addr", "add", v6, "dev", "eth0", "nodad"]);
            host.ip(&["link", "set", "eth0", "up"]);
        }
        Lan {
            a,
            b,
            client,
            _switch: switch,
        }
    }

    /// The client talks to the VIP once (one UDP datagram), so it has a
    /// neighbour entry for it, pointing at whoever holds it now.
    fn client_learns(&self, vip: IpAddr) -> [u8; 6] {
        in_netns(&self.client.name, || {
            let bind = if vip.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let socket = UdpSocket::bind(bind).unwrap();
            // Discard port: nobody listens; only address resolution matters.
            socket.send_to(b"hello", (vip, 9)).unwrap();
        });
        wait_for(Duration::from_secs(3), || {
            self.client
                .neighbour("eth0", vip)
                .filter(|(mac, _)| *mac != [0; 6])
                .map(|(mac, _)| mac)
        })
        .expect("the client resolved the VIP")
    }
}

/// A VIP held by a director: [`VipOwner`] lives on a runtime in a thread of
/// the director's namespace until [`Held::release`] (or drop) lets go.
struct Held {
    release: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Held {
    fn acquire(netns: &Netns, vip: VipAddr, options: AnnounceOptions) -> Held {
        let name = netns.name.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            in_netns(&name, move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let owner = match VipOwner::acquire("eth0", vip, options).await {
                        Ok(owner) => owner,
                        Err(error) => {
                            let _ = ready_tx.send(Err(error.to_string()));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    // Released on request, or when the test drops us.
                    let _ = release_rx.await;
                    owner.release().await.unwrap();
                });
            })
        });
        ready_rx
            .recv()
            .expect("the director thread reports")
            .unwrap_or_else(|error| panic!("acquire {vip}: {error}"));
        Held {
            release: Some(release_tx),
            thread: Some(thread),
        }
    }

    fn release(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the director thread released the VIP");
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.stop();
        }
    }
}

fn failover(tag: &str, vip: VipAddr) {
    let lan = Lan::new(tag);
    let options = AnnounceOptions {
        count: 3,
        interval: Duration::from_millis(50),
        ..AnnounceOptions::default()
    };

    // A owns the VIP; the client learns A's MAC by talking to it.
    let held_by_a = Held::acquire(&lan.a, vip, options);
    assert_eq!(mac_string(lan.client_learns(vip.addr)), mac_string(A_MAC));

    // Takeover: A lets go, B acquires and announces. From here on the client
    // must not send anything about the VIP.
    let client_wire = Capture::open(&lan.client, "eth0");
    held_by_a.release();
    assert!(!lan.a.has_address("eth0", vip.addr));
    let held_by_b = Held::acquire(&lan.b, vip, options);
    assert!(lan.b.has_address("eth0", vip.addr));

    let moved = wait_for(Duration::from_secs(3), || {
        lan.client
            .neighbour("eth0", vip.addr)
            .filter(|(mac, _)| *mac == B_MAC)
    });
    let entry = lan.client.neighbour("eth0", vip.addr);
    assert!(
        moved.is_some(),
        "the client's neighbour entry for {} still says {:?}",
        vip.addr,
        entry.map(|(mac, state)| (mac_string(mac), state))
    );
    // Updated by the announcement, not confirmed by traffic: STALE.
    assert_eq!(moved.unwrap().1, "STALE");

    let frames = client_wire.drain(Duration::from_millis(300));
    let announcements = frames
        .iter()
        .filter(|frame| frame.packet_type != PACKET_OUTGOING && frame.mentions(vip.addr))
        .filter(|frame| frame.bytes[6..12] == B_MAC)
        .count();
    assert!(announcements >= 1, "the client saw B's announcement");
    let sent_by_client: Vec<&Frame> = frames
        .iter()
        .filter(|frame| frame.packet_type == PACKET_OUTGOING && frame.mentions(vip.addr))
        .collect();
    assert!(
        sent_by_client.is_empty(),
        "the client sent frames about the VIP: {sent_by_client:?}"
    );
    held_by_b.release();
    assert!(!lan.b.has_address("eth0", vip.addr));
}

#[test]
fn failover_moves_the_client_neighbour_entry_ipv4() {
    failover("fo4", "198.51.100.10".parse().unwrap());
}

#[test]
fn failover_moves_the_client_neighbour_entry_ipv6() {
    failover("fo6", "2001:db8:4::10".parse().unwrap());
}
