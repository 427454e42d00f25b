// SPDX-License-Identifier: GPL-2.0-or-later
//! VIP management in network namespaces (tier 3: privileged, host): add,
//! remove and status over rtnetlink, checked with `ip -n`; the errors an
//! operator will meet (missing interface, permission denied, address in
//! use) and that they leave nothing behind; real-server (DR) mode with its
//! sysctls; the `ldirectord vip` command line.
//!
//! Needs root (network namespaces). Namespaces are `ldn-net-<pid>-*`,
//! removed on drop. Addresses: 198.51.100.0/24, 203.0.113.0/24,
//! 2001:db8::/32, only inside the namespaces.

#[path = "support_net/mod.rs"]
mod support;

use std::net::IpAddr;

use clap::Parser;
use ldirector::net::cli::{self, VipCommand};
use ldirector::net::realserver::{realserver_off, realserver_on, RealServerOptions};
use ldirector::net::{
    AddOptions, AnnounceOptions, Change, NetError, VipAddr, VipClaim, VipHandle, VipOwner, VipSet,
};
use support::{drop_thread_capabilities, Netns, Pair, CAP_NET_ADMIN, CAP_NET_RAW};

fn addr(text: &str) -> IpAddr {
    text.parse().expect("address")
}

fn vip(text: &str) -> VipAddr {
    text.parse().expect("VIP")
}

/// A namespace with `eth0` (veth, up) carrying 198.51.100.1/24 and
/// 2001:db8:1::1/64, the director's own addresses that must survive
/// everything the tests do to VIPs.
fn director(tag: &str) -> Pair {
    let pair = Pair::new(tag);
    pair.director
        .ip(&["addr", "add", "198.51.100.1/24", "dev", "eth0"]);
    pair.director
        .ip(&["addr", "add", "2001:db8:1::1/64", "dev", "eth0", "nodad"]);
    pair
}

#[test]
fn add_status_del_ipv4_with_prefix_and_label() {
    let pair = director("v4");
    let netns = &pair.director;
    let before = netns.all_addresses();

    let (first, second, present) = netns.block_on(|| async {
        let handle = VipHandle::new().unwrap();
        let options = AddOptions {
            label: Some("web".into()),
            force: false,
        };
        let first = handle
            .add("eth0", vip("203.0.113.10/24"), &options)
            .await
            .unwrap();
        let second = handle
            .add("eth0", vip("203.0.113.10/24"), &options)
            .await
            .unwrap();
        let present = handle
            .is_present("eth0", addr("203.0.113.10"))
            .await
            .unwrap();
        (first, second, present)
    });
    assert_eq!(
        (first, second, present),
        (Change::Changed, Change::Unchanged, true)
    );
    let addresses = netns.addresses("eth0");
    assert!(
        addresses.contains(&"203.0.113.10/24 eth0:web".to_string()),
        "{addresses:?}"
    );
    // Adding it twice added it once.
    assert_eq!(
        addresses
            .iter()
            .filter(|a| a.starts_with("203.0.113.10/"))
            .count(),
        1
    );

    let (removed, again, present) = netns.block_on(|| async {
        let handle = VipHandle::new().unwrap();
        let removed = handle
            .del("eth0", addr("203.0.113.10"), Some(24))
            .await
            .unwrap();
        let again = handle
            .del("eth0", addr("203.0.113.10"), Some(24))
            .await
            .unwrap();
        let present = handle
            .is_present("eth0", addr("203.0.113.10"))
            .await
            .unwrap();
        (removed, again, present)
    });
    assert_eq!(
        (removed, again, present),
        (Change::Changed, Change::Unchanged, false)
    );
    // Only the VIP came and went: every other address is as it was.
    assert_eq!(netns.all_addresses(), before);
}

