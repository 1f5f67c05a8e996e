#!/bin/sh
# The guest agent of the cloud-init seed: runs the launch steps after cloud-init and
# phones each one home to the portal; once K3s is up, `k3s-portal-agent heartbeat` (the
# seed's systemd timer) sends the node's health. Settings come from agent.env.
# The guest steps and their order are those of provisioning/steps.py; the seed's bootcmd
# has already reported the first one started.
set -eu
. "${AGENT_ENV:-/etc/k3s-portal/agent.env}"
post() {
  # 409 means "wait" (an agent before its server is Ready): try again until accepted.
  # Sending a batch again is safe: the reports already applied change nothing.
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
      --data "$1" "$PHONE_HOME_URL" || echo 000)
    case "$code" in 2*) return 0 ;; 409|000|5*) sleep 2 ;; *) return 1 ;; esac
  done
}
report() {
  post "{\"token\":\"$NODE_TOKEN\",\"step\":\"$1\",\"state\":\"$2\",\"message\":\"${3:-}\",\"error_code\":\"${4:-}\"}"
}
# Reports made at the same moment ("step state" each, in order), in one request.
reports() {
  list=""
  for move in "$@"; do
    list="$list${list:+,}{\"step\":\"${move% *}\",\"state\":\"${move#* }\"}"
  done
  post "{\"token\":\"$NODE_TOKEN\",\"reports\":[$list]}"
}
fail() { report "$1" failed "$2" "${3:-}"; exit 1; }
# An image built without a K3s bundle (manage.py build_image, no --k3s-bundle) boots and
# reports every step; fetch_deps has nothing to copy and is done, launch_k3s then fails
# with its own clear code (the portal records k3s_bundle_missing).
has_bundle() { [ -x /opt/k3s/k3s ] && [ -f /opt/k3s/install.sh ]; }

# One heartbeat (provisioning/node_health.py): CPU busy since the last one (from
# /proc/stat), load, memory, disk, the k3s unit's state, and on the server the STATUS of
# every node in `k3s kubectl get nodes`.
heartbeat() {
  state=${AGENT_STATE:-/run/k3s-portal/cpu}
  mkdir -p "$(dirname "$state")"
  # shellcheck disable=SC2046 (the words of /proc/stat's cpu line)
  set -- $(head -n1 /proc/stat)
  shift
  total=0
  for ticks in "$@"; do total=$((total + ticks)); done
  idle=$(($4 + $5))
  last_total=0 last_idle=0
  [ -f "$state" ] && read -r last_total last_idle < "$state"
  echo "$total $idle" > "$state"
  cpu=$(awk -v dt=$((total - last_total)) -v di=$((idle - last_idle)) \
    'BEGIN { if (dt > 0) printf "%.1f", 100 * (dt - di) / dt; else print 0 }')
  load=$(cut -d' ' -f1 /proc/loadavg)
  mem_total=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
  mem_free=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
  disk=$(df -P / | awk 'NR == 2 { sub("%", "", $5); print $5 }')
  unit=k3s-agent
  [ "$IS_SERVER" = 1 ] && unit=k3s
  k3s_state=$(systemctl is-active "$unit" 2>/dev/null || true)
  nodes=""
  if [ "$IS_SERVER" = 1 ] && listed=$(k3s kubectl get nodes --no-headers 2>/dev/null); then
    nodes=$(echo "$listed" | awk 'NF { printf "%s{\"name\":\"%s\",\"status\":\"%s\"}", \
      (n++ ? "," : ""), $1, $2 }')
    nodes=",\"nodes\":[$nodes]"
  fi
  version=$(k3s --version 2>/dev/null | awk 'NR == 1 { print $3 }')
  reply=$(curl -s -m 10 -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data "{\"token\":\"$NODE_TOKEN\",\"load1\":$load,\"cpu_percent\":$cpu,\
\"memory_used_mib\":$((mem_total - mem_free)),\"memory_total_mib\":$mem_total,\
\"disk_used_percent\":$disk,\"k3s\":\"${k3s_state:-unknown}\",\
\"k3s_version\":\"$version\"$nodes}" "$HEARTBEAT_URL")
  echo "$reply" | tail -n 1
  # The portal may ask the server to upgrade in place (provisioning/upgrades.py).
  wanted=$(echo "$reply" | sed -n 's/.*"upgrade_to": *"\(v[0-9][0-9.]*+k3s[0-9]*\)".*/\1/p')
  [ -n "$wanted" ] && [ "$wanted" != "$version" ] && upgrade_k3s "$wanted"
  return 0
}
# K3s' own manual upgrade: its install script again with the new version (downloaded:
# the image holds its first version's bundle only) and the same flags; the datastore,
# address and disk stay. The next heartbeat reports the version it runs.
upgrade_k3s() {
  # shellcheck disable=SC2086 (K3S_ARGS is split into words on purpose, as at launch)
  INSTALL_K3S_VERSION="$1" K3S_TOKEN="$K3S_JOIN_TOKEN" sh /opt/k3s/install.sh server \
    --node-name "$NODE_NAME" ${K3S_TLS_SAN:+--tls-san "$K3S_TLS_SAN"} $K3S_ARGS || true
}
# The node is up: heartbeats from now on, every HEARTBEAT_SECONDS (the seed's timer).
ready() {
  report launch_k3s done
  systemctl daemon-reload
  systemctl enable --now k3s-portal-heartbeat.timer
  exit 0
}
if [ "${1:-}" = heartbeat ]; then
  heartbeat
  exit 0
fi

reports "cloud_init done" "fetch_deps started"
if has_bundle; then
  mkdir -p /var/lib/rancher/k3s/agent/images
  cp /opt/k3s/k3s-airgap-images-amd64.tar.zst /var/lib/rancher/k3s/agent/images/ \
    || fail fetch_deps "airgap images missing from the base image"
  install -m 0755 /opt/k3s/k3s /usr/local/bin/k3s || fail fetch_deps "k3s binary missing"
fi
reports "fetch_deps done" "launch_k3s started"
has_bundle || fail launch_k3s \
  "k3s_bundle_missing: no /opt/k3s/k3s or /opt/k3s/install.sh (image built without a K3s bundle)" \
  k3s_bundle_missing
export INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_VERSION="$K3S_VERSION" K3S_TOKEN="$K3S_JOIN_TOKEN"
# K3S_ARGS (labels, taints, the CNI's flags) is split into words on purpose: the portal
# lets no blank or quote into it (provisioning.k3s_flags).
# shellcheck disable=SC2086
if [ "$IS_SERVER" = 1 ]; then
  sh /opt/k3s/install.sh server --node-name "$NODE_NAME" ${K3S_TLS_SAN:+--tls-san "$K3S_TLS_SAN"} \
    $K3S_ARGS || fail launch_k3s "k3s server did not start"
else
  K3S_URL="$K3S_SERVER_URL" sh /opt/k3s/install.sh agent --node-name "$NODE_NAME" $K3S_ARGS \
    || fail launch_k3s "k3s agent did not start"
fi
for _ in $(seq 1 120); do
  if [ "$IS_SERVER" = 1 ]; then
    k3s kubectl get node "$NODE_NAME" 2>/dev/null | grep -q ' Ready' && ready
  else
    systemctl is-active --quiet k3s-agent && ready
  fi
  sleep 1
done
fail launch_k3s "node not Ready after 120 s"
