#!/usr/bin/env bash
# Debian packages the project needs: installs the missing ones when run as root,
# otherwise names them and stops. Usage: system-deps.sh [extra packages...]
set -euo pipefail
wanted=(libvirt-dev pkg-config libvirt0 "$@")
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages with a daemon (prometheus, libvirt) must not start it: the project starts
  # what it needs itself (scripts/setup-hypervisor.sh); promtool is all CI wants.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$guard" && chmod +x "$guard"
    trap 'rm -f "$guard"' EXIT
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "Missing Debian packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
