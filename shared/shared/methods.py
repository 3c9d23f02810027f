"""HTTP methods beyond the routes' own: `HEAD` wherever `GET` is, and a 405's `Allow`
header naming every method of the path.

FastAPI declares one route per method and path, and Starlette's 405 names only the
methods of the first route that matched the path (`OPTIONS /api/cart` said `GET`,
not `GET, HEAD, DELETE`); FastAPI's routes also do not answer `HEAD` by themselves.
"""

from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    """`HEAD` is answered as `GET` without the body (RFC 9110 §9.3.2): same status and
    headers, Content-Length included. Kept out of the routes, so the API documents do
    not list a HEAD operation beside every GET."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


def allowed_methods(request: Request) -> str:
    """The `Allow` header of a 405: the methods of every route of this path."""
    methods: set[str] = set()
    # Routes of included routers are reached through FastAPI's route contexts.
    for route in iter_route_contexts(request.app.router.routes):
        route_methods = route.methods
        if route_methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route_methods
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))
