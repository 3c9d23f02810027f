"""The outbox against a real database: at-least-once, retries with backoff, and two
deliverers at once never send the same message twice in one lease."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import DeclarativeBase

from shared.db import create_engine, create_sessionmaker, new_metadata
from shared.outbox import OutboxMessageMixin, backlog, backoff, deliver_due, enqueue
from shared.provisioning import create_database, drop_database


class Base(DeclarativeBase):
    metadata = new_metadata()


class Message(OutboxMessageMixin, Base):
    __tablename__ = "outbox_messages"


@pytest.fixture(scope="module")
async def sessionmaker(postgres_url):
    import uuid

    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(database=f"test_outbox_{uuid.uuid4().hex[:8]}")
    url = url.render_as_string(hide_password=False)
    await create_database(url)
    engine = create_engine(url)
    async with engine.begin() as connection:
        # A library test table; services make theirs with Alembic migrations.
        await connection.run_sync(Base.metadata.create_all)
    yield create_sessionmaker(engine)
    await engine.dispose()
    await drop_database(url)


@pytest.fixture(autouse=True)
async def _empty(sessionmaker):
    yield
    async with sessionmaker() as session, session.begin():
        await session.execute(Message.__table__.delete())


async def add(sessionmaker, count=1, topic="order.paid"):
    async with sessionmaker() as session, session.begin():
        for i in range(count):
            enqueue(session, Message, topic=topic, payload={"n": i})


async def test_a_message_is_delivered_once_with_its_event_id(sessionmaker):
    received = []

    async def send(payload):
        received.append(payload)

    await add(sessionmaker)
    assert await deliver_due(sessionmaker, Message, {"order.paid": send}) == 1
    assert await deliver_due(sessionmaker, Message, {"order.paid": send}) == 0
    assert len(received) == 1 and received[0]["n"] == 0 and received[0]["eventId"]
    async with sessionmaker() as session:
        assert await backlog(session, Message) == (0, 0.0)


async def test_a_rolled_back_change_sends_nothing(sessionmaker):
    with pytest.raises(RuntimeError):
        async with sessionmaker() as session, session.begin():
            enqueue(session, Message, topic="order.paid", payload={})
            raise RuntimeError("the change failed")
    async with sessionmaker() as session:
        assert (await backlog(session, Message))[0] == 0


async def test_a_failure_is_retried_later_with_backoff(sessionmaker):
    attempts = []

    async def flaky(payload):
        attempts.append(datetime.now(UTC))
        if len(attempts) == 1:
            raise ConnectionError("order service down")

    await add(sessionmaker)
    assert await deliver_due(sessionmaker, Message, {"order.paid": flaky}) == 0
    async with sessionmaker() as session:
        row = (await session.scalars(select(Message))).one()
        assert row.attempts == 1 and "order service down" in row.last_error
        assert row.available_at > datetime.now(UTC)
        count, age = await backlog(session, Message)
        assert count == 1 and age >= 0
    # Not due yet: nothing is sent.
    assert await deliver_due(sessionmaker, Message, {"order.paid": flaky}) == 0
    assert len(attempts) == 1
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Message).values(available_at=datetime.now(UTC)))
    assert await deliver_due(sessionmaker, Message, {"order.paid": flaky}) == 1
    assert len(attempts) == 2


async def test_an_unknown_topic_stays_undelivered(sessionmaker):
    await add(sessionmaker, topic="nobody.listens")
    assert await deliver_due(sessionmaker, Message, {}) == 0
    async with sessionmaker() as session:
        assert (await backlog(session, Message))[0] == 1


async def test_concurrent_deliverers_send_each_message_once(sessionmaker):
    sent = []

    async def slow_send(payload):
        await asyncio.sleep(0.01)
        sent.append(payload["eventId"])

    await add(sessionmaker, count=30)
    results = await asyncio.gather(
        *(
            deliver_due(sessionmaker, Message, {"order.paid": slow_send}, batch_size=5)
            for _ in range(8)
        )
    )
    while sum(results) < 30:
        results.append(await deliver_due(sessionmaker, Message, {"order.paid": slow_send}))
    assert len(sent) == 30 and len(set(sent)) == 30


def test_backoff_grows_and_is_capped():
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff(30) == timedelta(minutes=5)


async def test_a_batch_is_sent_oldest_first(sessionmaker):
    order = []

    async def send(payload):
        order.append(payload["n"])

    for n in range(10):
        await add(sessionmaker, count=1, topic=f"t{n}")
        async with sessionmaker() as session, session.begin():
            await session.execute(
                update(Message).where(Message.topic == f"t{n}").values(payload={"n": n})
            )
    # Shuffle the physical order of the rows: updates write new row versions.
    async with sessionmaker() as session, session.begin():
        for n in (3, 7, 1):
            await session.execute(
                update(Message).where(Message.topic == f"t{n}").values(attempts=0)
            )
    senders = {f"t{n}": send for n in range(10)}
    assert await deliver_due(sessionmaker, Message, senders, batch_size=10) == 10
    assert order == list(range(10))


async def test_the_outbox_hook_sets_the_backlog_gauges(sessionmaker):
    from types import SimpleNamespace

    from shared import metrics

    hook = metrics.outbox_hook(Message)
    state = SimpleNamespace(sessionmaker=sessionmaker)  # what the hook reads of a state
    await hook(state)
    assert metrics.gauge("outbox_backlog", "")._value.get() == 0
    assert metrics.gauge("outbox_oldest_age_seconds", "")._value.get() == 0

    await add(sessionmaker, count=3)
    async with sessionmaker() as session, session.begin():
        # The oldest has waited a minute.
        oldest = (await session.scalars(select(Message.id).limit(1))).one()
        await session.execute(
            update(Message)
            .where(Message.id == oldest)
            .values(created_at=datetime.now(UTC) - timedelta(seconds=60))
        )
    await hook(state)
    assert metrics.gauge("outbox_backlog", "")._value.get() == 3
    assert 60 <= metrics.gauge("outbox_oldest_age_seconds", "")._value.get() < 70
