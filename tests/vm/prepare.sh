#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Prepares the real-kernel VM used by the IPVS test suites. Idempotent; run as
# root on Debian 12. Prints the path of the kernel image (vmlinuz) on stdout;
# everything else goes to stderr.
#
# What it sets up (see tests/vm/README.md):
#   - Debian packages: qemu-system-x86, busybox-static, kmod, ipvsadm,
#     python3-venv;
#   - virtme-ng (pinned) in its own virtualenv, /opt/ldirector-vm/venv, so the
#     system Python (PEP 668 "externally managed" on Debian 12) is untouched;
#   - Debian's stock kernel, unpacked (not installed) under
#     /opt/ldirector-vm/<version>/, with its module index built by depmod.
#     /opt, not /var/tmp: virtme-ng's guest does not see the host's /var/tmp.
#
# Environment:
#   LDIRECTOR_VM_DIR      cache root (default /opt/ldirector-vm)
#   LDIRECTOR_VM_KERNEL   kernel version to use, e.g. 6.1.0-56-amd64
#                         (default: what linux-image-amd64 depends on)
set -euo pipefail

readonly VIRTME_NG_VERSION=1.42
readonly vm_dir=${LDIRECTOR_VM_DIR:-/opt/ldirector-vm}

log() { echo "tests/vm/prepare.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, /opt)"

export DEBIAN_FRONTEND=noninteractive
apt_install() {
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "$@" >&2
}

packages=(qemu-system-x86 busybox-static kmod ipvsadm python3-venv)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=900 update -qq >&2
    apt_install "${missing[@]}"
fi

# One preparer at a time: two test runs starting together must not unpack
# the kernel into the same folder at once.
mkdir -p "$vm_dir"
exec 9>"$vm_dir/.prepare.lock"
flock 9

# virtme-ng, pinned, in a private virtualenv built from Debian's python3.
venv=$vm_dir/venv
if ! "$venv/bin/vng" --version 2>/dev/null | grep -qx "virtme-ng $VIRTME_NG_VERSION"; then
    log "installing virtme-ng $VIRTME_NG_VERSION into $venv"
    /usr/bin/python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check \
        "virtme-ng==$VIRTME_NG_VERSION" >&2
    "$venv/bin/vng" --version >&2 || die "virtme-ng did not install into $venv"
fi

# Debian's kernel: the version linux-image-amd64 currently depends on.
kver=${LDIRECTOR_VM_KERNEL:-}
if [ -z "$kver" ]; then
    kver=$(apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: linux-image-\([0-9][^ ]*-amd64\)$/\1/p' | head -n1)
    if [ -z "$kver" ]; then
        apt-get -o DPkg::Lock::Timeout=900 update -qq >&2
        kver=$(apt-cache depends linux-image-amd64 |
            sed -n 's/^ *Depends: linux-image-\([0-9][^ ]*-amd64\)$/\1/p' | head -n1)
    fi
    [ -n "$kver" ] || die "cannot find the kernel version: 'apt-cache depends linux-image-amd64' names no linux-image-<version>-amd64"
fi

kdir=$vm_dir/$kver
vmlinuz=$kdir/boot/vmlinuz-$kver
if [ ! -f "$kdir/.complete" ]; then
    log "fetching linux-image-$kver into $kdir"
    # Unpack into a private temporary folder and rename it into place, so a
    # concurrent or interrupted run never leaves a half-unpacked kernel.
    work=$(mktemp -d "$vm_dir/.unpack.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && apt-get -o DPkg::Lock::Timeout=900 download -q "linux-image-$kver" >&2) ||
        die "apt-get download linux-image-$kver failed"
    dpkg -x "$work"/linux-image-"$kver"_*.deb "$work/root"
    depmod -b "$work/root" "$kver" ||
        die "depmod -b $work/root $kver failed"
    [ -f "$work/root/boot/vmlinuz-$kver" ] || die "the package has no boot/vmlinuz-$kver"
    # Modules this project's suites load; fail here rather than in the guest.
    for m in ip_vs ip_vs_rr ip_vs_wlc ip_vs_sh ip_vs_mh veth 9p; do
        modinfo -b "$work/root" -k "$kver" "$m" >/dev/null 2>&1 ||
            die "kernel $kver has no module $m"
    done
    touch "$work/root/.complete"
    rm -rf "$kdir"
    mv "$work/root" "$kdir"
    rm -rf "$work"
    trap - EXIT
fi

echo "$vmlinuz"
