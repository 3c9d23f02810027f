"""A throwaway `make run` (`python -m scripts.stack`) for the end-to-end tests, `make fuzz`
and `make bench`: fresh databases, fresh secrets, and every service's port a socket
bound here and handed over to the supervisor (`<NAME>_LISTEN_FD`, scripts/stack.py),
never a port chosen free and bound later by another process.

    environment = stack_environment(postgres_url, "e2e", RATE_LIMIT_ENABLED="false")
    process = environment.spawn(stdout=subprocess.PIPE, ...)
    ...
    environment.close()  # the ports of the services it started itself (STACK_SKIP)
    drop_stack_databases(environment.env)

A service named in STACK_SKIP keeps its port reserved here (shared.testing.ReservedPort):
the caller starts it, and starts it again, with `start_service` on that port; while it is
down, connections to it are refused, and nothing else can take the port meanwhile.
"""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from scripts.services import ROOT, present_services
from scripts.stack import service_environment
from shared.provisioning import drop_database
from shared.testing import ReservedPort, handed_over, random_secret


@dataclass
class StackEnvironment:
    env: dict[str, str]
    ports: dict[str, int]
    # The ports not handed over to the supervisor, by service name.
    reserved: dict[str, ReservedPort]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def spawn(self, **popen: Any) -> subprocess.Popen:
        """Starts the supervisor on the sockets of the services it starts (STACK_SKIP
        aside); they are its own from then on (closed here)."""
        skipped = {name.strip() for name in self.env.get("STACK_SKIP", "").split(",")}
        handed = {
            name: reserved.listening()
            for name, reserved in self.reserved.items()
            if name not in skipped
        }
        env = dict(self.env)
        for service in present_services():
            if service.name in handed:
                env[service.listen_fd_env] = str(handed[service.name].fileno())
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.stack"],
            cwd=ROOT,
            env=env,
            pass_fds=[sock.fileno() for sock in handed.values()],
            start_new_session=True,
            **popen,
        )
        for name, sock in handed.items():
            sock.close()  # the supervisor's now: the port closes when the service exits
            self.reserved.pop(name).close()
        return process

    def service_env(self, **overrides: str) -> dict[str, str]:
        """The environment of a service started outside the supervisor: the others'
        URLs as the supervisor gives them."""
        return {
            **self.env,
            **{s.url_env: self.url(s.name) for s in present_services()},
            "PYTHONUNBUFFERED": "1",
            **overrides,
        }

    def start_service(self, name: str, env: dict[str, str], **popen: Any) -> subprocess.Popen:
        """`python -m <package>` of a STACK_SKIP service, on its reserved port, with its
        own key (of the supervisor's .data/keys/) and no other process's."""
        [service] = [s for s in present_services() if s.name == name]
        with self.reserved[name].listening() as sock:
            return subprocess.Popen(
                [sys.executable, "-m", service.package],
                cwd=ROOT,
                start_new_session=True,
                **handed_over(sock, service_environment(env, name)),
                **popen,
            )

    def close(self) -> None:
        for reserved in self.reserved.values():
            reserved.close()
        self.reserved.clear()


def stack_environment(
    postgres_url: str, database_prefix: str = "e2e", **overrides: str
) -> StackEnvironment:
    """Sockets, fresh database names (`<prefix>_<service>_<suffix>`) and secrets, then
    `overrides`."""
    services = present_services()
    reserved = {service.name: ReservedPort() for service in services}
    ports = {name: port.port for name, port in reserved.items()}
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    suffix = uuid.uuid4().hex[:8]
    for service in services:
        # Also for a STACK_SKIP service: the supervisor tells the others where it is.
        env[service.port_env] = str(ports[service.name])
        if service.database_env:
            url = make_url(postgres_url).set(database=f"{database_prefix}_{service.name}_{suffix}")
            env[service.database_env] = url.render_as_string(hide_password=False)
    defaults = dict(
        MPESA_CALLBACK_SECRET=random_secret(),
        GATEWAY_HOST="127.0.0.1",
        NO_COLOR="1",
        # What `make run` generates in development (a default admin's password, the keys
        # in keys/...) goes here, never into the checkout's .data/.
        DEV_SECRETS_FILE=str(
            Path(tempfile.gettempdir()) / f"{database_prefix}-{suffix}" / "dev-secrets.env"
        ),
        STRIPE_SECRET_KEY=f"sk_test_{database_prefix}",
        STRIPE_WEBHOOK_SECRET="whsec_" + random_secret(),
        # No Stripe unless a caller starts a fake one (scripts/fake_stripe.py): a name
        # that never resolves (RFC 6761), not a port something else might listen on.
        STRIPE_API_BASE="http://stripe-not-started.invalid",
        # One process per service: a test that freezes or kills "the payment service"
        # means one process (`make run` gives it two: scripts.stack.DEFAULT_WORKERS).
        PAYMENT_WEB_CONCURRENCY="1",
    )
    env.update({**defaults, **overrides})
    return StackEnvironment(env, ports, reserved)


def drop_stack_databases(env: dict[str, str]) -> None:
    """The databases and the development secrets and keys of a stack_environment."""
    for service in present_services():
        if service.database_env:
            asyncio.run(drop_database(env[service.database_env]))
    # What the stack generated: its secrets file and its keys (keys/), in a folder of its own.
    shutil.rmtree(Path(env["DEV_SECRETS_FILE"]).parent, ignore_errors=True)
