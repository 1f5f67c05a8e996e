"""Structured logs that follow a launch across processes.

Every log record carries `correlation_id` (the HTTP request's X-Request-ID, made up when
absent, sent along in the header of every Celery task the request enqueues, and of the
tasks those enqueue) and, where known, `cluster`, `node`, `step` and `task_id`. So one
grep of a create request's id shows the tasks it led to, and one grep of a cluster's uuid
shows its whole launch: the request, every task, every guest report (events.record logs
each event with them). Formatted as JSON lines (python-json-logger) unless LOG_FORMAT=plain.
"""

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.http import HttpRequest, HttpResponse

FIELDS = ("correlation_id", "cluster", "node", "step", "task_id")
_context: ContextVar[dict[str, str]] = ContextVar("log_context", default={})  # noqa: B039
HEADER = "portal_correlation_id"  # in a Celery message's headers
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def current() -> dict[str, str]:
    return _context.get()


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """These fields on every record logged inside the block (and in tasks it sends)."""
    token = _context.set({**_context.get(), **{k: str(v) for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Puts the bound fields on each record (empty strings where unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get()
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, fields.get(name, ""))
        return True


class CorrelationMiddleware:
    """Binds the request's id (a caller's X-Request-ID when it is sane, else a new one)
    for the request, and answers with it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        correlation = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        with bound(correlation_id=correlation):
            response = self.get_response(request)
        response["X-Request-ID"] = correlation
        return response


@before_task_publish.connect
def _send_along(headers: dict[str, Any] | None = None, **_: Any) -> None:
    correlation = _context.get().get("correlation_id")
    if headers is not None and correlation:
        headers.setdefault(HEADER, correlation)


_task_tokens: dict[str, Any] = {}


@task_prerun.connect
def _enter_task(task_id: str = "", task: Any = None, **_: Any) -> None:
    request: Any = getattr(task, "request", None)
    correlation = getattr(request, HEADER, None) or _context.get().get("correlation_id")
    _task_tokens[task_id] = _context.set(
        {**_context.get(), "correlation_id": correlation or task_id, "task_id": task_id}
    )


@task_postrun.connect
def _leave_task(task_id: str = "", **_: Any) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        _context.reset(token)
