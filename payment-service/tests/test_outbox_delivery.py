"""The order hears of every settlement exactly once, even when it is down at the time."""

from sqlalchemy import text

from payment_service.models import OutboxMessage


async def test_an_order_service_down_then_up_gets_the_update_once(api, login, world, engine):
    user_id, headers = login()
    order_id = world.add_order(user_id, total="1500.00")
    body = await api.mpesa_processing(headers, order_id)

    world.order_service_down = True
    await api.callback(api.callback_body(body["checkoutRequestId"]))
    assert (await api.payment(body["payment"]["id"])).status == "completed"
    assert await api.deliver_outbox() == 0
    assert await api.deliver_outbox() == 0  # backing off: not even tried
    [message] = await api.rows(OutboxMessage)
    assert message.delivered_at is None and message.attempts == 1 and message.last_error

    world.order_service_down = False
    async with engine.begin() as connection:  # the backoff has passed
        await connection.execute(text("UPDATE outbox_messages SET available_at = now()"))
    assert await api.deliver_outbox() == 1
    assert await api.deliver_outbox() == 0
    [update] = world.status_updates
    assert update["eventId"] == str(message.id)
    assert update["status"] == "paid" and update["paymentStatus"] == "paid"
    assert world.orders[order_id]["status"] == "paid"


async def test_a_redelivered_update_is_applied_once_by_its_event_id(api, login, world, engine):
    user_id, headers = login()
    order_id = world.add_order(user_id, total="1500.00")
    body = await api.mpesa_processing(headers, order_id)
    await api.callback(api.callback_body(body["checkoutRequestId"]))
    await api.deliver_outbox()
    # As if the acknowledgement had been lost: the same message goes again.
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE outbox_messages SET delivered_at = NULL, available_at = now()")
        )
    await api.deliver_outbox()
    first, second = world.status_updates
    assert first["eventId"] == second["eventId"]
    assert len(world.applied_events) == 1


async def test_the_order_hears_of_a_settlement_without_waiting_for_the_worker(api, login, world):
    """Sent once the settlement commits: under load the worker, one message at a time,
    fell minutes behind the payments."""
    user_id, headers = login()
    order_id = world.add_order(user_id, total="1500.00")
    body = await api.mpesa_processing(headers, order_id)
    await api.callback(api.callback_body(body["checkoutRequestId"]))
    assert await api.state.order_updates.settle() == 1  # no run of the worker
    assert world.orders[order_id]["status"] == "paid"
    [message] = await api.rows(OutboxMessage)
    assert message.delivered_at is not None and message.attempts == 1
