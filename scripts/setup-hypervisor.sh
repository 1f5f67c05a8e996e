#!/usr/bin/env bash
# Make this Debian machine a hypervisor for the portal: libvirtd and virtlogd running, and
# /dev/kvm as udev would leave it (group kvm, 0660). Without udev (containers, CI) the
# device stays root-only; libvirt then finds the QEMU user cannot use KVM while its cached
# QEMU capabilities say it can, throws the cache away and probes QEMU again on every call
# (seen here: 24 s per `virsh capabilities`, 98 s per domain definition).
# Packages: see .ci/run (libvirt-daemon-system, qemu-system-x86, dnsmasq-base, nftables, ...).
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "setup-hypervisor.sh needs root" >&2; exit 1; }
if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi
# Firewalls (nwfilter) filter bridged guest traffic through iptables: the bridge must hand
# it over. Egress NAT needs forwarding.
if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
fi
sysctl -qw net.ipv4.ip_forward=1
pgrep -x virtlogd >/dev/null || virtlogd -d
pgrep -x libvirtd >/dev/null || libvirtd -d
for _ in $(seq 1 40); do
  virsh -q -c qemu:///system version >/dev/null 2>&1 && exit 0
  sleep 0.25
done
echo "libvirtd does not answer on qemu:///system" >&2
exit 1
