"""The gateway's OpenAPI document made from the services' own (api_docs.py fetches and
serves it).

From each service's document, only what the gateway serves is kept, at the gateway's
paths (routing.py: the auth service's `/api/login` is `/api/auth/login`, the order
service's `/api/admin/...` is `/api/orders/admin/...`); internal routes, `/health`,
`/ready` and `/metrics` are left out. Operations are tagged per service, say who may call
them (the bearer-token scheme on every protected route, "Admin only" on admin ones),
keep every status the service documents (shared.openapi) and add those of the gateway
(400 validation, 401, 403, 404 on parametrised paths, 413, 429, 503, 504), all in the
system's `{"error": ...}` shape, and carry the README's examples (api_examples.py).
"""

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from api_gateway.api_examples import EXAMPLES
from api_gateway.routing import UPSTREAMS, Access, resolve

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SCHEMA_REF = "#/components/schemas/"


@dataclass(frozen=True)
class ServiceDocs:
    name: str  # the service's key in routing.py and the settings
    tag: str
    description: str


SERVICES: tuple[ServiceDocs, ...] = (
    ServiceDocs("auth", "Auth", "Register, log in, the caller's profile; admins manage users."),
    ServiceDocs("product", "Products", "The catalogue; admins add, change and restock products."),
    ServiceDocs("cart", "Cart", "The caller's cart: prices and stock come from the catalogue."),
    ServiceDocs(
        "order", "Orders", "Orders from items or the cart; cancel; admins move orders along."
    ),
    ServiceDocs(
        "payment",
        "Payments",
        "M-Pesa (STK Push) and Stripe payments, the providers' webhooks, refunds.",
    ),
)

DESCRIPTION = """The shop's public API, as served by this gateway: every path below is \
relative to it.

Protected routes take `Authorization: Bearer <token>`, the `token` that register and login \
answer (the **Authorize** button). Errors are `{"error": "<message>"}`, with `details` \
where useful. Money is a string with two decimals (`"150000.00"`); ids are UUIDs; times \
ISO 8601 UTC. Each service also serves its own document at its `/docs`."""

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "details": {"description": "What was wrong, where useful (a list or an object)"},
    },
}
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "The token of POST /api/auth/login or /api/auth/register.",
}


def _error(description: str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"$ref": SCHEMA_REF + "Error"},
                "example": {"error": message, **extra},
            }
        },
    }


VALIDATION_ERROR = _error(
    "The request is not valid",
    "Validation error",
    details=[{"field": "<the field>", "message": "<what is wrong with it>"}],
)
NO_TOKEN = _error("No token, or one that is not valid (any more)", "No token provided")
ADMIN_ONLY = _error("The caller is not an admin", "Access denied. Admin only.")
UNROUTABLE = _error(
    "A path parameter holding a slash, a backslash or a dot segment: not routed",
    "Route not found",
)
TOO_LARGE = _error("The request body is too large", "Request body too large")
TOO_MANY = _error(
    "Too many requests from this address (see the RateLimit-* headers)",
    "Too many requests, please try again later.",
)


def gateway_path(service: str, path: str) -> str | None:
    """Where the gateway serves `path` of `service`, or None when it does not (internal
    routes, /health, /ready, /metrics, and anything routing.py would not send back there)."""
    best: tuple[str, str] | None = None  # (the path prefix as the service sees it, public)
    for upstream in UPSTREAMS:
        if upstream.service != service:
            continue
        seen_as = upstream.rewrite_to if upstream.rewrite_to is not None else upstream.prefix
        if (path == seen_as or path.startswith(seen_as + "/")) and (
            best is None or len(seen_as) > len(best[0])
        ):
            best = (seen_as, upstream.prefix)
    if best is None:
        return None
    public = best[1] + path[len(best[0]) :]
    # The gateway must send that path back to this very route of this service.
    route = resolve("GET", public)
    if route is None or route.upstream.service != service or route.upstream_path != path:
        return None
    return public


def _rename_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        name = str(node.get("$ref", "")).removeprefix(SCHEMA_REF)
        if name in renames and node["$ref"] == SCHEMA_REF + name:
            return {**node, "$ref": SCHEMA_REF + renames[name]}
        return {key: _rename_refs(value, renames) for key, value in node.items()}
    if isinstance(node, list):
        return [_rename_refs(item, renames) for item in node]
    return node


def _merge_schemas(
    merged: dict[str, Any], schemas: Mapping[str, Any], service: ServiceDocs
) -> dict[str, str]:
    """Adds a service's schemas; a name another service already uses for another schema is
    prefixed with this service's tag. Returns the renames."""
    renames = {
        name: f"{service.tag}.{name}"
        for name, schema in schemas.items()
        if name in merged and merged[name] != schema
    }
    for name, schema in schemas.items():
        merged[renames.get(name, name)] = _rename_refs(schema, renames)
    return renames


