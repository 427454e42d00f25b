// SPDX-License-Identifier: GPL-2.0-or-later
//! The guest suite's cases, in the order they run. Each starts from an
//! empty table (the runner flushes with ipvsadm) and leaves no sync daemon
//! behind.

use ldirector::ipvs::{
    AddressFamily::{Inet, Inet6},
    ForwardMethod::{Masq, Route, Tunnel},
    IpvsAttribute, IpvsCmd, IpvsError, IpvsHandle, IpvsMessage, IpvsOp, ServiceAttribute,
    ServiceFlags, ServiceKey, SyncDaemon, SyncState, Timeouts, TunnelType,
};

use crate::capture::{raw_request, write_capture};
use crate::lab::{assert_same_text, config_of, dest, fwmark, ip, sctp, service, tcp, udp, Lab};
use crate::oracle::{check_both_ways, kernel_schedulers, scenarios};

pub type Case = (&'static str, fn(&Lab));

pub const CASES: &[Case] = &[
    (
        "modprobe_on_connect_and_no_ipvs_error",
        modprobe_on_connect_and_no_ipvs_error,
    ),
    ("ipvsadm_oracle_both_ways", ipvsadm_oracle_both_ways),
    ("edits_both_ways", edits_both_ways),
    ("deletes_and_idempotency", deletes_and_idempotency),
    ("kernel_errors_are_explained", kernel_errors_are_explained),
    ("batch_reports_each_result", batch_reports_each_result),
    (
        "thousand_destinations_in_batches",
        thousand_destinations_in_batches,
    ),
    ("timeouts_both_ways", timeouts_both_ways),
    ("info_matches_ipvsadm_header", info_matches_ipvsadm_header),
    ("sync_daemon_start_stop_get", sync_daemon_start_stop_get),
    ("stats_and_zero", stats_and_zero),
    ("capture_kernel_replies", capture_kernel_replies),
];

fn expect_err<T: std::fmt::Debug>(what: &str, result: Result<T, IpvsError>) -> IpvsError {
    match result {
        Ok(v) => panic!("{what}: expected an error, got Ok({v:?})"),
        Err(e) => e,
    }
}

/// Restores the process's PATH and the kernel's modprobe helper, even when
/// the case panics.
struct ModprobeBlocked {
    path: std::ffi::OsString,
    kernel_modprobe: String,
}

impl ModprobeBlocked {
    fn new() -> Self {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let kernel_modprobe = std::fs::read_to_string("/proc/sys/kernel/modprobe")
            .expect("read /proc/sys/kernel/modprobe");
        // Neither we nor the kernel's own request_module can load ip_vs.
        std::fs::write("/proc/sys/kernel/modprobe", "/bin/false\n")
            .expect("write /proc/sys/kernel/modprobe");
        std::env::set_var("PATH", "/nonexistent");
        Self {
            path,
            kernel_modprobe,
        }
    }
}

impl Drop for ModprobeBlocked {
    fn drop(&mut self) {
        std::env::set_var("PATH", &self.path);
        let _ = std::fs::write("/proc/sys/kernel/modprobe", &self.kernel_modprobe);
    }
}

/// Unloads IPVS, then: without a way to load it, `connect` must say the
/// kernel has no IPVS; with modprobe back, `connect` must load it itself.
fn modprobe_on_connect_and_no_ipvs_error(lab: &Lab) {
    let mut modules: Vec<String> = kernel_schedulers()
        .iter()
        .map(|s| format!("ip_vs_{s}"))
        .collect();
    modules.extend(["ip_vs_ftp", "ip_vs_pe_sip", "ip_vs"].map(String::from));
    lab.sh(&format!("modprobe -r {}", modules.join(" ")));
    assert!(
        !std::path::Path::new("/proc/net/ip_vs").exists(),
        "ip_vs is still loaded after modprobe -r"
    );
    {
        let _blocked = ModprobeBlocked::new();
        let error = expect_err("connect without IPVS", lab.block_on(IpvsHandle::connect()));
        assert!(matches!(error, IpvsError::NoIpvs), "{error:?}");
        assert!(
            error.to_string().starts_with("the kernel has no IPVS"),
            "{error}"
        );
    }
    let handle = lab.handle();
    assert!(
        std::path::Path::new("/proc/net/ip_vs").exists(),
        "connect did not load ip_vs"
    );
    assert!(handle.family_id() > 0);
    let services = lab.block_on(handle.services()).expect("services()");
    assert!(services.is_empty(), "{services:?}");
}

fn ipvsadm_oracle_both_ways(lab: &Lab) {
    let all = scenarios();
    assert!(all.len() >= 8);
    for scenario in &all {
        println!("  scenario: {}", scenario.name);
        check_both_ways(lab, scenario);
    }
}

/// Edits by the client show in ipvsadm; edits by ipvsadm show in the
/// client.
fn edits_both_ways(lab: &Lab) {
    let handle = lab.handle();
    let key = tcp("10.0.3.1", 80);
    let mut svc = service(key, "rr");
    let mut real = dest("10.1.3.1", 8080, Masq, 1);
    lab.block_on(handle.add_service(&svc)).expect("add service");
    lab.block_on(handle.add_destination(&key, &real))
        .expect("add destination");

    svc.scheduler = "wrr".into();
    svc.flags = ServiceFlags(ServiceFlags::PERSISTENT);
    svc.timeout = 120;
    svc.netmask = 0xffff_ff00;
    real.weight = 7;
    real.upper_threshold = 50;
    real.lower_threshold = 5;
    lab.block_on(handle.edit_service(&svc))
        .expect("edit service");
    lab.block_on(handle.edit_destination(&key, &real))
        .expect("edit destination");
    let ours = lab.ipvsadm(&["-Sn"]);

    lab.flush();
    lab.ipvsadm_line("-A -t 10.0.3.1:80 -s wrr -p 120 -M 255.255.255.0");
    lab.ipvsadm_line("-a -t 10.0.3.1:80 -r 10.1.3.1:8080 -m -w 7 -x 50 -y 5");
    assert_same_text(
        "client edits, seen by ipvsadm -Sn",
        &lab.ipvsadm(&["-Sn"]),
        &ours,
    );

    // ipvsadm edits; the client reads.
    lab.ipvsadm_line("-E -t 10.0.3.1:80 -s sh -b sh-port");
    // (ipvsadm forces a direct-routing real onto the service's port, so
    // the edit keeps masquerading.)
    lab.ipvsadm_line("-e -t 10.0.3.1:80 -r 10.1.3.1:8080 -m -w 3");
    let read = lab.block_on(handle.services()).expect("services()");
    let mut want_svc = service(key, "sh");
    want_svc.flags = ServiceFlags(ServiceFlags::SCHED2);
    // -E without -p clears persistence but keeps the granularity given
    // before.
    want_svc.netmask = 0xffff_ff00;
    want_svc.timeout = 120;
    let mut want_dest = dest("10.1.3.1", 8080, Masq, 3);
    // -e without -x/-y sets them to 0.
    want_dest.upper_threshold = 0;
    want_dest.lower_threshold = 0;
    let got = config_of(&read);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, vec![want_dest], "destination after ipvsadm -e");
    assert_eq!(got[0].0.scheduler, want_svc.scheduler);
    assert_eq!(got[0].0.flags, want_svc.flags, "flags after ipvsadm -E");

    // The one method ipvsadm cannot set, local delivery: the client
    // writes it, ipvsadm names it.
    let local = dest("10.1.3.2", 8080, ldirector::ipvs::ForwardMethod::Local, 2);
    lab.block_on(handle.add_destination(&key, &local))
        .expect("add a local-node destination");
    let listing = lab.ipvsadm(&["-Ln"]);
    assert!(
        listing
            .lines()
            .any(|l| l.contains("10.1.3.2:8080") && l.contains("Local")),
        "{listing}"
    );
    let read = config_of(&lab.block_on(handle.services()).expect("services()"));
    assert!(read[0].1.contains(&local), "{read:?}");
}

