#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A real server in LVS direct-routing mode: nginx answering with its own
# name, the VIP on lo with ARP for it turned off (`ldirectord vip realserver
# on`), made persistent across reboots by a small unit.
set -euo pipefail
: "${LAB_VIP:?}"

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends nginx >/dev/null
printf 'served by %s\n' "$(hostname)" > /var/www/html/index.html
printf 'ok\n' > /var/www/html/health
systemctl enable --now nginx

cat > /etc/systemd/system/ldirector-realserver.service <<UNIT
[Unit]
Description=LVS-DR real-server mode for VIP $LAB_VIP
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/ldirectord vip realserver on $LAB_VIP
ExecStop=/usr/sbin/ldirectord vip realserver off $LAB_VIP

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now ldirector-realserver.service
ip -br addr show lo
