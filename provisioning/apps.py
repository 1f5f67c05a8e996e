from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"

    def ready(self) -> None:
        # Register the tasks in every process, not only in workers (Celery's autodiscovery
        # is lazy): enqueue.py sends them by name, and by name an unregistered task skips
        # eager mode and goes to the broker.
        import provisioning.tasks  # noqa: F401