/// Deletes reach the kernel; adding what exists and deleting what is gone
/// succeed (the director's retries and restarts rely on it).
fn deletes_and_idempotency(lab: &Lab) {
    let handle = lab.handle();
    let key = udp("10.0.4.1", 53);
    let svc = service(key, "wlc");
    let a = dest("10.1.4.1", 53, Masq, 1);
    let b = dest("10.1.4.2", 53, Masq, 2);
    for _ in 0..2 {
        lab.block_on(handle.add_service(&svc)).expect("add service");
        lab.block_on(handle.add_destination(&key, &a))
            .expect("add a");
        lab.block_on(handle.add_destination(&key, &b))
            .expect("add b");
    }
    let listing = lab.ipvsadm(&["-Ln"]);
    assert_eq!(listing.matches("->").count(), 3, "{listing}"); // header + 2
    for _ in 0..2 {
        lab.block_on(handle.delete_destination(&key, a.addr, a.port))
            .expect("delete a");
    }
    let listing = lab.ipvsadm(&["-Ln"]);
    assert!(!listing.contains("10.1.4.1:53"), "{listing}");
    assert!(listing.contains("10.1.4.2:53"), "{listing}");
    for _ in 0..2 {
        lab.block_on(handle.delete_service(&key))
            .expect("delete service");
    }
    assert!(lab.ipvsadm(&["-Sn"]).trim().is_empty());
    // A destination of a service that is gone is gone too.
    lab.block_on(handle.delete_destination(&key, b.addr, b.port))
        .expect("delete a destination of a missing service");
    // The single-service read says "none" rather than failing.
    assert!(lab
        .block_on(handle.service(&key))
        .expect("service()")
        .is_none());
    assert!(lab
        .block_on(handle.destinations(&key))
        .expect("destinations()")
        .is_empty());

    // And service() finds one that exists, with its destinations.
    lab.block_on(handle.add_service(&svc)).expect("add service");
    lab.block_on(handle.add_destination(&key, &b))
        .expect("add b");
    let entry = lab
        .block_on(handle.service(&key))
        .expect("service()")
        .expect("the service exists");
    assert_eq!(entry.service, svc);
    assert_eq!(entry.destinations.len(), 1);
    assert_eq!(entry.destinations[0].dest, b);

    // flush() empties the table.
    lab.block_on(handle.flush()).expect("flush");
    assert!(lab.ipvsadm(&["-Sn"]).trim().is_empty());
}

