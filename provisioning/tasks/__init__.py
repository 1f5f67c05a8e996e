"""Celery tasks of provisioning; autodiscovery imports this package, which imports each."""

from provisioning.tasks import guest_sim, health, inventory, launch, network, reconcile, upgrades

__all__ = ["guest_sim", "health", "inventory", "launch", "network", "reconcile", "upgrades"]
