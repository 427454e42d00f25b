#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest half of tests/ipvs_ls_kernel.rs: runs as root inside the VM
# (tests/vm/run.sh), builds a varied IPVS table with ipvsadm, sends a little
# local traffic so counters and connections are not all zero, then runs
# ipvsadm and ipvs-ls side by side in every list mode and writes both outputs
# to RESULTS. The host side compares them byte for byte.
#
#   guest.sh RESULTS IPVS_LS
#
# RESULTS/modes lists one compared mode per line: NAME ATTEMPTS. For each NAME,
# NAME.before / NAME.ours / NAME.after hold ipvsadm's output, ours, and
# ipvsadm's again (counters, rates and connection timers move while the
# commands run: ours must equal one of the two ipvsadm snapshots around it),
# with .rc files for the exit statuses. RESULTS/checks lists other checks as
# NAME STATUS, with NAME.out / NAME.err.
#
# Every step must succeed: a failed ipvsadm call ends the script with status
# 1 and says which (the host test then fails).
set -u
results=$1
mkdir -p "$results"
# Run ipvs-ls from the guest's memory, not over 9p.
guest_bin=$(mktemp -d)
cp "$2" "$guest_bin/ipvs-ls" || { echo "guest.sh: cannot copy $2" >&2; exit 1; }
ipvs_ls=$guest_bin/ipvs-ls
: > "$results/modes"
: > "$results/checks"

die() { echo "guest.sh: $*" >&2; exit 1; }
run() { "$@" || die "failed: $*"; }

# --- Errors before IPVS exists: unload it, and hide modprobe. -------------
for m in $(lsmod | awk '$1 ~ /^ip_vs_/ { print $1 }'); do
    run modprobe -r "$m"
done
run modprobe -r ip_vs
[ ! -e /proc/net/ip_vs ] || die "ip_vs still loaded after modprobe -r"
check() { # NAME COMMAND...: records the status, stdout and stderr
    local name=$1; shift
    "$@" > "$results/$name.out" 2> "$results/$name.err"
    echo "$name $?" >> "$results/checks"
}
check no_ipvs env PATH=/nonexistent "$ipvs_ls"
# With modprobe on PATH, ipvs-ls loads ip_vs itself.
check loads_ipvs "$ipvs_ls"
[ -e /proc/net/ip_vs ] || die "ipvs-ls did not load ip_vs"

# --- Addresses: a dummy link carries every VIP and real subnet so local
# traffic is routed and IPVS's LOCAL_OUT hook schedules it. ----------------
run modprobe dummy
run ip link add ipvsls0 type dummy
# The sync daemons need a multicast-capable link.
run ip link set ipvsls0 multicast on up
for a in 10.1.255.254/16 10.2.255.254/16 198.51.100.254/24 203.0.113.254/24; do
    run ip addr add "$a" dev ipvsls0
done
run ip -6 addr add 2001:db8:ffff::fe/32 dev ipvsls0 nodad
run modprobe ip_vs_pe_sip

ipvsadm=(ipvsadm)
A() { run "${ipvsadm[@]}" -A "$@"; }
a() { run "${ipvsadm[@]}" -a "$@"; }

