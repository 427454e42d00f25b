// SPDX-License-Identifier: GPL-2.0-or-later
//! ipvsadm's listing order, reproduced exactly.
//!
//! ipvsadm sorts services and destinations with glibc's `qsort` and
//! comparators that subtract unsigned 32-bit values and read the difference
//! as a signed `int`. The difference wraps: `10.0.0.1` sorts *after*
//! `203.0.113.5` (0x0a000001 - 0xcb007105 is positive as an `int`), and a
//! firewall mark above 2^31 sorts before every address service. Such a
//! comparator is not a total order, so the result depends on the algorithm
//! and on the input order. To print the same table in the same order we
//! therefore use the same input (the kernel's dump order) and the same
//! algorithm: glibc 2.36's `qsort` is a top-down merge sort (`msort.c`;
//! its quicksort fallback only runs when the buffer would exceed a quarter
//! of physical memory). Rust's `sort_by` would give a different order, and
//! may panic on a comparator that is not a total order.

use std::net::IpAddr;

use crate::ipvs::{AddressFamily, DestinationEntry, ServiceEntry, ServiceKey};

/// `AF_INET` / `AF_INET6` as ipvsadm compares them.
fn af_number(af: AddressFamily) -> i32 {
    match af {
        AddressFamily::Inet => libc::AF_INET,
        AddressFamily::Inet6 => libc::AF_INET6,
    }
}

/// An address as four host-order words of `union nf_inet_addr` (IPv4 in the
/// first word, the rest zero, as the kernel sends it).
fn address_words(addr: &IpAddr) -> [u32; 4] {
    match addr {
        IpAddr::V4(a) => [u32::from(*a), 0, 0, 0],
        IpAddr::V6(a) => {
            let o = a.octets();
            let word = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            [word(0), word(4), word(8), word(12)]
        }
    }
}

/// `ntohl(a) - ntohl(b)` stored in an `int`.
fn wrapping_difference(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// libipvs's address comparison: all four words when the *first* operand
/// is IPv6, else only the first word.
fn compare_addresses(first_af: AddressFamily, a: &IpAddr, b: &IpAddr) -> i32 {
    let (wa, wb) = (address_words(a), address_words(b));
    match first_af {
        AddressFamily::Inet6 => wa
            .iter()
            .zip(wb.iter())
            .map(|(x, y)| wrapping_difference(*x, *y))
            .find(|r| *r != 0)
            .unwrap_or(0),
        AddressFamily::Inet => wrapping_difference(wa[0], wb[0]),
    }
}

/// The fields of a service that `ipvs_cmp_services` reads.
struct ServiceSortKey {
    fwmark: u32,
    af: AddressFamily,
    protocol: i32,
    addr: IpAddr,
    port: u16,
}

impl ServiceSortKey {
    fn of(key: &ServiceKey) -> Self {
        match *key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => Self {
                fwmark: 0,
                af: AddressFamily::of(&addr),
                protocol: i32::from(protocol.number()),
                addr,
                port,
            },
            // The kernel stores TCP and an all-zero address for
            // firewall-mark services.
            ServiceKey::Fwmark { af, mark } => Self {
                fwmark: mark,
                af,
                protocol: libc::IPPROTO_TCP,
                addr: match af {
                    AddressFamily::Inet => IpAddr::from([0u8; 4]),
                    AddressFamily::Inet6 => IpAddr::from([0u8; 16]),
                },
                port: 0,
            },
        }
    }
}

/// `ipvs_cmp_services` from libipvs, wrapping arithmetic included.
pub fn compare_services(a: &ServiceKey, b: &ServiceKey) -> i32 {
    let (a, b) = (ServiceSortKey::of(a), ServiceSortKey::of(b));
    let r = wrapping_difference(a.fwmark, b.fwmark);
    if r != 0 {
        return r;
    }
    let r = af_number(a.af) - af_number(b.af);
    if r != 0 {
        return r;
    }
    let r = a.protocol - b.protocol;
    if r != 0 {
        return r;
    }
    let r = compare_addresses(a.af, &a.addr, &b.addr);
    if r != 0 {
        return r;
    }
    i32::from(a.port) - i32::from(b.port)
}

/// `ipvs_cmp_dests` from libipvs.
pub fn compare_destinations(a: &DestinationEntry, b: &DestinationEntry) -> i32 {
    let (a, b) = (&a.dest, &b.dest);
    let r = compare_addresses(AddressFamily::of(&a.addr), &a.addr, &b.addr);
    if r != 0 {
        return r;
    }
    i32::from(a.port) - i32::from(b.port)
}

/// Sorts services (and the destinations of each) as `ipvsadm -L` does.
pub fn sort_like_ipvsadm(services: &mut Vec<ServiceEntry>) {
    glibc_merge_sort(services, |a, b| {
        compare_services(&a.service.key, &b.service.key)
    });
    for service in services {
        sort_destinations_like_ipvsadm(&mut service.destinations);
    }
}

