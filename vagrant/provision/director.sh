#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A director: Pacemaker, corosync, pcs, ipvsadm, and the ldirectord config
# /etc/ha.d/web.cf (the VIP balanced over every real server, checked with
# GET /health). The cluster itself is set up by cluster.sh.
set -euo pipefail
: "${LAB_VIP:?}" "${LAB_REALS:?}" "${LAB_HACLUSTER_PASSWORD:?}"

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends \
    pacemaker corosync pcs resource-agents ipvsadm >/dev/null

mkdir -p /etc/ha.d
{
    echo "# Written by vagrant/provision/director.sh"
    echo "checktimeout=3"
    echo "checkinterval=2"
    echo "quiescent=no"
    echo
    echo "virtual=$LAB_VIP:80"
    for entry in $LAB_REALS; do
        echo "	real=${entry#*=}:80 gate"
    done
    echo "	service=http"
    echo "	checktype=negotiate"
    echo "	request=\"health\""
    echo "	receive=\"ok\""
    echo "	scheduler=rr"
} > /etc/ha.d/web.cf
ldirectord --check /etc/ha.d/web.cf

# The cluster runs the director; systemd must not.
systemctl disable --now ldirectord.service 2>/dev/null || true

# Debian starts a default one-node cluster on install: replace it.
echo "hacluster:$LAB_HACLUSTER_PASSWORD" | chpasswd
systemctl enable --now pcsd
pcs cluster destroy --force >/dev/null 2>&1 || true
