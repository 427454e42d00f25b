// SPDX-License-Identifier: GPL-2.0-or-later
//! Round trips on replies captured from Debian's kernel 6.1 in the test
//! VM (`tests/ipvs_kernel.rs`, case `capture_kernel_replies`): each file
//! in `captures/` names the ipvsadm commands that built the table. Every
//! message is parsed, compared with a hand-built message, converted to the
//! model, and re-emitted byte for byte.

use std::net::IpAddr;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;

use crate::ipvs::{
    AddressFamily, DaemonAttribute, Destination, DestinationAttribute, DestinationEntry,
    FlagsWithMask, ForwardMethod, IpvsAttribute, IpvsCmd, IpvsMessage, Protocol, Service,
    ServiceAttribute, ServiceEntry, ServiceFlags, ServiceKey, Stats, Stats64Attribute,
    StatsAttribute, SyncDaemon, SyncState, TunnelSettings, TunnelType,
};

/// The messages of one capture file, as bytes.
pub(super) fn capture(text: &str) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut current = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if line.trim().is_empty() {
            if !current.is_empty() {
                messages.push(std::mem::take(&mut current));
            }
            continue;
        }
        for word in line.split_whitespace() {
            for pair in word.as_bytes().chunks(2) {
                let hex = std::str::from_utf8(pair).expect("ascii hex");
                current.push(u8::from_str_radix(hex, 16).expect("hex digits"));
            }
        }
    }
    if !current.is_empty() {
        messages.push(current);
    }
    messages
}

/// Parses one captured message, checks that it re-emits to the same
/// bytes, and returns its IPVS payload.
fn parse(bytes: &[u8]) -> IpvsMessage {
    let message = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(bytes)
        .expect("a captured message parses");
    let mut emitted = vec![0; message.buffer_len()];
    message.serialize(&mut emitted);
    assert_eq!(emitted, bytes, "re-emitted bytes differ from the kernel's");
    match message.payload {
        NetlinkPayload::InnerMessage(genl) => {
            assert_eq!(genl.header.version, 1);
            genl.payload
        }
        other => panic!("not an IPVS message: {other:?}"),
    }
}