def _operation(
    service: ServiceDocs, method: str, public_path: str, operation: dict[str, Any]
) -> dict[str, Any]:
    operation = copy.deepcopy(operation)
    operation["tags"] = [service.tag]
    if "operationId" in operation:
        operation["operationId"] = f"{service.name}_{operation['operationId']}"
    responses = operation.setdefault("responses", {})
    if "422" in responses and "ErrorResponse" not in str(responses["422"]):
        responses.pop("422")  # FastAPI's 422: this system answers 400 instead
    # The services' errors have the one shape the gateway calls Error.
    for code, response in responses.items():
        if code.startswith(("4", "5")):
            media = response.setdefault("content", {}).setdefault("application/json", {})
            media["schema"] = {"$ref": SCHEMA_REF + "Error"}
    has_input = "requestBody" in operation or operation.get("parameters")
    if has_input:
        described = responses.get("400", {}).get("description")
        responses["400"] = copy.deepcopy(VALIDATION_ERROR)
        if described and described != "The request is not valid":
            responses["400"]["description"] = described
    route = resolve(method.upper(), public_path)
    protected = route is not None and route.access is not Access.PUBLIC
    # A route the gateway lets through may still need a token the service reads itself
    # (POST /api/auth/verify): the service's document says so.
    if protected or operation.get("security"):
        operation["security"] = [{"bearerAuth": []}]
        responses.setdefault("401", copy.deepcopy(NO_TOKEN))
        if route is not None and route.access is Access.ADMIN:
            responses.setdefault("403", copy.deepcopy(ADMIN_ONLY))
            operation["description"] = (
                "**Admin only.** " + operation.get("description", "")
            ).strip()
    if "{" in public_path:
        # Whatever the service says of an unknown id, the gateway itself routes no path
        # whose parameter would make it another path (routing.is_forbidden_path).
        responses.setdefault("404", copy.deepcopy(UNROUTABLE))
    if "requestBody" in operation:
        responses.setdefault("413", copy.deepcopy(TOO_LARGE))
    responses.setdefault("429", copy.deepcopy(TOO_MANY))
    responses.setdefault(
        "503",
        _error(
            "The service is down, or busy (more requests at once than it takes): retry "
            "after the Retry-After seconds",
            f"{route.upstream.display_name if route else service.tag} service unavailable",
        ),
    )
    responses.setdefault(
        "504",
        _error(
            "The service did not answer in time (UPSTREAM_TIMEOUT)",
            f"{route.upstream.display_name if route else service.tag} service timed out",
        ),
    )
    return operation


def _add_example(media: dict[str, Any], name: str, value: Any) -> None:
    """One example, or several named ones when the media already has one."""
    if "example" in media:
        media["examples"] = {"example": {"value": media.pop("example")}}
    if "examples" in media:
        media["examples"][name] = {"value": value}
    else:
        media["example"] = value


def _apply_examples(paths: dict[str, Any]) -> None:
    for (method, path), example in EXAMPLES.items():
        operation = paths.get(path, {}).get(method.lower())
        if operation is None:
            continue  # that service is not in this document
        if "summary" in example:
            operation["summary"] = example["summary"]
        if "notes" in example:
            operation["description"] = (
                operation.get("description", "") + "\n\n" + example["notes"]
            ).strip()
        if "request" in example:
            body = operation.setdefault("requestBody", {"required": True, "content": {}})
            media = body["content"].setdefault("application/json", {"schema": {}})
            _add_example(media, "readme", example["request"])
        for status, value in example.get("responses", {}).items():
            error = int(status) >= 400
            response = operation["responses"].setdefault(
                status, {"description": HTTPStatus(int(status)).phrase}
            )
            media = response.setdefault("content", {}).setdefault("application/json", {})
            media.setdefault("schema", {"$ref": SCHEMA_REF + "Error"} if error else {})
            _add_example(media, "readme", value)


def _references(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
            found.add(ref[len(SCHEMA_REF) :])
        for value in node.values():
            _references(value, found)
    elif isinstance(node, list):
        for item in node:
            _references(item, found)


def _used_schemas(paths: Any, schemas: Mapping[str, Any]) -> dict[str, Any]:
    """Only the schemas the kept routes need (internal routes' bodies and FastAPI's 422
    shapes go)."""
    used: set[str] = set()
    _references(paths, used)
    pending = list(used)
    while pending:
        found: set[str] = set()
        _references(schemas.get(pending.pop()), found)
        pending += [name for name in found - used]
        used |= found
    return {name: schemas[name] for name in sorted(used) if name in schemas}


def merge_documents(
    documents: Mapping[str, dict[str, Any]], *, version: str = "1.0.0"
) -> dict[str, Any]:
    """The gateway's document from the services' (by service name; absent ones left out)."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    tags = []
    missing = []
    for service in SERVICES:
        document = documents.get(service.name)
        if document is None:
            missing.append(service.tag)
            continue
        tags.append({"name": service.tag, "description": service.description})
        renames = _merge_schemas(
            schemas, document.get("components", {}).get("schemas", {}), service
        )
        for path, item in document.get("paths", {}).items():
            public = gateway_path(service.name, path)
            if public is None:
                continue
            kept = paths.setdefault(public, {})
            for method, operation in item.items():
                if method in HTTP_METHODS:
                    kept[method] = _rename_refs(
                        _operation(service, method, public, operation), renames
                    )
    _apply_examples(paths)
    description = DESCRIPTION
    if missing:
        description += (
            f"\n\n**Not shown now:** the routes of {', '.join(missing)} (the service did not "
            "answer; reload in a few seconds)."
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": "E-commerce API", "version": version, "description": description},
        "tags": tags,
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _used_schemas(paths, schemas),
            "securitySchemes": {"bearerAuth": BEARER_SCHEME},
        },
    }
