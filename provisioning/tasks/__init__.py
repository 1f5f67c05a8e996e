"""Celery tasks of provisioning; autodiscovery imports this package, which imports each."""

from provisioning.tasks import inventory as inventory

__all__ = ["inventory"]
