"""`make run` / `make test` find PostgreSQL, or make a private cluster, or say what to do."""

import asyncio
import shutil
import uuid

import asyncpg
import pytest

from scripts import postgres
from scripts.services import ROOT
from shared.provisioning import create_database
from shared.testing import listening_socket, refused_port


@pytest.fixture
def nothing_on_the_default_port(monkeypatch):
    """The default port is one where connections are refused (bound here, not listening)."""
    with refused_port() as port:
        monkeypatch.setattr(postgres, "DEFAULT_PORT", port)
        yield


@pytest.mark.usefixtures("nothing_on_the_default_port")
def test_a_private_cluster_is_made_when_nothing_answers_on_the_default_port(monkeypatch):
    private_dir = ROOT / ".data" / f"test-postgres-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(postgres, "PRIVATE_DIR", private_dir)
    # Any free port (PostgreSQL binds its own): the first one offered is taken meanwhile
    # (by this test), so the server tries another.
    monkeypatch.setenv("PRIVATE_POSTGRES_PORT", "0")
    taken = listening_socket()
    taken_port = taken.getsockname()[1]
    offered = iter([taken_port])
    choose = postgres._port_nothing_listens_on
    monkeypatch.setattr(
        postgres, "_port_nothing_listens_on", lambda: next(offered, None) or choose()
    )
    messages: list[str] = []
    with taken:
        server = postgres.find_or_start_postgres(messages.append)
    private_port = server.port
    try:
        assert private_port not in (0, taken_port)
        assert any("was taken before the server bound it" in message for message in messages)
        assert server.stop is not None
        url = server.url("e2e_private_check")
        assert asyncio.run(create_database(url, if_missing=True)) is True
        assert asyncio.run(create_database(url, if_missing=True)) is False

        async def version() -> str:
            connection = await asyncpg.connect(
                host="127.0.0.1", port=private_port, user="postgres", database="e2e_private_check"
            )
            try:
                return await connection.fetchval("SHOW server_version")
            finally:
                await connection.close()

        assert asyncio.run(version())
        assert any("private cluster" in message for message in messages)
    finally:
        if server.stop:
            server.stop()
        shutil.rmtree(private_dir, ignore_errors=True)

    assert not asyncio.run(postgres._can_connect("127.0.0.1", private_port, "postgres", None))


@pytest.mark.usefixtures("nothing_on_the_default_port")
def test_with_no_server_and_no_binaries_the_message_says_what_to_do(monkeypatch):
    monkeypatch.setattr(postgres, "_server_bindir", lambda: None)
    with pytest.raises(postgres.PostgresUnavailable) as raised:
        postgres.find_or_start_postgres(lambda _: None)
    message = str(raised.value)
    assert "apt-get install postgresql" in message
    assert "make up" in message
    assert "AUTH_DATABASE_URL" in message
