// SPDX-License-Identifier: GPL-2.0-or-later
//! ipvsadm as the oracle, both ways. Each scenario is one table described
//! twice: as the ipvsadm commands an operator would type, and as the model
//! values the client should read and write. Then:
//!   1. ipvsadm writes it; the client must read back exactly the model;
//!   2. the client writes the model in batches; every ipvsadm list mode
//!      must print exactly what it printed in 1;
//!   3. the same, one operation per round trip.

use ldirector::ipvs::{
    AddressFamily::{Inet, Inet6},
    ForwardMethod::{Masq, Route, Tunnel},
    IpvsOp, ServiceFlags, TunnelSettings, TunnelType,
};

use crate::lab::{
    assert_same_text, config_of, dest, fwmark, normalize, sctp, service, tcp, udp, Lab, Table,
};

pub struct Scenario {
    pub name: String,
    pub ipvsadm: Vec<String>,
    pub table: Table,
    /// Text `ipvsadm -Ln` must show, so a scenario cannot silently stop
    /// exercising what it is about.
    pub shows: Vec<String>,
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn scenarios() -> Vec<Scenario> {
    let mut all = Vec::new();

    let mut wlc = service(tcp("10.0.0.1", 80), "wlc");
    wlc.flags = ServiceFlags(0);
    let mut masq = dest("10.1.0.1", 8080, Masq, 5);
    masq.upper_threshold = 100;
    masq.lower_threshold = 10;
    all.push(Scenario {
        name: "tcp4: masq, route and ipip reals, weights, thresholds".into(),
        ipvsadm: lines(
            "-A -t 10.0.0.1:80 -s wlc
             -a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 5 -x 100 -y 10
             -a -t 10.0.0.1:80 -r 10.1.0.2:80 -g -w 0
             -a -t 10.0.0.1:80 -r 10.1.0.3:80 -i -w 2",
        ),
        table: vec![(
            wlc,
            vec![
                masq,
                dest("10.1.0.2", 80, Route, 0),
                dest("10.1.0.3", 80, Tunnel, 2),
            ],
        )],
        shows: vec![
            "TCP  10.0.0.1:80 wlc".into(),
            "-> 10.1.0.1:8080                Masq    5".into(),
        ],
    });

    let mut udp6 = service(udp("2001:db8::1", 53), "rr");
    udp6.flags = ServiceFlags(ServiceFlags::PERSISTENT | ServiceFlags::ONEPACKET);
    udp6.timeout = 600;
    udp6.netmask = 64;
    all.push(Scenario {
        name: "udp6: persistence with a prefix, one-packet scheduling".into(),
        ipvsadm: lines(
            "-A -u [2001:db8::1]:53 -s rr -p 600 -M 64 -o
             -a -u [2001:db8::1]:53 -r [2001:db8:1::1]:5353 -m -w 3
             -a -u [2001:db8::1]:53 -r [2001:db8:1::2]:53 -g",
        ),
        table: vec![(
            udp6,
            vec![
                dest("2001:db8:1::1", 5353, Masq, 3),
                dest("2001:db8:1::2", 53, Route, 1),
            ],
        )],
        shows: vec!["UDP  [2001:db8::1]:53 rr persistent 600 mask 64 ops".into()],
    });

    let mut sh = service(sctp("10.0.0.2", 3868), "sh");
    sh.flags = ServiceFlags(ServiceFlags::SCHED1 | ServiceFlags::SCHED2);
    all.push(Scenario {
        name: "sctp4: scheduler flags".into(),
        ipvsadm: lines(
            "-A --sctp-service 10.0.0.2:3868 -s sh -b sh-fallback,sh-port
             -a --sctp-service 10.0.0.2:3868 -r 10.1.0.4:3868 -m",
        ),
        table: vec![(sh, vec![dest("10.1.0.4", 3868, Masq, 1)])],
        shows: vec!["SCTP 10.0.0.2:3868 sh (sh-fallback,sh-port)".into()],
    });

    let mut mh = service(fwmark(Inet, 7), "mh");
    mh.flags = ServiceFlags(ServiceFlags::PERSISTENT | ServiceFlags::SCHED1 | ServiceFlags::SCHED2);
    mh.timeout = 300;
    mh.netmask = 0xffff_ff00;
    all.push(Scenario {
        name: "fwmark4: persistence with a netmask, mh flags".into(),
        ipvsadm: lines(
            "-A -f 7 -s mh -b mh-fallback,mh-port -p 300 -M 255.255.255.0
             -a -f 7 -r 10.1.0.5 -g -w 4
             -a -f 7 -r 10.1.0.6 -i",
        ),
        table: vec![(
            mh,
            vec![
                dest("10.1.0.5", 0, Route, 4),
                dest("10.1.0.6", 0, Tunnel, 1),
            ],
        )],
        shows: vec!["FWM  7 mh (mh-fallback,mh-port) persistent 300 mask 255.255.255.0".into()],
    });

    all.push(Scenario {
        name: "fwmark6".into(),
        ipvsadm: lines(
            "-A -f 8 -6 -s lc
             -a -f 8 -6 -r 2001:db8:1::5 -g -w 9",
        ),
        table: vec![(
            service(fwmark(Inet6, 8), "lc"),
            vec![dest("2001:db8:1::5", 0, Route, 9)],
        )],
        shows: vec!["FWM  8 IPv6 lc".into()],
    });

    let gue = |addr: &str, port: u16, flags: u16| {
        let mut d = dest(addr, 443, Tunnel, 1);
        d.tunnel = TunnelSettings {
            tun_type: TunnelType::Gue,
            port,
            flags,
        };
        d
    };
    let mut gre = dest("10.1.0.10", 443, Tunnel, 1);
    gre.tunnel = TunnelSettings {
        tun_type: TunnelType::Gre,
        port: 0,
        flags: 1,
    };
    all.push(Scenario {
        name: "tunnels: ipip, gue and gre with checksum options, an IPv6 real in an IPv4 service"
            .into(),
        ipvsadm: lines(
            "-A -t 10.0.0.3:443 -s wrr
             -a -t 10.0.0.3:443 -r 10.1.0.7:443 -i --tun-type gue --tun-port 6080 --tun-nocsum
             -a -t 10.0.0.3:443 -r 10.1.0.8:443 -i --tun-type gue --tun-port 6081 --tun-csum
             -a -t 10.0.0.3:443 -r 10.1.0.9:443 -i --tun-type gue --tun-port 6082 --tun-remcsum
             -a -t 10.0.0.3:443 -r 10.1.0.10:443 -i --tun-type gre --tun-csum
             -a -t 10.0.0.3:443 -r 10.1.0.11:443 -i --tun-type ipip
             -a -t 10.0.0.3:443 -r [2001:db8:1::9]:443 -i",
        ),
        table: vec![(
            service(tcp("10.0.0.3", 443), "wrr"),
            vec![
                gue("10.1.0.7", 6080, 0),
                gue("10.1.0.8", 6081, 1),
                gue("10.1.0.9", 6082, 2),
                gre,
                dest("10.1.0.11", 443, Tunnel, 1),
                dest("2001:db8:1::9", 443, Tunnel, 1),
            ],
        )],
        shows: vec!["-> [2001:db8:1::9]:443".into()],
    });

    let mut sip = service(udp("10.0.0.4", 5060), "rr");
    sip.flags = ServiceFlags(ServiceFlags::PERSISTENT);
    sip.timeout = 60;
    sip.pe_name = Some("sip".into());
    all.push(Scenario {
        name: "udp4: the sip persistence engine".into(),
        ipvsadm: lines(
            "-A -u 10.0.0.4:5060 -s rr -p 60 --pe sip
             -a -u 10.0.0.4:5060 -r 10.1.0.12:5060 -m",
        ),
        table: vec![(sip, vec![dest("10.1.0.12", 5060, Masq, 1)])],
        shows: vec!["UDP  10.0.0.4:5060 rr persistent 60 pe sip".into()],
    });

    all.push(schedulers_scenario());
    all
}

/// Every scheduler module this kernel ships, one service each.
pub fn kernel_schedulers() -> Vec<String> {
    let release = nix::sys::utsname::uname()
        .expect("uname")
        .release()
        .to_string_lossy()
        .into_owned();
    let dir = format!("/lib/modules/{release}/kernel/net/netfilter/ipvs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().to_string_lossy().into_owned();
            let module = name.split(".ko").next()?.to_string();
            let scheduler = module.strip_prefix("ip_vs_")?.to_string();
            // The ftp helper and the sip persistence engine are no
            // schedulers.
            (!matches!(scheduler.as_str(), "ftp" | "pe_sip")).then_some(scheduler)
        })
        .collect();
    names.sort();
    names
}

