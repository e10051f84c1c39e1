#!/usr/bin/env bash
# Builds a Debian guest of the end-to-end test (bookworm or trixie), or finds
# it in the cache: a plain base image with Debian's cloud-init and openssh-server, the
# Debian cloud kernel and its initrd. Nothing in it knows about mdserver:
# cloud-init gets its configuration from the metadata service at boot.
#
#   tests/e2e/build_image.sh SUITE [CACHE_DIR]   (SUITE bookworm or trixie; default .cache/e2e)
#
# The image lives in CACHE_DIR/image-<suite>-<key>/ (vmlinuz, initrd.img,
# disk.raw, manifest.json); <key> hashes the suite, the package list and
# BUILD_VERSION, so the image is rebuilt only when one of them changes.
# Both suites get the same packages: ifupdown and isc-dhcp-client, so that
# cloud-init renders /etc/network/interfaces.d (on trixie its fallback asks
# for DHCPv6 there, `iface … inet6 dhcp`). And net-tools: cloud-init's
# ifupdown renderer adds a static configuration's routes, its default route
# among them, with `route add` (net-tools), so without it a guest that takes
# the config drive's static address gets no default route (measured: trixie,
# "Network is unreachable" for every post to the host). The last line on stdout is
# that folder; progress goes to stderr. Needs root (debootstrap, chroot).
#
# Steps (measured: 2–4 minutes on a fresh cache):
#   1. host tools: installed with apt-get when missing (host_tools.sh; CI
#      machines are new);
#   2. debootstrap --variant=minbase, then apt-get install inside the chroot
#      (debootstrap --include=cloud-init cannot resolve the virtual packages
#      python3-cryptography needs);
#   3. mke2fs -d ROOTFS: an ext4 disk image without loop devices or mounts.

set -euo pipefail

