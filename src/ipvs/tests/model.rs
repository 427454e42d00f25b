// SPDX-License-Identifier: GPL-2.0-or-later
//! Model -> attributes -> bytes -> attributes -> model, for the shapes the
//! director writes. (What the kernel itself sends is covered by the
//! captured-bytes tests beside this file.)

use std::net::IpAddr;

use netlink_packet_core::{Emitable, ParseableParametrized};
use netlink_packet_generic::GenlHeader;

use crate::ipvs::{
    AddressFamily, DaemonAttribute, Destination, DestinationAttribute, DestinationEntry,
    ForwardMethod, IpvsAttribute, IpvsCmd, IpvsMessage, Protocol, Service, ServiceAttribute,
    ServiceEntry, ServiceFlags, ServiceKey, SyncDaemon, SyncState, TunnelSettings, TunnelType,
};

fn round_trip(message: &IpvsMessage) -> IpvsMessage {
    let mut buf = vec![0; message.buffer_len()];
    message.emit(&mut buf);
    let header = GenlHeader {
        cmd: message.cmd.into(),
        version: 1,
    };
    let parsed = IpvsMessage::parse_with_param(&buf[..], header).unwrap();
    assert_eq!(&parsed, message);
    parsed
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ipv6_persistent_service_keeps_prefix_length_and_flags() {
    let service = Service {
        key: ServiceKey::Addr {
            protocol: Protocol::Sctp,
            addr: ip("2001:db8::10"),
            port: 8443,
        },
        scheduler: "mh".to_string(),
        flags: ServiceFlags(ServiceFlags::PERSISTENT | ServiceFlags::SCHED1 | ServiceFlags::SCHED2),
        timeout: 600,
        netmask: 64,
        pe_name: None,
    };
    let message = IpvsMessage::new(
        IpvsCmd::NewService,
        vec![IpvsAttribute::Service(ServiceAttribute::from_service(
            &service,
        ))],
    );
    let parsed = round_trip(&message);
    let entry = ServiceEntry::try_from(parsed.service().unwrap()).unwrap();
    assert_eq!(entry.service, service);
    assert!(entry.destinations.is_empty());
}

#[test]
fn ipv4_netmask_is_big_endian_on_the_wire() {
    let service = Service {
        key: ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: ip("10.0.0.1"),
            port: 80,
        },
        scheduler: "wlc".to_string(),
        flags: ServiceFlags(ServiceFlags::PERSISTENT),
        timeout: 300,
        netmask: 0xffff_ff00,
        pe_name: Some("sip".to_string()),
    };
    let attributes = ServiceAttribute::from_service(&service);
    let netmask = attributes
        .iter()
        .find(|a| matches!(a, ServiceAttribute::Netmask(_)))
        .unwrap();
    let mut buf = vec![0; netmask.buffer_len()];
    netmask.emit(&mut buf);
    // nla header (len 8, type 9), then 255.255.255.0 in network order.
    assert_eq!(buf, [8, 0, 9, 0, 255, 255, 255, 0]);
    let message = IpvsMessage::new(
        IpvsCmd::SetService,
        vec![IpvsAttribute::Service(attributes)],
    );
    let parsed = round_trip(&message);
    assert_eq!(
        Service::try_from(parsed.service().unwrap()).unwrap(),
        service
    );
}

#[test]
fn fwmark_service_key_has_no_address() {
    let key = ServiceKey::Fwmark {
        af: AddressFamily::Inet6,
        mark: 42,
    };
    let attributes = ServiceAttribute::from_key(&key);
    assert_eq!(
        attributes,
        vec![
            ServiceAttribute::AddressFamily(10),
            ServiceAttribute::Fwmark(42)
        ]
    );
}

