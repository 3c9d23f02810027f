"""JSON logs: one object per line with time, level, service, request id (and the
trace id when tracing is on) and the record's extras. Uvicorn's own loggers are
routed through the same handler.

Every record passes `RedactingFilter` before it is written: tokens, passwords,
secrets and card numbers are masked, phone numbers keep their last 3 digits
(`shared.redaction`), in the message, the extras and the exception text alike.
"""

import logging
import sys
from collections.abc import Callable
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from shared.redaction import redact_text, redact_value
from shared.request_context import current_request_id

# The attributes every LogRecord has; anything else on a record is an `extra`.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "service", "requestId", "traceId", "spanId", "taskName"}
)

# Set by shared.tracing when tracing is on: returns (trace id, span id) of the current span.
current_trace_ids: Callable[[], tuple[str, str] | None] = lambda: None  # noqa: E731


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.requestId = current_request_id()
        # Uvicorn's coloured copy of its message: terminal escapes, not for JSON.
        record.__dict__.pop("color_message", None)
        ids = current_trace_ids()
        if ids is not None:
            record.traceId, record.spanId = ids
        return True


class RedactingFilter(logging.Filter):
    """Masks what must never be logged. It rewrites the record itself (message, extras,
    exception text), so every handler that sees the record afterwards sees it masked."""

    _exception_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.getMessage())
            record.args = None
        elif isinstance(record.msg, dict):
            record.msg = redact_value(None, record.msg)
        for name in [key for key in record.__dict__ if key not in _RECORD_ATTRIBUTES]:
            record.__dict__[name] = redact_value(name, record.__dict__[name])
        if record.exc_info:
            record.exc_text = redact_text(
                self._exception_formatter.formatException(record.exc_info)
            )
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def json_handler(service: str, stream: TextIO | None = None) -> logging.Handler:
    """The handler every service logs through: JSON lines, context added, secrets masked."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.addFilter(_ContextFilter(service))
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{service}{requestId}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level"},
            timestamp=False,
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    return handler


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = json_handler(service)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # Uvicorn installs its own handlers before the app is imported; send its
    # records to ours instead. Its access log is replaced by ours (request_context).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request URL at INFO; URLs can carry secrets (a callback's).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
