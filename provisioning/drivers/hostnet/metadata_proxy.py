"""The metadata proxy of one tenant namespace: it listens on 169.254.169.254:80 inside the
namespace and forwards guests' seed and phone-home requests to the portal, from the host's
own namespace (guests need no route to the portal), adding which network and address asked,
signed with a key only the portal and its host agents hold. The portal then serves a node's
seed only to that node (`provisioning.guest_views`).

Run by the host agent as `python -m provisioning.drivers.hostnet.metadata_proxy`; the key
comes in the environment (METADATA_PROXY_KEY), never on the command line. No Django here.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import hmac
import os
import socket
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NETWORK_HEADER = "X-Metadata-Network"
ADDRESS_HEADER = "X-Metadata-Address"
SIGNATURE_HEADER = "X-Metadata-Signature"
# Only what a guest needs: its seed documents and its reports.
FORWARDED_PREFIXES = ("/guest/", "/api/v1/guest/")
CLONE_NEWNET = 0x40000000
UPSTREAM_TIMEOUT = 30


def signature(key: str, network: str, address: str, path: str) -> str:
    message = f"{network}\n{address}\n{path}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def listen_in(netns: str, address: str, port: int) -> socket.socket:
    """A listening socket inside namespace `netns`; this thread then returns to its own."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{netns}") as target:
        if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {netns}")
        try:
            sock = socket.create_server((address, port), backlog=64)
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    return sock


class Proxy(BaseHTTPRequestHandler):
    server: ProxyServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._forward(self.rfile.read(length))

    def _forward(self, body: bytes | None) -> None:
        path = self.path
        if not path.startswith(FORWARDED_PREFIXES):
            self._answer(404, b"not a metadata path\n", "text/plain")
            return
        address = self.client_address[0]
        headers = {
            NETWORK_HEADER: self.server.network,
            ADDRESS_HEADER: address,
            SIGNATURE_HEADER: signature(self.server.key, self.server.network, address, path),
        }
        if self.headers.get("Content-Type"):
            headers["Content-Type"] = self.headers["Content-Type"]
        request = urllib.request.Request(  # noqa: S310 (the portal's own URL)
            self.server.portal + path, data=body, headers=headers, method=self.command
        )
        try:
            with urllib.request.urlopen(request, timeout=UPSTREAM_TIMEOUT) as answer:  # noqa: S310
                status, data, kind = answer.status, answer.read(), answer.headers["Content-Type"]
        except urllib.error.HTTPError as error:
            status, data, kind = error.code, error.read(), error.headers["Content-Type"]
        except OSError as error:
            status, data, kind = 502, f"portal unreachable: {error}\n".encode(), "text/plain"
        self._answer(status, data, kind or "application/octet-stream")

    def _answer(self, status: int, data: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, portal: str, network: str, key: str) -> None:
        super().__init__(sock.getsockname()[:2], Proxy, bind_and_activate=False)
        self.socket = sock
        self.portal, self.network, self.key = portal.rstrip("/"), network, key


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netns", required=True)
    parser.add_argument("--listen", default="169.254.169.254:80")
    parser.add_argument("--portal", required=True)
    parser.add_argument("--network", required=True, help="the network's uuid")
    parser.add_argument("--pid-file", required=True, type=Path)
    args = parser.parse_args(argv)
    key = os.environ.pop("METADATA_PROXY_KEY", "")
    if not key:
        parser.error("METADATA_PROXY_KEY is not set")
    host, port = args.listen.rsplit(":", 1)
    server = ProxyServer(listen_in(args.netns, host, int(port)), args.portal, args.network, key)
    args.pid_file.write_text(f"{os.getpid()}\n")  # written once listening: ready
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
