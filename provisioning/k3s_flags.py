"""What K3s starts with beyond joining: the pool's node labels and taints, the cluster's CNI.

The rules are Kubernetes' own (a label is `[prefix/]name=value`, a taint
`key[=value]:Effect`), checked before launch so a bad one is a 400 naming its pool, never a
node that fails to register. The values reach the guest agent as one word-split variable,
which is safe because every accepted character is a letter, digit or one of `-_./=:`.
"""

import re

from django.db import models

NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
LABEL_KEY = re.compile(rf"^({PREFIX}/)?{NAME}$")
LABEL_VALUE = re.compile(rf"^({NAME})?$")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# The node-restriction admission plugin refuses a kubelet's own labels under these.
RESERVED = ("kubernetes.io", "k8s.io")
MAX_LABELS = 20
MAX_TAINTS = 10


class Cni(models.TextChoices):
    FLANNEL = "flannel", "Flannel (K3s' own)"
    CILIUM = "cilium", "Cilium (installed by K3s' Helm controller)"


def label_problem(labels: dict[str, str]) -> str | None:
    if len(labels) > MAX_LABELS:
        return f"At most {MAX_LABELS} labels."
    for key, value in labels.items():
        prefix = key.rpartition("/")[0]
        if not LABEL_KEY.match(key) or len(prefix) > 253:
            return f"{key!r} is not a label key: [prefix/]name, name of at most 63 characters."
        if any(prefix == r or prefix.endswith("." + r) for r in RESERVED):
            return f"{key!r}: the {prefix} prefix is reserved for Kubernetes."
        if not LABEL_VALUE.match(value):
            return f"{key}={value!r}: a value has at most 63 letters, digits, '-', '_' or '.'."
    return None


def taint_problem(taints: list[str]) -> str | None:
    if len(taints) > MAX_TAINTS:
        return f"At most {MAX_TAINTS} taints."
    for taint in taints:
        pair, _, effect = taint.rpartition(":")
        key, _, value = pair.partition("=")
        if effect not in TAINT_EFFECTS:
            return f"{taint!r}: key[=value]:Effect, Effect one of {', '.join(TAINT_EFFECTS)}."
        if not LABEL_KEY.match(key) or not LABEL_VALUE.match(value):
            return f"{taint!r}: its key and value follow the rules of labels."
    return None


def labels_from_text(text: str) -> dict[str, str]:
    """The page's `key=value, key2=value2` (a bare key is an empty value)."""
    pairs = (item.strip().partition("=") for item in text.split(","))
    return {key.strip(): value.strip() for key, _, value in pairs if key.strip()}


def taints_from_text(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def k3s_args(labels: dict[str, str], taints: list[str], cni: str, is_server: bool) -> str:
    """The install script's extra arguments for one node."""
    args = [f"--node-label={key}={value}" for key, value in sorted(labels.items())]
    args += [f"--node-taint={taint}" for taint in taints]
    if is_server and cni == Cni.CILIUM:
        # Cilium replaces flannel and K3s' network policy controller.
        args += ["--flannel-backend=none", "--disable-network-policy"]
    return " ".join(args)


# K3s applies manifests under server/manifests; its Helm controller installs the chart.
CILIUM_MANIFEST = """\
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: cilium
  namespace: kube-system
spec:
  repo: https://helm.cilium.io/
  chart: cilium
  targetNamespace: kube-system
  bootstrap: true
  valuesContent: |-
    operator:
      replicas: 1
    ipam:
      operator:
        clusterPoolIPv4PodCIDRList: ["10.42.0.0/16"]
"""
