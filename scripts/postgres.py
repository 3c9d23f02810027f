"""Finds a PostgreSQL server, or makes a private one (databases are created and dropped by
shared.provisioning).

The order (the same for `make run` and `make test`):
1. a `<SERVICE>_DATABASE_URL` that is set is used as it is (the caller does that);
2. a server at 127.0.0.1:5432 (user `postgres`, `PGPASSWORD` if the server wants one);
3. a private cluster under `.data/postgres`, made from the PostgreSQL server
   binaries installed on the machine, on its own port (`PRIVATE_POSTGRES_PORT`,
   default 55432; 0: any free one), run as the `postgres` OS user when we are root (PostgreSQL
   refuses to run as root).
Otherwise one clear message says what to install.
"""

import asyncio
import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg

from scripts.services import ROOT
from shared.provisioning import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_USER

PRIVATE_DIR = ROOT / ".data" / "postgres"
ANY_PORT_ATTEMPTS = 5

NOT_FOUND_MESSAGE = """\
No PostgreSQL server found.
  - Nothing answers on 127.0.0.1:5432 (user postgres), and
  - no PostgreSQL server binaries (initdb, pg_ctl) were found to create a private one.
Do one of:
  - install PostgreSQL 15 or newer (Debian/Ubuntu: sudo apt-get install postgresql;
    macOS: brew install postgresql@16) and run this again;
  - set AUTH_DATABASE_URL, PRODUCT_DATABASE_URL, ... to databases you already have
    (see .env.example);
  - or use Docker instead: make up"""


class PostgresUnavailable(RuntimeError):
    pass


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str | None = None
    # Set when we started a private cluster: stops it.
    stop: Callable[[], None] | None = None
    description: str = ""

    def url(self, database: str) -> str:
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"postgresql+asyncpg://{auth}@{self.host}:{self.port}/{database}"


async def _can_connect(host: str, port: int, user: str, password: str | None) -> bool:
    try:
        connection = await asyncpg.connect(
            host=host, port=port, user=user, password=password, database="postgres", timeout=3
        )
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


def find_or_start_postgres(log: Callable[[str], None] = print) -> PostgresServer:
    password = os.environ.get("PGPASSWORD") or None
    if asyncio.run(_can_connect(DEFAULT_HOST, DEFAULT_PORT, DEFAULT_USER, password)):
        return PostgresServer(
            DEFAULT_HOST,
            DEFAULT_PORT,
            DEFAULT_USER,
            password,
            description=f"PostgreSQL at {DEFAULT_HOST}:{DEFAULT_PORT}",
        )
    log(f"nothing answers on {DEFAULT_HOST}:{DEFAULT_PORT}; making a private cluster")
    return start_private_cluster(log)


def _server_bindir() -> Path | None:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    candidates.extend(Path(p) for p in versions)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: when we are root, run it as `postgres`."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam(DEFAULT_USER)
    except KeyError:
        raise PostgresUnavailable(
            "Running as root and there is no 'postgres' OS user to run a private PostgreSQL "
            "cluster. Create one (useradd -r postgres), run as a normal user, or use make up."
        ) from None
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", DEFAULT_USER, "--", *command]
    return ["su", "-s", "/bin/sh", DEFAULT_USER, "-c", " ".join(command)]


class _PortTaken(PostgresUnavailable):
    pass


def _start_server(
    run: Callable[[list[str]], subprocess.CompletedProcess],
    bindir: Path,
    data: Path,
    port: int,
    log: Callable[[str], None],
) -> int:
    """`pg_ctl start` on `port`; on port 0, on a port the kernel has just chosen, and on
    another one when the server finds it taken meanwhile: PostgreSQL binds its port
    itself (it cannot be handed a bound socket). Returns the port it listens on."""
    if port:
        return _pg_ctl_start(run, bindir, data, port)
    for attempt in range(ANY_PORT_ATTEMPTS):
        candidate = _port_nothing_listens_on()
        try:
            return _pg_ctl_start(run, bindir, data, candidate)
        except _PortTaken:
            if attempt == ANY_PORT_ATTEMPTS - 1:
                raise
            log(f"port {candidate} was taken before the server bound it; trying another")
    raise AssertionError("unreachable")


def _port_nothing_listens_on() -> int:
    with socket.socket() as sock:
        sock.bind((DEFAULT_HOST, 0))
        return sock.getsockname()[1]


def _pg_ctl_start(
    run: Callable[[list[str]], subprocess.CompletedProcess], bindir: Path, data: Path, port: int
) -> int:
    server_log = data / "server.log"
    logged_before = server_log.stat().st_size if server_log.exists() else 0
    options = f"-p {port} -k {data} -c listen_addresses={DEFAULT_HOST}"
    result = run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(server_log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ]
    )
    if result.returncode == 0:
        return port
    logged = ""
    if server_log.exists():
        with server_log.open("rb") as file:
            file.seek(logged_before)
            logged = file.read().decode(errors="replace")
    problem = PostgresUnavailable
    if "Address already in use" in logged:
        problem = _PortTaken
    raise problem(
        f"could not start the private cluster:\n{result.stdout}{result.stderr}{logged[-2000:]}"
    )


def start_private_cluster(log: Callable[[str], None] = print) -> PostgresServer:
    """The cluster in PRIVATE_DIR on PRIVATE_POSTGRES_PORT (0: any free port, see
    _start_server)."""
    bindir = _server_bindir()
    if bindir is None:
        raise PostgresUnavailable(NOT_FOUND_MESSAGE)
    port = int(os.environ.get("PRIVATE_POSTGRES_PORT", "55432"))
    data = PRIVATE_DIR
    data.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        data.mkdir(exist_ok=True)
        shutil.chown(data, DEFAULT_USER)
        data.chmod(0o700)

    def run(command: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            _as_server_user(command), capture_output=True, text=True, check=False, cwd="/"
        )

    if not (data / "PG_VERSION").is_file():
        log(f"creating a private PostgreSQL cluster with {bindir}/initdb")
        result = run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                DEFAULT_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ]
        )
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed:\n{result.stdout}{result.stderr}")

    status = run([str(bindir / "pg_ctl"), "-D", str(data), "status"])
    if status.returncode != 0:
        port = _start_server(run, bindir, data, port, log)
    elif not port:
        port = int((data / "postmaster.pid").read_text().splitlines()[3])  # its port line

    deadline = time.monotonic() + 30
    while not asyncio.run(_can_connect(DEFAULT_HOST, port, DEFAULT_USER, None)):
        if time.monotonic() > deadline:
            raise PostgresUnavailable(f"the private cluster does not answer on port {port}")
        time.sleep(0.2)

    def stop() -> None:
        run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])

    return PostgresServer(
        DEFAULT_HOST,
        port,
        DEFAULT_USER,
        stop=stop,
        description=f"private PostgreSQL cluster in {data} on port {port}",
    )
