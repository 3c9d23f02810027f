"""Starts a service with uvicorn: `python -m <service_package>`.

A process that starts a service may bind its port first and hand the listening socket
over (`LISTEN_FD=<fd>`, the descriptor kept open across exec: `pass_fds`); the service
then serves on that socket and its port setting is not used. `make run`'s supervisor
and the tests do this, so that no port is chosen free in one process and bound later
in another (anything could take it in between)."""

import contextlib
import os
import socket
import sys
from typing import Protocol

import uvicorn

from shared.logging import configure_logging

LISTEN_FD = "LISTEN_FD"
STARTUP_FAILURE = 3  # uvicorn's own exit status when the server did not start


class ServerSettings(Protocol):
    """What `serve_service` reads of a service's settings."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def log_level(self) -> str: ...


def serve_service(
    app_factory: str, settings: ServerSettings, *, name: str, loop: str = "asyncio"
) -> None:
    """`python -m <package>` of a service: `serve` with the host, port and log level of
    its settings."""
    serve(
        app_factory,
        name=name,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        loop=loop,
    )


def inherited_socket() -> socket.socket | None:
    """The listening socket a parent handed over in `LISTEN_FD`, if any (taken out of the
    environment: it is this process's, not its children's)."""
    value = os.environ.pop(LISTEN_FD, None)
    if not value:
        return None
    return socket.socket(fileno=int(value))


def serve(
    app_factory: str,
    *,
    name: str,
    host: str,
    port: int,
    log_level: str = "INFO",
    loop: str = "asyncio",
) -> None:
    configure_logging(name, log_level)
    handed_over = inherited_socket()
    config = uvicorn.Config(
        app_factory,
        factory=True,
        loop=loop,
        host=host,
        # 0 with a handed-over socket: uvicorn then logs the socket's own port.
        port=0 if handed_over else port,
        log_config=None,
        access_log=False,
        server_header=False,
        # Finish in-flight requests on SIGTERM, but not forever.
        timeout_graceful_shutdown=10,
        # X-Forwarded-For is for the gateway to judge (TRUSTED_PROXIES), not uvicorn.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[handed_over] if handed_over else None)
    if not server.started:
        sys.exit(STARTUP_FAILURE)
