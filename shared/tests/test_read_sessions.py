"""A read (GET, HEAD) runs its statements without a transaction around them: one round trip
per query instead of three; a write gets one transaction, and a read may not write."""

from types import SimpleNamespace

import pytest
from sqlalchemy import text

from shared.db import create_engine, create_read_sessionmaker, create_sessionmaker, get_session
from shared.state import DatabaseState

# The same transaction id twice when both statements share a transaction.
TRANSACTION_ID = text("SELECT txid_current()")


@pytest.fixture
async def engine(postgres_url):
    engine = create_engine(postgres_url)
    yield engine
    await engine.dispose()


def request_for(method: str, engine) -> SimpleNamespace:
    state = DatabaseState(
        settings=None,
        services=None,
        user_status=None,
        user_token_keys=None,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        read_sessionmaker=create_read_sessionmaker(engine),
        hot_path=None,
    )
    return SimpleNamespace(method=method, app=SimpleNamespace(state=SimpleNamespace(service=state)))


async def statements_in_a_transaction(method: str, engine) -> bool:
    sessions = get_session(request_for(method, engine))
    session = await anext(sessions)
    first = (await session.execute(TRANSACTION_ID)).scalar_one()
    second = (await session.execute(TRANSACTION_ID)).scalar_one()
    with pytest.raises(StopAsyncIteration):
        await anext(sessions)
    return first == second


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_a_read_runs_each_statement_on_its_own(engine, method):
    assert await statements_in_a_transaction(method, engine) is False


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_a_write_runs_in_one_transaction(engine, method):
    assert await statements_in_a_transaction(method, engine) is True


async def test_a_reads_session_refuses_to_write(engine):
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE IF NOT EXISTS read_only_probe (id int)"))
    try:
        from sqlalchemy import Column, Integer
        from sqlalchemy.orm import DeclarativeBase

        class Base(DeclarativeBase):
            pass

        class Probe(Base):
            __tablename__ = "read_only_probe"
            id = Column(Integer, primary_key=True)

        async with create_read_sessionmaker(engine)() as session:
            session.add(Probe(id=1))
            with pytest.raises(RuntimeError, match="may not write"):
                await session.flush()
        async with engine.connect() as connection:
            count = await connection.execute(text("SELECT count(*) FROM read_only_probe"))
            assert count.scalar_one() == 0
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE read_only_probe"))
