#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs everything the test suite needs on a fresh Debian 12 machine.
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" != 0 ]; then
    echo "tests/setup/install.sh: must run as root (apt-get, network namespaces)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# No package may start its service: tests start servers themselves, on
# loopback or in their own namespaces.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d

packages=(
    iproute2
    # negotiate checker tests (tests/checks_negotiate.rs, tests/negotiate)
    openssl
    exim4-daemon-light
    dovecot-imapd
    dovecot-pop3d
    vsftpd
    kamailio
    slapd
    mariadb-server
    postgresql
    freeradius
    # http/https/http_proxy and dns checker tests, --probe (tests/support_checks)
    nginx-light
    dnsmasq-base
    perl
    # the real IPVS kernel in a VM (tests/vm/, tests/ipvs_kernel.rs)
    qemu-system-x86
    busybox-static
    kmod
    ipvsadm
    python3-venv
    python3-pip
    # OCF agent, Pacemaker cluster, packaging and Vagrant lab tests
    # (tests/ocf_agent.rs, tests/packaging.rs)
    dash
    resource-agents
    pacemaker
    pacemaker-cli-utils
    corosync
    crmsh
    libxml2-utils
    shellcheck
    make
    systemd
    vagrant
    # the oracle for the config corpus: tests/config/regen-verdicts.sh runs the
    # real ldirectord 4.12 (which refuses to start without ipvsadm); unshare
    # comes from util-linux
    ldirectord
    util-linux
    # the load-balancer lab in the VM (tests/daemon_lab.rs): client traffic
    curl
    # the peer in benches/keepalived_compare.rs (runs in the VM)
    keepalived
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}"
fi

# inn2 (nnrpd for the nntp checker tests): its postinst aborts when the
# host name has no domain ("the FQDN of the server contains invalid
# characters"). Give INN a domain then and finish its configuration; the
# tests run nnrpd with an inn.conf of their own anyway.
if ! dpkg-query -W -f='${Status}' inn2 2>/dev/null | grep -q "ok installed"; then
    apt-get update -qq
    if ! apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends inn2; then
        sed -i 's/^#domain:.*$/domain: localdomain/' /etc/news/inn.conf
        dpkg --configure inn2
    fi
fi

# Debian's kernel (which has IPVS) and virtme-ng, for the VM suites.
bash tests/vm/prepare.sh >/dev/null
