#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs on the last director once both are provisioned: creates the
# two-node cluster and the group  vip (IPaddr2) + director (ldirectord).
set -euo pipefail
: "${LAB_VIP:?}" "${LAB_DIRECTORS:?}" "${LAB_HACLUSTER_PASSWORD:?}"

nodes=()
for entry in $LAB_DIRECTORS; do
    nodes+=("${entry%%=*}" "addr=${entry#*=}")
done

pcs host auth "${nodes[@]}" -u hacluster -p "$LAB_HACLUSTER_PASSWORD"
pcs cluster setup ldirector-lab "${nodes[@]}" --force
pcs cluster start --all --wait=120
pcs cluster enable --all
# A lab has no fencing device. Production clusters need fencing.
pcs property set stonith-enabled=false
pcs property set no-quorum-policy=ignore

# The interface that carries the lab network (eth1 on most boxes).
my_ip=$(getent hosts "$(hostname)" | awk '{ print $1; exit }')
nic=$(ip -o -4 addr show | awk -v ip="$my_ip" '{ split($4, a, "/"); if (a[1] == ip) { print $2; exit } }')
[ -n "$nic" ] || { echo "no interface carries $my_ip" >&2; exit 1; }

pcs resource create vip ocf:heartbeat:IPaddr2 ip="$LAB_VIP" cidr_netmask=24 nic="$nic" \
    op monitor interval=10s --group g_lvs
pcs resource create director ocf:ldirector:ldirectord configfile=/etc/ha.d/web.cf \
    op monitor interval=10s timeout=30s op monitor interval=60s timeout=30s OCF_CHECK_LEVEL=10 \
    --group g_lvs
crm_resource --wait --timeout=120s
pcs status
ipvsadm -Ln
