import asyncio
import uuid

import pytest

from shared.testing import FakeClock
from shared.user_status import UserStatus, UserStatusCache


async def test_concurrent_misses_make_one_lookup_and_the_ttl_is_kept():
    calls = []
    answer = asyncio.Event()

    async def source(user_id):
        calls.append(user_id)
        await answer.wait()  # the lookup is in flight until the test lets it answer
        return UserStatus(role="customer", is_active=True)

    clock = FakeClock()
    cache = UserStatusCache(source, ttl=30, clock=clock)
    user_id = uuid.uuid4()
    readers = [asyncio.create_task(cache.get(user_id)) for _ in range(20)]
    await asyncio.sleep(0)  # every reader has asked: one lookup in flight, 19 waiting on it
    assert len(calls) == 1
    answer.set()
    results = await asyncio.gather(*readers)
    assert all(result.role == "customer" for result in results)
    clock.advance(29.9)
    await cache.get(user_id)
    assert len(calls) == 1
    clock.advance(0.2)  # past the TTL
    await cache.get(user_id)
    assert len(calls) == 2


async def test_a_failed_lookup_reaches_every_waiter_and_is_not_cached():
    attempts = 0
    answer = asyncio.Event()

    async def source(user_id):
        nonlocal attempts
        attempts += 1
        await answer.wait()
        if attempts == 1:
            raise ConnectionError("auth down")
        return None

    cache = UserStatusCache(source, ttl=10)
    user_id = uuid.uuid4()
    readers = [asyncio.create_task(cache.get(user_id)) for _ in range(5)]
    await asyncio.sleep(0)  # all five wait on the one lookup
    answer.set()
    results = await asyncio.gather(*readers, return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    assert await cache.get(user_id) is None
    assert attempts == 2


async def test_the_cache_stays_bounded():
    async def source(user_id):
        return UserStatus(role="customer", is_active=True)

    cache = UserStatusCache(source, ttl=60, max_entries=10)
    for _ in range(25):
        await cache.get(uuid.uuid4())
    assert len(cache) <= 10


@pytest.mark.parametrize("ttl", [0])
async def test_ttl_zero_always_asks(ttl):
    calls = 0

    async def source(user_id):
        nonlocal calls
        calls += 1
        return UserStatus(role="admin", is_active=True)

    cache = UserStatusCache(source, ttl=ttl)
    user_id = uuid.uuid4()
    await cache.get(user_id)
    await cache.get(user_id)
    assert calls == 2
