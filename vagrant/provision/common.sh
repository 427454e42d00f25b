#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every lab machine: packages, /etc/hosts, and ldirector from the synced
# repository (built on the host with `cargo build --release`).
set -euo pipefail
: "${LAB_DIRECTORS:?}" "${LAB_REALS:?}"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends make iproute2 curl >/dev/null

for entry in $LAB_DIRECTORS $LAB_REALS; do
    name=${entry%%=*}
    ip=${entry#*=}
    sed -i "/[[:space:]]$name\$/d" /etc/hosts
    printf '%s\t%s\n' "$ip" "$name" >> /etc/hosts
done

if [ ! -x /ldirector/target/release/ldirectord ]; then
    echo "ldirector is not built: run 'cargo build --release' in the repository root, then 'vagrant provision'" >&2
    exit 1
fi
make -C /ldirector install
ldirectord --version
