import httpx
from sqlalchemy import text

from auth_service.main import create_app
from shared.testing import started


async def start_and_stop(settings) -> None:
    app = create_app(settings)
    async with started(app):
        pass


async def admins(engine) -> list[tuple[str, str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT email, role FROM users ORDER BY email"))
        return [tuple(row) for row in rows]


async def test_the_admin_is_created_once_across_restarts(make_settings, engine):
    settings = make_settings(ADMIN_EMAIL="Owner@Shop.co.ke", ADMIN_PASSWORD="owner-password")
    await start_and_stop(settings)
    await start_and_stop(settings)
    await start_and_stop(make_settings(ADMIN_EMAIL="owner@shop.co.ke", ADMIN_PASSWORD="other-pass"))
    assert await admins(engine) == [("owner@shop.co.ke", "admin")]

    app = create_app(settings)
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
            # The first password stays: a restart with another ADMIN_PASSWORD changes nothing.
            login = await client.post(
                "/api/login", json={"email": "owner@shop.co.ke", "password": "owner-password"}
            )
            assert login.status_code == 200
            assert login.json()["user"]["role"] == "admin"


async def test_without_admin_settings_nobody_is_created(make_settings, engine):
    await start_and_stop(make_settings())
    assert await admins(engine) == []


async def test_an_existing_customer_is_never_promoted_by_the_bootstrap(make_settings, engine):
    """Someone who registered the admin's email first must not become admin."""
    app = create_app(make_settings())
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
            await client.post(
                "/api/register",
                json={"name": "Squatter", "email": "owner@shop.co.ke", "password": "password123"},
            )
    await start_and_stop(
        make_settings(ADMIN_EMAIL="owner@shop.co.ke", ADMIN_PASSWORD="owner-password")
    )
    assert await admins(engine) == [("owner@shop.co.ke", "customer")]


async def test_a_short_admin_password_is_refused_at_start(make_settings):
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="ADMIN_PASSWORD"):
        make_settings(ADMIN_EMAIL="owner@shop.co.ke", ADMIN_PASSWORD="short")
