"""Where a host's tenant-network plumbing lives, and how commands reach it.

A `Site` is one hypervisor's view: the network namespace its bridges and VXLAN devices sit in
(None: the namespace this process runs in, as on a real host) and a prefix for the tenant
namespaces it creates (namespaces are machine-wide, so two sites on one machine, as in the
network-namespace tests, need distinct prefixes). Commands are iproute2 and friends, run as
subprocesses; a failure becomes a `DriverError` with the command's own message.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioning.drivers.base import PermanentDriverError, TransientDriverError

COMMAND_TIMEOUT = 30


@dataclass(frozen=True)
class Site:
    run_dir: Path
    # Where the metadata proxies send guests' requests, and the key they sign them with.
    portal_url: str
    metadata_key: str = field(repr=False)
    netns: str | None = None
    prefix: str = ""

    def tenant_ns(self, network: str) -> str:
        return f"{self.prefix}{network}"

    def state_dir(self, network: str) -> Path:
        return self.run_dir / network

    # --- commands -----------------------------------------------------------------------

    def in_host(self, *argv: str) -> list[str]:
        """`argv` run in the host's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else list(argv)

    def ip(self, *args: str) -> str:
        return run(*(["ip", "-n", self.netns] if self.netns else ["ip"]), *args)

    def bridge(self, *args: str) -> str:
        return run(*(["bridge", "-n", self.netns] if self.netns else ["bridge"]), *args)

    def delete_link(self, link: str) -> None:
        """Gone afterwards; a veth pair's end may go by itself meanwhile (its peer's
        namespace was deleted), so "no such device" is done too."""
        if link not in self.links():
            return
        try:
            self.ip("link", "del", link)
        except PermanentDriverError:
            if link in self.links():
                raise

    def links(self) -> dict[str, dict[str, Any]]:
        """The host's links by name, with their details (`ip -d -j link`)."""
        return {link["ifname"]: link for link in json.loads(self.ip("-d", "-j", "link", "show"))}

    def namespaces(self) -> set[str]:
        return {ns["name"] for ns in json.loads(run("ip", "-j", "netns", "list") or "[]")}


def run(*argv: str, stdin: str | None = None) -> str:
    """`argv`'s output; `stdin` is written to it (a rule set for nft -f - or iptables-restore)."""
    try:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )
    except FileNotFoundError as err:
        raise PermanentDriverError("host_tool_missing", f"{argv[0]} is not installed") from err
    except subprocess.TimeoutExpired as err:
        raise TransientDriverError("host_busy", f"{' '.join(argv)} timed out") from err
    if done.returncode != 0:
        message = f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}"
        raise PermanentDriverError("host_network", message[:500])
    return done.stdout


def in_ns(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]
