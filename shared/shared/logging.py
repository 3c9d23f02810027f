"""JSON logs: one object per line with time, level, service, request id and the
record's extras. Uvicorn's own loggers are routed through the same handler."""

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from shared.request_context import current_request_id


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.requestId = current_request_id()
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_ContextFilter(service))
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{service}{requestId}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level"},
            timestamp=False,
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
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
