"""The system in containers: images built from the one Dockerfile, run by Docker Compose
with the repository's own compose files, used through the gateway on localhost:5000.

`make compose-test` runs these (marked `compose`, left out of `make test`): it sets up
what is missing first (`python -m scripts.containers`: the engine, Compose, base images).
The stacks run as the Compose project `ecommerce-compose-test`, never `ecommerce`, so
that `down -v` cannot touch a developer's own `make up` data; they publish the seed's
ports (5000, 3001-3005, 3010), which must be free; two runs on one machine take turns
(a lock file in the temporary directory). Figures (image sizes, build and
start times) and the flow's transcript land in `.test-output/compose/`.
"""

import fcntl
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from scripts.containers import SetupError, set_up
from scripts.services import ROOT

PROJECT = "ecommerce-compose-test"
DEV_FILE = ROOT / "docker-compose.yml"
PROD_FILE = ROOT / "docker-compose.prod.yml"
GATEWAY = "http://127.0.0.1:5000"
OUTPUT = Path(os.environ.get("COMPOSE_TEST_OUTPUT") or ROOT / ".test-output" / "compose")
ADMIN = {"email": "admin@example.com", "password": "compose-admin-password"}
# Where the official images' variables and the project's settings may leak in from a
# developer's shell: compose reads them, so the tests name their own.
_COMPOSE_VARIABLES = (
    "JWT_PRIVATE_KEY",
    "INTERNAL_PUBLIC_KEYS",
    "AUTH_INTERNAL_PRIVATE_KEY",
    "PRODUCT_INTERNAL_PRIVATE_KEY",
    "CART_INTERNAL_PRIVATE_KEY",
    "ORDER_INTERNAL_PRIVATE_KEY",
    "PAYMENT_INTERNAL_PRIVATE_KEY",
    "GATEWAY_INTERNAL_PRIVATE_KEY",
    "ADMIN_CONSOLE_INTERNAL_PRIVATE_KEY",
    "MPESA_CALLBACK_SECRET",
    "POSTGRES_PASSWORD",
    "POSTGRES_USER",
    "ENVIRONMENT",
    "IMAGE_TAG",
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    compose_dir = Path(__file__).parent
    for item in items:
        if compose_dir in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.compose)


def figures_file() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT / "figures.json"


def record_figure(name: str, value: object) -> None:
    """Adds a figure to .test-output/compose/figures.json (the note's numbers)."""
    path = figures_file()
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures[name] = value
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"[figure] {name}: {value}", flush=True)


