"""The logging configuration: JSON lines carrying the launch's context fields
(observability.log_context), or plain lines for a human at a terminal."""

from typing import Any

CONTEXT = "%(correlation_id)s %(cluster)s %(node)s %(step)s %(task_id)s"


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "observability.log_context.ContextFilter"}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": f"%(asctime)s %(levelname)s %(name)s %(process)d %(message)s {CONTEXT}",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "plain" if log_format == "plain" else "json",
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
    }