#[test]
fn add_status_del_ipv6_host_address_without_dad() {
    let pair = director("v6");
    let netns = &pair.director;
    let before = netns.all_addresses();

    netns.block_on(|| async {
        let handle = VipHandle::new().unwrap();
        let options = AddOptions::default();
        assert_eq!(
            handle
                .add("eth0", vip("2001:db8:1::10"), &options)
                .await
                .unwrap(),
            Change::Changed
        );
        assert_eq!(
            handle
                .add("eth0", vip("2001:db8:1::10"), &options)
                .await
                .unwrap(),
            Change::Unchanged
        );
    });
    assert!(netns
        .addresses("eth0")
        .contains(&"2001:db8:1::10/128".to_string()));
    // Usable at once: no "tentative" flag (DAD off), so a takeover does not
    // stall for a second.
    let shown = netns.ip(&[
        "-6",
        "addr",
        "show",
        "dev",
        "eth0",
        "to",
        "2001:db8:1::10/128",
    ]);
    assert!(shown.contains("2001:db8:1::10/128"), "{shown}");
    assert!(!shown.contains("tentative"), "{shown}");
    assert!(shown.contains("nodad"), "{shown}");

    netns.block_on(|| async {
        let handle = VipHandle::new().unwrap();
        assert_eq!(
            handle
                .del("eth0", addr("2001:db8:1::10"), None)
                .await
                .unwrap(),
            Change::Changed
        );
        assert_eq!(
            handle
                .del("eth0", addr("2001:db8:1::10"), None)
                .await
                .unwrap(),
            Change::Unchanged
        );
    });
    assert_eq!(netns.all_addresses(), before);
}

#[test]
fn delete_with_another_prefix_is_refused_and_changes_nothing() {
    let pair = director("prefix");
    let netns = &pair.director;
    netns.ip(&["addr", "add", "203.0.113.20/24", "dev", "eth0"]);
    let before = netns.all_addresses();
    let error = netns.block_on(|| async {
        let handle = VipHandle::new().unwrap();
        handle
            .del("eth0", addr("203.0.113.20"), Some(32))
            .await
            .unwrap_err()
    });
    assert_eq!(
        error.to_string(),
        "203.0.113.20 is present on eth0 as /24, not /32; nothing changed"
    );
    assert_eq!(netns.all_addresses(), before);
}

#[test]
fn missing_interface_is_named_in_the_error() {
    let pair = director("noif");
    let netns = &pair.director;
    let before = netns.all_addresses();
    let (add, del, present) = netns.block_on(|| async {
        let handle = VipHandle::new().unwrap();
        (
            handle
                .add("nosuch0", vip("203.0.113.30"), &AddOptions::default())
                .await
                .unwrap_err(),
            handle
                .del("nosuch0", addr("203.0.113.30"), None)
                .await
                .unwrap_err(),
            handle
                .is_present("nosuch0", addr("203.0.113.30"))
                .await
                .unwrap_err(),
        )
    });
    for error in [&add, &del, &present] {
        assert!(
            matches!(error, NetError::InterfaceNotFound { iface } if iface == "nosuch0"),
            "{error:?}"
        );
        assert_eq!(error.to_string(), "interface nosuch0 does not exist");
    }
    assert_eq!(netns.all_addresses(), before);
}

#[test]
fn permission_denied_names_the_capability_and_adds_nothing() {
    let pair = director("perm");
    let netns = &pair.director;
    let before = netns.all_addresses();
    let error = netns.block_on(|| {
        drop_thread_capabilities(&[CAP_NET_ADMIN]);
        async {
            let handle = VipHandle::new().unwrap();
            handle
                .add("eth0", vip("203.0.113.40"), &AddOptions::default())
                .await
                .unwrap_err()
        }
    });
    assert!(error.is_permission_denied(), "{error:?}");
    assert_eq!(
        error.to_string(),
        "add 203.0.113.40/32 to eth0: permission denied (needs CAP_NET_ADMIN)"
    );
    assert_eq!(netns.all_addresses(), before);
}

#[test]
fn address_in_use_on_another_interface_is_refused() {
    let pair = director("inuse");
    let netns = &pair.director;
    // A second interface of the same namespace already carries the VIP.
    netns.ip(&[
        "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p",
    ]);
    netns.ip(&["addr", "add", "203.0.113.50/32", "dev", "eth1"]);
    let before = netns.all_addresses();
    let error = netns.block_on(|| async {
        let handle = VipHandle::new().unwrap();
        handle
            .add("eth0", vip("203.0.113.50"), &AddOptions::default())
            .await
            .unwrap_err()
    });
    assert_eq!(
        error.to_string(),
        "203.0.113.50 is already in use on interface eth1; refusing to add it to eth0 too"
    );
    assert_eq!(netns.all_addresses(), before);

    // --force is the operator's explicit override.
    let forced = netns.block_on(|| async {
        let handle = VipHandle::new().unwrap();
        let options = AddOptions {
            label: None,
            force: true,
        };
        handle.add("eth0", vip("203.0.113.50"), &options).await
    });
    assert_eq!(forced.unwrap(), Change::Changed);
    assert!(netns.has_address("eth0", addr("203.0.113.50")));
    assert!(netns.has_address("eth1", addr("203.0.113.50")));
}