fn kernel_errors_are_explained(lab: &Lab) {
    let handle = lab.handle();
    let key = tcp("10.0.5.1", 80);

    let error = expect_err(
        "unknown scheduler",
        lab.block_on(handle.add_service(&service(key, "foo"))),
    );
    assert_eq!(
        error.to_string(),
        "scheduler 'foo' is not available in this kernel"
    );
    let mut with_pe = service(key, "rr");
    with_pe.flags = ServiceFlags(ServiceFlags::PERSISTENT);
    with_pe.timeout = 60;
    with_pe.pe_name = Some("nope".into());
    let error = expect_err(
        "unknown persistence engine",
        lab.block_on(handle.add_service(&with_pe)),
    );
    assert_eq!(
        error.to_string(),
        "scheduler 'rr' or persistence engine 'nope' is not available in this kernel"
    );
    assert!(lab.ipvsadm(&["-Sn"]).trim().is_empty());

    let real = dest("10.1.5.1", 80, Masq, 1);
    let error = expect_err(
        "destination on a missing service",
        lab.block_on(handle.add_destination(&key, &real)),
    );
    assert_eq!(
        error.to_string(),
        "add destination 10.1.5.1:80 to service TCP 10.0.5.1:80: \
         service TCP 10.0.5.1:80 does not exist"
    );
    let error = expect_err(
        "edit of a missing service",
        lab.block_on(handle.edit_service(&service(key, "rr"))),
    );
    assert_eq!(error.to_string(), "service TCP 10.0.5.1:80 does not exist");
    let error = expect_err(
        "zero a missing service",
        lab.block_on(handle.zero(Some(&key))),
    );
    assert!(matches!(error, IpvsError::ServiceNotFound(_)), "{error:?}");

    lab.block_on(handle.add_service(&service(key, "rr")))
        .expect("add service");
    let error = expect_err(
        "edit of a missing destination",
        lab.block_on(handle.edit_destination(&key, &real)),
    );
    assert_eq!(
        error.to_string(),
        "destination 10.1.5.1:80 does not exist in service TCP 10.0.5.1:80"
    );
    let mut bad = real.clone();
    bad.upper_threshold = 5;
    bad.lower_threshold = 10;
    let error = expect_err(
        "thresholds",
        lab.block_on(handle.add_destination(&key, &bad)),
    );
    assert!(matches!(error, IpvsError::ThresholdRange { .. }), "{error}");

    let mut gue = dest("10.1.5.2", 80, Tunnel, 1);
    gue.tunnel.tun_type = TunnelType::Gue;
    let error = expect_err(
        "gue without port",
        lab.block_on(handle.add_destination(&key, &gue)),
    );
    assert!(
        error.to_string().contains("GUE tunnel needs a port"),
        "{error}"
    );
    let error = expect_err(
        "IPv6 masq real in an IPv4 service",
        lab.block_on(handle.add_destination(&key, &dest("2001:db8::7", 80, Masq, 1))),
    );
    assert!(
        error.to_string().contains("needs tunnel forwarding"),
        "{error}"
    );
    let error = expect_err(
        "multicast real",
        lab.block_on(handle.add_destination(&key, &dest("224.0.0.5", 80, Route, 1))),
    );
    assert!(error.to_string().contains("unicast"), "{error}");
    let mut v6 = service(tcp("2001:db8::80", 80), "rr");
    v6.netmask = 0;
    let error = expect_err("IPv6 netmask 0", lab.block_on(handle.add_service(&v6)));
    assert!(error.to_string().contains("prefix length"), "{error}");
    let error = expect_err(
        "fwmark 0",
        lab.block_on(handle.add_service(&service(fwmark(Inet, 0), "rr"))),
    );
    assert!(error.to_string().contains("must not be 0"), "{error}");

    // Nothing of the refused operations reached the table.
    let save = lab.ipvsadm(&["-Sn"]);
    assert_eq!(save.trim(), "-A -t 10.0.5.1:80 -s rr", "{save}");
}

