"""The headers helmet sets by default in the original, on every gateway response."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';"
        b"frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"
        b"script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
    ),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"origin-agent-cluster", b"?1"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-dns-prefetch-control", b"off"),
    (b"x-download-options", b"noopen"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"x-permitted-cross-domain-policies", b"none"),
    (b"x-xss-protection", b"0"),
)
_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)
_CSP = b"content-security-policy"


class SecurityHeadersMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        skip_prefixes: tuple[str, ...] = (),
        own_policy_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        # Answers that carry all their security headers themselves (the admin console's).
        self.skip_prefixes = skip_prefixes
        # Pages of the gateway's own that set a Content-Security-Policy of their own (the
        # API docs: their inline script is allowed by a nonce); every other header applies.
        self.own_policy_paths = frozenset(own_policy_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip_prefixes):
            await self.app(scope, receive, send)
            return
        own_policy = scope["path"] in self.own_policy_paths

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                original = message.get("headers", [])
                headers = [(k, v) for k, v in original if k not in _NAMES]
                for name, value in SECURITY_HEADERS:
                    if own_policy and name == _CSP:
                        headers.extend((k, v) for k, v in original if k == _CSP)
                    else:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