macro_rules! captured {
    ($name:literal) => {
        capture(include_str!(concat!("captures/", $name, ".hex")))
    };
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Parses every message of a capture.
fn parse_all(messages: &[Vec<u8>]) -> Vec<IpvsMessage> {
    assert!(!messages.is_empty());
    messages.iter().map(|m| parse(m)).collect()
}

fn only(messages: &[Vec<u8>]) -> IpvsMessage {
    assert_eq!(messages.len(), 1, "one message expected");
    parse(&messages[0])
}

/// What the kernel sends for a table nobody has used yet.
fn zero_stats() -> Vec<StatsAttribute> {
    vec![
        StatsAttribute::Conns(0),
        StatsAttribute::InPackets(0),
        StatsAttribute::OutPackets(0),
        StatsAttribute::InBytes(0),
        StatsAttribute::OutBytes(0),
        StatsAttribute::ConnRate(0),
        StatsAttribute::InPacketRate(0),
        StatsAttribute::OutPacketRate(0),
        StatsAttribute::InByteRate(0),
        StatsAttribute::OutByteRate(0),
    ]
}

fn zero_stats64() -> Vec<Stats64Attribute> {
    vec![
        Stats64Attribute::Conns(0),
        Stats64Attribute::InPackets(0),
        Stats64Attribute::OutPackets(0),
        Stats64Attribute::InBytes(0),
        Stats64Attribute::OutBytes(0),
        Stats64Attribute::ConnRate(0),
        Stats64Attribute::InPacketRate(0),
        Stats64Attribute::OutPacketRate(0),
        Stats64Attribute::InByteRate(0),
        Stats64Attribute::OutByteRate(0),
    ]
}

fn service_of(message: &IpvsMessage) -> ServiceEntry {
    assert_eq!(message.cmd, IpvsCmd::NewService);
    ServiceEntry::try_from(message.service().expect("a service nest")).unwrap()
}

fn dests_of(messages: &[IpvsMessage]) -> Vec<Destination> {
    let mut dests: Vec<Destination> = messages
        .iter()
        .map(|m| {
            assert_eq!(m.cmd, IpvsCmd::NewDest);
            DestinationEntry::try_from(m.destination().expect("a destination nest"))
                .unwrap()
                .dest
        })
        .collect();
    dests.sort_by_key(|d| (d.addr, d.port));
    dests
}

fn plain_dest(addr: &str, port: u16, forward: ForwardMethod, weight: u32) -> Destination {
    Destination {
        addr: ip(addr),
        port,
        forward,
        weight,
        upper_threshold: 0,
        lower_threshold: 0,
        tunnel: TunnelSettings::default(),
    }
}

#[test]
fn tcp4_service_matches_a_hand_built_message() {
    // ipvsadm -A -t 10.0.0.1:80 -s wlc
    let message = only(&captured!("tcp4_service"));
    let expected = IpvsMessage::new(
        IpvsCmd::NewService,
        vec![IpvsAttribute::Service(vec![
            ServiceAttribute::AddressFamily(2),
            ServiceAttribute::Protocol(6),
            ServiceAttribute::Address(ip("10.0.0.1")),
            ServiceAttribute::Port(80),
            ServiceAttribute::SchedulerName("wlc".into()),
            // The kernel reports its own HASHED bit, and a full mask.
            ServiceAttribute::Flags(FlagsWithMask {
                flags: ServiceFlags::HASHED,
                mask: u32::MAX,
            }),
            ServiceAttribute::Timeout(0),
            ServiceAttribute::Netmask(0xffff_ffff),
            ServiceAttribute::Stats(zero_stats()),
            ServiceAttribute::Stats64(zero_stats64()),
        ])],
    );
    assert_eq!(message, expected);
    let entry = service_of(&message);
    assert_eq!(
        entry.service,
        Service {
            key: ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: ip("10.0.0.1"),
                port: 80,
            },
            scheduler: "wlc".into(),
            flags: ServiceFlags(0),
            timeout: 0,
            netmask: 0xffff_ffff,
            pe_name: None,
        }
    );
    assert_eq!(entry.stats, Stats::default());
}

#[test]
fn tcp4_destinations_match_a_hand_built_message() {
    // ipvsadm -a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 5 -x 100 -y 10
    // ipvsadm -a -t 10.0.0.1:80 -r 10.1.0.3:80 -i -w 2
    let messages = parse_all(&captured!("tcp4_dests"));
    let masq = messages
        .iter()
        .find(|m| m.destination().unwrap()[0] == DestinationAttribute::Address(ip("10.1.0.1")))
        .expect("the masq real");
    let expected = IpvsMessage::new(
        IpvsCmd::NewDest,
        vec![IpvsAttribute::Destination(vec![
            DestinationAttribute::Address(ip("10.1.0.1")),
            DestinationAttribute::Port(8080),
            DestinationAttribute::ForwardMethod(0),
            DestinationAttribute::Weight(5),
            DestinationAttribute::TunnelType(0),
            DestinationAttribute::TunnelPort(0),
            DestinationAttribute::TunnelFlags(0),
            DestinationAttribute::UpperThreshold(100),
            DestinationAttribute::LowerThreshold(10),
            DestinationAttribute::ActiveConns(0),
            DestinationAttribute::InactiveConns(0),
            DestinationAttribute::PersistentConns(0),
            DestinationAttribute::AddressFamily(2),
            DestinationAttribute::Stats(zero_stats()),
            DestinationAttribute::Stats64(zero_stats64()),
        ])],
    );
    assert_eq!(masq, &expected);
    let mut masq_dest = plain_dest("10.1.0.1", 8080, ForwardMethod::Masq, 5);
    masq_dest.upper_threshold = 100;
    masq_dest.lower_threshold = 10;
    assert_eq!(
        dests_of(&messages),
        vec![
            masq_dest,
            plain_dest("10.1.0.3", 80, ForwardMethod::Tunnel, 2)
        ]
    );
}

