"""`HostNetworks`: a host's tenant networks built from Linux parts (bridge, VXLAN, a namespace
with dnsmasq and the metadata proxy), for the libvirt driver on a real host. What it built
for a network is recorded under the site's run directory, so deleting needs only the name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from provisioning.drivers.base import NetworkSpec, PermanentDriverError
from provisioning.drivers.hostnet import dhcp, processes, segment
from provisioning.drivers.hostnet.site import Site

PROJECT_ROOT = Path(__file__).resolve().parents[3]


class HostNetworks:
    def __init__(self, site: Site) -> None:
        self.site = site

    def ensure_network(self, spec: NetworkSpec) -> None:
        state = self.site.state_dir(spec.name)
        state.mkdir(parents=True, exist_ok=True)
        record = {"segment_id": spec.segment_id, "bridge": spec.bridge}
        (state / "network.json").write_text(json.dumps(record))
        segment.ensure(self.site, spec)
        dhcp.ensure(self.site, spec)
        self._ensure_proxy(spec)

    def delete_network(self, name: str) -> None:
        state = self.site.state_dir(name)
        processes.stop(state / "metadata-proxy.pid")
        dhcp.stop(self.site, name)
        try:
            record = json.loads((state / "network.json").read_text())
        except (OSError, ValueError):
            record = None
        if record is not None:
            segment.remove(self.site, name, int(record["segment_id"]), record["bridge"])
        shutil.rmtree(state, ignore_errors=True)

    def dhcp_leases(self, name: str) -> tuple[str, ...]:
        return dhcp.leases(self.site, name)

    def _ensure_proxy(self, spec: NetworkSpec) -> None:
        state = self.site.state_dir(spec.name)
        pidfile = state / "metadata-proxy.pid"
        if processes.running(pidfile) is not None:
            return
        pidfile.unlink(missing_ok=True)
        command = [
            sys.executable, "-m", "provisioning.drivers.hostnet.metadata_proxy",
            "--netns", self.site.tenant_ns(spec.name),
            "--listen", f"{segment.METADATA_ADDRESS}:80",
            "--portal", self.site.portal_url,
            "--network", spec.uuid,
            "--pid-file", str(pidfile),
        ]  # fmt: skip
        env = {**os.environ, "METADATA_PROXY_KEY": self.site.metadata_key}
        with open(state / "metadata-proxy.log", "ab") as log:
            # Its own session: it outlives the task (and the agent) that started it.
            subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        if not processes.wait_for(pidfile):
            tail = (state / "metadata-proxy.log").read_text()[-500:]
            raise PermanentDriverError("host_network", f"metadata proxy did not start: {tail}")
