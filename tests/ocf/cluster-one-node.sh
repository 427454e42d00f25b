#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One-node corosync + Pacemaker cluster in a private network namespace, with
# the group  vip (ocf:heartbeat:IPaddr2) + director (ocf:ldirector:ldirectord)
# driving the REAL ldirectord against the REAL kernel's IPVS table. Needs a
# kernel with IPVS (run by tests/ocf_agent.rs inside the VM), root, and the
# agent installed as /usr/lib/ocf/resource.d/ldirector/ldirectord.
#
# Asserts: both resources start and the namespace's IPVS table holds the
# virtual service; a kill -9 of the daemon is detected by the monitor and
# recovered (new daemon, table still there); target-role=Stopped removes the
# VIP, the table entries and the pid file. Prints PASS at the end.
#
# Environment: LDIRECTORD_BIN (the daemon binary, required), W (work dir).
set -euo pipefail
: "${LDIRECTORD_BIN:?set LDIRECTORD_BIN to the ldirectord binary}"
NS=ocfci-$$
W=${W:-/tmp/ocf-cluster-$$}
mkdir -p "$W"
X=(ip netns exec "$NS")
VIP=198.51.100.100
CF=$W/cluster-$$.cf
PIDFILE=/var/run/ldirectord.${CF##*/}.pid
WAIT=300s
t() { echo "[$(date +%T.%3N)] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

cleanup() {
    set +e
    if [ -f "$W/pacemakerd.pid" ]; then
        kill -TERM "$(cat "$W/pacemakerd.pid")" 2>/dev/null
        for _ in $(seq 600); do kill -0 "$(cat "$W/pacemakerd.pid")" 2>/dev/null || break; sleep 0.2; done
    fi
    if [ -f "$W/corosync.pid" ]; then
        kill -TERM "$(cat "$W/corosync.pid")" 2>/dev/null
        for _ in $(seq 300); do kill -0 "$(cat "$W/corosync.pid")" 2>/dev/null || break; sleep 0.2; done
    fi
    # A daemon Pacemaker failed to stop: by its pid file, never by name.
    if [ -f "$PIDFILE" ]; then
        kill -TERM "$(cat "$PIDFILE")" 2>/dev/null
        sleep 2
        rm -f "$PIDFILE"
    fi
    ip netns del "$NS" 2>/dev/null
    rm -f "$W"/*.pid
}
trap cleanup EXIT
dump() {
    echo "--- crm_mon ---"; "${X[@]}" crm_mon -1 -f 2>&1 || true
    echo "--- ipvsadm ---"; "${X[@]}" ipvsadm -Ln 2>&1 || true
    echo "--- pacemaker.log (agent lines) ---"
    grep -E 'ldirectord|director|IPaddr2' "$W/pacemaker.log" 2>/dev/null | tail -n 40 || true
}
trap 'dump' ERR

daemon_pid() { [ -f "$PIDFILE" ] && cat "$PIDFILE"; }
# Alive and not a zombie (the VM's PID 1 does not reap orphans).
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
wait_for() { # SECONDS COMMAND...: until COMMAND succeeds, at most SECONDS
    # A deadline, not a count: under emulation one try can take seconds.
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
table() { "${X[@]}" ipvsadm -Ln; }
has_service() { table | grep -q "TCP  $VIP:80 "; }

cat > "$CF" <<CF
checktimeout=3
checkinterval=2
quiescent=no

virtual=$VIP:80
	real=10.11.1.1:80 gate
	real=10.11.1.2:80 gate
	service=http
	scheduler=wrr
CF
"$LDIRECTORD_BIN" --check "$CF" >/dev/null

t "netns"
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add veth0 type veth peer name veth1
ip -n "$NS" link set veth0 up
ip -n "$NS" link set veth1 up
ip -n "$NS" addr add 198.51.100.1/24 dev veth0

t "seed the CIB offline (dc-deadtime=2s avoids the 20 s first election)"
# Written directly (cibadmin/crm_attribute/crmsh take seconds each under
# software emulation); crm_verify checks it. dc-deadtime=2s avoids the 20 s
# wait of a first election.
CIB_file=$W/cib.xml
cat >"$CIB_file" <<CIB
<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="opt-stonith-enabled" name="stonith-enabled" value="false"/>
        <nvpair id="opt-no-quorum-policy" name="no-quorum-policy" value="ignore"/>
        <nvpair id="opt-dc-deadtime" name="dc-deadtime" value="2s"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources>
      <group id="g_lvs">
        <primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2">
          <instance_attributes id="vip-params">
            <nvpair id="vip-ip" name="ip" value="$VIP"/>
            <nvpair id="vip-cidr" name="cidr_netmask" value="24"/>
            <nvpair id="vip-nic" name="nic" value="veth0"/>
          </instance_attributes>
          <operations>
            <op id="vip-start" name="start" interval="0s" timeout="120s"/>
            <op id="vip-stop" name="stop" interval="0s" timeout="120s"/>
            <op id="vip-monitor" name="monitor" interval="10s" timeout="120s"/>
          </operations>
        </primitive>
        <primitive id="director" class="ocf" provider="ldirector" type="ldirectord">
          <instance_attributes id="director-params">
            <nvpair id="director-configfile" name="configfile" value="$CF"/>
            <nvpair id="director-ldirectord" name="ldirectord" value="$LDIRECTORD_BIN"/>
          </instance_attributes>
          <operations>
            <op id="director-start" name="start" interval="0s" timeout="300s"/>
            <op id="director-stop" name="stop" interval="0s" timeout="300s"/>
            <op id="director-monitor" name="monitor" interval="10s" timeout="300s"/>
          </operations>
        </primitive>
      </group>
    </resources>
    <constraints/>
  </configuration>
  <status/>
</cib>
CIB
crm_verify -x "$CIB_file"
# A guest may have an empty /var/log.
[ -d /var/log/pacemaker ] || install -d -o hacluster -g haclient -m 770 /var/log/pacemaker
rm -rf /var/lib/pacemaker/cib/*
install -o hacluster -g haclient -m 600 "$W/cib.xml" /var/lib/pacemaker/cib/cib.xml

cat > "$W/corosync.conf" <<COROSYNC
totem {
    version: 2
    cluster_name: ocfci
    transport: knet
    crypto_cipher: none
    crypto_hash: none
}
logging {
    to_stderr: yes
    to_logfile: no
    to_syslog: no
    timestamp: on
}
quorum {
    provider: corosync_votequorum
}
nodelist {
    node {
        name: node1
        nodeid: 1
        ring0_addr: 127.0.0.1
    }
}
COROSYNC
corosync -t -c "$W/corosync.conf" >/dev/null

t "corosync"
setsid "${X[@]}" corosync -f -c "$W/corosync.conf" > "$W/corosync.log" 2>&1 &
echo $! > "$W/corosync.pid"
wait_for 60 "${X[@]}" corosync-quorumtool -s >/dev/null 2>&1 || fail "corosync not quorate"

t "pacemakerd"
PCMK_logfile=$W/pacemaker.log setsid "${X[@]}" pacemakerd > "$W/pacemakerd.out" 2>&1 &
echo $! > "$W/pacemakerd.pid"
online() { "${X[@]}" crm_mon -1 2>/dev/null | grep -q 'Online: \[ node1 \]'; }
wait_for 180 online || fail "node1 never came online"
"${X[@]}" crm_resource --wait --timeout=$WAIT
t "cluster settled"
"${X[@]}" crm_mon -1 | sed -n '/Active/,$p'
xml=$("${X[@]}" crm_mon -1 --output-as=xml)
grep -q '<resource id="vip" [^>]*role="Started"' <<<"$xml" || fail "vip not started"
grep -q '<resource id="director" [^>]*role="Started"' <<<"$xml" || fail "director not started"
ip -n "$NS" -br addr show veth0 | grep -q "$VIP/24" || fail "VIP not on veth0"
has_service || fail "IPVS table lacks $VIP:80: $(table)"
table
first=$(daemon_pid) || fail "no pid file $PIDFILE"
alive "$first" || fail "daemon $first not alive"

t "fault injection: kill -9 the daemon (pid $first)"
kill -9 "$first"
failed_once() { "${X[@]}" crm_mon -1 -f | grep -q 'director:.*fail-count=1'; }
wait_for 120 failed_once || fail "the monitor did not notice the dead daemon"
"${X[@]}" crm_resource --wait --timeout=$WAIT
t "recovered"
"${X[@]}" crm_mon -1 -f | sed -n '/Active/,$p'
second=$(daemon_pid) || fail "no pid file after recovery"
{ [ "$second" != "$first" ] && alive "$second"; } || fail "no new daemon after recovery"
has_service || fail "IPVS table lacks $VIP:80 after recovery: $(table)"
"${X[@]}" crm_resource --cleanup -r director >/dev/null
"${X[@]}" crm_resource --wait --timeout=$WAIT

t "stop the group"
"${X[@]}" crm_resource -r g_lvs --meta -p target-role -v Stopped
"${X[@]}" crm_resource --wait --timeout=$WAIT
! ip -n "$NS" -br addr show veth0 | grep -q "$VIP" || fail "VIP still on veth0"
! has_service || fail "IPVS table still holds $VIP:80: $(table)"
[ ! -e "$PIDFILE" ] || fail "pid file $PIDFILE left behind"
alive "$second" && fail "daemon $second still running"
t "PASS"
