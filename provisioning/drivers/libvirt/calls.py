"""libvirt calls made safe: errors translated to DriverErrors, one connection per URI per
process (reopened when it drops), and the small helpers every driver method uses."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import libvirt

from provisioning.drivers.base import (
    DomainState,
    DriverError,
    PermanentDriverError,
    TransientDriverError,
)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

# libvirt prints every error to stderr by default; here they are raised as DriverErrors instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

_TRANSIENT_CODES = {
    libvirt.VIR_ERR_NO_CONNECT: "unreachable",
    libvirt.VIR_ERR_INVALID_CONN: "unreachable",
    libvirt.VIR_ERR_RPC: "unreachable",
    libvirt.VIR_ERR_OPERATION_TIMEOUT: "timeout",
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE: "timeout",
    libvirt.VIR_ERR_RESOURCE_BUSY: "busy",
}
_PERMANENT_CODES = {
    libvirt.VIR_ERR_NO_SUPPORT: "unsupported",
    libvirt.VIR_ERR_OPERATION_UNSUPPORTED: "unsupported",
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED: "unsupported",
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED: "unsupported",
    libvirt.VIR_ERR_NO_STORAGE_VOL: "no_such_volume",
    libvirt.VIR_ERR_NO_STORAGE_POOL: "no_such_pool",
    libvirt.VIR_ERR_NO_DOMAIN: "no_such_domain",
    libvirt.VIR_ERR_NO_NETWORK: "no_such_network",
    libvirt.VIR_ERR_NO_NWFILTER: "no_such_nwfilter",
    libvirt.VIR_ERR_NO_MEMORY: "out_of_memory",
    libvirt.VIR_ERR_XML_ERROR: "invalid_config",
    libvirt.VIR_ERR_XML_DETAIL: "invalid_config",
    libvirt.VIR_ERR_XML_INVALID_SCHEMA: "invalid_config",
}

_DOMAIN_STATES = {
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "running",  # running, just idle on I/O
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
}


def translate_error(err: libvirt.libvirtError) -> DriverError:
    """Map a libvirt error to a Transient (retry) or Permanent (give up) DriverError."""
    code = err.get_error_code()
    message = err.get_error_message() or str(err)
    if code in _TRANSIENT_CODES:
        return TransientDriverError(_TRANSIENT_CODES[code], message)
    # A refused or dropped socket surfaces as a system error raised by the RPC layer.
    if code == libvirt.VIR_ERR_SYSTEM_ERROR and err.get_error_domain() in (
        libvirt.VIR_FROM_RPC,
        libvirt.VIR_FROM_REMOTE,
    ):
        return TransientDriverError("unreachable", message)
    if code in _PERMANENT_CODES:
        return PermanentDriverError(_PERMANENT_CODES[code], message)
    # QEMU reports a host without enough free RAM only in the text of a generic error.
    if "cannot allocate memory" in message.lower():
        return PermanentDriverError("out_of_memory", message)
    return PermanentDriverError("libvirt_error", message)


def translated(method: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except libvirt.libvirtError as err:
            raise translate_error(err) from err

    return wrapper


@contextmanager
def missing_ok(*codes: int) -> Iterator[None]:
    """Treat "no such <object>" (error `codes`) as done; anything else still raises."""
    try:
        yield
    except libvirt.libvirtError as err:
        if err.get_error_code() not in codes:
            raise


def find(lookup: Callable[[str], T], name: str, missing_code: int) -> T | None:
    with missing_ok(missing_code):
        return lookup(name)
    return None


def converge(done: Callable[[], bool], act: Callable[[], object]) -> None:
    """Run `act` unless `done()`; its failure is fine when a concurrent worker got there first."""
    if done():
        return
    try:
        act()
    except libvirt.libvirtError:
        if not done():
            raise


_connections: dict[str, libvirt.virConnect] = {}
_connections_lock = threading.Lock()


def _is_alive(conn: libvirt.virConnect) -> bool:
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False  # closed: the handle is no longer valid


def open_connection(uri: str) -> libvirt.virConnect:
    """One connection per URI per process, reopened when it dropped.

    For test:// URIs this is also what keeps the test driver's state alive for the process.
    """
    with _connections_lock:
        conn = _connections.get(uri)
        if conn is None or not _is_alive(conn):
            conn = libvirt.open(uri)
            _connections[uri] = conn
        return conn


def forget_connections(uris: Iterable[str]) -> None:
    """Close and drop this process's connections to `uris`, as a restarted worker has none.

    For a test:// URI the next open starts from its node file again: every domain is gone.
    """
    with _connections_lock:
        for uri in uris:
            conn = _connections.pop(uri, None)
            if conn is not None:
                with missing_ok(libvirt.VIR_ERR_INVALID_CONN):  # already closed
                    conn.close()


def domain_state_of(dom: libvirt.virDomain) -> DomainState:
    return DomainState(name=dom.name(), state=_DOMAIN_STATES.get(dom.state()[0], "other"))