# --- The table. -----------------------------------------------------------
A -t 10.1.0.1:80 -s wlc
a -t 10.1.0.1:80 -r 10.2.0.1:8080 -m -w 3
a -t 10.1.0.1:80 -r 10.2.0.2:8080 -m -w 0 -x 100 -y 10
a -t 10.1.0.1:80 -r 10.2.0.3 -g -w 65535
a -t 10.1.0.1:80 -r 10.2.0.4 -i --tun-type gue --tun-port 6080 --tun-remcsum
A -u 10.1.0.1:53 -s sh -b sh-fallback,sh-port -o -p 60
a -u 10.1.0.1:53 -r 10.2.0.5:53 -m
a -u 10.1.0.1:53 -r 10.2.0.6:5353 -m -x 5 -y 2
A --sctp-service 10.1.0.2:3868 -s mh -b mh-port
a --sctp-service 10.1.0.2:3868 -r 10.2.0.7:3868 -m
A -t 198.51.100.10:443 -s rr -p 300 -M 255.255.255.0
a -t 198.51.100.10:443 -r 10.2.0.8 -i
a -t 198.51.100.10:443 -r 10.2.0.9 -i --tun-type gue --tun-port 6081 --tun-csum
a -t 198.51.100.10:443 -r 10.2.0.10 -i --tun-type gre --tun-nocsum
a -t 198.51.100.10:443 -r 10.2.0.11 -i --tun-type gre --tun-csum
A -t 203.0.113.5:80 -s lc
A -t 10.1.0.3:0 -s dh -p
A -t 10.1.0.4:8443 -s rr -b flag-1,flag-3 -p 3600 -M 255.255.0.0
a -t 10.1.0.4:8443 -r 10.2.0.1:8443 -m -w 7 -x 1000 -y 0
# Marks 1, 0x60000001 and 0xc0000001 compare in a cycle under libipvs's
# wrapping comparator: ipvsadm's order then depends on its merge sort.
A -f 1 -s lblc -p 60
A -f 1610612737 -s lblcr
A -f 3221225473 -s fo
a -f 3221225473 -r 10.2.0.12 -g
A -f 8 -6 -s wrr -p 120 -M 64
a -f 8 -6 -r 2001:db8:1::1 -g
A -t [2001:db8::1]:80 -s sed -p 600 -M 96
# Second words 0x0, 0x60000000, 0xc0000000: the same cycle for destinations.
a -t [2001:db8::1]:80 -r [2001:db8::10]:80 -m
a -t [2001:db8::1]:80 -r [2001:db8:6000::10]:80 -m
a -t [2001:db8::1]:80 -r [2001:db8:c000::10]:80 -m -w 4
# An IPv4 real in an IPv6 service (tunnels allow mixed families).
a -t [2001:db8::1]:80 -r 10.2.0.13 -i --tun-type ipip
A -u 10.1.0.5:5060 -s rr -p 30 --pe sip
a -u 10.1.0.5:5060 -r 10.2.0.14:5060 -m
A -u [2001:db8::1]:5060 -s rr -p 30 --pe sip
a -u [2001:db8::1]:5060 -r [2001:db8:1::5]:5060 -m
A -t [2001:db8::2]:443 -s nq
A -u [2001:db8::3]:53 -s ovf -o
a -u [2001:db8::3]:53 -r [2001:db8:1::6]:53 -m -w 2
A --sctp-service [2001:db8::4]:5060 -s mh -b mh-fallback
run "${ipvsadm[@]}" --set 901 121 301

# --- A little traffic: the reals do not exist, so TCP connections stay in
# SYN_RECV, which is all the counters and the connection table need. -------
for _ in 1 2 3; do
    timeout 1 bash -c 'exec 3<>/dev/tcp/10.1.0.1/80' 2> /dev/null
    timeout 1 bash -c 'exec 3<>/dev/tcp/2001:db8::1/80' 2> /dev/null
    echo query > /dev/udp/10.1.0.1/53
    echo query > /dev/udp/2001:db8::3/53
done
# SIP requests, so the sip persistence engine may keep a Call-ID (the kernel
# drops what it cannot parse, with EPERM to the sender: not an error here).
sip_request() {
    printf 'OPTIONS sip:probe@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:5060\r\nFrom: <sip:t@test>;tag=1\r\nTo: <sip:probe@test>\r\nCall-ID: ipvsls-call-%s@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' "$1" "$1" "$2"
}
sip_request 10.1.0.5 1 > /dev/udp/10.1.0.5/5060 2> /dev/null
sip_request '[2001:db8::1]' 2 > /dev/udp/2001:db8::1/5060 2> /dev/null