fn schedulers_scenario() -> Scenario {
    let schedulers = kernel_schedulers();
    assert!(
        schedulers.len() >= 10,
        "expected Debian's dozen IPVS schedulers, found {schedulers:?}"
    );
    let mut ipvsadm = Vec::new();
    let mut table = Vec::new();
    let mut shows = Vec::new();
    for (i, name) in schedulers.iter().enumerate() {
        let vip = format!("10.0.2.{}", i + 1);
        let rip = format!("10.1.2.{}", i + 1);
        ipvsadm.push(format!("-A -t {vip}:80 -s {name}"));
        ipvsadm.push(format!("-a -t {vip}:80 -r {rip}:80 -m -w {}", i + 1));
        table.push((
            service(tcp(&vip, 80), name),
            vec![dest(&rip, 80, Masq, i as u32 + 1)],
        ));
        shows.push(format!("TCP  {vip}:80 {name}"));
    }
    Scenario {
        name: format!("every scheduler of this kernel: {}", schedulers.join(" ")),
        ipvsadm,
        table,
        shows,
    }
}

pub fn ops_for(table: &Table) -> Vec<IpvsOp> {
    let mut ops = Vec::new();
    for (service, dests) in table {
        ops.push(IpvsOp::AddService(service.clone()));
        for d in dests {
            ops.push(IpvsOp::AddDestination {
                service: service.key,
                dest: d.clone(),
            });
        }
    }
    ops
}

