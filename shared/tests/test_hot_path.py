"""The busiest one-row reads, with asyncpg itself (shared.db.HotPath), against the real
PostgreSQL: a row or None, and a read after its connections died answered on fresh ones."""

import asyncio

import asyncpg
import pytest

from shared.database_errors import connection_was_lost
from shared.db import HotPath
from shared.settings import database_url_for_asyncpg


@pytest.fixture
async def reads(postgres_url):
    reads = HotPath(postgres_url, max_size=2)
    yield reads
    await reads.close()


async def test_a_read_gives_the_row_or_none(reads):
    row = await reads.fetchrow("SELECT $1::int AS answer", 42)
    assert row is not None and row["answer"] == 42
    assert await reads.fetchrow("SELECT 1 WHERE $1::int < 0", 5) is None


async def test_reads_after_their_connections_died_are_answered_on_fresh_ones(reads, postgres_url):
    # Both connections of the pool opened (two reads at once), and their server processes.
    pids = await asyncio.gather(
        *(reads.fetchrow("SELECT pg_backend_pid() AS pid, pg_sleep(0.2)") for _ in range(2))
    )
    backends = {row["pid"] for row in pids if row is not None}
    assert len(backends) == 2

    # What a PostgreSQL restart does to them.
    dsn = database_url_for_asyncpg(postgres_url).replace("+asyncpg", "")
    admin = await asyncpg.connect(dsn)
    try:
        for pid in backends:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()

    # At most one read meets a dead connection, and says so (shared.read_retry then runs
    # it again): the pool has replaced the other dead one by then.
    outcomes: list[object] = []
    for _ in range(3):
        try:
            row = await reads.fetchrow("SELECT 1 AS one")
            outcomes.append(row["one"] if row is not None else None)
        except Exception as exc:
            assert connection_was_lost(exc), repr(exc)
            outcomes.append("lost")
    assert outcomes.count("lost") <= 1, outcomes
    assert outcomes[-1] == 1, outcomes


async def test_a_transaction_commits_its_statements_or_none_of_them(reads):
    await reads.execute("CREATE TABLE IF NOT EXISTS hot_path_ledger (entry text PRIMARY KEY)")
    try:
        async with reads.transaction() as connection:
            await connection.execute("INSERT INTO hot_path_ledger VALUES ('kept')")
        with pytest.raises(asyncpg.UniqueViolationError):
            async with reads.transaction() as connection:
                await connection.execute("INSERT INTO hot_path_ledger VALUES ('undone')")
                await connection.execute("INSERT INTO hot_path_ledger VALUES ('kept')")
        rows = await reads.fetch("SELECT entry FROM hot_path_ledger ORDER BY entry")
        assert [row["entry"] for row in rows] == ["kept"]
        # The connections went back clean: none is left in a transaction.
        for _ in range(2):
            async with reads.connection() as connection:
                assert not connection.is_in_transaction()
    finally:
        await reads.execute("DROP TABLE hot_path_ledger")


def test_a_direct_statement_gives_its_parameters_in_their_order():
    from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, update

    from shared.db import DirectStatement

    table = Table("things", MetaData(), Column("id", Integer), Column("name", String))
    new = DirectStatement.of(insert(table), column_keys=["id", "name"])
    assert new.sql == "INSERT INTO things (id, name) VALUES ($1::INTEGER, $2::VARCHAR)"
    assert new.args(name="kettle", id=7) == [7, "kettle"]
    renamed = DirectStatement.of(
        update(table).where(table.c.id == bindparam("thing_id")).values(name=bindparam("new_name"))
    )
    assert renamed.names == ("new_name", "thing_id")
    assert renamed.args(thing_id=7, new_name="pot") == ["pot", 7]
