"""Bounded concurrency: a slot for each request up to the limit, a line of bounded length,
then an immediate 503 with Retry-After."""

import asyncio

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.load_shedding import (
    ConcurrencyLimiter,
    ConcurrencyLimitMiddleware,
    Overloaded,
    one_limiter,
)


async def _hold(limiter: ConcurrencyLimiter, release: asyncio.Event) -> str:
    async with limiter.slot():
        await release.wait()
    return "served"


async def test_beyond_the_limit_and_the_line_the_answer_is_at_once_a_refusal():
    limiter = ConcurrencyLimiter(2, 1, max_wait=30)
    release = asyncio.Event()
    holders = [asyncio.create_task(_hold(limiter, release)) for _ in range(3)]
    await asyncio.sleep(0)  # let them take their slots / their place in line
    assert (limiter.in_flight, limiter.waiting) == (2, 1)

    with pytest.raises(Overloaded) as refused:
        await limiter.acquire()
    assert refused.value.status_code == 503
    assert refused.value.headers == {"Retry-After": "1"}
    assert refused.value.body() == {"error": "Service busy, please retry shortly"}
    assert limiter.refused == 1

    release.set()
    assert await asyncio.gather(*holders) == ["served"] * 3
    assert (limiter.in_flight, limiter.waiting) == (0, 0)


async def test_a_released_slot_goes_to_the_first_in_line():
    limiter = ConcurrencyLimiter(1, 5, max_wait=30)
    order: list[int] = []
    await limiter.acquire()

    async def waiter(number: int) -> None:
        async with limiter.slot():
            order.append(number)

    waiting = [asyncio.create_task(waiter(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert limiter.waiting == 3
    limiter.release()
    await asyncio.gather(*waiting)
    assert order == [0, 1, 2]
    assert limiter.in_flight == 0


async def test_a_wait_longer_than_max_wait_is_refused_and_leaves_no_trace():
    limiter = ConcurrencyLimiter(1, 5, max_wait=0.05, refusal="Product service busy")
    await limiter.acquire()
    with pytest.raises(Overloaded) as refused:
        await limiter.acquire()
    assert refused.value.message == "Product service busy"
    assert (limiter.in_flight, limiter.waiting) == (1, 0)
    limiter.release()
    assert limiter.in_flight == 0


async def test_a_request_cancelled_while_waiting_gives_its_place_up():
    limiter = ConcurrencyLimiter(1, 5, max_wait=30)
    await limiter.acquire()
    waiting = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert limiter.waiting == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert limiter.waiting == 0
    limiter.release()
    assert limiter.in_flight == 0


async def test_a_request_cancelled_as_it_is_handed_a_slot_passes_the_slot_on():
    limiter = ConcurrencyLimiter(1, 5, max_wait=30)
    await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    limiter.release()  # hands the slot to `first` ...
    first.cancel()  # ... which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await first
    await second  # the slot went on to the next in line
    assert (limiter.in_flight, limiter.waiting) == (1, 0)
    limiter.release()
    assert limiter.in_flight == 0


async def test_a_slot_released_after_a_waiter_was_cancelled_but_before_it_ran_goes_on():
    # A timed-out or cancelled wait cancels the waiter's future at once; the waiting task
    # runs later. A release in between skips that future: the task must not fail on it
    # (seen as "ValueError: ... not in deque", a 500, under the compose scale test).
    limiter = ConcurrencyLimiter(1, 5, max_wait=30)
    await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    first.cancel()  # its waiter is cancelled now, the task not yet resumed ...
    limiter.release()  # ... when the holder leaves: the slot goes to `second`
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert (limiter.in_flight, limiter.waiting) == (1, 0)
    limiter.release()
    assert limiter.in_flight == 0


async def test_the_middleware_refuses_with_the_error_shape_and_never_the_probes():
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow(request):
        entered.set()
        await release.wait()
        return JSONResponse({"ok": True})

    async def health(request):
        return JSONResponse({"status": "OK"})

    app = Starlette(routes=[Route("/slow", slow), Route("/health", health)])
    limited = ConcurrencyLimitMiddleware(
        app, limiter_for=one_limiter(ConcurrencyLimiter(1, 0, max_wait=30), {"/health"})
    )
    transport = httpx.ASGITransport(app=limited)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        held = asyncio.create_task(client.get("/slow"))
        await entered.wait()
        refused = await client.get("/slow")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {"error": "Service busy, please retry shortly"}
        probe = await client.get("/health")
        assert probe.status_code == 200
        release.set()
        assert (await held).status_code == 200
        assert (await client.get("/slow")).status_code == 200


def _refused(bound: str) -> float:
    return REGISTRY.get_sample_value("http_requests_refused_total", {"bound": bound}) or 0.0


async def test_refusals_are_counted_per_bound():
    limiter = ConcurrencyLimiter(1, 0, max_wait=30, name="product")
    before = _refused("product")
    await limiter.acquire()
    for _ in range(3):
        with pytest.raises(Overloaded):
            await limiter.acquire()
    assert _refused("product") == before + 3
    limiter.release()