# Bump when anything below changes the image other than the package list.
BUILD_VERSION=7
MIRROR=${E2E_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DISK_SIZE=3G
PACKAGES=(
  systemd-sysv udev dbus
  linux-image-cloud-amd64 initramfs-tools
  ifupdown isc-dhcp-client net-tools iproute2 netbase e2fsprogs
  cloud-init openssh-server sudo locales
)

log() { printf 'build_image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

SUITE=${1:-}
[[ $SUITE == bookworm || $SUITE == trixie ]] || die "usage: build_image.sh bookworm|trixie [CACHE_DIR]"
CACHE_DIR=${2:-.cache/e2e}
mkdir -p "$CACHE_DIR"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)

KEY=$(printf '%s\n' "version=$BUILD_VERSION" "suite=$SUITE" "disk=$DISK_SIZE" "${PACKAGES[@]}" |
  sha256sum | cut -c1-16)
IMAGE_DIR=$CACHE_DIR/image-$SUITE-$KEY

if [[ -f $IMAGE_DIR/manifest.json ]]; then
  log "cached: $IMAGE_DIR"
  printf '%s\n' "$IMAGE_DIR"
  exit 0
fi

[[ $(id -u) == 0 ]] || die "building the image needs root (debootstrap, chroot)"

# One build at a time; a second caller waits and then finds the cache.
exec 9>"$CACHE_DIR/build-$SUITE.lock"
flock 9
if [[ -f $IMAGE_DIR/manifest.json ]]; then
  log "cached: $IMAGE_DIR"
  printf '%s\n' "$IMAGE_DIR"
  exit 0
fi

"$(dirname "${BASH_SOURCE[0]}")/host_tools.sh" "$CACHE_DIR"

WORK=$(mktemp -d "$CACHE_DIR/build-$SUITE-$KEY.XXXXXX")
ROOTFS=$WORK/rootfs
MOUNTS=()
cleanup() {
  local status=$?
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
  rm -rf "$WORK"
  ((status == 0)) || log "failed (exit $status); nothing cached"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
log "debootstrap $SUITE (minbase) from $MIRROR"
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
  { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }

mount -t proc proc "$ROOTFS/proc"
MOUNTS+=("$ROOTFS/proc")
mount -t sysfs sysfs "$ROOTFS/sys"
MOUNTS+=("$ROOTFS/sys")
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
# No daemon starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"

# Before the kernel is installed, so that its initrd checks the root file
# system: initramfs-tools cannot probe the type of LABEL=root in a chroot.
printf 'LABEL=root / ext4 rw,discard,errors=remount-ro 0 1\n' >"$ROOTFS/etc/fstab"
mkdir -p "$ROOTFS/etc/initramfs-tools/conf.d"
printf 'FSTYPE=ext4\n' >"$ROOTFS/etc/initramfs-tools/conf.d/rootfs-type"

log "apt-get install ${PACKAGES[*]}"
in_root() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }
{
  in_root apt-get update &&
    in_root apt-get install -y --no-install-recommends "${PACKAGES[@]}"
} >"$WORK/apt.log" 2>&1 || { tail -n 40 "$WORK/apt.log" >&2; die "apt-get install in the chroot failed"; }

log "configuring the base image"
# What a Debian cloud image has: DHCP configuration written by cloud-init
# into interfaces.d, a locale.
printf 'debian\n' >"$ROOTFS/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$ROOTFS/etc/hosts"
printf 'source /etc/network/interfaces.d/*\n' >"$ROOTFS/etc/network/interfaces"
mkdir -p "$ROOTFS/etc/network/interfaces.d"
# networking.service brings the interfaces up (ifup -a) before cloud-init's
# network stage. On a new instance that stage renders the datasource's
# network configuration and, by default, runs `ifup <nic>` again; ifup then
# says "interface … already configured" on stderr, which cloud-init 23.x
# and later log as a WARNING: a recoverable error, so every first boot
# through a network datasource (NoCloud over HTTP, Ec2) would end "degraded
# done". Without activation the configuration is still written, and
# networking.service applies it at the next boot.
mkdir -p "$ROOTFS/etc/cloud/cloud.cfg.d"
printf '%s\n' "# ifupdown has brought the interfaces up already (networking.service)." \
  "disable_network_activation: true" >"$ROOTFS/etc/cloud/cloud.cfg.d/90_ifupdown-activation.cfg"
sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' "$ROOTFS/etc/locale.gen"
in_root locale-gen >"$WORK/locale.log" 2>&1 || { cat "$WORK/locale.log" >&2; die "locale-gen failed"; }
printf 'LANG=C.UTF-8\n' >"$ROOTFS/etc/default/locale"
# Per-instance state is made at first boot: host keys by cloud-init, the
# machine id by systemd.
rm -f "$ROOTFS"/etc/ssh/ssh_host_*
: >"$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"
rm -f "$ROOTFS/usr/sbin/policy-rc.d"
: >"$ROOTFS/etc/resolv.conf"
in_root apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old

kernel=$(ls "$ROOTFS"/boot/vmlinuz-* | sort -V | tail -n 1)
initrd=$(ls "$ROOTFS"/boot/initrd.img-* | sort -V | tail -n 1)
[[ -f $kernel && -f $initrd ]] || die "no kernel or initrd in $ROOTFS/boot"
cloud_init_version=$(in_root dpkg-query -W -f '${Version}' cloud-init)
openssh_version=$(in_root dpkg-query -W -f '${Version}' openssh-server)

for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount "${MOUNTS[$i]}"; done
MOUNTS=()

OUT=$WORK/image
mkdir -p "$OUT"
cp "$kernel" "$OUT/vmlinuz"
cp "$initrd" "$OUT/initrd.img"
log "mke2fs -d (disk $DISK_SIZE)"
truncate -s "$DISK_SIZE" "$OUT/disk.raw"
mke2fs -q -t ext4 -d "$ROOTFS" -L root "$OUT/disk.raw" || die "mke2fs failed"

packages_json=$(printf '"%s",' "${PACKAGES[@]}")
cat >"$OUT/manifest.json" <<EOF
{
  "key": "$KEY",
  "buildVersion": $BUILD_VERSION,
  "suite": "$SUITE",
  "packages": [${packages_json%,}],
  "kernel": "$(basename "$kernel")",
  "cloudInit": "$cloud_init_version",
  "openssh": "$openssh_version",
  "kernelFile": "vmlinuz",
  "initrdFile": "initrd.img",
  "diskFile": "disk.raw",
  "rootDevice": "/dev/vda",
  "defaultUser": "debian",
  "buildSeconds": $((SECONDS - started)),
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
rm -rf "$IMAGE_DIR"
mv "$OUT" "$IMAGE_DIR"
# Older images of this suite are dead weight once the key has changed (and
# those named image-<key>, from before the suite was part of the name).
for old in "$CACHE_DIR"/image-"$SUITE"-* "$CACHE_DIR"/image-????????????????; do
  [[ -e $old && $old != "$IMAGE_DIR" ]] && rm -rf "$old"
done
log "built $IMAGE_DIR in $((SECONDS - started)) s (cloud-init $cloud_init_version)"
printf '%s\n' "$IMAGE_DIR"
