#!/usr/bin/env bash
# Installs the host tools of the end-to-end test that are missing, with
# apt-get (CI machines start empty). `deno task e2e` runs it before Deno
# starts: the e2e permission set names qemu-img and qemu-system-x86_64,
# and Deno resolves those names when it starts, so they must exist by then.
# Progress goes to stderr; the apt-get log to LOG_DIR/host-tools.log.
#
#   tests/e2e/host_tools.sh [LOG_DIR]      (default: .cache/e2e)

set -euo pipefail

log() { printf 'host_tools: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

LOG_DIR=${1:-.cache/e2e}

missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v qemu-img >/dev/null || missing+=(qemu-utils)
command -v mke2fs >/dev/null && command -v debugfs >/dev/null || missing+=(e2fsprogs)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null && command -v ssh-keyscan >/dev/null ||
  missing+=(openssh-client)
command -v dnsmasq >/dev/null || missing+=(dnsmasq-base)
command -v ip >/dev/null || missing+=(iproute2)
command -v flock >/dev/null || missing+=(util-linux)
# For --libvirt: libvirtd and virsh (the run starts its own libvirtd in its namespace).
command -v libvirtd >/dev/null || missing+=(libvirt-daemon-system)
command -v virsh >/dev/null || missing+=(libvirt-clients)
# libvirtd's network driver keeps its per-network files (br-mds.macs) here,
# and fails `virsh start` when it is missing, as on a host where libvirtd
# never ran as a service (packages installed with their services held back).
mkdir -p /var/lib/libvirt/dnsmasq
((${#missing[@]} == 0)) && exit 0

[[ $(id -u) == 0 ]] || die "missing host tools (${missing[*]}); installing them needs root"
command -v apt-get >/dev/null || die "missing host tools (${missing[*]}) and no apt-get to install them"
log "installing host tools: ${missing[*]}"
mkdir -p "$LOG_DIR"
export DEBIAN_FRONTEND=noninteractive
# Packages must not start their services (libvirtd, its default network) on
# the host: only the test's own libvirtd, in its namespace, runs.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt_log=$LOG_DIR/host-tools.log
{ apt-get install -y "${missing[@]}" || { apt-get update && apt-get install -y "${missing[@]}"; }; } >"$apt_log" 2>&1 ||
  { tail -n 30 "$apt_log" >&2; die "apt-get install ${missing[*]} failed (log: $apt_log)"; }
