import asyncio
import uuid

import pytest
from sqlalchemy import text

from shared.testing import bearer


async def test_admin_lists_users_with_filters_and_pages(client, register, make_admin):
    _, admin_token = await make_admin()
    for i in range(3):
        await register(email=f"user{i}@example.com")
    response = await client.get("/api/admin/users?limit=2&page=1", headers=bearer(admin_token))
    assert response.status_code == 200
    body = response.json()
    assert body["totalUsers"] == 4 and body["totalPages"] == 2 and body["currentPage"] == 1
    assert len(body["users"]) == 2
    assert all("password" not in user and "passwordHash" not in user for user in body["users"])

    admins = await client.get("/api/admin/users?role=admin", headers=bearer(admin_token))
    assert [u["email"] for u in admins.json()["users"]] == ["admin@example.com"]
    inactive = await client.get("/api/admin/users?isActive=false", headers=bearer(admin_token))
    assert inactive.json()["totalUsers"] == 0


@pytest.mark.parametrize(
    "query", ["page=abc", "page=0", "limit=-1", "limit=1000", "role=superuser", "isActive=maybe"]
)
async def test_admin_list_validates_its_query(client, make_admin, query):
    _, admin_token = await make_admin()
    response = await client.get(f"/api/admin/users?{query}", headers=bearer(admin_token))
    assert response.status_code == 400
    assert response.json()["error"] == "Validation error"


async def test_customers_and_anonymous_cannot_manage_users(client, register):
    body = await register()
    token, user_id = body["token"], body["user"]["id"]
    assert (await client.get("/api/admin/users")).status_code == 401
    forbidden = await client.get("/api/admin/users", headers=bearer(token))
    assert forbidden.status_code == 403
    assert forbidden.json() == {"error": "Access denied. Admin only."}
    update = await client.put(
        f"/api/admin/users/{user_id}", json={"role": "admin"}, headers=bearer(token)
    )
    assert update.status_code == 403


async def test_admin_changes_role_and_deactivates(client, register, make_admin):
    _, admin_token = await make_admin()
    body = await register()
    user_id, user_token = body["user"]["id"], body["token"]

    promoted = await client.put(
        f"/api/admin/users/{user_id}", json={"role": "admin"}, headers=bearer(admin_token)
    )
    assert promoted.status_code == 200
    assert promoted.json()["message"] == "User updated successfully"
    assert promoted.json()["user"]["role"] == "admin"
    # The promotion holds at once for the user's existing token (the token says "customer").
    assert (await client.get("/api/admin/users", headers=bearer(user_token))).status_code == 200

    deactivated = await client.put(
        f"/api/admin/users/{user_id}",
        json={"role": "customer", "isActive": False},
        headers=bearer(admin_token),
    )
    assert deactivated.json()["user"]["isActive"] is False
    assert (await client.get("/api/profile", headers=bearer(user_token))).status_code == 401


async def test_admin_update_validates(client, make_admin, register):
    _, admin_token = await make_admin()
    user_id = (await register())["user"]["id"]
    for body in [{"role": "root"}, {"isActive": "perhaps"}]:
        response = await client.put(
            f"/api/admin/users/{user_id}", json=body, headers=bearer(admin_token)
        )
        assert response.status_code == 400


async def test_unknown_and_malformed_user_ids(client, make_admin):
    _, admin_token = await make_admin()
    unknown = await client.put(
        f"/api/admin/users/{uuid.uuid4()}", json={"role": "admin"}, headers=bearer(admin_token)
    )
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "User not found"}
    malformed = await client.put(
        "/api/admin/users/not-a-uuid", json={"role": "admin"}, headers=bearer(admin_token)
    )
    assert malformed.status_code == 400


async def test_the_last_active_admin_cannot_be_demoted_or_deactivated(client, make_admin):
    admin_id, admin_token = await make_admin()
    for change in [{"role": "customer"}, {"isActive": False}]:
        response = await client.put(
            f"/api/admin/users/{admin_id}", json=change, headers=bearer(admin_token)
        )
        assert response.status_code == 400
        assert response.json() == {"error": "Cannot demote or deactivate the last active admin"}


async def test_an_admin_may_step_down_when_another_remains(client, make_admin):
    first_id, first_token = await make_admin("first@example.com")
    await make_admin("second@example.com")
    response = await client.put(
        f"/api/admin/users/{first_id}", json={"role": "customer"}, headers=bearer(first_token)
    )
    assert response.status_code == 200


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(client, make_admin, engine):
    first_id, first_token = await make_admin("first@example.com")
    second_id, second_token = await make_admin("second@example.com")
    results = await asyncio.gather(
        client.put(
            f"/api/admin/users/{second_id}", json={"role": "customer"}, headers=bearer(first_token)
        ),
        client.put(
            f"/api/admin/users/{first_id}", json={"role": "customer"}, headers=bearer(second_token)
        ),
    )
    assert sorted(r.status_code for r in results) in ([200, 400], [200, 401], [200, 403])
    async with engine.connect() as connection:
        admins = await connection.execute(
            text("SELECT count(*) FROM users WHERE role = 'admin' AND is_active")
        )
        assert admins.scalar() == 1


async def test_admin_searches_users_by_name_or_email_and_reads_one(client, register, make_admin):
    _, admin_token = await make_admin()
    wanjiru = (await register(email="wanjiru@example.com", name="Wanjiru Kamau"))["user"]
    await register(email="otieno@example.com", name="Otieno Odhiambo")
    await register(email="percent_100@example.com", name="Percent")

    async def found(search: str) -> list[str]:
        response = await client.get(
            "/api/admin/users", params={"search": search}, headers=bearer(admin_token)
        )
        assert response.status_code == 200, response.text
        return sorted(user["email"] for user in response.json()["users"])

    assert await found("KAMAU") == ["wanjiru@example.com"]
    assert await found("otieno@") == ["otieno@example.com"]
    # % and _ are letters here, not wildcards.
    assert await found("t_1") == ["percent_100@example.com"]
    assert await found("%") == []

    one = await client.get(f"/api/admin/users/{wanjiru['id']}", headers=bearer(admin_token))
    assert one.status_code == 200
    assert one.json()["user"]["name"] == "Wanjiru Kamau"
    missing = await client.get(f"/api/admin/users/{uuid.uuid4()}", headers=bearer(admin_token))
    assert missing.status_code == 404 and missing.json() == {"error": "User not found"}
    bad = await client.get("/api/admin/users/not-a-uuid", headers=bearer(admin_token))
    assert bad.status_code == 400


@pytest.mark.parametrize("search", ["a" * 201, "nul\x00byte", "tab\there"])
async def test_admin_search_refuses_what_no_user_has(client, make_admin, search):
    _, admin_token = await make_admin()
    response = await client.get(
        "/api/admin/users", params={"search": search}, headers=bearer(admin_token)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Validation error"


async def test_customers_cannot_read_a_user(client, register):
    body = await register()
    response = await client.get(
        f"/api/admin/users/{body['user']['id']}", headers=bearer(body["token"])
    )
    assert response.status_code == 403