#[test]
fn owner_acquires_and_releases() {
    let pair = director("owner");
    let netns = &pair.director;
    let before = netns.all_addresses();
    netns.block_on(|| async {
        let announce = AnnounceOptions {
            count: 2,
            interval: std::time::Duration::from_millis(20),
            ..AnnounceOptions::default()
        };
        let owner = VipOwner::acquire("eth0", vip("198.51.100.10"), announce)
            .await
            .unwrap();
        assert!(owner.added());
        // Acquiring again adopts it (a restarted daemon).
        let again = VipOwner::acquire("eth0", vip("198.51.100.10"), announce)
            .await
            .unwrap();
        assert!(!again.added());
        drop(again);
        assert_eq!(owner.release().await.unwrap(), Change::Changed);
    });
    assert_eq!(netns.all_addresses(), before);
}

#[test]
fn owner_leaves_nothing_when_it_cannot_announce() {
    let pair = director("ownerperm");
    let netns = &pair.director;
    let before = netns.all_addresses();
    // CAP_NET_ADMIN (address) but no CAP_NET_RAW (packet socket).
    let error = netns.block_on(|| {
        drop_thread_capabilities(&[CAP_NET_RAW]);
        async {
            VipOwner::acquire("eth0", vip("198.51.100.11"), AnnounceOptions::default())
                .await
                .unwrap_err()
        }
    });
    assert!(error.is_permission_denied(), "{error:?}");
    assert!(error.to_string().contains("needs CAP_NET_RAW"), "{error}");
    assert_eq!(netns.all_addresses(), before);
}

#[test]
fn owner_refuses_an_interface_that_is_down() {
    let pair = director("ownerdown");
    let netns = &pair.director;
    netns.ip(&["link", "set", "eth0", "down"]);
    let before = netns.all_addresses();
    let error = netns.block_on(|| async {
        VipOwner::acquire("eth0", vip("198.51.100.12"), AnnounceOptions::default())
            .await
            .unwrap_err()
    });
    assert_eq!(error.to_string(), "interface eth0 is down");
    assert_eq!(netns.all_addresses(), before);
}

#[test]
fn vip_set_follows_the_configuration_across_reloads() {
    let pair = director("set");
    let netns = &pair.director;
    let before = netns.all_addresses();
    let claim = |text: &str| VipClaim {
        iface: "eth0".into(),
        vip: vip(text),
        announce: AnnounceOptions {
            count: 1,
            ..AnnounceOptions::default()
        },
    };
    netns.block_on(|| async {
        let mut set = VipSet::new();
        // Ports 80 and 443 of one VIP: one address.
        let failures = set
            .reconcile(&[
                claim("198.51.100.30"),
                claim("198.51.100.30"),
                claim("2001:db8:1::30"),
            ])
            .await;
        assert!(failures.is_empty(), "{failures:?}");
        assert_eq!(set.len(), 2);

        // Reload: one VIP gone, one new, a bad interface reported without
        // keeping the others from being owned.
        let mut missing = claim("198.51.100.32");
        missing.iface = "nosuch0".into();
        let failures = set
            .reconcile(&[claim("2001:db8:1::30"), claim("198.51.100.31"), missing])
            .await;
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(
            failures[0].1.to_string(),
            "interface nosuch0 does not exist"
        );
        let mut owned: Vec<String> = set.owners().map(|owner| owner.vip().to_string()).collect();
        owned.sort();
        assert_eq!(owned, ["198.51.100.31/32", "2001:db8:1::30/128"]);
    });
    // The set's runtime is gone; its VIPs stay configured (as after a
    // crash) until released: check, then release them from a new set.
    let addresses = netns.addresses("eth0");
    assert!(
        !addresses.contains(&"198.51.100.30/32".to_string()),
        "{addresses:?}"
    );
    assert!(
        addresses.contains(&"198.51.100.31/32".to_string()),
        "{addresses:?}"
    );
    assert!(
        addresses.contains(&"2001:db8:1::30/128".to_string()),
        "{addresses:?}"
    );
    netns.block_on(|| async {
        let mut set = VipSet::new();
        let failures = set
            .reconcile(&[claim("2001:db8:1::30"), claim("198.51.100.31")])
            .await;
        assert!(failures.is_empty(), "{failures:?}");
        // Adopted, not added.
        assert!(set.owners().all(|owner| !owner.added()));
        assert!(set.release_all().await.is_empty());
        assert!(set.is_empty());
    });
    assert_eq!(netns.all_addresses(), before);
}

