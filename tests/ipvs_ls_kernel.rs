// SPDX-License-Identifier: GPL-2.0-or-later
//! `ipvs-ls` against `ipvsadm` on the real IPVS kernel.
//!
//! One VM boot (tests/vm/run.sh: Debian's kernel under software emulation)
//! runs tests/ipvs_ls/guest.sh, which builds a varied table with ipvsadm
//! (TCP, UDP, SCTP, firewall marks, IPv4, IPv6 and mixed families,
//! persistence with netmasks, the sip persistence engine, one-packet
//! scheduling, scheduler flags, thresholds, every forwarding method and
//! tunnel type, sync daemons, timeouts), sends a little traffic, and
//! records both tools' output in every list mode. This test, on the host,
//! then requires ipvs-ls's output to be byte for byte ipvsadm's.
//!
//! Needs root and tests/setup/install.sh (the VM comes from
//! tests/vm/prepare.sh, which run.sh calls). There is no skip: if the VM
//! cannot start, the test fails and says why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const VM_TIMEOUT_SECS: &str = "1200";

/// Every mode guest.sh compares; a mode missing from its results fails the
/// test, so the guest cannot silently drop one.
const MODES: &[&str] = &[
    "default",
    "default_L",
    "stats",
    "rate",
    "thresholds",
    "persistent_conn",
    "tun_info",
    "exact",
    "stats_exact",
    "rate_exact",
    "stats_rate",
    "rate_thresholds",
    "thresholds_pconn_tun",
    "pconn_tun",
    "nosort",
    "service_tcp",
    "service_tcp_stats",
    "service_udp_rate",
    "service_sctp",
    "service_fwmark",
    "service_fwmark6",
    "service_ipv6",
    "service_sip",
    "connections",
    "connections_pe",
    "timeout",
    "daemon",
    "resolve",
    "resolve_stats",
    "resolve_service",
    "resolve_connections",
    "big",
    "big_stats",
];

