"""`make run`: the whole system in the foreground, one log stream.

1. finds or provisions PostgreSQL (scripts/postgres.py) unless every
   `<SERVICE>_DATABASE_URL` is set, and creates each service's database;
2. applies every service's Alembic migrations;
3. starts every service that exists in this checkout (`python -m <package>`),
   each line of output prefixed with the service's name, and once all answer
   prints where they are (the gateway, the API docs, each service's docs), the
   admin login and the M-Pesa simulator's test numbers;
   A caller may bind a service's port itself and hand the listening socket over
   (`<NAME>_LISTEN_FD=<fd>`, e.g. AUTH_LISTEN_FD, kept open across exec): the service
   is then started on that socket (shared.server's LISTEN_FD) and its port is the
   socket's. The tests do this: no port is chosen free and bound later.
4. on Ctrl-C (SIGINT) or SIGTERM stops every process it started (and the
   private PostgreSQL cluster, if it made one): nothing is left listening.
If one service dies, the others are stopped too and the exit status is 1.

A hand-written supervisor rather than honcho: the start has an order
(database, migrations, services, readiness) that a Procfile runner does not
express, and the private PostgreSQL cluster must be stopped with the rest.
"""

import asyncio
import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
from dotenv import dotenv_values

from scripts.postgres import PostgresServer, PostgresUnavailable, find_or_start_postgres
from scripts.services import MPESA_SIMULATOR, ROOT, Service, present_services
from shared.keys import generate_private_key, load_private_key, private_pem, public_pem
from shared.provisioning import create_database
from shared.server import LISTEN_FD

DEV_SECRETS_FILE = ROOT / ".data" / "dev-secrets.env"  # DEV_SECRETS_FILE moves it (tests)
# Generated for development when not set, so that `make run` needs no `.env`: the name
# and the length of the secret (token_urlsafe bytes). ADMIN_PASSWORD is the default
# admin's (ADMIN_EMAIL, admin@example.com unless set), typed by people: shorter.
GENERATED_SECRETS = {
    "MPESA_CALLBACK_SECRET": 48,
    "ADMIN_PASSWORD": 12,
}
# Each process's identity in internal calls (scripts/services.py name -> identity), each
# with its own Ed25519 key in .data/keys/ (docs/internal-api.md).
IDENTITIES = {
    "auth": "auth",
    "product": "product",
    "cart": "cart",
    "order": "order",
    "payment": "payment",
    "gateway": "gateway",
    "console": "admin-console",
}
# The keys only one process may hold: given to it alone.
PRIVATE_KEY_VARIABLES = (
    "JWT_PRIVATE_KEY",
    "JWT_PRIVATE_KEY_FILE",
    "INTERNAL_PRIVATE_KEY",
    "INTERNAL_PRIVATE_KEY_FILE",
)
DEFAULT_ADMIN_EMAIL = "admin@example.com"
MPESA_CREDENTIALS = (
    "MPESA_CONSUMER_KEY",
    "MPESA_CONSUMER_SECRET",
    "MPESA_SHORTCODE",
    "MPESA_PASSKEY",
)
# What the payment service and the simulator both use when no credentials are set
# (the shortcode and passkey are Daraja's public sandbox test values).
SIMULATOR_CREDENTIALS = {
    "MPESA_CONSUMER_KEY": "simulator-consumer-key",
    "MPESA_CONSUMER_SECRET": "simulator-consumer-secret",
    "MPESA_SHORTCODE": "174379",
    "MPESA_PASSKEY": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
}
STOP_TIMEOUT = 15.0
PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>
READY_TIMEOUT = 90.0
_COLOURS = ["36", "33", "35", "32", "34", "31", "96", "93"]


class Output:
    """Writes each process's lines with its name in front, in one stream."""

    def __init__(self, names: list[str]) -> None:
        self.width = max(len(name) for name in [*names, "migrate", "stack"])
        self.colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        self.colours = {name: _COLOURS[i % len(_COLOURS)] for i, name in enumerate(names)}

    def line(self, name: str, text: str) -> None:
        prefix = f"{name:<{self.width}} |"
        if self.colour:
            prefix = f"\033[{self.colours.get(name, '37')}m{prefix}\033[0m"
        sys.stdout.write(f"{prefix} {text.rstrip()}\n")
        sys.stdout.flush()