pub fn check_both_ways(lab: &Lab, scenario: &Scenario) {
    let name = &scenario.name;
    let expected = normalize(scenario.table.clone());
    let handle = lab.handle();

    // 1. ipvsadm writes, we read.
    lab.flush();
    lab.ipvsadm_restore(&scenario.ipvsadm);
    let oracle = lab.listings();
    let listing = lab.ipvsadm(&["-Ln"]);
    for text in &scenario.shows {
        assert!(
            listing.contains(text.as_str()),
            "{name}: ipvsadm -Ln does not show {text:?}:\n{listing}"
        );
    }
    let read = lab
        .block_on(handle.services())
        .unwrap_or_else(|e| panic!("{name}: services(): {e}"));
    assert_eq!(
        config_of(&read),
        expected,
        "{name}: what ipvsadm wrote, read by the client"
    );

    // 2. We write in batches, ipvsadm reads.
    lab.flush();
    let ops = ops_for(&scenario.table);
    lab.block_on(handle.apply(&ops))
        .unwrap_or_else(|e| panic!("{name}: apply: {e}"));
    for ((mode, want), (_, got)) in oracle.iter().zip(lab.listings()) {
        assert_same_text(
            &format!("{name}: ipvsadm {mode} after the client's batched writes"),
            want,
            &got,
        );
    }

    // 3. One operation per round trip: the same messages through the
    // other transport path; read back by the client (2. showed that its
    // reading agrees with ipvsadm's).
    lab.block_on(handle.flush())
        .unwrap_or_else(|e| panic!("{name}: flush: {e}"));
    for op in ops {
        lab.block_on(handle.apply_one(op.clone()))
            .unwrap_or_else(|e| panic!("{name}: {op}: {e}"));
    }
    let read = lab
        .block_on(handle.services())
        .unwrap_or_else(|e| panic!("{name}: services(): {e}"));
    assert_eq!(
        config_of(&read),
        expected,
        "{name}: one write per round trip, read back"
    );
    lab.flush();
}