const ALL_IGNORE: &str = "/proc/sys/net/ipv4/conf/all/arp_ignore";
const ALL_ANNOUNCE: &str = "/proc/sys/net/ipv4/conf/all/arp_announce";
const LO_IGNORE: &str = "/proc/sys/net/ipv4/conf/lo/arp_ignore";
const LO_ANNOUNCE: &str = "/proc/sys/net/ipv4/conf/lo/arp_announce";
const ETH0_IGNORE: &str = "/proc/sys/net/ipv4/conf/eth0/arp_ignore";
const ETH0_ANNOUNCE: &str = "/proc/sys/net/ipv4/conf/eth0/arp_announce";

fn arp_sysctls(netns: &Netns) -> [i64; 6] {
    [
        ALL_IGNORE,
        ALL_ANNOUNCE,
        LO_IGNORE,
        LO_ANNOUNCE,
        ETH0_IGNORE,
        ETH0_ANNOUNCE,
    ]
    .map(|path| netns.sysctl(path))
}

#[test]
fn realserver_mode_sets_and_restores_sysctls() {
    let pair = director("rs");
    let netns = &pair.director;
    let state = tempfile::tempdir().unwrap();
    // Values an operator might have had before, so "restore" is
    // distinguishable from "reset to the kernel default".
    netns.set_sysctl(ALL_ANNOUNCE, 1);
    netns.set_sysctl(ETH0_IGNORE, 2);
    let before = arp_sysctls(netns);
    assert_eq!(before, [0, 1, 0, 0, 2, 0]);
    let addresses_before = netns.all_addresses();

    let options = RealServerOptions {
        ifaces: vec!["eth0".into()],
        force: false,
        state_dir: state.path().to_path_buf(),
    };
    netns.block_on(|| async {
        let handle = VipHandle::new().unwrap();
        let report = realserver_on(&handle, addr("203.0.113.60"), &options)
            .await
            .unwrap();
        assert_eq!(report.address, Change::Changed);
        let report = realserver_on(&handle, addr("2001:db8:2::60"), &options)
            .await
            .unwrap();
        assert_eq!(report.address, Change::Changed);
    });
    // arp_ignore=1 and arp_announce=2 everywhere (eth0's arp_ignore=2 is
    // stricter than 1 but not what DR mode asks for, so it is set too).
    assert_eq!(arp_sysctls(netns), [1, 2, 1, 2, 1, 2]);
    assert!(netns
        .addresses("lo")
        .contains(&"203.0.113.60/32".to_string()));
    assert!(netns
        .addresses("lo")
        .contains(&"2001:db8:2::60/128".to_string()));

    netns.block_on(|| async {
        let handle = VipHandle::new().unwrap();
        realserver_off(&handle, addr("203.0.113.60"), state.path())
            .await
            .unwrap();
    });
    // The IPv6 VIP is still on lo, but no IPv4 one: the sysctls are back.
    assert_eq!(arp_sysctls(netns), before);
    assert!(!netns.has_address("lo", addr("203.0.113.60")));
    assert!(netns.has_address("lo", addr("2001:db8:2::60")));

    netns.block_on(|| async {
        let handle = VipHandle::new().unwrap();
        realserver_off(&handle, addr("2001:db8:2::60"), state.path())
            .await
            .unwrap();
    });
    assert_eq!(netns.all_addresses(), addresses_before);
    assert_eq!(arp_sysctls(netns), before);
    // Nothing left to undo, so no state file either.
    let leftovers: Vec<_> = std::fs::read_dir(state.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn realserver_mode_rolls_back_when_the_address_cannot_be_added() {
    let pair = director("rsperm");
    let netns = &pair.director;
    let state = tempfile::tempdir().unwrap();
    let before = arp_sysctls(netns);
    let addresses_before = netns.all_addresses();
    // Without CAP_NET_ADMIN (but euid 0) the sysctls can still be written,
    // the address cannot: everything written must be undone.
    let error = netns.block_on(|| {
        drop_thread_capabilities(&[CAP_NET_ADMIN]);
        let state_dir = state.path().to_path_buf();
        async move {
            let handle = VipHandle::new().unwrap();
            let options = RealServerOptions {
                ifaces: vec!["eth0".into()],
                force: false,
                state_dir,
            };
            realserver_on(&handle, addr("203.0.113.61"), &options)
                .await
                .unwrap_err()
        }
    });
    assert!(error.is_permission_denied(), "{error:?}");
    assert_eq!(
        error.to_string(),
        "add 203.0.113.61/32 to lo: permission denied (needs CAP_NET_ADMIN)"
    );
    assert_eq!(arp_sysctls(netns), before);
    assert_eq!(netns.all_addresses(), addresses_before);
}

#[test]
fn realserver_mode_refuses_an_address_in_use_before_changing_anything() {
    let pair = director("rsinuse");
    let netns = &pair.director;
    let state = tempfile::tempdir().unwrap();
    netns.ip(&["addr", "add", "203.0.113.62/32", "dev", "eth0"]);
    let before = arp_sysctls(netns);
    let addresses_before = netns.all_addresses();
    let error = netns.block_on(|| async {
        let handle = VipHandle::new().unwrap();
        let options = RealServerOptions {
            state_dir: state.path().to_path_buf(),
            ..RealServerOptions::default()
        };
        realserver_on(&handle, addr("203.0.113.62"), &options)
            .await
            .unwrap_err()
    });
    assert!(matches!(error, NetError::AddressInUse { .. }), "{error:?}");
    assert_eq!(arp_sysctls(netns), before);
    assert_eq!(netns.all_addresses(), addresses_before);
}

/// `ldirectord vip ...` as the binary's dispatcher will parse it.
#[derive(Debug, Parser)]
struct Vip {
    #[command(subcommand)]
    command: VipCommand,
}

fn vip_cli(netns: &Netns, args: &[&str]) -> i32 {
    let args: Vec<String> = std::iter::once("vip")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    match Vip::try_parse_from(&args) {
        Ok(parsed) => netns.block_on(|| cli::run(parsed.command)),
        Err(error) => error.exit_code(),
    }
}

#[test]
fn command_line_exit_codes() {
    let pair = director("cli");
    let netns = &pair.director;
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();

    assert_eq!(vip_cli(netns, &["status", "eth0", "203.0.113.70"]), 3);
    assert_eq!(
        vip_cli(netns, &["add", "eth0", "203.0.113.70/24", "--label", "vip"]),
        0
    );
    assert!(netns
        .addresses("eth0")
        .contains(&"203.0.113.70/24 eth0:vip".to_string()));
    assert_eq!(vip_cli(netns, &["add", "eth0", "203.0.113.70/24"]), 0);
    assert_eq!(vip_cli(netns, &["status", "eth0", "203.0.113.70"]), 0);
    assert_eq!(vip_cli(netns, &["status", "eth0", "203.0.113.70/24"]), 0);
    assert_eq!(vip_cli(netns, &["status", "eth0", "203.0.113.70/32"]), 3);
    assert_eq!(
        vip_cli(netns, &["announce", "eth0", "203.0.113.70", "--count", "1"]),
        0
    );
    // Announcing an address we do not hold would steal it: refused.
    assert_eq!(
        vip_cli(netns, &["announce", "eth0", "203.0.113.71", "--count", "1"]),
        1
    );
    assert_eq!(vip_cli(netns, &["del", "eth0", "203.0.113.70/24"]), 0);
    assert_eq!(vip_cli(netns, &["del", "eth0", "203.0.113.70/24"]), 0);
    assert_eq!(vip_cli(netns, &["status", "eth0", "203.0.113.70"]), 3);

    // Errors: 1; the interface missing under status: "not present".
    assert_eq!(vip_cli(netns, &["add", "nosuch0", "203.0.113.72"]), 1);
    assert_eq!(vip_cli(netns, &["status", "nosuch0", "203.0.113.72"]), 3);
    // Bad usage: 2.
    assert_eq!(vip_cli(netns, &["add", "eth0", "203.0.113.300"]), 2);
    assert_eq!(vip_cli(netns, &["add", "eth0", "2001:db8::1/129"]), 2);
    assert_eq!(
        vip_cli(netns, &["add", "eth0", "2001:db8::1", "--label", "web"]),
        2
    );
    assert_eq!(vip_cli(netns, &["frobnicate"]), 2);

    assert_eq!(
        vip_cli(
            netns,
            &["realserver", "on", "203.0.113.73", "--state-dir", state_dir]
        ),
        0
    );
    assert!(netns.has_address("lo", addr("203.0.113.73")));
    assert_eq!(netns.sysctl(ALL_IGNORE), 1);
    assert_eq!(
        vip_cli(
            netns,
            &[
                "realserver",
                "off",
                "203.0.113.73",
                "--state-dir",
                state_dir
            ]
        ),
        0
    );
    assert!(!netns.has_address("lo", addr("203.0.113.73")));
    assert_eq!(netns.sysctl(ALL_IGNORE), 0);
}