/// One batch, several outcomes: each operation's result at its index, and
/// a failed one does not stop those after it.
fn batch_reports_each_result(lab: &Lab) {
    let handle = lab.handle();
    let key = tcp("10.0.6.1", 80);
    let missing = tcp("10.0.6.2", 80);
    let ops = vec![
        IpvsOp::AddService(service(key, "rr")),
        IpvsOp::AddDestination {
            service: key,
            dest: dest("10.1.6.1", 80, Masq, 1),
        },
        IpvsOp::AddDestination {
            service: missing,
            dest: dest("10.1.6.2", 80, Masq, 1),
        },
        IpvsOp::AddService(service(missing, "foo")),
        // Already there: success.
        IpvsOp::AddDestination {
            service: key,
            dest: dest("10.1.6.1", 80, Masq, 1),
        },
        IpvsOp::EditDestination {
            service: key,
            dest: dest("10.1.6.1", 80, Masq, 9),
        },
        IpvsOp::DeleteDestination {
            service: key,
            addr: ip("10.1.6.99"),
            port: 80,
        },
        IpvsOp::AddDestination {
            service: key,
            dest: dest("10.1.6.3", 80, Route, 2),
        },
    ];
    let results = lab.block_on(handle.apply_all(&ops));
    assert_eq!(results.len(), ops.len());
    let outcome: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(
        outcome,
        vec![true, true, false, false, true, true, true, true],
        "{results:?}"
    );
    assert!(
        matches!(results[2], Err(IpvsError::DestinationServiceMissing { .. })),
        "{:?}",
        results[2]
    );
    assert!(
        matches!(results[3], Err(IpvsError::SchedulerNotAvailable(_))),
        "{:?}",
        results[3]
    );
    let read = config_of(&lab.block_on(handle.services()).expect("services()"));
    assert_eq!(
        read,
        vec![(
            service(key, "rr"),
            vec![
                dest("10.1.6.1", 80, Masq, 9),
                dest("10.1.6.3", 80, Route, 2)
            ]
        )]
    );
}

