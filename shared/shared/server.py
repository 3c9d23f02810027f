"""Starts a service with uvicorn: `python -m <service_package>`.

A process that starts a service may bind its port first and hand the listening socket
over (`LISTEN_FD=<fd>`, the descriptor kept open across exec: `pass_fds`); the service
then serves on that socket and its port setting is not used. `make run`'s supervisor
and the tests do this, so that no port is chosen free in one process and bound later
in another (anything could take it in between).

`WEB_CONCURRENCY=N` (default 1): N worker processes serve the one listening socket (the
handed-over one, or the port bound here before they start). This process forks them
before any of them imports the app (each makes its own: its own connection pool, event
loop and caches), restarts one that dies, and on SIGTERM or SIGINT has them all finish
what they are doing and exits once they have. Each knows its number in
`WEB_WORKER_INDEX` (0 to N-1): only worker 0 runs the service's periodic workers
(shared.workers.runs_periodic_workers), so that N workers do not run them N times as
often. uvicorn's own `workers` option is not used: it starts each worker with
multiprocessing's spawn (which runs `__main__` again in every worker), reads a
handed-over descriptor as a Unix socket, and numbers no worker.

Once a server has started, what startup built (modules, the app, its pools: ~120,000
objects) is frozen out of the garbage collector's sight, and young objects are collected
every 10,000 allocations rather than 700: under load, full collections walked all of it
(20 ms each, every second or two) and young ones ran several times a request, for
nothing. A process's own tuning, so here and not in the app (tests start hundreds).

uvicorn and the logging setup are imported in `serve`, not here: `make run`'s supervisor
imports `LISTEN_FD` from this module and stays small (it runs as long as the stack).
"""

import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Protocol

LISTEN_FD = "LISTEN_FD"
# Each worker process's number, 0 .. WEB_CONCURRENCY-1 (shared.workers reads it).
WORKER_INDEX = "WEB_WORKER_INDEX"
STARTUP_FAILURE = 3  # uvicorn's own exit status when the server did not start
# A worker that dies is started again, but not in a tight loop.
RESTART_DELAY = 1.0
PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>
# Allocations between two young collections once started (Python's default: 700).
YOUNG_GENERATION = 10_000

logger = logging.getLogger(__name__)


class ServerSettings(Protocol):
    """What `serve_service` reads of a service's settings."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def log_level(self) -> str: ...

    @property
    def web_concurrency(self) -> int: ...


def serve_service(
    app_factory: str, settings: ServerSettings, *, name: str, loop: str = "asyncio"
) -> None:
    """`python -m <package>` of a service: `serve` with the host, port, log level and
    number of worker processes of its settings."""
    serve(
        app_factory,
        name=name,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        loop=loop,
        workers=settings.web_concurrency,
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
    workers: int = 1,
) -> None:
    from shared.logging import configure_logging  # here: see the module's docstring

    configure_logging(name, log_level)
    handed_over = inherited_socket()
    if workers <= 1:
        if not _run_server(app_factory, handed_over, host=host, port=port, loop=loop):
            sys.exit(STARTUP_FAILURE)
        return
    listening = handed_over or _bind(host, port)
    logger.info(
        "starting worker processes",
        extra={"workers": workers, "port": listening.getsockname()[1]},
    )

    def worker() -> int:
        started = _run_server(app_factory, listening, host=host, port=0, loop=loop)
        return 0 if started else STARTUP_FAILURE

    sys.exit(run_workers(workers, worker))


def _run_server(
    app_factory: str, sock: socket.socket | None, *, host: str, port: int, loop: str
) -> bool:
    """One uvicorn server until SIGTERM or SIGINT; whether it had started."""
    import uvicorn  # here: see the module's docstring

    config = uvicorn.Config(
        app_factory,
        factory=True,
        loop=loop,
        host=host,
        # 0 with a handed-over socket: uvicorn then logs the socket's own port.
        port=0 if sock else port,
        log_config=None,
        access_log=False,
        server_header=False,
        # Finish in-flight requests on SIGTERM, but not forever.
        timeout_graceful_shutdown=10,
        # X-Forwarded-For is for the gateway to judge (TRUSTED_PROXIES), not uvicorn.
        proxy_headers=False,
        # No route is a WebSocket: uvicorn then does not load the websockets library.
        ws="none",
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                settle_garbage_collector()

    server = Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock] if sock else None)
    return server.started


def settle_garbage_collector() -> None:
    """The module's doc: after startup, once."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION, *gc.get_threshold()[1:])


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket the workers share, when none was handed over."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        logger.error("cannot listen", extra={"host": host, "port": port, "reason": str(exc)})
        sys.exit(STARTUP_FAILURE)
    sock.listen(2048)  # uvicorn's backlog
    return sock


def _die_with_parent(parent: int) -> None:
    """On Linux, the kernel sends this worker SIGTERM if the process that forked it dies
    without stopping it (kill -9): no worker is left holding the port."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before the line above
            os._exit(1)


def run_workers(count: int, work: Callable[[], int]) -> int:
    """Forks `count` processes that each run `work` (its return value is the process's
    exit status), `WEB_WORKER_INDEX` set to their number; waits for them. SIGTERM or
    SIGINT here is passed on to every worker; the return value is then 0 once they have
    all exited. A worker that dies otherwise is started again, with its number, unless it
    could not start (STARTUP_FAILURE: a setting, the database): then the others are
    stopped and that is the return value."""
    children: dict[int, int] = {}  # pid -> worker index
    parent = os.getpid()
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def start(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, signal.SIG_DFL)  # uvicorn sets its own
                _die_with_parent(parent)
                os.environ[WORKER_INDEX] = str(index)
                status = work()
            except BaseException:
                logger.exception("worker process failed", extra={"worker_index": index})
            finally:
                os._exit(status)
        children[pid] = index

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    for index in range(count):
        start(index)
    result = 0
    while children:
        pid, status = os.wait()  # a signal runs `stop`, then the wait goes on (PEP 475)
        index = children.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            continue
        if code == STARTUP_FAILURE:
            logger.error("worker process could not start", extra={"worker_index": index})
            result = STARTUP_FAILURE
            stop(signal.SIGTERM, None)
            continue
        logger.warning(
            "worker process exited; starting it again",
            extra={"worker_index": index, "exit_code": code},
        )
        time.sleep(RESTART_DELAY)
        if not stopping:
            start(index)
    return result