#[test]
#[ignore = "boots a VM: run from tests/vm.rs (ipvs_ls_kernel_in_vm), or here with --ignored"]
fn ipvs_ls_output_is_ipvsadm_output_on_the_real_kernel() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test boots a VM over the host's root filesystem and needs root: \
         run `sudo cargo test --test ipvs_ls_kernel -- --ignored` after `sudo bash tests/setup/install.sh`"
    );
    // Re-checking a finished run's results (after changing only the host
    // side of this test) needs no new boot.
    let results = match std::env::var_os("LDIRECTOR_IPVS_LS_RESULTS") {
        Some(dir) => PathBuf::from(dir),
        None => run_guest(),
    };
    let modes = read_modes(&results);

    let mut failures = Vec::new();
    for mode in MODES {
        match modes.get(*mode) {
            None => failures.push(format!("{mode}: the guest did not run this mode")),
            Some(attempts) => {
                if let Err(why) = compare_mode(&results, mode) {
                    failures.push(format!("{mode} (after {attempts} attempt(s)): {why}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "ipvs-ls differs from ipvsadm in {} mode(s) (outputs in {}):\n\n{}",
        failures.len(),
        results.display(),
        failures.join("\n\n")
    );

    check_table_is_varied(&results);
    check_other_behaviour(&results);
    let big = read(&results.join("big.before"));
    assert_eq!(
        big.lines().filter(|l| l.starts_with("  -> ")).count(),
        10_001,
        "the big table should list 10,000 reals"
    );
    // A figure for the record (software emulation: ratios only).
    println!(
        "listing 1,000 services x 10 reals in the VM:\n{}",
        read(&results.join("bench"))
    );
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Boots the VM once and returns the guest's results folder.
fn run_guest() -> PathBuf {
    let ipvs_ls = PathBuf::from(env!("CARGO_BIN_EXE_ipvs-ls"));
    // Under target/<profile>/ (visible in the guest), one folder per run.
    let profile_dir = ipvs_ls
        .parent()
        .map(Path::to_path_buf)
        .expect("ipvs-ls lives in target/<profile>/");
    let outdir = profile_dir
        .join("vm-runs")
        .join(format!("ipvs_ls_kernel-{}", std::process::id()));
    if outdir.exists() {
        std::fs::remove_dir_all(&outdir)
            .unwrap_or_else(|e| panic!("cannot clear {}: {e}", outdir.display()));
    }
    std::fs::create_dir_all(&outdir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", outdir.display()));
    let results = outdir.join("results");
    // The guest reads the script while it runs; a snapshot keeps an edit
    // of the checkout from changing a run under way.
    let script = outdir.join("ipvs-ls-guest.sh");
    std::fs::copy(manifest_dir().join("tests/ipvs_ls/guest.sh"), &script)
        .unwrap_or_else(|e| panic!("cannot copy tests/ipvs_ls/guest.sh: {e}"));

    // Without debug info: the guest pages binaries in over 9p under
    // emulation, and the full debug build (100+ MB) took 10-30 s a run.
    let guest_ipvs_ls = outdir.join("ipvs-ls");
    let strip = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&guest_ipvs_ls)
        .arg(&ipvs_ls)
        .status()
        .unwrap_or_else(|e| panic!("cannot run strip (binutils): {e}"));
    assert!(
        strip.success(),
        "strip --strip-debug {} failed",
        ipvs_ls.display()
    );

    let big_rules = outdir.join("big.rules");
    std::fs::write(&big_rules, big_table_rules())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", big_rules.display()));

    let output = Command::new("bash")
        .arg(manifest_dir().join("tests/vm/run.sh"))
        .args(["--timeout", VM_TIMEOUT_SECS])
        .arg(&outdir)
        .arg("--")
        .arg("bash")
        .arg(&script)
        .arg(&results)
        .arg(&guest_ipvs_ls)
        .arg(&big_rules)
        .current_dir(manifest_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run tests/vm/run.sh: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("===== guest stderr =====\n{stderr}");
    let code = output.status.code();
    assert!(
        code != Some(124) && code != Some(125),
        "the VM did not run the guest script (status {code:?}): {stderr}\nconsole log: {}",
        outdir.join("console.log").display()
    );
    assert!(
        output.status.success(),
        "the guest script failed (status {code:?}):\n{stderr}"
    );
    results
}

/// 1,000 services (two TCP for each UDP) with 10 masq reals each, as
/// `ipvsadm -R` input.
fn big_table_rules() -> String {
    let mut rules = String::new();
    for s in 0..1000u32 {
        let vip = format!("10.3.{}.{}", s / 250, s % 250 + 1);
        let proto = if s % 3 == 1 { "-u" } else { "-t" };
        rules.push_str(&format!("-A {proto} {vip}:80 -s wrr\n"));
        for r in 1..=10u32 {
            rules.push_str(&format!(
                "-a {proto} {vip}:80 -r 10.4.{}.{}:8080 -m -w {r}\n",
                s / 25,
                (s % 25) * 10 + r
            ));
        }
    }
    rules
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn read_modes(results: &Path) -> BTreeMap<String, u32> {
    read(&results.join("modes"))
        .lines()
        .filter_map(|line| {
            let (name, attempts) = line.split_once(' ')?;
            Some((name.to_owned(), attempts.trim().parse().ok()?))
        })
        .collect()
}

/// Ours must be byte for byte one of the two ipvsadm snapshots taken
/// around it (both succeeded, and said something).
fn compare_mode(results: &Path, mode: &str) -> Result<(), String> {
    let file = |suffix: &str| results.join(format!("{mode}.{suffix}"));
    for which in ["before", "ours", "after"] {
        let rc = read(&file(&format!("{which}.rc")));
        if rc.trim() != "0" {
            return Err(format!(
                "{which} exited with {}: {}",
                rc.trim(),
                read(&file(&format!("{which}.err")))
            ));
        }
    }
    let before = std::fs::read(file("before")).map_err(|e| e.to_string())?;
    let ours = std::fs::read(file("ours")).map_err(|e| e.to_string())?;
    let after = std::fs::read(file("after")).map_err(|e| e.to_string())?;
    if before.is_empty() {
        return Err("ipvsadm printed nothing".to_owned());
    }
    if ours == before || ours == after {
        return Ok(());
    }
    if mode.contains("connections") {
        return compare_connections(
            &String::from_utf8_lossy(&before),
            &String::from_utf8_lossy(&ours),
            &String::from_utf8_lossy(&after),
        );
    }
    Err(first_difference(
        &String::from_utf8_lossy(&before),
        &String::from_utf8_lossy(&ours),
    ))
}

/// Connection timers tick while three listings run, so a connection
/// listing may differ from both ipvsadm snapshots in its expire column
/// only: every other byte must be ipvsadm's, and each expire value must lie
/// between ipvsadm's before and after values for that line.
fn compare_connections(before: &str, ours: &str, after: &str) -> Result<(), String> {
    fn split(line: &str) -> (String, Option<u32>) {
        let expire = line.get(4..10).and_then(|field| {
            let (m, s) = field.trim_end().split_once(':')?;
            Some(m.parse::<u32>().ok()? * 60 + s.parse::<u32>().ok()?)
        });
        match expire {
            Some(seconds) => (format!("{}{}", &line[..4], &line[10..]), Some(seconds)),
            None => (line.to_owned(), None),
        }
    }
    let (b, o, a): (Vec<_>, Vec<_>, Vec<_>) = (
        before.lines().map(split).collect(),
        ours.lines().map(split).collect(),
        after.lines().map(split).collect(),
    );
    let masked = |v: &[(String, Option<u32>)]| v.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
    if masked(&b) != masked(&o) || masked(&a) != masked(&o) || ours.lines().count() != o.len() {
        return Err(first_difference(before, ours));
    }
    for (i, ((_, ours_expire), ((_, before_expire), (_, after_expire)))) in
        o.iter().zip(b.iter().zip(a.iter())).enumerate()
    {
        if let (Some(mine), Some(hi), Some(lo)) = (ours_expire, before_expire, after_expire) {
            if mine > hi || mine < lo {
                return Err(format!(
                    "line {}: expire {mine}s is not between ipvsadm's {hi}s and {lo}s\n\
                     --- ipvsadm ---\n{before}--- ipvs-ls ---\n{ours}",
                    i + 1
                ));
            }
        }
    }
    Ok(())
}

/// The first differing line, with trailing blanks made visible.
fn first_difference(theirs: &str, ours: &str) -> String {
    let visible = |l: Option<&str>| match l {
        Some(l) => format!("{:?}", l),
        None => "<end of output>".to_owned(),
    };
    let (mut a, mut b) = (theirs.lines(), ours.lines());
    for number in 1.. {
        let (x, y) = (a.next(), b.next());
        if x.is_none() && y.is_none() {
            return "outputs differ only in line endings".to_owned();
        }
        if x != y {
            return format!(
                "line {number}:\n  ipvsadm: {}\n  ipvs-ls: {}\n--- ipvsadm ---\n{theirs}--- ipvs-ls ---\n{ours}",
                visible(x),
                visible(y)
            );
        }
    }
    unreachable!()
}

/// The comparisons only mean something if the table really had what the
/// guest script meant to build: check ipvsadm's own output for it.
fn check_table_is_varied(results: &Path) {
    let default = read(&results.join("default.before"));
    for needle in [
        "TCP  10.1.0.1:80 wlc",
        "UDP  10.1.0.1:53 sh (sh-fallback,sh-port) persistent 60 ops",
        "SCTP 10.1.0.2:3868 mh (mh-port)",
        "TCP  198.51.100.10:443 rr persistent 300 mask 255.255.255.0",
        "TCP  10.1.0.4:8443 rr (flag-1,flag-3) persistent 3600 mask 255.255.0.0",
        "FWM  -1073741823 fo",
        "FWM  8 IPv6 wrr persistent 120 mask 64",
        "TCP  [2001:db8::1]:80 sed persistent 600 mask 96",
        "UDP  [2001:db8::1]:5060 rr persistent 30 pe sip",
        "  -> 10.2.0.3:80                  Route   65535",
        "  -> 10.2.0.13:80                 Tunnel",
        "  -> [2001:db8:c000::10]:80       Masq    4",
    ] {
        assert!(
            default.contains(needle),
            "the guest's table lacks {needle:?}; ipvsadm -Ln printed:\n{default}"
        );
    }
    let tun = read(&results.join("tun_info.before"));
    for needle in ["gue:6080:r+c", "gue:6081:+c", "gre:-c", "gre:+c", "ipip"] {
        assert!(
            tun.contains(needle),
            "no {needle} in ipvsadm --tun-info:\n{tun}"
        );
    }
    let stats = read(&results.join("stats_exact.before"));
    assert!(
        stats
            .lines()
            .filter(|l| l.starts_with("TCP  10.1.0.1:80 "))
            .any(|l| l
                .split_whitespace()
                .nth(2)
                .is_some_and(|conns| conns != "0")),
        "the traffic left no counters:\n{stats}"
    );
    let connections = read(&results.join("connections.before"));
    assert!(
        connections.lines().count() > 2,
        "the traffic left no connection entries:\n{connections}"
    );
    let resolved = read(&results.join("resolve.before"));
    assert!(
        resolved.contains("a-rather-long-virtual-") && resolved.contains(":http"),
        "ipvsadm did not resolve names from the guest's hosts file:\n{resolved}"
    );
    let daemons = read(&results.join("daemon.before"));
    assert!(
        daemons.contains("master sync daemon") && daemons.contains("backup sync daemon"),
        "no sync daemons in:\n{daemons}"
    );
}

fn read_checks(results: &Path) -> BTreeMap<String, i32> {
    read(&results.join("checks"))
        .lines()
        .filter_map(|line| {
            let (name, status) = line.split_once(' ')?;
            Some((name.to_owned(), status.trim().parse().ok()?))
        })
        .collect()
}

fn check_other_behaviour(results: &Path) {
    let checks = read_checks(results);
    let status = |name: &str| -> i32 {
        *checks
            .get(name)
            .unwrap_or_else(|| panic!("the guest did not run check {name}"))
    };
    let out = |name: &str| read(&results.join(format!("{name}.out")));
    let err = |name: &str| read(&results.join(format!("{name}.err")));

    assert_eq!(status("no_ipvs"), 1, "without ip_vs: {}", err("no_ipvs"));
    assert!(
        err("no_ipvs").contains("the kernel has no IPVS"),
        "unclear error without ip_vs: {}",
        err("no_ipvs")
    );
    assert_eq!(status("loads_ipvs"), 0, "{}", err("loads_ipvs"));
    assert_eq!(
        out("loads_ipvs"),
        "IP Virtual Server version 1.2.1 (size=4096)\n\
         Prot LocalAddress:Port Scheduler Flags\n\
         \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    );

    assert_eq!(status("missing_service"), 1);
    assert!(
        err("missing_service").contains("no such service: TCP 10.9.9.9:1"),
        "{}",
        err("missing_service")
    );
    assert_eq!(status("not_root"), 1);
    assert!(
        err("not_root").contains("run as root"),
        "unclear error for a non-root user: {}",
        err("not_root")
    );

    assert_eq!(
        status("health_no_director"),
        0,
        "{}",
        err("health_no_director")
    );
    let health = out("health_no_director");
    assert!(
        health.contains("InActConn Health\n")
            && health.contains("  -> 10.2.0.1:8080                Masq    3      ")
            && health
                .lines()
                // Real rows only: the column header starts with "  -> " too.
                .filter(|l| l.starts_with("  -> ") && !l.contains("RemoteAddress:Port"))
                .all(|l| l.ends_with(" -")),
        "health column without a director:\n{health}"
    );
    assert!(err("health_no_director").contains("no director running"));

    check_json(results, &out("json"));
    assert_eq!(status("json_daemons"), 0);
    let with_daemons: serde_json::Value = serde_json::from_str(&out("json_daemons")).expect("JSON");
    let daemons = &with_daemons["sync_daemons"];
    assert_eq!(daemons[0]["state"], "master", "{daemons}");
    assert_eq!(daemons[0]["mcast_interface"], "ipvsls0");
    assert_eq!(daemons[0]["sync_id"], 7);
    assert_eq!(daemons[1]["state"], "backup", "{daemons}");
    assert_eq!(daemons[1]["sync_id"], 9);
    assert_eq!(daemons[1]["mcast_group"], "239.1.2.3");
    assert_eq!(daemons[1]["mcast_port"], 8849);
    assert_eq!(daemons[1]["mcast_ttl"], 2);
    assert_eq!(daemons[1]["max_length"], 1400);
    assert_eq!(status("json_service"), 0);
    let one: serde_json::Value = serde_json::from_str(&out("json_service")).expect("JSON");
    assert_eq!(one["services"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["services"][0]["address"], "10.1.0.1");
}

/// The JSON document describes the same table as ipvsadm's listing.
fn check_json(results: &Path, text: &str) {
    let doc: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON ({e}):\n{text}"));
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["version"], "1.2.1");
    assert_eq!(doc["timeouts"]["tcp"], 901);
    assert_eq!(doc["timeouts"]["tcp_fin"], 121);
    assert_eq!(doc["timeouts"]["udp"], 301);
    assert_eq!(doc["sync_daemons"], serde_json::json!([]));
    let listing = read(&results.join("default.before"));
    let services = doc["services"].as_array().expect("services array");
    let listed_services = listing
        .lines()
        .skip(3)
        .filter(|l| !l.starts_with("  -> "))
        .count();
    let listed_dests = listing.lines().filter(|l| l.starts_with("  -> ")).count() - 1;
    assert_eq!(
        services.len(),
        listed_services,
        "services in JSON vs ipvsadm"
    );
    let dests: usize = services
        .iter()
        .map(|s| s["destinations"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(dests, listed_dests, "destinations in JSON vs ipvsadm");

    let web = services
        .iter()
        .find(|s| s["address"] == "10.1.0.1" && s["port"] == 80 && s["protocol"] == "tcp")
        .expect("TCP 10.1.0.1:80 in JSON");
    assert_eq!(web["scheduler"], "wlc");
    assert!(web["stats"]["connections"].as_u64().unwrap_or(0) > 0);
    let gue = web["destinations"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["address"] == "10.2.0.4"))
        .expect("the gue real");
    assert_eq!(gue["forward"], "tunnel");
    assert_eq!(gue["tunnel"]["type"], "gue");
    assert_eq!(gue["tunnel"]["port"], 6080);
    assert_eq!(gue["tunnel"]["checksum"], "remcsum");
    let sip = services
        .iter()
        .find(|s| s["address"] == "2001:db8::1" && s["port"] == 5060)
        .expect("the sip service");
    assert_eq!(sip["persistence"]["engine"], "sip");
    assert_eq!(sip["persistence"]["timeout"], 30);
    let dns = services
        .iter()
        .find(|s| s["address"] == "10.1.0.1" && s["port"] == 53)
        .expect("UDP 10.1.0.1:53");
    assert_eq!(dns["flags"]["one_packet"], true);
    assert_eq!(
        dns["flags"]["scheduler"],
        serde_json::json!(["sh-fallback", "sh-port"])
    );
}