# --- Side by side. ----------------------------------------------------------
# mode NAME "IPVSADM ARGS" "IPVS-LS ARGS" (words split on spaces)
mode() {
    local name=$1 theirs=$2 ours=$3 attempt
    for attempt in 1 2 3 4 5; do
        # shellcheck disable=SC2086
        "${ipvsadm[@]}" $theirs > "$results/$name.before" 2> "$results/$name.before.err"
        echo $? > "$results/$name.before.rc"
        # shellcheck disable=SC2086
        "$ipvs_ls" $ours > "$results/$name.ours" 2> "$results/$name.ours.err"
        echo $? > "$results/$name.ours.rc"
        # Under emulation every run costs: a third one only when needed.
        if cmp -s "$results/$name.ours" "$results/$name.before"; then
            cp "$results/$name.before" "$results/$name.after"
            cp "$results/$name.before.rc" "$results/$name.after.rc"
            cp "$results/$name.before.err" "$results/$name.after.err"
            break
        fi
        # shellcheck disable=SC2086
        "${ipvsadm[@]}" $theirs > "$results/$name.after" 2> "$results/$name.after.err"
        echo $? > "$results/$name.after.rc"
        if cmp -s "$results/$name.ours" "$results/$name.after" ||
            cmp -s "$results/$name.before" "$results/$name.after"; then
            break
        fi
    done
    echo "$name $attempt" >> "$results/modes"
}
mode default "-Ln" ""
mode default_L "-Ln" "-Ln"
mode stats "-Ln --stats" "--stats"
mode rate "-Ln --rate" "--rate"
mode thresholds "-Ln --thresholds" "--thresholds"
mode persistent_conn "-Ln --persistent-conn" "--persistent-conn"
mode tun_info "-Ln --tun-info" "--tun-info"
mode exact "-Ln --exact" "--exact"
mode stats_exact "-Ln --stats --exact" "--stats --exact"
mode rate_exact "-Ln --rate --exact" "--rate --exact"
mode stats_rate "-Ln --stats --rate" "--stats --rate"
mode rate_thresholds "-Ln --rate --thresholds" "--rate --thresholds"
mode thresholds_pconn_tun "-Ln --thresholds --persistent-conn --tun-info" "--thresholds --persistent-conn --tun-info"
mode pconn_tun "-Ln --persistent-conn --tun-info" "--persistent-conn --tun-info"
mode nosort "-Ln --nosort" "--nosort"
mode service_tcp "-Ln -t 10.1.0.1:80" "-t 10.1.0.1:80"
mode service_tcp_stats "-Ln -t 10.1.0.1:80 --stats --exact" "-t 10.1.0.1:80 --stats --exact"
mode service_udp_rate "-Ln -u 10.1.0.1:53 --rate" "-u 10.1.0.1:53 --rate"
mode service_sctp "-Ln --sctp-service 10.1.0.2:3868 --thresholds" "--sctp-service 10.1.0.2:3868 --thresholds"
mode service_fwmark "-Ln -f 3221225473" "-f 3221225473"
mode service_fwmark6 "-Ln -f 8 -6 --persistent-conn" "-f 8 -6 --persistent-conn"
mode service_ipv6 "-Ln -t [2001:db8::1]:80 --tun-info" "-t [2001:db8::1]:80 --tun-info"
mode service_sip "-Ln -u [2001:db8::1]:5060" "-u [2001:db8::1]:5060"
mode connections "-Lnc" "-c"
mode connections_pe "-Lnc --persistent-conn" "-c --persistent-conn"
mode timeout "-Ln --timeout" "--timeout"