/// Sorts one service's destinations as `ipvsadm -L` does.
pub fn sort_destinations_like_ipvsadm(destinations: &mut Vec<DestinationEntry>) {
    glibc_merge_sort(destinations, compare_destinations);
}

/// glibc's `msort_with_tmp`: split at `n / 2`, sort both halves, merge
/// taking from the left run while `compare(left, right) <= 0`. Works on
/// indices so the entries themselves move once.
pub fn glibc_merge_sort<T>(items: &mut Vec<T>, compare: impl Fn(&T, &T) -> i32) {
    if items.len() < 2 {
        return;
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    let mut scratch = Vec::with_capacity(items.len());
    merge_sort_indices(&mut order, &mut scratch, &|a, b| {
        compare(&items[a], &items[b])
    });
    let mut slots: Vec<Option<T>> = std::mem::take(items).into_iter().map(Some).collect();
    items.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

fn merge_sort_indices(
    run: &mut [usize],
    scratch: &mut Vec<usize>,
    compare: &dyn Fn(usize, usize) -> i32,
) {
    let n = run.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    merge_sort_indices(&mut run[..n1], scratch, compare);
    merge_sort_indices(&mut run[n1..], scratch, compare);
    scratch.clear();
    let (mut left, mut right) = (0, n1);
    while left < n1 && right < n {
        if compare(run[left], run[right]) <= 0 {
            scratch.push(run[left]);
            left += 1;
        } else {
            scratch.push(run[right]);
            right += 1;
        }
    }
    // What is left of the right run is already in place.
    scratch.extend_from_slice(&run[left..n1]);
    run[..scratch.len()].copy_from_slice(scratch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::Protocol;

    fn tcp(addr: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: addr.parse().unwrap(),
            port,
        }
    }

    fn fwm(mark: u32) -> ServiceKey {
        ServiceKey::Fwmark {
            af: AddressFamily::Inet,
            mark,
        }
    }

    #[test]
    fn differences_wrap_like_a_c_int() {
        // 0x0a010001 - 0xcb007105 wraps to a positive int.
        assert!(compare_services(&tcp("10.1.0.1", 80), &tcp("203.0.113.5", 80)) > 0);
        assert!(compare_services(&tcp("10.1.0.1", 80), &tcp("10.1.0.2", 80)) < 0);
        assert!(compare_services(&tcp("10.1.0.1", 80), &tcp("10.1.0.1", 443)) < 0);
        // A mark above 2^31 sorts before address services (mark 0).
        assert!(compare_services(&fwm(0x8000_0002), &tcp("10.1.0.1", 80)) < 0);
        assert!(compare_services(&fwm(1), &tcp("10.1.0.1", 80)) > 0);
    }

    /// The order `ipvsadm -Ln` printed for these services in the VM
    /// (kernel 6.1, ipvsadm 1.31); tests/ipvs_ls_kernel.rs compares whole
    /// listings live.
    #[test]
    fn reproduces_an_order_printed_by_ipvsadm() {
        let dump = vec![
            tcp("10.1.0.1", 80),
            tcp("198.51.100.10", 443),
            tcp("203.0.113.5", 80),
            fwm(1),
            fwm(0x8000_0002),
        ];
        let mut keys = dump.clone();
        glibc_merge_sort(&mut keys, compare_services);
        assert_eq!(
            keys,
            vec![
                fwm(0x8000_0002),
                tcp("198.51.100.10", 443),
                tcp("203.0.113.5", 80),
                tcp("10.1.0.1", 80),
                fwm(1),
            ]
        );
    }

    /// Words 0x0, 0x6000_0000 and 0xc000_0000 compare in a cycle, so the
    /// result depends on the input order, as it does in ipvsadm.
    #[test]
    fn cyclic_comparisons_follow_the_merge_order() {
        let (a, b, c) = (fwm(1), fwm(0x6000_0001), fwm(0xc000_0001));
        assert!(compare_services(&a, &b) < 0);
        assert!(compare_services(&b, &c) < 0);
        assert!(compare_services(&c, &a) < 0);
        let mut forward = vec![a, b, c];
        glibc_merge_sort(&mut forward, compare_services);
        assert_eq!(forward, vec![a, b, c]);
        // [c] + sorted [b, a] = [c] + [a, b]; then c <= a.
        let mut backward = vec![c, b, a];
        glibc_merge_sort(&mut backward, compare_services);
        assert_eq!(backward, vec![c, a, b]);
    }

    #[test]
    fn merge_sort_is_stable_and_sorts_a_total_order() {
        let mut pairs: Vec<(i32, usize)> = [5, 3, 5, 1, 3, 9, 0, 5]
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, i))
            .collect();
        glibc_merge_sort(&mut pairs, |a, b| a.0 - b.0);
        assert_eq!(
            pairs,
            vec![
                (0, 6),
                (1, 3),
                (3, 1),
                (3, 4),
                (5, 0),
                (5, 2),
                (5, 7),
                (9, 5)
            ]
        );
    }
}