/// A batch larger than one `sendmsg`: every operation lands and is
/// acknowledged.
fn thousand_destinations_in_batches(lab: &Lab) {
    let handle = lab.handle();
    assert!(
        handle.batch_size() >= 100,
        "batch size {} (receive buffer too small?)",
        handle.batch_size()
    );
    let key = tcp("10.0.7.1", 80);
    let mut ops = vec![IpvsOp::AddService(service(key, "wlc"))];
    for i in 0..1000u32 {
        ops.push(IpvsOp::AddDestination {
            service: key,
            dest: dest(
                &format!("10.2.{}.{}", i / 250, i % 250 + 1),
                8000 + (i % 7) as u16,
                Masq,
                i % 5,
            ),
        });
    }
    lab.block_on(handle.apply(&ops)).expect("apply 1001 ops");
    let listing = lab.ipvsadm(&["-Ln"]);
    assert_eq!(listing.matches("Masq").count(), 1000);
    let read = lab.block_on(handle.services()).expect("services()");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].destinations.len(), 1000);

    let deletes: Vec<IpvsOp> = ops[1..]
        .iter()
        .map(|op| match op {
            IpvsOp::AddDestination { service, dest } => IpvsOp::DeleteDestination {
                service: *service,
                addr: dest.addr,
                port: dest.port,
            },
            other => panic!("unexpected {other}"),
        })
        .collect();
    lab.block_on(handle.apply(&deletes)).expect("delete 1000");
    let listing = lab.ipvsadm(&["-Ln"]);
    assert!(!listing.contains("Masq"), "{listing}");
    assert!(listing.contains("TCP  10.0.7.1:80 wlc"), "{listing}");
}

fn timeouts_both_ways(lab: &Lab) {
    let handle = lab.handle();
    let before = lab.block_on(handle.timeouts()).expect("timeouts()");
    let shown = lab.ipvsadm(&["-L", "--timeout"]);
    assert_eq!(
        shown.trim(),
        format!(
            "Timeout (tcp tcpfin udp): {} {} {}",
            before.tcp, before.tcp_fin, before.udp
        )
    );
    lab.block_on(handle.set_timeouts(&Timeouts {
        tcp: 1000,
        tcp_fin: 130,
        udp: 310,
    }))
    .expect("set_timeouts");
    assert_eq!(
        lab.ipvsadm(&["-L", "--timeout"]).trim(),
        "Timeout (tcp tcpfin udp): 1000 130 310"
    );
    // Zero leaves a value alone.
    lab.block_on(handle.set_timeouts(&Timeouts {
        tcp: 0,
        tcp_fin: 0,
        udp: 320,
    }))
    .expect("set_timeouts");
    assert_eq!(
        lab.ipvsadm(&["-L", "--timeout"]).trim(),
        "Timeout (tcp tcpfin udp): 1000 130 320"
    );
    lab.ipvsadm_line("--set 1100 140 330");
    assert_eq!(
        lab.block_on(handle.timeouts()).expect("timeouts()"),
        Timeouts {
            tcp: 1100,
            tcp_fin: 140,
            udp: 330
        }
    );
    lab.block_on(handle.set_timeouts(&before)).expect("restore");
}

fn info_matches_ipvsadm_header(lab: &Lab) {
    let handle = lab.handle();
    let info = lab.block_on(handle.info()).expect("info()");
    let header = lab.ipvsadm(&["-Ln"]);
    let first = header.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "IP Virtual Server version {} (size={})",
            info.version_string(),
            info.conn_table_size
        )
    );
}

/// How ipvsadm 1.31 prints one daemon (`ipvsadm -L --daemon`).
fn ipvsadm_daemon_line(d: &SyncDaemon) -> String {
    let role = match d.state {
        SyncState::Master => "master",
        SyncState::Backup => "backup",
    };
    let mut line = format!(
        "{role} sync daemon (mcast={}, syncid={}",
        d.mcast_ifname, d.sync_id
    );
    if d.sync_maxlen != 0 {
        line.push_str(&format!(", maxlen={}", d.sync_maxlen));
    }
    if let Some(group) = d.mcast_group {
        line.push_str(&format!(", group={group}"));
    }
    if d.mcast_port != 0 {
        line.push_str(&format!(", port={}", d.mcast_port));
    }
    if d.mcast_ttl != 0 {
        line.push_str(&format!(", ttl={}", d.mcast_ttl));
    }
    line.push(')');
    line
}

struct DaemonCleanup;

impl Drop for DaemonCleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ipvsadm")
            .args(["--stop-daemon", "master"])
            .output();
        let _ = std::process::Command::new("ipvsadm")
            .args(["--stop-daemon", "backup"])
            .output();
    }
}

