"""`GET /metrics` of a service built with create_app: requests by route template,
method and status, latency, the database pool, and figures the service declares."""

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from shared import metrics
from shared.app import create_app
from shared.db import SessionDep, after_commit
from shared.settings import ServiceSettings
from shared.state import DatabaseState
from shared.testing import TestKeys, started

ITEMS_SEEN = metrics.counter("test_items_seen_total", "Items read by the test app", ["kind"])
QUEUE_DEPTH = metrics.gauge("test_queue_depth", "Set by a scrape hook")


def _settings(**overrides) -> ServiceSettings:
    return ServiceSettings(
        _env_file=None,
        **TestKeys().settings_for("gateway"),
        DB_POOL_SIZE="3",
        **overrides,
    )


def _app(postgres_url: str, hooks=()) -> FastAPI:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: str, session: SessionDep) -> dict:
        ITEMS_SEEN.labels(kind="book").inc()
        await session.connection()  # holds a pooled connection for the request
        return {"id": item_id}

    @router.post("/items")
    async def create_item() -> dict:
        return {}

    return create_app(
        name="items",
        title="Items Service",
        settings=_settings(),
        routers=[router],
        database_url=postgres_url,
        metrics_hooks=hooks,
    )


value = metrics.sample


@pytest.fixture
async def client_for(postgres_url):
    managers = []

    async def make(hooks=()) -> httpx.AsyncClient:
        app = _app(postgres_url, hooks)
        manager = started(app)
        await manager.__aenter__()
        managers.append(manager)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://items")

    yield make
    for manager in managers:
        await manager.__aexit__(None, None, None)


async def test_requests_are_counted_by_route_template_method_and_status(client_for):
    client = await client_for()
    before = (await client.get("/metrics")).text
    for item_id in ("a-1", "b-2"):
        assert (await client.get(f"/items/{item_id}")).status_code == 200
    assert (await client.post("/items")).status_code == 200
    assert (await client.get("/nowhere/9")).status_code == 404
    after = (await client.get("/metrics")).text

    route = "/items/{item_id}"
    count = "http_requests_total"
    assert value(after, count, method="GET", route=route, status="200") - value(
        before, count, method="GET", route=route, status="200"
    ) == pytest.approx(2)
    assert value(after, count, method="POST", route="/items", status="200") - value(
        before, count, method="POST", route="/items", status="200"
    ) == pytest.approx(1)
    assert value(after, count, method="GET", route="<unmatched>", status="404") - value(
        before, count, method="GET", route="<unmatched>", status="404"
    ) == pytest.approx(1)
    # Never the raw path: one series per route, not one per item.
    assert "/items/a-1" not in after and "/nowhere/9" not in after
    latency = "http_request_duration_seconds_count"
    assert value(after, latency, method="GET", route=route) - value(
        before, latency, method="GET", route=route
    ) == pytest.approx(2)
    bucket = "http_request_duration_seconds_bucket"
    assert value(after, bucket, method="GET", route=route, le="+Inf") >= 2
    assert value(after, "test_items_seen_total", kind="book") - value(
        before, "test_items_seen_total", kind="book"
    ) == pytest.approx(2)


async def test_the_response_is_prometheus_text_with_the_database_pool(client_for):
    client = await client_for()
    await client.get("/items/x")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert value(response.text, "db_pool_size") == 3
    # The request above gave its connection back: it waits, open, in the pool.
    assert value(response.text, "db_pool_checked_out") == 0
    assert value(response.text, "db_pool_idle") >= 1
    assert value(response.text, "db_pool_overflow") == 0
    assert value(response.text, "http_requests_in_progress") >= 1  # the scrape itself
    assert "process_cpu_seconds_total" in response.text


async def test_scrape_hooks_set_gauges_and_a_failing_hook_does_not_break_the_scrape(client_for):
    async def queue_depth(state: DatabaseState) -> None:
        assert isinstance(state, DatabaseState)  # hooks are given the service's state
        QUEUE_DEPTH.set(17)

    async def broken(state: DatabaseState) -> None:
        raise RuntimeError("database down")

    client = await client_for(hooks=[queue_depth, broken])
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert value(response.text, "test_queue_depth") == 17


def test_declaring_a_metric_again_returns_it_and_a_conflict_is_refused():
    again = metrics.counter("test_items_seen_total", "Items read by the test app", ["kind"])
    assert again is ITEMS_SEEN
    with pytest.raises(ValueError, match="already declared"):
        metrics.gauge("test_items_seen_total", "same name, other type")
    with pytest.raises(ValueError, match="already declared"):
        metrics.counter("test_items_seen_total", "other labels", ["provider"])


COMMITTED = metrics.counter("test_changes_committed_total", "Counted after commit", ["kind"])


async def test_after_commit_counts_a_committed_change_and_never_a_rolled_back_one(postgres_url):
    from sqlalchemy import text

    from shared.db import create_engine, create_sessionmaker

    engine = create_engine(postgres_url)
    sessionmaker = create_sessionmaker(engine)
    committed = COMMITTED.labels(kind="kept")
    rolled_back = COMMITTED.labels(kind="undone")
    kept_before, undone_before = committed._value.get(), rolled_back._value.get()
    try:
        async with sessionmaker() as session, session.begin():
            await session.execute(text("SELECT 1"))
            after_commit(session, committed.inc)
            # Not yet: the transaction is still open.
            assert committed._value.get() == kept_before
        assert committed._value.get() == kept_before + 1

        with pytest.raises(RuntimeError):
            async with sessionmaker() as session, session.begin():
                await session.execute(text("SELECT 1"))
                after_commit(session, rolled_back.inc)
                raise RuntimeError("the change fails")
        # A later commit of a new transaction on the same session does not revive it.
        async with sessionmaker() as session:
            async with session.begin():
                await session.execute(text("SELECT 1"))
                after_commit(session, rolled_back.inc)
                await session.rollback()
            async with session.begin():
                await session.execute(text("SELECT 1"))
        assert rolled_back._value.get() == undone_before

        # An action that fails is logged; the commit stands and the others still run.
        def broken() -> None:
            raise RuntimeError("metric bug")

        async with sessionmaker() as session, session.begin():
            await session.execute(text("SELECT 1"))
            after_commit(session, broken)
            after_commit(session, committed.inc)
        assert committed._value.get() == kept_before + 2
    finally:
        await engine.dispose()


def test_read_samples_reads_an_exposition():
    exposition = (
        "# HELP jobs_total Jobs\n# TYPE jobs_total counter\n"
        'jobs_total{kind="a"} 3.0\njobs_total{kind="b"} 1.0\n'
    )
    samples = metrics.read_samples(exposition)
    assert samples[("jobs_total", frozenset({("kind", "a")}))] == 3
    assert metrics.sample(samples, "jobs_total", kind="b") == 1
    assert metrics.sample(exposition, "jobs_total", kind="c") == 0
    later = metrics.read_samples(exposition.replace("3.0", "5.0"))
    assert metrics.moved(samples, later, "jobs_total", kind="a") == 2