#[test]
fn tunnel_destination_round_trips_with_its_settings() {
    let dest = Destination {
        addr: ip("2001:db8::2"),
        port: 0,
        forward: ForwardMethod::Tunnel,
        weight: 7,
        upper_threshold: 100,
        lower_threshold: 10,
        tunnel: TunnelSettings {
            tun_type: TunnelType::Gue,
            port: 6080,
            flags: 3,
        },
    };
    let key = ServiceKey::Fwmark {
        af: AddressFamily::Inet,
        mark: 1,
    };
    let message = IpvsMessage::new(
        IpvsCmd::NewDest,
        vec![
            IpvsAttribute::Service(ServiceAttribute::from_key(&key)),
            IpvsAttribute::Destination(DestinationAttribute::from_destination(&dest)),
        ],
    );
    let parsed = round_trip(&message);
    let entry = DestinationEntry::try_from(parsed.destination().unwrap()).unwrap();
    assert_eq!(entry.dest, dest);
}

#[test]
fn destination_without_family_takes_the_services() {
    // ipvsadm before 1.28 sent no IPVS_DEST_ATTR_ADDR_FAMILY: the 16-byte
    // address must then be read in the service's family.
    let key = ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: ip("2001:db8::1"),
        port: 53,
    };
    let message = IpvsMessage::new(
        IpvsCmd::DelDest,
        vec![
            IpvsAttribute::Service(ServiceAttribute::from_key(&key)),
            IpvsAttribute::Destination(vec![
                DestinationAttribute::Address(ip("::a00:1")),
                DestinationAttribute::Port(53),
            ]),
        ],
    );
    round_trip(&message);
}

#[test]
fn daemon_defaults_are_left_to_the_kernel() {
    let daemon = SyncDaemon {
        state: SyncState::Backup,
        mcast_ifname: "eth0".to_string(),
        sync_id: 9,
        sync_maxlen: 0,
        mcast_group: None,
        mcast_port: 0,
        mcast_ttl: 0,
    };
    let attributes = DaemonAttribute::from_daemon(&daemon);
    assert_eq!(attributes.len(), 3);
    let message = IpvsMessage::new(IpvsCmd::NewDaemon, vec![IpvsAttribute::Daemon(attributes)]);
    let parsed = round_trip(&message);
    assert_eq!(
        SyncDaemon::try_from(parsed.daemon().unwrap()).unwrap(),
        daemon
    );

    let full = SyncDaemon {
        state: SyncState::Master,
        mcast_ifname: "veth0".to_string(),
        sync_id: 200,
        sync_maxlen: 1400,
        mcast_group: Some(ip("ff02::1:81")),
        mcast_port: 8849,
        mcast_ttl: 3,
    };
    let message = IpvsMessage::new(
        IpvsCmd::NewDaemon,
        vec![IpvsAttribute::Daemon(DaemonAttribute::from_daemon(&full))],
    );
    let parsed = round_trip(&message);
    assert_eq!(
        SyncDaemon::try_from(parsed.daemon().unwrap()).unwrap(),
        full
    );
}

#[test]
fn info_reply_attributes_are_not_service_nests() {
    let message = IpvsMessage::new(
        IpvsCmd::SetInfo,
        vec![
            IpvsAttribute::Version(0x010201),
            IpvsAttribute::ConnTableSize(4096),
        ],
    );
    round_trip(&message);
}

#[test]
fn unknown_attributes_are_kept() {
    // A service nest with an attribute from a future kernel (kind 99).
    let raw: Vec<u8> = vec![
        0x14, 0x00, 0x01, 0x00, // IPVS_CMD_ATTR_SERVICE, 20 bytes
        0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // AF_INET + pad
        0x08, 0x00, 0x63, 0x00, 0xde, 0xad, 0xbe, 0xef, // kind 99
    ];
    let header = GenlHeader {
        cmd: IpvsCmd::NewService.into(),
        version: 1,
    };
    let parsed = IpvsMessage::parse_with_param(&raw[..], header).unwrap();
    let nest = parsed.service().unwrap();
    assert_eq!(nest[0], ServiceAttribute::AddressFamily(2));
    assert!(matches!(nest[1], ServiceAttribute::Other(_)));
    let mut buf = vec![0; parsed.buffer_len()];
    parsed.emit(&mut buf);
    assert_eq!(buf, raw);
}