fn sync_daemon_start_stop_get(lab: &Lab) {
    let _cleanup = DaemonCleanup;
    lab.sh(
        "ip link show sync0 >/dev/null 2>&1 || ip link add sync0 type dummy; \
         ip link set sync0 up multicast on",
    );
    let handle = lab.handle();
    assert!(lab
        .block_on(handle.daemons())
        .expect("daemons()")
        .is_empty());

    let master = SyncDaemon {
        state: SyncState::Master,
        mcast_ifname: "sync0".into(),
        sync_id: 5,
        sync_maxlen: 1400,
        mcast_group: Some(ip("239.0.0.9")),
        mcast_port: 8850,
        mcast_ttl: 3,
    };
    lab.block_on(handle.start_daemon(&master))
        .expect("start master");
    assert_eq!(
        lab.ipvsadm(&["-L", "--daemon"]).trim(),
        ipvsadm_daemon_line(&master)
    );
    // Same again: success. Other settings while it runs: refused, clearly.
    lab.block_on(handle.start_daemon(&master))
        .expect("start master again");
    let mut other = master.clone();
    other.sync_id = 9;
    let error = expect_err("a second master", lab.block_on(handle.start_daemon(&other)));
    assert!(
        matches!(error, IpvsError::SyncDaemonRunning { .. }),
        "{error:?}"
    );

    // ipvsadm starts a backup with the kernel's defaults; we read both.
    lab.ipvsadm_line("--start-daemon backup --mcast-interface sync0 --syncid 6");
    let mut daemons = lab.block_on(handle.daemons()).expect("daemons()");
    daemons.sort_by_key(|d| d.state == SyncState::Backup);
    assert_eq!(daemons.len(), 2, "{daemons:?}");
    assert_eq!(daemons[0], master);
    assert_eq!(daemons[1].state, SyncState::Backup);
    assert_eq!(daemons[1].mcast_ifname, "sync0");
    assert_eq!(daemons[1].sync_id, 6);
    let shown = lab.ipvsadm(&["-L", "--daemon"]);
    let ours: Vec<String> = daemons.iter().map(ipvsadm_daemon_line).collect();
    assert_same_text(
        "ipvsadm --daemon against the client's reading",
        &shown,
        &format!("{}\n", ours.join("\n")),
    );

    for _ in 0..2 {
        lab.block_on(handle.stop_daemon(SyncState::Master))
            .expect("stop master");
        lab.block_on(handle.stop_daemon(SyncState::Backup))
            .expect("stop backup");
    }
    assert!(lab.ipvsadm(&["-L", "--daemon"]).trim().is_empty());

    let mut nowhere = master.clone();
    nowhere.mcast_ifname = "nosuch0".into();
    let error = expect_err(
        "missing interface",
        lab.block_on(handle.start_daemon(&nowhere)),
    );
    assert_eq!(
        error.to_string(),
        "sync daemon: network interface 'nosuch0' does not exist"
    );
}

/// A client namespace behind a veth pair sends 20 datagrams of 100 bytes
/// to a VIP on the director (the guest's root namespace), so counters move.
/// The real is the client itself in direct routing: it drops what it gets
/// back (it does not hold the VIP) without an answer, so nothing arrives
/// late to move the counters once they have settled.
fn traffic_table(lab: &Lab) -> ServiceKey {
    lab.sh("ip netns list | grep -qw ipvsclient || { \
           ip netns add ipvsclient; \
           ip link add ipvs-dir type veth peer name ipvs-cli; \
           ip link set ipvs-cli netns ipvsclient; \
           ip addr add 10.0.9.254/24 dev ipvs-dir; ip link set ipvs-dir up; \
           ip addr add 10.0.9.1/32 dev lo; ip link set lo up; \
           ip -n ipvsclient addr add 10.0.9.2/24 dev ipvs-cli; \
           ip -n ipvsclient link set ipvs-cli up; \
           ip -n ipvsclient route add default via 10.0.9.254; }");
    lab.ipvsadm_line("-A -u 10.0.9.1:9000 -s rr");
    lab.ipvsadm_line("-a -u 10.0.9.1:9000 -r 10.0.9.2:9000 -g -w 1");
    send_traffic(lab);
    udp("10.0.9.1", 9000)
}

