#!/usr/bin/env bash
# Put the K3s bundle into an image's root, or mark the image "no K3s".
#
#   stage-k3s.sh ROOT [K3S_BUNDLE_DIR]
#
# The bundle is what the operator downloads from K3s's releases: k3s,
# k3s-airgap-images-amd64.tar.zst, install.sh; they go to ROOT/opt/k3s/. Without one,
# ROOT/etc/k3s-portal/no-k3s says so, and the guest agent fails launch_k3s with
# k3s_bundle_missing (it looks for /opt/k3s/k3s and /opt/k3s/install.sh).
set -euo pipefail
ROOT=${1:?usage: stage-k3s.sh ROOT [K3S_BUNDLE_DIR]}
BUNDLE=${2:-}

install -d "$ROOT/etc/k3s-portal"
if [ -n "$BUNDLE" ]; then
  for name in k3s k3s-airgap-images-amd64.tar.zst install.sh; do
    [ -f "$BUNDLE/$name" ] || { echo "$BUNDLE is not a K3s bundle: no $name" >&2; exit 2; }
  done
  install -d "$ROOT/opt/k3s"
  install -m 0755 "$BUNDLE/k3s" "$ROOT/opt/k3s/k3s"
  install -m 0644 "$BUNDLE/k3s-airgap-images-amd64.tar.zst" "$ROOT/opt/k3s/"
  install -m 0755 "$BUNDLE/install.sh" "$ROOT/opt/k3s/install.sh"
  rm -f "$ROOT/etc/k3s-portal/no-k3s"
else
  echo "built without a K3s bundle: launch_k3s fails with k3s_bundle_missing" \
    > "$ROOT/etc/k3s-portal/no-k3s"
fi
