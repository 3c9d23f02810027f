"""One OpenAPI document for the whole public API: `/openapi.json`, shown by Swagger UI at
`/docs` and ReDoc at `/redoc`.

It is made from the services' own documents (each keeps its `/docs`), fetched when the
gateway's document is asked for and kept for API_DOCS_CACHE_SECONDS: a service deployed
anew shows its new routes within that time, and no service has to be up for the gateway
to start. A service that does not answer leaves its last document in place (or, before a
first one, its routes out, said in the document's description) and is asked again a few
seconds later: the docs never fail because a service is down.

From each service's document, only what the gateway serves is kept, at the gateway's
paths (routing.py: the auth service's `/api/login` is `/api/auth/login`, the order
service's `/api/admin/...` is `/api/orders/admin/...`); internal routes, `/health`,
`/ready` and `/metrics` are left out. Operations are tagged per service, say who may call
them (the bearer-token scheme on every protected route, "Admin only" on admin ones),
keep every status the service documents (shared.openapi) and add those of the gateway
(400 validation, 401, 403, 413, 429, 503, 504), all in the system's `{"error": ...}`
shape, and carry the README's examples (api_examples.py).
"""

import asyncio
import copy
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from api_gateway.api_examples import EXAMPLES
from api_gateway.routing import UPSTREAMS, Access, resolve
from shared.http_client import ServiceClient

logger = logging.getLogger(__name__)

OPENAPI_PATH = "/openapi.json"
DOCS_PAGES = ("/docs", "/redoc")
# Swagger UI's and ReDoc's scripts, styles and favicon, served by the gateway from the
# fastapi-offline package (no CDN: the docs work on a machine without internet).
DOCS_ASSETS_PATH = "/docs/assets"
# A service that did not answer is asked again after this long (seconds), not at once.
RETRY_AFTER_FAILURE = 5.0
FETCH_TIMEOUT = 3.0
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


Fetch = Callable[[str], Awaitable[dict[str, Any]]]


class ApiDocs:
    """The services' documents, each kept `ttl` seconds after it was fetched."""

    def __init__(self, service_urls: Mapping[str, str], fetch: Fetch, ttl: float) -> None:
        self._urls = dict(service_urls)
        self._fetch = fetch
        self._ttl = ttl
        # service -> (when it was fetched, its document); a failure leaves the last one.
        self._documents: dict[str, tuple[float, dict[str, Any]]] = {}
        self._next_attempt: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def document(self) -> dict[str, Any]:
        async with self._lock:  # one refresh at a time, whatever the number of readers
            now = time.monotonic()
            due = [
                name
                for name in self._urls
                if now >= self._next_attempt.get(name, 0.0)
                and (name not in self._documents or now - self._documents[name][0] >= self._ttl)
            ]
            if due:
                await asyncio.gather(*(self._refresh(name) for name in due))
        return merge_documents({name: doc for name, (_, doc) in self._documents.items()})

    async def _refresh(self, name: str) -> None:
        url = self._urls[name].rstrip("/") + OPENAPI_PATH
        try:
            document = await self._fetch(url)
            if not isinstance(document.get("paths"), dict):
                raise ValueError("not an OpenAPI document")
        except Exception as exc:  # any failure: the docs go on without it (or with the last)
            logger.warning(
                "api docs: a service's document is unavailable",
                extra={"upstream": name, "reason": f"{type(exc).__name__}: {exc}"[:300]},
            )
            self._next_attempt[name] = time.monotonic() + RETRY_AFTER_FAILURE
            return
        self._documents[name] = (time.monotonic(), document)
        self._next_attempt.pop(name, None)


def http_fetch(client: ServiceClient) -> Fetch:
    """Fetches with the gateway's service client (no internal token: the documents are
    public on each service)."""

    async def fetch(url: str) -> dict[str, Any]:
        response = await client.request("GET", url, internal=False, timeout=FETCH_TIMEOUT)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    return fetch


def docs_assets_directory() -> str:
    return str(files("fastapi_offline") / "static")


def docs_content_security_policy(nonce: str) -> str:
    """The docs pages' CSP: everything from the gateway itself, the one inline script of
    Swagger UI's page by its nonce; inline styles (both UIs set them) and a blob: worker
    (ReDoc's search) allowed."""
    return (
        "default-src 'self';base-uri 'self';object-src 'none';frame-ancestors 'self';"
        f"form-action 'self';script-src 'self' 'nonce-{nonce}';script-src-attr 'none';"
        "style-src 'self' 'unsafe-inline';img-src 'self' data:;font-src 'self' data:;"
        "connect-src 'self';worker-src 'self' blob:"
    )


def _with_nonce(page: HTMLResponse) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = bytes(page.body).decode().replace("<script>", f'<script nonce="{nonce}">')
    return HTMLResponse(
        html, headers={"Content-Security-Policy": docs_content_security_policy(nonce)}
    )


def install(
    app: FastAPI, docs_of: Callable[[Request], ApiDocs], title: str = "E-commerce API"
) -> None:
    """Replaces the gateway's own (empty) document and docs pages with the merged ones;
    `docs_of` gives the gateway's ApiDocs (its state's)."""
    replaced = {OPENAPI_PATH, "/docs", "/docs/oauth2-redirect", "/redoc"}
    app.router.routes[:] = [
        route for route in app.router.routes if getattr(route, "path", None) not in replaced
    ]

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(await docs_of(request).document())

    async def swagger_ui(request: Request) -> HTMLResponse:
        return _with_nonce(
            get_swagger_ui_html(
                openapi_url=OPENAPI_PATH,
                title=f"{title} - Swagger UI",
                swagger_js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png",
                # No validator badge: it would send the document to validator.swagger.io.
                swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
            )
        )

    async def redoc(request: Request) -> HTMLResponse:
        return _with_nonce(
            get_redoc_html(
                openapi_url=OPENAPI_PATH,
                title=f"{title} - ReDoc",
                redoc_js_url=f"{DOCS_ASSETS_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png",
                with_google_fonts=False,
            )
        )

    app.add_api_route(OPENAPI_PATH, openapi, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=docs_assets_directory()), name="docs-assets")
