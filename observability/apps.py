from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"

    def ready(self) -> None:
        # Connects the Celery signals that time each task's wait in its queue.
        from observability import instruments  # noqa: F401
