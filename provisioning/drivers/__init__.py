"""Hypervisor drivers: `get_driver(uri)` hands out one cached driver per libvirt URI."""

from __future__ import annotations

import functools

from django.conf import settings

from provisioning.drivers.base import HypervisorDriver


@functools.cache
def get_driver(uri: str) -> HypervisorDriver:
    # Imported here so that base/xml stay usable without loading libvirt.
    from provisioning.drivers.libvirt import LibvirtDriver

    # A host agent opens its host's stored URI as its local one (host_agent --uri).
    return LibvirtDriver(settings.LIBVIRT_URI_ALIASES.get(uri, uri))