fn send_traffic(lab: &Lab) {
    lab.sh("ip netns exec ipvsclient bash -c \
           'for i in $(seq 20); do printf %100s > /dev/udp/10.0.9.1/9000; done'");
}

/// `ipvsadm -Ln --stats --exact`, as (conns, inpkts, outpkts, inbytes,
/// outbytes) per row: the service first, then its one real.
fn ipvsadm_stats(lab: &Lab) -> Vec<[u64; 5]> {
    lab.ipvsadm(&["-Ln", "--stats", "--exact"])
        .lines()
        .filter(|l| l.starts_with("UDP") || l.trim_start().starts_with("->"))
        .filter(|l| !l.contains("RemoteAddress"))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let numbers: Vec<u64> = words[words.len() - 5..]
                .iter()
                .map(|w| w.parse().unwrap_or_else(|e| panic!("{w:?} in {l:?}: {e}")))
                .collect();
            [numbers[0], numbers[1], numbers[2], numbers[3], numbers[4]]
        })
        .collect()
}

/// The counters ipvsadm shows once they have moved and then stayed put:
/// the kernel (6.1) publishes its per-CPU counters from the rate
/// estimator, every 2 seconds, not when a packet passes.
fn settled_counters(lab: &Lab) -> Vec<[u64; 5]> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut previous = ipvsadm_stats(lab);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(2500));
        let now = ipvsadm_stats(lab);
        assert_eq!(now.len(), 2, "{now:?}");
        if now[0][1] > 0 && now == previous {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "counters did not settle on a non-zero value in 30s: {now:?}"
        );
        previous = now;
    }
}

fn stats_and_zero(lab: &Lab) {
    let handle = lab.handle();
    let key = traffic_table(lab);
    let shown = settled_counters(lab);
    let entry = lab
        .block_on(handle.service(&key))
        .expect("service()")
        .expect("the service");
    let ours = |s: &ldirector::ipvs::Stats| [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes];
    assert_eq!(ours(&entry.stats), shown[0], "service counters");
    assert_eq!(
        ours(&entry.destinations[0].stats),
        shown[1],
        "destination counters"
    );

    lab.block_on(handle.zero(Some(&key))).expect("zero one");
    assert_eq!(ipvsadm_stats(lab), vec![[0; 5], [0; 5]]);
    send_traffic(lab);
    settled_counters(lab);
    lab.block_on(handle.zero(None)).expect("zero all");
    assert_eq!(ipvsadm_stats(lab), vec![[0; 5], [0; 5]]);
    let entry = lab
        .block_on(handle.service(&key))
        .expect("service()")
        .expect("the service");
    assert_eq!(ours(&entry.stats), [0; 5]);
}