#[test]
fn udp6_persistent_service_reads_its_prefix_length() {
    // ipvsadm -A -u [2001:db8::1]:53 -s rr -p 600 -M 64 -o
    let message = only(&captured!("udp6_service"));
    // The kernel keeps the prefix length in host order in a field it
    // declares big-endian: on x86 the bytes are 40 00 00 00.
    assert!(message
        .service()
        .unwrap()
        .contains(&ServiceAttribute::Netmask(0x4000_0000)));
    let service = service_of(&message).service;
    assert_eq!(
        service.key,
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: ip("2001:db8::1"),
            port: 53,
        }
    );
    assert_eq!(service.netmask, 64);
    assert_eq!(service.timeout, 600);
    assert_eq!(
        service.flags,
        ServiceFlags(ServiceFlags::PERSISTENT | ServiceFlags::ONEPACKET)
    );
    // ipvsadm -a -u [2001:db8::1]:53 -r [2001:db8:1::1]:5353 -m -w 3
    assert_eq!(
        dests_of(&parse_all(&captured!("udp6_dests"))),
        vec![plain_dest("2001:db8:1::1", 5353, ForwardMethod::Masq, 3)]
    );
}

#[test]
fn fwmark_services_have_no_address() {
    // ipvsadm -A -f 7 -s mh -b mh-fallback,mh-port -p 300 -M 255.255.255.0
    let v4 = service_of(&only(&captured!("fwmark4_service"))).service;
    assert_eq!(
        v4,
        Service {
            key: ServiceKey::Fwmark {
                af: AddressFamily::Inet,
                mark: 7
            },
            scheduler: "mh".into(),
            flags: ServiceFlags(
                ServiceFlags::PERSISTENT | ServiceFlags::SCHED1 | ServiceFlags::SCHED2
            ),
            timeout: 300,
            netmask: 0xffff_ff00,
            pe_name: None,
        }
    );
    // ipvsadm -a -f 7 -r 10.1.0.5 -g -w 4
    assert_eq!(
        dests_of(&parse_all(&captured!("fwmark4_dests"))),
        vec![plain_dest("10.1.0.5", 0, ForwardMethod::Route, 4)]
    );
    // ipvsadm -A -f 8 -6 -s lc
    let v6 = service_of(&only(&captured!("fwmark6_service"))).service;
    assert_eq!(
        v6.key,
        ServiceKey::Fwmark {
            af: AddressFamily::Inet6,
            mark: 8
        }
    );
    assert_eq!(v6.netmask, 128);
    assert_eq!(v6.flags, ServiceFlags(0));
    // ipvsadm -a -f 8 -6 -r 2001:db8:1::5 -g -w 9
    assert_eq!(
        dests_of(&parse_all(&captured!("fwmark6_dests"))),
        vec![plain_dest("2001:db8:1::5", 0, ForwardMethod::Route, 9)]
    );
}

#[test]
fn tunnel_settings_and_a_foreign_family_real() {
    let service = service_of(&only(&captured!("tunnels_service"))).service;
    assert_eq!(service.scheduler, "wrr");
    let gue = Destination {
        tunnel: TunnelSettings {
            tun_type: TunnelType::Gue,
            port: 6080,
            // --tun-remcsum
            flags: 2,
        },
        ..plain_dest("10.1.0.7", 443, ForwardMethod::Tunnel, 1)
    };
    let gre = Destination {
        tunnel: TunnelSettings {
            tun_type: TunnelType::Gre,
            port: 0,
            // --tun-csum
            flags: 1,
        },
        ..plain_dest("10.1.0.10", 443, ForwardMethod::Tunnel, 1)
    };
    // The IPv6 real of an IPv4 service: its own family tells how to read
    // its address.
    let v6 = plain_dest("2001:db8:1::9", 443, ForwardMethod::Tunnel, 1);
    let messages = parse_all(&captured!("tunnels_dests"));
    assert!(messages.iter().any(|m| m
        .destination()
        .unwrap()
        .contains(&DestinationAttribute::AddressFamily(10))));
    assert_eq!(dests_of(&messages), vec![gue, gre, v6]);
}

