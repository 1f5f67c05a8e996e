"""Tenant networks on a real host, from Linux parts: see `networks.HostNetworks`."""
