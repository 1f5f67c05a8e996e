"""A throwaway lab of Linux network namespaces, driven with iproute2, and a tiny ICMP ping.

Everything the lab creates lives inside namespaces with a per-lab random suffix, so nothing
touches the machine's own interfaces and deleting the namespaces removes it all (veth pairs
die with either end). Run as `python -m tests.networking.netns ping DST SIZE TIMEOUT` (or
`get URL`, `connect HOST PORT [SOURCE]`) inside a namespace (`ip netns exec`): this machine
may have no `ping`, `curl` or `nc` binary.
"""

import json
import os
import secrets
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY = 8, 0
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2  # Linux <linux/in.h>: set DF, never fragment


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def ip(*args: str) -> str:
    return run("ip", *args)


def unavailable() -> str | None:
    """Why this machine cannot run the lab, or None: tries the namespace and VXLAN once."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    probe = f"probe-{secrets.token_hex(3)}"
    try:
        ip("netns", "add", probe)
    except (OSError, RuntimeError) as err:
        return f"`ip netns add` is not permitted here: {err}"
    try:
        ip("-n", probe, "link", "add", "vx0", "type", "vxlan", "id", "1", "dstport", "4789")
    except RuntimeError as err:
        return f"this kernel cannot create VXLAN devices: {err}"
    finally:
        ip("netns", "del", probe)
    return None


class Lab:
    """Namespaces named `<role>-<suffix>`, all deleted on exit, even after a failure."""

    def __init__(self) -> None:
        self.suffix = secrets.token_hex(3)
        self.namespaces: list[str] = []

    def __enter__(self) -> "Lab":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        errors = []
        for ns in reversed(self.namespaces):
            try:
                ip("netns", "del", ns)
            except RuntimeError as err:
                errors.append(str(err))
        self.namespaces.clear()
        if errors and exc is None:
            raise RuntimeError("; ".join(errors))

    def namespace(self, role: str) -> str:
        ns = f"{role}-{self.suffix}"
        ip("netns", "add", ns)
        self.namespaces.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")
        return ns

    @staticmethod
    def _inside(ns: str, timeout: float, *args: str) -> subprocess.CompletedProcess[str]:
        command = ["ip", "netns", "exec", ns, sys.executable, "-m", __name__, *args]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"{args[0]} from {ns}: {done.stderr.strip()}")
        return done

    @classmethod
    def ping(cls, ns: str, dst: str, size: int = 56, timeout: float = 1.0) -> bool:
        """One ICMP echo from inside `ns`, DF set: True when `dst` answered in time."""
        done = cls._inside(ns, timeout + 10, "ping", dst, str(size), str(timeout))
        return done.returncode == 0

    @classmethod
    def get(cls, ns: str, url: str) -> tuple[int, str]:
        """An HTTP GET from inside `ns`: (status, body); status 0 when nothing answered."""
        status, _, body = cls._inside(ns, 30, "get", url).stdout.partition("\n")
        return int(status), body

    @classmethod
    def connects(cls, ns: str, host: str, port: int, source: str = "") -> bool:
        """Whether a TCP connection from inside `ns` (from `source`, if given) is accepted
        within a second: False when it was refused or nothing answered."""
        args = ("connect", host, str(port), *([source] if source else []))
        return cls._inside(ns, 15, *args).returncode == 0

    @staticmethod
    def listen(ns: str, *ports: int) -> subprocess.Popen[str]:
        """TCP listeners on `ports` inside `ns` until the returned process is killed."""
        command = ["ip", "netns", "exec", ns, sys.executable, "-m", __name__, "listen"]
        process = subprocess.Popen(
            [*command, *map(str, ports)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None and process.stdout.readline() == "listening\n"
        return process

    @staticmethod
    def dhcp(ns: str, dev: str, script: Path) -> None:
        """Configure `dev` in `ns` from a DHCP server on its link (busybox udhcpc)."""
        run("ip", "netns", "exec", ns, "udhcpc", "-i", dev, "-n", "-q", "-f", "-t", "5",
            "-T", "1", "-O", "mtu", "-s", str(script))  # fmt: skip

    @staticmethod
    def neighbour(ns: str, address: str) -> str | None:
        """The MAC `ns` learned for `address` (by ARP), or None."""
        entries: list[dict[str, Any]] = json.loads(ip("-n", ns, "-j", "neigh", "show", address))
        return next((e["lladdr"] for e in entries if "lladdr" in e), None)

    @staticmethod
    def neighbour_macs(ns: str) -> set[str]:
        entries: list[dict[str, Any]] = json.loads(ip("-n", ns, "-j", "neigh", "show"))
        return {e["lladdr"] for e in entries if "lladdr" in e}

    @staticmethod
    def links(ns: str) -> set[str]:
        entries: list[dict[str, Any]] = json.loads(ip("-n", ns, "-j", "link", "show"))
        return {e["ifname"] for e in entries}

    @staticmethod
    def ports(ns: str, bridge: str) -> set[str]:
        entries: list[dict[str, Any]] = json.loads(
            ip("-n", ns, "-j", "link", "show", "master", bridge)
        )
        return {e["ifname"] for e in entries}

    @staticmethod
    def learned_macs(ns: str, bridge: str) -> set[str]:
        """Source MACs the bridge has seen frames from (its forwarding database)."""
        entries: list[dict[str, Any]] = json.loads(
            run("bridge", "-n", ns, "-j", "fdb", "show", "br", bridge)
        )
        return {e["mac"] for e in entries if "self" not in e.get("flags", [])}

    @staticmethod
    def echo_requests_received(ns: str) -> int:
        """The namespace's `Icmp: InEchos` counter (/proc/net/snmp is per namespace)."""
        snmp = ip("netns", "exec", ns, "cat", "/proc/net/snmp")
        names, values = (line.split() for line in snmp.splitlines() if line.startswith("Icmp:"))
        return int(dict(zip(names, values, strict=True))["InEchos"])


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo(dst: str, size: int, timeout: float) -> bool:
    """Send one echo request of `size` payload bytes; wait for its reply from `dst`."""
    ident = os.getpid() & 0xFFFF
    payload = bytes(size)
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, 1)
    packet = (
        struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, _checksum(header + payload), ident, 1) + payload
    )
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        sock.sendto(packet, (dst, 0))
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, (src, _) = sock.recvfrom(65535)
            except TimeoutError:
                return False
            start = (data[0] & 0x0F) * 4  # past the IP header
            kind, _, _, reply_id, _ = struct.unpack("!BBHHH", data[start : start + 8])
            if kind == ICMP_ECHO_REPLY and reply_id == ident and src == dst:
                return True
    return False


def http_get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (a test's own URL)
            return f"{answer.status}\n{answer.read().decode()}"
    except urllib.error.HTTPError as error:
        return f"{error.code}\n{error.read().decode()}"
    except OSError as error:
        return f"0\n{error}"


def connect(host: str, port: int, source: str = "") -> bool:
    try:
        socket.create_connection((host, port), 1.0, (source, 0) if source else None).close()
    except OSError:
        return False
    return True


# What a "VM" namespace runs as its DHCP client's hook: the address, MTU and default route.
UDHCPC_SCRIPT = """#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/$mask" dev "$interface"
[ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
[ -n "$router" ] && ip route add default via "${router%% *}"
exit 0
"""


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["ping", dst, size, timeout]:
            sys.exit(0 if echo(dst, int(size), float(timeout)) else 1)
        case ["get", url]:
            print(http_get(url))
        case ["connect", host, port, *source]:
            sys.exit(0 if connect(host, int(port), *source) else 1)
        case ["listen", *ports]:  # the kernel completes handshakes: no accept() needed
            servers = [socket.create_server(("0.0.0.0", int(p))) for p in ports]  # noqa: S104
            print("listening", flush=True)
            time.sleep(3600)
