"""Only the auth service's key makes a user token the product service takes."""

import uuid

from shared.testing import assert_only_the_auth_services_tokens_are_taken
from shared.user_status import UserStatus


async def test_a_token_not_signed_by_the_auth_service_is_refused(client, keys, known_users):
    admin = uuid.uuid4()
    known_users[admin] = UserStatus(role="admin", is_active=True)
    await assert_only_the_auth_services_tokens_are_taken(
        client, keys, admin, "DELETE", f"/api/products/{uuid.uuid4()}", role="admin"
    )
