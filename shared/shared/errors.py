"""One error type and one response format for the whole system.

Business code raises `AppError` (or a subclass); one handler renders it as
`{"error": message}` plus `"details"` when there are any. Request validation
errors become 400 `{"error": "Validation error", "details": [...]}` as in the
original, and nothing unexpected ever reaches a client as more than
`{"error": "Internal server error", "requestId": ...}`.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ExceptionHandler

from shared.database_errors import connection_was_lost, is_database_unavailable
from shared.methods import allowed_methods

if TYPE_CHECKING:
    from sqlalchemy.exc import IntegrityError

logger = logging.getLogger(__name__)

UNIQUE_VIOLATION = "23505"


class AppError(Exception):
    status_code = 400
    message = "Bad request"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Any = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.message
        if status_code is not None:
            self.status_code = status_code
        self.details = details
        self.headers = headers
        # Extra top-level fields the original put beside "error" (e.g. `available`).
        self.extra = extra or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, **self.extra}
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401
    message = "Invalid token"


class Forbidden(AppError):
    status_code = 403
    message = "Access denied. Admin only."


class NotFound(AppError):
    status_code = 404
    message = "Not found"


class Conflict(AppError):
    status_code = 409
    message = "Conflict"


class Unprocessable(AppError):
    status_code = 422


class BadGateway(AppError):
    """A provider outside this system (Daraja, Stripe) did not answer: try again."""

    status_code = 502
    message = "Bad gateway"


class ServiceUnavailable(AppError):
    status_code = 503
    message = "Service unavailable"


def error_response(
    status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers=headers)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """FastAPI/pydantic errors as `[{field, message}]`, the field named as the client sent it."""
    details = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if location and location[0] in {"body", "query", "path", "header"}:
            location = location[1:]
        message = str(error.get("msg", "Invalid value")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            location, message = [], "Request body is not valid JSON"
        elif error.get("type") == "missing":
            message = "Field required"
        details.append({"field": ".".join(location) or "body", "message": message})
    return details


async def _app_error_handler(request: Request, exc: AppError) -> JSONResponse:
    return error_response(exc.status_code, exc.body(), exc.headers)


async def _validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(
        400, {"error": "Validation error", "details": validation_details(list(exc.errors()))}
    )


async def _http_exception_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 404:
        message = "Route not found"
    elif exc.status_code == 405:
        return error_response(
            405, {"error": "Method not allowed"}, {"Allow": allowed_methods(request)}
        )
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, {"error": message}, getattr(exc, "headers", None))


async def _integrity_error_handler(request: Request, exc: "IntegrityError") -> JSONResponse:
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if sqlstate == UNIQUE_VIOLATION:
        return error_response(400, {"error": "Resource already exists"})
    logger.warning("integrity error: %s", type(exc.orig).__name__)
    return error_response(400, {"error": "Validation error"})


async def _database_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    """The database is down, restarting, or every connection is busy: 503, the client may
    retry. Anything else that went wrong in a statement is a 500."""
    if not is_database_unavailable(exc):
        return await _unhandled_error_handler(request, exc)
    if connection_was_lost(exc):
        # A read is run once more on a fresh connection (shared.read_retry), which answers.
        request.state.database_connection_lost = True
    logger.warning("database unavailable: %s", type(exc).__name__)
    return error_response(
        503,
        {"error": "Service temporarily unavailable", "requestId": _request_id(request)},
        {"Retry-After": "1"},
    )


async def _unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if is_database_unavailable(exc):
        # An error that wraps a lost connection (a rollback on a dead socket, a greenlet
        # error raised from one) is still the database being away.
        return await _database_unavailable_handler(request, exc)
    request_id = _request_id(request)
    logger.exception("unhandled error", exc_info=exc)
    return error_response(
        500,
        {"error": "Internal server error", "requestId": request_id},
        {"X-Request-ID": request_id} if request_id else None,
    )


HandledError = TypeVar("HandledError", bound=Exception)


def add_error_handler(
    app: FastAPI,
    error_type: type[HandledError],
    handler: Callable[[Request, HandledError], Awaitable[Response]],
) -> None:
    """`app.add_exception_handler` with the handler's type checked against the error's."""
    # Starlette types every handler as taking any Exception; it calls this one only with
    # an `error_type`, which is what the signature above makes sure the handler takes.
    app.add_exception_handler(error_type, cast(ExceptionHandler, handler))


def install_error_handlers(app: FastAPI, *, database: bool = True) -> None:
    """`database=False` for an app without one (the gateway, the admin console): its
    statement errors need no handler, and SQLAlchemy is not loaded for them."""
    add_error_handler(app, AppError, _app_error_handler)
    add_error_handler(app, RequestValidationError, _validation_error_handler)
    add_error_handler(app, StarletteHTTPException, _http_exception_handler)
    if database:
        # Here: only an app with a database loads SQLAlchemy (shared.database_errors).
        from sqlalchemy.exc import DBAPIError, IntegrityError
        from sqlalchemy.exc import TimeoutError as PoolTimeout

        add_error_handler(app, IntegrityError, _integrity_error_handler)
        add_error_handler(app, DBAPIError, _database_unavailable_handler)
        add_error_handler(app, PoolTimeout, _database_unavailable_handler)
    add_error_handler(app, OSError, _database_unavailable_handler)
    add_error_handler(app, Exception, _unhandled_error_handler)
