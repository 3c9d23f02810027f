"""What a service's container runs (`python -m shared.entrypoint <package>` in the
service's folder), with the real auth service and a real database: migrations only
when RUN_MIGRATIONS=true, or alone with --migrate-only (the Kubernetes Job); the
health probe of the images (`python -m shared.healthcheck`)."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from scripts.services import ROOT
from shared.provisioning import create_database, drop_database
from shared.testing import TestKeys, handed_over, listening_socket, refused_port

pytestmark = pytest.mark.e2e

AUTH_DIR = ROOT / "auth-service"


@pytest.fixture
def fresh_database(postgres_url):
    url = make_url(postgres_url).set(database=f"entry_{uuid.uuid4().hex[:10]}")
    rendered = url.render_as_string(hide_password=False)
    asyncio.run(create_database(rendered))
    yield rendered
    asyncio.run(drop_database(rendered))


def tables(url: str) -> set[str]:
    async def query() -> set[str]:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(dsn)
        try:
            rows = await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        finally:
            await connection.close()
        return {row["tablename"] for row in rows}

    return asyncio.run(query())


def environment(database_url: str, **values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    env.update(
        AUTH_DATABASE_URL=database_url,
        **TestKeys().settings_for("auth"),
        HOST="127.0.0.1",
        **values,
    )
    return env


def run_until_healthy(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """The entrypoint on a socket bound here (handed over: it stays open across the
    entrypoint's exec of the service)."""
    with listening_socket() as sock:
        process = subprocess.Popen(
            [sys.executable, "-m", "shared.entrypoint", "auth_service"],
            cwd=AUTH_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **handed_over(sock, env),
        )
        port = sock.getsockname()[1]
    probe = [sys.executable, "-m", "shared.healthcheck", f"http://127.0.0.1:{port}/health"]
    deadline = time.monotonic() + 60
    try:
        while subprocess.run(probe, env=env, check=False).returncode != 0:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "never healthy"
            time.sleep(0.2)
        ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
        assert ready.status_code == 200
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    return process, output


def messages(output: str) -> list[str]:
    found = []
    for line in output.splitlines():
        try:
            found.append(json.loads(line)["message"])
        except (ValueError, KeyError):
            continue
    return found


def test_a_service_starts_without_migrating_unless_asked(fresh_database):
    _, output = run_until_healthy(environment(fresh_database))
    assert "applying migrations" not in messages(output)
    assert "users" not in tables(fresh_database)
    assert "Application startup complete." in messages(output)


def test_run_migrations_true_migrates_then_serves_in_the_same_process(fresh_database):
    process, output = run_until_healthy(environment(fresh_database, RUN_MIGRATIONS="true"))
    logged = messages(output)
    assert logged.index("migrations applied") < logged.index("Application startup complete.")
    assert {"users", "alembic_version"} <= tables(fresh_database)
    # exec: the process Docker started (and signals) is the service itself.
    assert f"Started server process [{process.pid}]" in logged


def test_migrate_only_is_the_migration_job(fresh_database):
    result = subprocess.run(
        [sys.executable, "-m", "shared.entrypoint", "--migrate-only"],
        cwd=AUTH_DIR,
        env=environment(fresh_database),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"users", "alembic_version"} <= tables(fresh_database)
    assert "migrations applied" in messages(result.stdout)


def test_a_failed_migration_stops_the_start_with_an_error():
    with refused_port() as port:
        result = run_entrypoint_against(f"postgresql://postgres@127.0.0.1:{port}/nowhere")
    assert result.returncode == 1
    assert "migrations failed" in messages(result.stdout)
    assert "Application startup complete." not in messages(result.stdout)


def run_entrypoint_against(unreachable: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "shared.entrypoint", "auth_service"],
        cwd=AUTH_DIR,
        env=environment(unreachable, RUN_MIGRATIONS="true"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_healthcheck_fails_when_nothing_answers():
    with refused_port() as port:
        probe = [sys.executable, "-m", "shared.healthcheck", f"http://127.0.0.1:{port}/health"]
        assert subprocess.run(probe, check=False).returncode == 1
    usage = subprocess.run([sys.executable, "-m", "shared.healthcheck"], check=False)
    assert usage.returncode == 2


def test_waiting_for_migrations_ends_once_the_job_has_run(fresh_database):
    """The Kubernetes init container: fails (times out) before the migration Job ran,
    succeeds after."""
    wait = [sys.executable, "-m", "shared.entrypoint", "--wait-for-migrations", "--timeout", "0"]
    env = environment(fresh_database)
    before = subprocess.run(
        wait, cwd=AUTH_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert before.returncode == 1
    assert "gave up waiting for migrations" in messages(before.stdout)
    migrate = [sys.executable, "-m", "shared.entrypoint", "--migrate-only"]
    subprocess.run(migrate, cwd=AUTH_DIR, env=env, capture_output=True, timeout=120, check=True)
    after = subprocess.run(
        wait, cwd=AUTH_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert after.returncode == 0, after.stdout
    assert "database schema is up to date" in messages(after.stdout)
