"""Only the auth service's key makes a user token the payment service takes."""

import uuid

from shared.testing import assert_only_the_auth_services_tokens_are_taken


async def test_a_token_not_signed_by_the_auth_service_is_refused(client, keys, login):
    user_id, _ = login()
    await assert_only_the_auth_services_tokens_are_taken(
        client, keys, user_id, "GET", f"/api/payments/{uuid.uuid4()}"
    )