@dataclass
class ComposeProject:
    """One Compose project of the repository's files, driven by the real CLI."""

    command: list[str]
    files: list[Path]
    env: dict[str, str]
    name: str = PROJECT
    extra_up: list[str] = field(default_factory=list)
    # Where `down` first saves every container's log (down -v deletes them).
    logs_file: Path | None = None

    def base_command(self) -> list[str]:
        command = [*self.command, "--project-name", self.name, "--project-directory", str(ROOT)]
        for path in self.files:
            command += ["--file", str(path)]
        return command

    def run(
        self, *args: str, check: bool = True, timeout: float = 900, env: dict | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.base_command(), *args],
            env={**self.env, **(env or {})},
            cwd=ROOT,
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"docker compose {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def build(self) -> float:
        started = time.monotonic()
        self.run("build", timeout=1800)
        return time.monotonic() - started

    def up(self, *args: str) -> float:
        """`up --detach --wait`: returns the seconds until every container is healthy
        (or, for the migration jobs, exited 0)."""
        started = time.monotonic()
        result = self.run("up", "--detach", "--wait", *args, check=False, timeout=900)
        if result.returncode != 0:
            logs = self.run("logs", "--no-color", "--tail", "40", check=False).stdout
            pytest.fail(f"up --wait failed:\n{result.stderr[-4000:]}\n--- logs ---\n{logs[-8000:]}")
        return time.monotonic() - started

    def down(self) -> None:
        if self.logs_file is not None and self.run("ps", "--all", "--quiet").stdout.strip():
            logs = self.run("logs", "--no-color", "--timestamps", check=False)
            self.logs_file.parent.mkdir(parents=True, exist_ok=True)
            self.logs_file.write_text(logs.stdout + logs.stderr)
        self.run("down", "--volumes", "--remove-orphans", "--timeout", "20", check=False)

    def container_ids(self, service: str) -> list[str]:
        return self.run("ps", "--quiet", service).stdout.split()

    def exec(self, service: str, *command: str, index: int = 1) -> str:
        return self.run("exec", "-T", "--index", str(index), service, *command).stdout

    def sql(self, database_service: str, database: str, query: str) -> list[list[str]]:
        """Rows of a query, run with psql inside that database's container."""
        out = self.exec(
            database_service, "psql", "-U", "postgres", "-d", database, "-AtF", "\t", "-c", query
        )
        return [line.split("\t") for line in out.splitlines() if line]

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes of the project that still exist."""
        label = f"label=com.docker.compose.project={self.name}"
        found = {}
        for kind, listing in (
            ("containers", ["docker", "ps", "--all", "--quiet", "--filter", label]),
            ("networks", ["docker", "network", "ls", "--quiet", "--filter", label]),
            ("volumes", ["docker", "volume", "ls", "--quiet", "--filter", label]),
        ):
            out = subprocess.run(listing, capture_output=True, text=True, check=True).stdout
            found[kind] = out.split()
        return found


@pytest.fixture(scope="session")
def one_run_per_machine() -> Iterator[None]:
    """The project name, the published ports and the image tags are the machine's: a
    second run (another checkout) would `down` this one's stacks. It waits here instead."""
    path = Path(tempfile.gettempdir()) / f"{PROJECT}.lock"
    with path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"\n>> another compose test run holds {path}: waiting for it", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def docker_setup(one_run_per_machine) -> tuple[list[str], dict[str, str]]:
    try:
        return set_up()
    except SetupError as error:
        pytest.fail(f"Docker is not available: {error}")


@pytest.fixture(scope="session", autouse=True)
def prune_replaced_images(docker_setup) -> Iterator[None]:
    """Each build replaces the project's images; the replaced ones (dangling) go at the
    end. The current images and the build cache stay for the next run."""
    yield
    subprocess.run(
        [
            "docker",
            "image",
            "prune",
            "--force",
            "--filter",
            f"label=com.docker.compose.project={PROJECT}",
        ],
        capture_output=True,
        check=False,
    )


@pytest.fixture(scope="session")
def compose_env(docker_setup) -> dict[str, str]:
    _, images = docker_setup
    env = {k: v for k, v in os.environ.items() if k not in _COMPOSE_VARIABLES}
    env.update(images)
    env.update(
        # Compose's Bake builder needs buildx; its built-in BuildKit client does not.
        COMPOSE_BAKE=env.get("COMPOSE_BAKE", "false"),
        ADMIN_EMAIL=ADMIN["email"],
        ADMIN_PASSWORD=ADMIN["password"],
    )
    return env


@pytest.fixture(scope="session")
def project_factory(docker_setup, compose_env):
    command, _ = docker_setup

    def make(files: Sequence[Path], **env: str) -> ComposeProject:
        return ComposeProject(command, list(files), {**compose_env, **env})

    return make


@pytest.fixture(scope="session")
def built_images(project_factory) -> dict[str, float]:
    """Every image of the development file, built once for the session."""
    project = project_factory([DEV_FILE])
    seconds = project.build()
    record_figure("build_seconds", round(seconds, 1))
    return {"seconds": seconds}


@contextmanager
def running(project: ComposeProject, *up_args: str, figure: str) -> Iterator[ComposeProject]:
    """The project up (healthy) for the block, then `down --volumes`, whatever happens.
    Every container's log is kept in .test-output/compose/<dev|prod|scale>.log (by the
    first `down`, a test's or this one's): a failure seen through the gateway is
    explained by a service's log."""
    project.down()  # what an interrupted earlier run left
    project.logs_file = OUTPUT / f"{figure.removesuffix('_up_wait_seconds')}.log"
    try:
        record_figure(figure, round(project.up(*up_args), 1))
        yield project
    finally:
        project.down()


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: httpx.Client, email: str, password: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return bearer(response.json()["token"])
