from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"

    def ready(self) -> None:
        # Connects the Celery signals: each task's wait in its queue, and its log context;
        # registers the tasks in every process (webhooks' outbox sends them by name, and by
        # name an unregistered task skips eager mode).
        from observability import instruments, log_context, tasks, tracing  # noqa: F401

        tracing.setup()  # only when OTEL_EXPORTER_OTLP_ENDPOINT is set
