"""Starts a service with uvicorn: `python -m <service_package>`."""

import uvicorn

from shared.logging import configure_logging


def serve(app_factory: str, *, name: str, host: str, port: int, log_level: str = "INFO") -> None:
    configure_logging(name, log_level)
    uvicorn.run(
        app_factory,
        factory=True,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        # Finish in-flight requests on SIGTERM, but not forever.
        timeout_graceful_shutdown=10,
        # X-Forwarded-For is for the gateway to judge (TRUSTED_PROXIES), not uvicorn.
        proxy_headers=False,
    )
