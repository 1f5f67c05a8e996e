#!/usr/bin/env bash
# Build the portal's base image: a bootable Debian bookworm qcow2 (BIOS, extlinux, serial
# console), with cloud-init (NoCloud only), curl and an optional K3s bundle under /opt/k3s.
#
#   build-image.sh OUT.qcow2 [K3S_BUNDLE_DIR]
#
# Env: SIZE (virtual disk, default 3G), MIRROR (default http://deb.debian.org/debian).
# Needs root, loop devices, mmdebstrap, extlinux, syslinux-common, qemu-utils, fdisk.
# Without a bundle the image carries /etc/k3s-portal/no-k3s and the guest agent fails
# launch_k3s with k3s_bundle_missing.
set -euo pipefail
OUT=${1:?usage: build-image.sh OUT.qcow2 [K3S_BUNDLE_DIR]}
BUNDLE=${2:-}
SIZE=${SIZE:-3G}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)

work=$(mktemp -d "${TMPDIR:-/var/tmp}/k3s-portal-image.XXXXXX")
raw=$work/disk.raw
mnt=$work/mnt
loop=""
cleanup() {
  set +e
  mountpoint -q "$mnt" && umount -R "$mnt"
  [ -n "$loop" ] && losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt"

truncate -s "$SIZE" "$raw"
# One bootable MBR partition from sector 2048, mounted through a loop device at that
# offset (no partition scanning, which containers often lack).
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$raw"
offset=$((2048 * 512))
loop=$(losetup --show -f -o "$offset" --sizelimit "$(( $(stat -c %s "$raw") - offset ))" "$raw")
# Only the ext4 features extlinux 6.04 reads.
mkfs.ext4 -q -L rootfs -O ^64bit,^metadata_csum,^metadata_csum_seed,^orphan_file "$loop"
mount "$loop" "$mnt"
rmdir "$mnt/lost+found"

packages=(
  systemd-sysv udev kmod iproute2 ifupdown isc-dhcp-client netbase
  linux-image-cloud-amd64 initramfs-tools cloud-init cloud-guest-utils curl ca-certificates
)
# Boot time: NoCloud only (no datasource probing), no recommends, cloud-init runs only the
# modules the portal's seed uses (provisioning/guest_seed.py: bootcmd, write_files, the
# hostname, runcmd; growpart/resizefs for a node disk bigger than the image), and the
# units a short-lived K3s node never needs are masked; no fsck of the root at boot (a
# node's disk is a fresh clone; ext4's journal still replays at mount).
mmdebstrap --variant=minbase --mode=root \
  --aptopt='Apt::Install-Recommends "false"' \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --customize-hook='echo k3s-portal-base > "$1/etc/hostname"' \
  --customize-hook='echo "LABEL=rootfs / ext4 errors=remount-ro,noatime 0 0" > "$1/etc/fstab"' \
  --customize-hook='printf "auto lo\niface lo inet loopback\nsource-directory /etc/network/interfaces.d\n" > "$1/etc/network/interfaces"' \
  --customize-hook='printf "datasource_list: [ NoCloud, None ]\n" > "$1/etc/cloud/cloud.cfg.d/90-k3s-portal.cfg"' \
  --customize-hook="cp '$here/cloud-modules.cfg' \"\$1/etc/cloud/cloud.cfg.d/91-k3s-portal-modules.cfg\"" \
  --customize-hook='for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer dpkg-db-backup.timer systemd-timesyncd.service cloud-init-hotplugd.socket; do ln -sf /dev/null "$1/etc/systemd/system/$u"; done' \
  --customize-hook=': > "$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id"' \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
  bookworm "$mnt" "$MIRROR"

bash "$here/stage-k3s.sh" "$mnt" "$BUNDLE"

kernel=$(cd "$mnt/boot" && ls vmlinuz-* | sort -V | tail -1)
initrd=initrd.img-${kernel#vmlinuz-}
[ -f "$mnt/boot/$initrd" ] || { echo "no initrd in the image" >&2; exit 1; }
mkdir -p "$mnt/boot/extlinux"
cat > "$mnt/boot/extlinux/extlinux.conf" <<CONF
DEFAULT debian
PROMPT 0
TIMEOUT 0
SERIAL 0 115200
LABEL debian
  LINUX /boot/$kernel
  INITRD /boot/$initrd
  APPEND root=LABEL=rootfs ro console=tty0 console=ttyS0,115200n8 quiet
CONF
extlinux --install "$mnt/boot/extlinux" >/dev/null
umount "$mnt"
losetup -d "$loop"; loop=""
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none

mkdir -p "$(dirname "$OUT")"
qemu-img convert -q -c -f raw -O qcow2 "$raw" "$OUT.partial"
mv "$OUT.partial" "$OUT"
echo "kernel $kernel"