def load_environment() -> dict[str, str]:
    """`.env` under the process environment (the environment wins)."""
    env = {key: value for key, value in dotenv_values(ROOT / ".env").items() if value is not None}
    env.update(os.environ)
    return env


def is_production(env: Mapping[str, str]) -> bool:
    return "production" in (env.get("ENVIRONMENT"), env.get("NODE_ENV"))


def dev_secrets_file(env: Mapping[str, str]) -> Path:
    return Path(env.get("DEV_SECRETS_FILE") or DEV_SECRETS_FILE)


def stored_development_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """What `.data/dev-secrets.env` holds (nothing when there is no such file)."""
    path = dev_secrets_file(env)
    if not path.exists():
        return {}
    return {name: value for name, value in dotenv_values(path).items() if value}


def store_development_secrets(env: Mapping[str, str], values: Mapping[str, str]) -> None:
    path = dev_secrets_file(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)  # readable by its owner only
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))


def ensure_development_secrets(env: dict[str, str], out: "Output") -> list[str]:
    """Secrets that are not set are generated once and kept in `.data/dev-secrets.env`, so
    tokens stay valid across restarts; so is the password of a default admin
    (admin@example.com unless ADMIN_EMAIL says otherwise), so that development always has
    one. Never in production: there secrets must be set, and no admin is made up. Returns
    the names it filled in."""
    if is_production(env):
        return []
    env["ADMIN_EMAIL"] = env.get("ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL
    missing = [name for name in GENERATED_SECRETS if not env.get(name)]
    if not missing:
        return []
    values = stored_development_secrets(env)
    for name in missing:
        values.setdefault(name, secrets.token_urlsafe(GENERATED_SECRETS[name]))
    store_development_secrets(env, values)
    for name in missing:
        env[name] = values[name]
    out.line(
        "stack", f"development secrets for {', '.join(missing)} are in {dev_secrets_file(env)}"
    )
    return missing


def keys_directory(env: Mapping[str, str]) -> Path:
    """Where `make run` keeps the development keys: `.data/keys/` (next to the secrets)."""
    return dev_secrets_file(env).parent / "keys"


def _private_key_file(path: Path) -> Path:
    """An Ed25519 private key in `path`, made once (readable by its owner only)."""
    if path.exists():
        load_private_key(path.read_text())  # a damaged file stops the start, clearly
        return path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(private_pem(generate_private_key()))
    return path


def ensure_development_keys(env: dict[str, str], out: "Output") -> None:
    """The keys development needs, made once into `.data/keys/` and kept (tokens stay valid
    across restarts): the auth service's user-token key (unless JWT_PRIVATE_KEY[_FILE] is
    set) and every process's internal key, whose public halves every process is given
    (INTERNAL_PUBLIC_KEYS_FILE). Never in production: there each process is given its own
    key by its deployment (compose, Kubernetes)."""
    if is_production(env):
        return
    directory = keys_directory(env)
    made = not directory.exists()
    if not env.get("JWT_PRIVATE_KEY") and not env.get("JWT_PRIVATE_KEY_FILE"):
        env["JWT_PRIVATE_KEY_FILE"] = str(_private_key_file(directory / "jwt-private.pem"))
    public = {
        identity: public_pem(
            load_private_key(
                _private_key_file(directory / f"internal-{identity}.pem").read_text()
            ).public_key()
        )
        for identity in IDENTITIES.values()
    }
    public_file = directory / "internal-public-keys.json"
    public_file.write_text(json.dumps(public, indent=2) + "\n")
    env["INTERNAL_PUBLIC_KEYS_FILE"] = str(public_file)
    env.pop("INTERNAL_PUBLIC_KEYS", None)
    if made:
        out.line("stack", f"development keys (user tokens, each service's own) are in {directory}")


# Worker processes of a service when neither <SERVICE>_WEB_CONCURRENCY nor WEB_CONCURRENCY
# says otherwise: under M-Pesa load the payment service (initiations, callbacks, their
# order updates) keeps one process busy while the machine has CPU to spare
# (docs/operations.md, "Worker processes and memory").
DEFAULT_WORKERS = {"payment": "2"}


def worker_processes(env: Mapping[str, str], service: str) -> str | None:
    """WEB_CONCURRENCY for one service: PAYMENT_WEB_CONCURRENCY=3 (that service alone),
    else WEB_CONCURRENCY (every service), else its default; None: the service's own (1).
    The service checks the value (1 to 64) as it checks WEB_CONCURRENCY."""
    return (
        env.get(f"{service.upper().replace('-', '_')}_WEB_CONCURRENCY")
        or env.get("WEB_CONCURRENCY")
        or DEFAULT_WORKERS.get(service)
    )


def service_environment(env: Mapping[str, str], service: str) -> dict[str, str]:
    """The environment of one process: the common one, with the private keys of others
    taken out and its own internal key put in (development: .data/keys/)."""
    own = {name: value for name, value in env.items() if name not in PRIVATE_KEY_VARIABLES}
    workers = worker_processes(env, service)
    if workers is not None:
        own["WEB_CONCURRENCY"] = workers
    if service == "auth":
        for name in ("JWT_PRIVATE_KEY", "JWT_PRIVATE_KEY_FILE"):
            if env.get(name):
                own[name] = env[name]
    identity = IDENTITIES.get(service)
    if identity is not None and not is_production(env):
        own["INTERNAL_PRIVATE_KEY_FILE"] = str(keys_directory(env) / f"internal-{identity}.pem")
        if not env.get("INTERNAL_PUBLIC_KEYS"):
            own["INTERNAL_PUBLIC_KEYS_FILE"] = str(
                keys_directory(env) / "internal-public-keys.json"
            )
    elif identity is not None:
        for name in ("INTERNAL_PRIVATE_KEY", "INTERNAL_PRIVATE_KEY_FILE"):
            if env.get(name):
                own[name] = env[name]
    return own


def admin_login(env: Mapping[str, str], generated: list[str]) -> str | None:
    """How to log in as the admin `make run` had the auth service create, for the banner."""
    if not env.get("ADMIN_EMAIL") or not env.get("ADMIN_PASSWORD"):
        return None
    if "ADMIN_PASSWORD" in generated:
        where = f"ADMIN_PASSWORD in {dev_secrets_file(env)}"
    else:
        where = "ADMIN_PASSWORD, as you set it"
    return f"{env['ADMIN_EMAIL']}  (password: {where})"


def configure_mpesa(services: list[Service], env: dict[str, str], out: "Output") -> list[Service]:
    """M-Pesa runs against the local simulator when MPESA_ENVIRONMENT=simulator, or when no
    Daraja credentials are set (never in production): it is started, and the payment
    service pointed at it. The callback goes to the gateway's public route unless
    MPESA_CALLBACK_URL says otherwise. Returns the services to start."""
    by_name = {service.name: service for service in services}
    if "gateway" in by_name and not env.get("MPESA_CALLBACK_URL"):
        port = service_port(by_name["gateway"], env)
        env["MPESA_CALLBACK_URL"] = f"http://127.0.0.1:{port}/api/payments/webhook/mpesa"
    production = is_production(env)
    mode = env.get("MPESA_ENVIRONMENT", "")
    has_credentials = all(env.get(name) for name in MPESA_CREDENTIALS)
    simulator = by_name.get(MPESA_SIMULATOR)
    use_simulator = simulator is not None and (
        mode == "simulator" or (not has_credentials and not production and not mode)
    )
    if not use_simulator:
        return [service for service in services if service.name != MPESA_SIMULATOR]
    url = f"http://127.0.0.1:{service_port(simulator, env)}"
    if mode != "simulator":
        out.line("stack", "no M-Pesa credentials set: using the local M-Pesa simulator")
    out.line("stack", f"M-Pesa: simulator at {url} (MPESA_ENVIRONMENT=simulator), not Safaricom")
    env["MPESA_ENVIRONMENT"] = "simulator"
    env["MPESA_BASE_URL"] = url
    for name, value in SIMULATOR_CREDENTIALS.items():
        if not env.get(name):
            env[name] = value
    return services


def skipped_services(env: Mapping[str, str]) -> set[str]:
    """STACK_SKIP=order,...: services whose databases are prepared and whose URLs the others
    are given, but that are not started (you run one yourself: a debugger, a restart test)."""
    return {name.strip() for name in env.get("STACK_SKIP", "").split(",") if name.strip()}


def service_port(service: Service, env: Mapping[str, str]) -> int:
    return int(env.get(service.port_env) or service.default_port)


def take_listening_sockets(services: list[Service], env: dict[str, str]) -> dict[str, int]:
    """The sockets handed over in `<NAME>_LISTEN_FD`, by service name: each service's
    port becomes its socket's (and the variables are not passed on)."""
    descriptors: dict[str, int] = {}
    for service in services:
        value = env.pop(service.listen_fd_env, None)
        if not value:
            continue
        descriptor = int(value)
        sock = socket.socket(fileno=descriptor)
        env[service.port_env] = str(sock.getsockname()[1])
        sock.detach()  # the descriptor stays open for the service
        descriptors[service.name] = descriptor
    return descriptors


def database_urls(
    services: list[Service], env: Mapping[str, str], out: Output
) -> tuple[dict[str, str], PostgresServer | None]:
    urls: dict[str, str] = {}
    server: PostgresServer | None = None
    for service in services:
        if not service.database_env:
            continue
        url = env.get(service.database_env)
        if not url:
            if server is None:
                server = find_or_start_postgres(lambda text: out.line("stack", text))
                out.line("stack", f"using {server.description}")
            url = server.url(service.default_database)
        urls[service.database_env] = url
    return urls, server


async def prepare_databases(services: list[Service], env: dict[str, str], out: Output) -> None:
    for service in services:
        if not service.database_env:
            continue
        url = env[service.database_env]
        if await create_database(url, if_missing=True):
            out.line("stack", f"created database for {service.name}")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(service.path / "alembic.ini"),
            "upgrade",
            "head",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        async for raw in process.stdout:
            out.line("migrate", f"{service.name}: {raw.decode(errors='replace')}")
        if await process.wait() != 0:
            raise RuntimeError(f"migrations of {service.name} failed")


async def _pump(name: str, stream: asyncio.StreamReader, out: Output) -> None:
    async for raw in stream:
        out.line(name, raw.decode(errors="replace"))


async def _wait_until_healthy(services: list[Service], env: Mapping[str, str]) -> bool:
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
    async with httpx.AsyncClient(timeout=2) as client:
        for service in services:
            url = f"http://127.0.0.1:{service_port(service, env)}/health"
            while True:
                try:
                    if (await client.get(url)).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    return False
                await asyncio.sleep(0.2)
    return True


def _die_with_this_supervisor() -> None:
    """Runs in the child before it starts: on Linux, the kernel sends it SIGTERM if this
    supervisor dies without stopping it (kill -9), so no service outlives `make run`."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(process: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


async def supervise(
    services: list[Service],
    env: dict[str, str],
    out: Output,
    admin: str | None = None,
    listen_fds: Mapping[str, int] | None = None,
) -> int:
    """`admin`: the admin login line of the banner (admin_login); `listen_fds`: the
    sockets handed over for some services (take_listening_sockets)."""
    listen_fds = listen_fds or {}
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)

    processes: dict[str, asyncio.subprocess.Process] = {}
    pumps: list[asyncio.Task] = []
    exit_code = 0
    try:
        for service in services:
            descriptor = listen_fds.get(service.name)
            # Its own key, no other process's (development: .data/keys/).
            own_env = service_environment(env, service.name)
            service_env, pass_fds = own_env, ()
            if descriptor is not None:
                service_env, pass_fds = {**own_env, LISTEN_FD: str(descriptor)}, (descriptor,)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                # No column tables in code objects (tracebacks lose their ^^^ marks): ~0.8
                # MiB less a process (docs/operations.md, "Worker processes and memory").
                "-X",
                "no_debug_ranges",
                "-m",
                service.package,
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: we stop it, children included
                preexec_fn=_die_with_this_supervisor,
                env=service_env,
                pass_fds=pass_fds,
            )
            if descriptor is not None:
                os.close(descriptor)  # the service's now: its port closes when it exits
            processes[service.name] = process
            assert process.stdout is not None
            pumps.append(asyncio.create_task(_pump(service.name, process.stdout, out)))
            out.line(
                "stack",
                f"started {service.name} (pid {process.pid}) on port {service_port(service, env)}",
            )

        exits = {asyncio.create_task(p.wait()): name for name, p in processes.items()}
        stop_wait = asyncio.create_task(stop_requested.wait())
        ready = asyncio.create_task(_wait_until_healthy(services, env))
        pending: set[asyncio.Task] = {stop_wait, ready, *exits}
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if ready in done:
                if ready.result():
                    _print_banner(services, env, out, admin)
                else:
                    out.line("stack", "some services are not healthy yet; see their logs above")
            if stop_wait in done:
                out.line("stack", "stopping")
                break
            exited = [exits[task] for task in done if task in exits]
            if exited:
                name = exited[0]
                out.line(
                    "stack",
                    f"{name} exited with code {processes[name].returncode}; stopping everything",
                )
                exit_code = 1
                break
        for task in pending:
            task.cancel()
    finally:
        await _stop_all(processes, out)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await asyncio.gather(*pumps, return_exceptions=True)
    return exit_code


async def _stop_all(processes: dict[str, asyncio.subprocess.Process], out: Output) -> None:
    running = {name: p for name, p in processes.items() if p.returncode is None}
    for process in running.values():
        _signal_group(process, signal.SIGTERM)
    try:
        await asyncio.wait_for(
            asyncio.gather(*(p.wait() for p in running.values())), timeout=STOP_TIMEOUT
        )
    except TimeoutError:
        for name, process in running.items():
            if process.returncode is None:
                out.line("stack", f"{name} did not stop in {STOP_TIMEOUT:.0f}s; killing it")
                _signal_group(process, signal.SIGKILL)
        await asyncio.gather(*(p.wait() for p in running.values()))
    # Stragglers in a group whose leader has exited (a worker a service forked).
    for process in processes.values():
        _signal_group(process, signal.SIGKILL)


def _print_banner(
    services: list[Service], env: Mapping[str, str], out: Output, admin: str | None = None
) -> None:
    by_name = {service.name: service for service in services}
    out.line("stack", "all services are up")
    if "gateway" in by_name:
        gateway = f"http://localhost:{service_port(by_name['gateway'], env)}"
        out.line("stack", f"  API gateway:  {gateway}   (health: {gateway}/health)")
        out.line("stack", f"  API docs:     {gateway}/docs   (the whole public API)")
        if "console" in by_name:
            out.line("stack", f"  Admin console: {gateway}/admin/   (sign in as the admin below)")
    out.line("stack", "  each service's own docs:")
    for service in services:
        if service.name not in ("gateway", "console"):
            port = service_port(service, env)
            out.line("stack", f"    {service.name + ':':<16} http://localhost:{port}/docs")
    if admin:
        out.line("stack", f"  admin login:  {admin}")
    if MPESA_SIMULATOR in by_name:
        from mpesa_simulator.numbers import TEST_NUMBERS

        out.line("stack", "  M-Pesa simulator test phone numbers (any other number pays):")
        for phone, (description, _) in TEST_NUMBERS.items():
            out.line("stack", f"    {phone}  {description}")
    out.line("stack", "demo data: make seed   |   press Ctrl-C to stop")


def child_environment(
    services: list[Service], env: dict[str, str], urls: dict[str, str]
) -> dict[str, str]:
    child = dict(env)
    child.update(urls)
    for service in services:
        port = service_port(service, env)
        child[service.port_env] = str(port)
        # The processes reach each other where this supervisor started them.
        child[service.url_env] = f"http://127.0.0.1:{port}"
    child.setdefault("PYTHONUNBUFFERED", "1")
    return child


def main(argv: list[str] | None = None) -> int:
    migrate_only = "--migrate-only" in (argv if argv is not None else sys.argv[1:])
    services = present_services()
    env = load_environment()
    out = Output([service.name for service in services])
    generated = ensure_development_secrets(env, out)
    listen_fds = take_listening_sockets(services, env)  # first: the ports are the sockets'
    ensure_development_keys(env, out)
    services = configure_mpesa(services, env, out)
    skipped = skipped_services(env)
    server: PostgresServer | None = None
    try:
        try:
            urls, server = database_urls(services, env, out)
        except PostgresUnavailable as exc:
            out.line("stack", str(exc))
            return 1
        child_env = child_environment(services, env, urls)
        try:
            asyncio.run(prepare_databases(services, child_env, out))
        except (RuntimeError, OSError) as exc:
            out.line("stack", f"cannot prepare the databases: {exc}")
            return 1
        if migrate_only:
            out.line("stack", "databases ready, migrations applied")
            return 0
        started = [service for service in services if service.name not in skipped]
        for name in set(listen_fds) - {service.name for service in started}:
            os.close(listen_fds.pop(name))  # not started here: nothing is to listen on it
        for name in sorted(skipped):
            out.line("stack", f"not starting {name} (STACK_SKIP): run it yourself on its port")
        admin = admin_login(env, generated)
        return asyncio.run(supervise(started, child_env, out, admin, listen_fds))
    except KeyboardInterrupt:
        return 130
    finally:
        if server is not None and server.stop is not None:
            out.line("stack", "stopping the private PostgreSQL cluster")
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
