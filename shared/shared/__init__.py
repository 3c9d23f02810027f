"""The project's common library: every service builds its app from these parts.

- settings:        pydantic-settings base class and the production secret checks
- app:             `create_app`, which wires middleware, error handlers, health and lifespan
- db:              async engine, one session (one transaction) per request
- errors:          `AppError` and the one `{"error": ...}` format of every response
- tokens:          user JWTs (PyJWT, HS256) and short-lived internal service tokens
- passwords:       pwdlib (argon2id for new hashes, bcrypt hashes of the original accepted)
- auth:            `CurrentUser`, `AdminUser`, `InternalCaller` dependencies, user status cache
- http_client:     the pooled service-to-service HTTP client
- request_context: X-Request-ID, access log, request metrics
- logging:         JSON logs, masked (redaction: what must never be logged)
- metrics:         Prometheus `/metrics` and the API to declare domain metrics
- tracing:         OpenTelemetry, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set
- entrypoint:      a container's start: migrations when asked, then the service
- healthcheck:     a container's health probe without curl
"""

import sys

# httpx imports its command-line client (`httpx._main`: rich, click, pygments, ~5 MiB
# resident) whenever those are installed, and they are: the development tools
# (schemathesis) bring them. No process of ours runs that client; marking the module
# absent makes `import httpx` skip it (httpx then gives a stub `httpx.main`). Here
# because every service process imports `shared` before httpx.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
