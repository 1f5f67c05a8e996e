"""The one package that imports libvirt: the driver (`LibvirtDriver`), its calls and
connections, and the in-place network updates."""

from provisioning.drivers.libvirt.calls import forget_connections
from provisioning.drivers.libvirt.driver import LibvirtDriver

__all__ = ["LibvirtDriver", "forget_connections"]
