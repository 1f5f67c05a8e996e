"""Hypervisor drivers: `get_driver(uri)` hands out one cached driver per libvirt URI."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.crypto import salted_hmac

from provisioning.drivers.base import HypervisorDriver, is_test_uri
from provisioning.drivers.hostnet.site import Site


def metadata_key(secret: str | None = None) -> str:
    """What metadata proxies sign with; the portal checks with the same (guest_views)."""
    return salted_hmac("provisioning.metadata-proxy", "signing key", secret=secret).hexdigest()


def metadata_keys() -> list[str]:
    """The current key, then those of SECRET_KEY_FALLBACKS (proxies started before a
    rotation)."""
    return [metadata_key(), *(metadata_key(old) for old in settings.SECRET_KEY_FALLBACKS)]


def local_site() -> Site:
    """This machine as a host of tenant networks (what its host agent builds)."""
    return Site(
        run_dir=settings.HOSTNET_RUN_DIR,
        portal_url=settings.PORTAL_URL,
        metadata_key=metadata_key(),
    )


@functools.cache
def get_driver(uri: str) -> HypervisorDriver:
    # Imported here so that base/xml stay usable without loading libvirt.
    from provisioning.drivers.libvirt import LibvirtDriver

    # A host agent opens its host's stored URI as its local one (host_agent --uri).
    local = settings.LIBVIRT_URI_ALIASES.get(uri, uri)
    # The test driver keeps networks in libvirt; a remote host's agent builds its own.
    builds_here = not is_test_uri(local) and not urlsplit(local).hostname
    return LibvirtDriver(local, local_site() if builds_here else None)