/// Dumps raw kernel replies into OUTDIR/captures for the codec's unit
/// tests; each capture notes the ipvsadm commands behind it.
fn capture_kernel_replies(lab: &Lab) {
    let handle = lab.handle();
    let release = nix::sys::utsname::uname()
        .expect("uname")
        .release()
        .to_string_lossy()
        .into_owned();
    let dir = lab.outdir.join("captures");
    let get_services = || IpvsMessage::new(IpvsCmd::GetService, vec![]);
    let get_dests = |key: &ServiceKey| {
        IpvsMessage::new(
            IpvsCmd::GetDest,
            vec![IpvsAttribute::Service(ServiceAttribute::from_key(key))],
        )
    };
    let capture = |name: &str, commands: &[&str], request: &str, message, dump| {
        let mut comments: Vec<String> = commands
            .iter()
            .map(|c| match c.strip_prefix('(') {
                Some(note) => format!("then {}", note.trim_end_matches(')')),
                None => format!("ipvsadm {c}"),
            })
            .collect();
        comments.push(format!("reply to {request}, kernel {release}"));
        write_capture(&dir, name, &comments, &raw_request(&handle, message, dump));
    };

    let tables: &[(&str, &[&str], ServiceKey)] = &[
        (
            "tcp4",
            &[
                "-A -t 10.0.0.1:80 -s wlc",
                "-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 5 -x 100 -y 10",
                "-a -t 10.0.0.1:80 -r 10.1.0.3:80 -i -w 2",
            ],
            tcp("10.0.0.1", 80),
        ),
        (
            "udp6",
            &[
                "-A -u [2001:db8::1]:53 -s rr -p 600 -M 64 -o",
                "-a -u [2001:db8::1]:53 -r [2001:db8:1::1]:5353 -m -w 3",
            ],
            udp("2001:db8::1", 53),
        ),
        (
            "fwmark4",
            &[
                "-A -f 7 -s mh -b mh-fallback,mh-port -p 300 -M 255.255.255.0",
                "-a -f 7 -r 10.1.0.5 -g -w 4",
            ],
            fwmark(Inet, 7),
        ),
        (
            "fwmark6",
            &["-A -f 8 -6 -s lc", "-a -f 8 -6 -r 2001:db8:1::5 -g -w 9"],
            fwmark(Inet6, 8),
        ),
        (
            "tunnels",
            &[
                "-A -t 10.0.0.3:443 -s wrr",
                "-a -t 10.0.0.3:443 -r 10.1.0.7:443 -i --tun-type gue --tun-port 6080 --tun-remcsum",
                "-a -t 10.0.0.3:443 -r 10.1.0.10:443 -i --tun-type gre --tun-csum",
                "-a -t 10.0.0.3:443 -r [2001:db8:1::9]:443 -i",
            ],
            tcp("10.0.0.3", 443),
        ),
        (
            "sip",
            &["-A -u 10.0.0.4:5060 -s rr -p 60 --pe sip"],
            udp("10.0.0.4", 5060),
        ),
        (
            "sctp4",
            &["-A --sctp-service 10.0.0.2:3868 -s sh -b sh-fallback,sh-port"],
            sctp("10.0.0.2", 3868),
        ),
    ];
    for (name, commands, key) in tables {
        lab.flush();
        for c in *commands {
            lab.ipvsadm_line(c);
        }
        capture(
            &format!("{name}_service"),
            commands,
            "IPVS_CMD_GET_SERVICE dump",
            get_services(),
            true,
        );
        if commands.iter().any(|c| c.starts_with("-a")) {
            capture(
                &format!("{name}_dests"),
                commands,
                "IPVS_CMD_GET_DEST dump",
                get_dests(key),
                true,
            );
        }
    }

    lab.flush();
    let key = traffic_table(lab);
    settled_counters(lab);
    let commands = [
        "-A -u 10.0.9.1:9000 -s rr",
        "-a -u 10.0.9.1:9000 -r 10.0.9.2:9000 -g -w 1",
        "(then 20 UDP datagrams of 100 bytes to 10.0.9.1:9000 from a client namespace)",
    ];
    capture(
        "stats_service",
        &commands,
        "IPVS_CMD_GET_SERVICE (not a dump)",
        IpvsMessage::new(
            IpvsCmd::GetService,
            vec![IpvsAttribute::Service(ServiceAttribute::from_key(&key))],
        ),
        false,
    );
    capture(
        "stats_dests",
        &commands,
        "IPVS_CMD_GET_DEST dump",
        get_dests(&key),
        true,
    );
    lab.flush();

    lab.ipvsadm_line("--set 900 120 300");
    capture(
        "config",
        &["--set 900 120 300"],
        "IPVS_CMD_GET_CONFIG",
        IpvsMessage::new(IpvsCmd::GetConfig, vec![]),
        false,
    );
    capture(
        "info",
        &[],
        "IPVS_CMD_GET_INFO",
        IpvsMessage::new(IpvsCmd::GetInfo, vec![]),
        false,
    );

    let _cleanup = DaemonCleanup;
    lab.sh(
        "ip link show sync0 >/dev/null 2>&1 || ip link add sync0 type dummy; \
         ip link set sync0 up multicast on",
    );
    let commands = [
        "--start-daemon master --mcast-interface sync0 --syncid 5",
        "--start-daemon backup --mcast-interface sync0 --syncid 6 --sync-maxlen 1400 \
         --mcast-group ff02::81 --mcast-port 8849 --mcast-ttl 2",
    ];
    for c in commands {
        lab.ipvsadm_line(c);
    }
    capture(
        "daemons",
        &commands,
        "IPVS_CMD_GET_DAEMON dump",
        IpvsMessage::new(IpvsCmd::GetDaemon, vec![]),
        true,
    );
    let count = std::fs::read_dir(&dir).expect("captures").count();
    println!("  {count} captures in {}", dir.display());
}