# Names: ipvsadm without -n against --resolve, with every address of the
# table in a private /etc/hosts (a bind mount in a throw-away mount
# namespace, so nothing asks DNS and the host's file is never touched).
cat > "$results/hosts" <<'HOSTS'
127.0.0.1 localhost
10.1.0.1 a-rather-long-virtual-service-name.example.test
10.1.0.2 sctp-vip.test
10.1.0.3 persistent-vip.test
10.1.0.4 flags-vip.test
10.1.255.254 director.test
10.2.0.1 real-1-with-a-long-name.example.test
10.2.0.2 real-2.test
10.2.0.3 real-3.test
10.2.0.4 real-4.test
10.2.0.5 real-5.test
10.2.0.6 real-6.test
10.2.0.7 real-7.test
10.2.0.8 real-8.test
10.2.0.9 real-9.test
10.2.0.10 real-10.test
10.2.0.11 real-11.test
10.2.0.12 real-12.test
10.2.0.13 real-13.test
10.2.0.14 real-14.test
10.1.0.5 sip-vip.test
198.51.100.10 tls-vip.test
203.0.113.5 lc-vip.test
2001:db8::1 v6-vip-1.test
2001:db8::2 v6-vip-2.test
2001:db8::3 v6-vip-3.test
2001:db8::4 v6-vip-4.test
2001:db8::10 v6-real-a.test
2001:db8:6000::10 v6-real-b.test
2001:db8:c000::10 v6-real-c.test
2001:db8:1::1 v6-real-1.test
2001:db8:1::5 v6-real-5.test
2001:db8:1::6 v6-real-6.test
2001:db8:ffff::fe director6.test
HOSTS
printf 'hosts: files\nservices: files\n' > "$results/nsswitch.conf"
export -f mode
export results ipvs_ls
unshare --mount bash -c '
    set -u
    mount --bind "$results/hosts" /etc/hosts || exit 1
    mount --bind "$results/nsswitch.conf" /etc/nsswitch.conf || exit 1
    ipvsadm=(ipvsadm)
    mode resolve "-L" "--resolve"
    mode resolve_stats "-L --stats" "--resolve --stats"
    mode resolve_service "-L -t 10.1.0.1:80 --tun-info" "--resolve -t 10.1.0.1:80 --tun-info"
    mode resolve_connections "-Lc" "--resolve -c"
' || die "the --resolve comparisons could not run"

# --- Other behaviour. -------------------------------------------------------
check json "$ipvs_ls" --json

# Sync daemons: the kernel refuses them while a service has a real of the
# other address family, so that real goes first.
run "${ipvsadm[@]}" -d -t [2001:db8::1]:80 -r 10.2.0.13
run "${ipvsadm[@]}" --start-daemon master --mcast-interface ipvsls0 --syncid 7
run "${ipvsadm[@]}" --start-daemon backup --mcast-interface ipvsls0 --syncid 9 \
    --mcast-group 239.1.2.3 --mcast-port 8849 --mcast-ttl 2 --sync-maxlen 1400
mode daemon "-Ln --daemon" "--daemon"
check json_daemons "$ipvs_ls" --json
check json_service "$ipvs_ls" --json -t 10.1.0.1:80
check missing_service "$ipvs_ls" -t 10.9.9.9:1
check health_no_director "$ipvs_ls" --health --run-dir "$results/no-director"

# --- A big table: 1,000 services x 10 reals, restored in one go. Compared
# like the others, and both listings timed (a rough figure under emulation;
# the host test prints it, never asserts it). ---------------------------------
run "${ipvsadm[@]}" -C
{
    for s in $(seq 0 999); do
        vip="10.3.$((s / 250)).$((s % 250 + 1))"
        proto=-t
        [ $((s % 3)) = 1 ] && proto=-u
        echo "-A $proto $vip:80 -s wrr"
        for r in $(seq 1 10); do
            echo "-a $proto $vip:80 -r 10.4.$((s / 25)).$(((s % 25) * 10 + r)):8080 -m -w $r"
        done
    done
} > "$results/big.rules"
run "${ipvsadm[@]}" -R < "$results/big.rules"
mode big "-Ln" ""
mode big_stats "-Ln --stats --exact" "--stats --exact"
elapsed_ms() { # COMMAND...: wall time of 5 runs, in ms
    local start end
    start=$(date +%s%N)
    for _ in 1 2 3 4 5; do "$@" > /dev/null || die "failed: $*"; done
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}
{
    echo "ipvsadm_Ln_5_runs_ms $(elapsed_ms "${ipvsadm[@]}" -Ln)"
    echo "ipvs_ls_5_runs_ms $(elapsed_ms "$ipvs_ls")"
} > "$results/bench"

install -m 0755 "$ipvs_ls" "$results/ipvs-ls-copy"
# Not root: a copy nobody may run from the results folder.
check not_root setpriv --reuid=65534 --regid=65534 --clear-groups "$results/ipvs-ls-copy"
rm -f "$results/ipvs-ls-copy"
exit 0
