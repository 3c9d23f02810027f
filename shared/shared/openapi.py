"""A service's OpenAPI document that tells the truth about its errors.

FastAPI documents a route's success answer and, for every route with parameters, a 422
this system never sends (validation is a 400). The statuses a route may answer besides
are known where they are raised:
- a dependency that validates and loads says what it refuses with `@answers(...)`
  (`current_user`: 401, `require_admin`: 403, a by-id loader: 404), and every route that
  depends on it, however deep, documents those answers;
- a route names the business errors of its service layer with `responses=errors(...)`;
- every route with input may answer 400 `Validation error`, every route 503 (its database
  or a service it calls is away).
Every error has the one body shape of shared.errors: `{"error": ..., "details"?: ...}`.
"""

from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

ERROR_REF = "#/components/schemas/ErrorResponse"
# Text PostgreSQL can store: no NUL (shared.text_guard refuses it with a 400 in every body
# field and query). Written on every free text of the document, so it says the same.
STORABLE_TEXT = "^[^\\u0000]*$"
F = TypeVar("F", bound=Callable[..., Any])


class ErrorResponse(BaseModel):
    """Every error this system answers: `{"error": "<message>"}`, with `details` where
    useful (validation: a list of `{field, message}`) and `requestId` on a 5xx."""

    model_config = ConfigDict(extra="allow")

    error: str
    details: Any = Field(default=None, description="What was wrong, where useful")
    requestId: str | None = None


def answers(*statuses: int | tuple[int, str]) -> Callable[[F], F]:
    """Marks a dependency with the error statuses it may answer (a status, or a status and
    what it means), for the document of every route that depends on it."""

    def mark(function: F) -> F:
        documented = dict(getattr(function, "__openapi_answers__", {}))
        for status in statuses:
            code, description = status if isinstance(status, tuple) else (status, "")
            documented[code] = description or HTTPStatus(code).phrase
        # A function takes attributes, but no callable type declares this one.
        function.__openapi_answers__ = documented  # type: ignore[attr-defined]
        return function

    return mark


def errors(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route: the error statuses its service layer may answer."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, description = status if isinstance(status, tuple) else (status, "")
        documented[code] = {
            "model": ErrorResponse,
            "description": description or HTTPStatus(code).phrase,
        }
    return documented


def _dependency_answers(dependant: Any) -> Iterator[tuple[int, str]]:
    for dependency in dependant.dependencies:
        yield from getattr(dependency.call, "__openapi_answers__", {}).items()
        yield from _dependency_answers(dependency)


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }


def _complete(operation: dict[str, Any], route: Any) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    declared = {str(code) for code in (route.responses or {})}
    if "422" not in declared:
        responses.pop("422", None)
    if operation.get("parameters") or "requestBody" in operation:
        responses.setdefault("400", _error_response("The request is not valid"))
    for code, description in _dependency_answers(route.dependant):
        responses.setdefault(str(code), _error_response(description))
    responses.setdefault(
        "503",
        _error_response(
            "Busy (too many requests at once), or the database or a service it needs is "
            "unavailable: retry after the Retry-After seconds"
        ),
    )
    for status, response in responses.items():
        if status.startswith(("4", "5")) and "content" not in response:
            response["content"] = _error_response("")["content"]
    operation["responses"] = dict(sorted(responses.items()))


def _storable_text(node: Any) -> None:
    """Every string schema without a pattern, format or enum of its own gets STORABLE_TEXT."""
    if isinstance(node, dict):
        kind = node.get("type")
        is_text = kind == "string" or (isinstance(kind, list) and "string" in kind)
        if is_text and not {"pattern", "format", "enum", "const"} & node.keys():
            node["pattern"] = STORABLE_TEXT
        for value in node.values():
            _storable_text(value)
    elif isinstance(node, list):
        for item in node:
            _storable_text(item)


def install_openapi(app: FastAPI) -> None:
    """The app's `/openapi.json` with every route's error answers (see the module)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        for route in iter_route_contexts(app.router.routes):
            if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
                continue
            item = document.get("paths", {}).get(route.path_format, {})
            for method in route.methods or ():
                if method.lower() in item:
                    _complete(item[method.lower()], route)
        _storable_text(document.get("paths"))
        _storable_text(document.get("components", {}).get("schemas"))
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorResponse", ErrorResponse.model_json_schema())
        if "HTTPValidationError" not in str(document.get("paths")):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        app.openapi_schema = document
        return document

    # FastAPI's documented way to change the document: replace the app's `openapi` method.
    app.openapi = openapi  # type: ignore[method-assign]
