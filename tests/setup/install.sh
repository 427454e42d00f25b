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
    # mail, ftp, news and sip checker tests (tests/support_mail)
    openssl
    exim4-daemon-light
    dovecot-imapd
    dovecot-pop3d
    vsftpd
    libpam-pwdfile
    kamailio
    inn2
    # http/https/http_proxy and dns checker tests, --probe (tests/support_checks)
    nginx-light
    dnsmasq-base
    perl
    # the oracle for the config corpus: tests/config/regen-verdicts.sh runs the
    # real ldirectord 4.12 (which refuses to start without ipvsadm); unshare
    # comes from util-linux
    ldirectord
    ipvsadm
    util-linux
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