#[test]
fn sip_persistence_engine_and_sctp_flags() {
    // ipvsadm -A -u 10.0.0.4:5060 -s rr -p 60 --pe sip
    let sip = service_of(&only(&captured!("sip_service"))).service;
    assert_eq!(sip.pe_name.as_deref(), Some("sip"));
    assert_eq!(sip.flags, ServiceFlags(ServiceFlags::PERSISTENT));
    assert_eq!(sip.timeout, 60);
    // ipvsadm -A --sctp-service 10.0.0.2:3868 -s sh -b sh-fallback,sh-port
    let sctp = service_of(&only(&captured!("sctp4_service"))).service;
    assert_eq!(
        sctp.key,
        ServiceKey::Addr {
            protocol: Protocol::Sctp,
            addr: ip("10.0.0.2"),
            port: 3868,
        }
    );
    assert_eq!(
        sctp.flags,
        ServiceFlags(ServiceFlags::SCHED1 | ServiceFlags::SCHED2)
    );
}

#[test]
fn config_and_info_replies() {
    // ipvsadm --set 900 120 300
    let config = only(&captured!("config"));
    assert_eq!(
        config,
        IpvsMessage::new(
            IpvsCmd::SetConfig,
            vec![
                IpvsAttribute::TimeoutTcp(900),
                IpvsAttribute::TimeoutTcpFin(120),
                IpvsAttribute::TimeoutUdp(300),
            ]
        )
    );
    // The info reply reuses attribute numbers 1 and 2.
    let info = only(&captured!("info"));
    assert_eq!(
        info,
        IpvsMessage::new(
            IpvsCmd::SetInfo,
            vec![
                IpvsAttribute::Version(0x01_02_01),
                IpvsAttribute::ConnTableSize(4096),
            ]
        )
    );
}

#[test]
fn sync_daemons_both_roles() {
    // ipvsadm --start-daemon master --mcast-interface sync0 --syncid 5
    // ipvsadm --start-daemon backup --mcast-interface sync0 --syncid 6
    //   --sync-maxlen 1400 --mcast-group ff02::81 --mcast-port 8849
    //   --mcast-ttl 2
    let messages = parse_all(&captured!("daemons"));
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0],
        IpvsMessage::new(
            IpvsCmd::NewDaemon,
            vec![IpvsAttribute::Daemon(vec![
                DaemonAttribute::State(1),
                DaemonAttribute::McastInterface("sync0".into()),
                DaemonAttribute::SyncId(5),
                DaemonAttribute::SyncMaxLen(1472),
                DaemonAttribute::McastPort(8848),
                DaemonAttribute::McastTtl(1),
                DaemonAttribute::McastGroup("224.0.0.81".parse().unwrap()),
            ])]
        )
    );
    let daemons: Vec<SyncDaemon> = messages
        .iter()
        .map(|m| SyncDaemon::try_from(m.daemon().unwrap()).unwrap())
        .collect();
    assert_eq!(
        daemons[1],
        SyncDaemon {
            state: SyncState::Backup,
            mcast_ifname: "sync0".into(),
            sync_id: 6,
            sync_maxlen: 1400,
            mcast_group: Some(ip("ff02::81")),
            mcast_port: 8849,
            mcast_ttl: 2,
        }
    );
    assert_eq!(daemons[0].state, SyncState::Master);
    assert_eq!(daemons[0].mcast_group, Some(ip("224.0.0.81")));
}
