import bcrypt
import pytest
from sqlalchemy import text

import shared.passwords
from shared.testing import bearer


async def test_login_answers_the_original_envelope(client, register):
    await register(password="password123")
    response = await client.post(
        "/api/login", json={"email": "john@example.com", "password": "password123"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Login successful"
    assert body["user"]["email"] == "john@example.com"
    assert "password" not in body["user"]
    profile = await client.get("/api/profile", headers=bearer(body["token"]))
    assert profile.status_code == 200


async def test_login_email_is_case_insensitive(client, register):
    await register(password="password123")
    response = await client.post(
        "/api/login", json={"email": "JOHN@example.com", "password": "password123"}
    )
    assert response.status_code == 200


async def test_wrong_password_and_unknown_email_get_the_same_401(client, register):
    await register(password="password123")
    wrong_password = await client.post(
        "/api/login", json={"email": "john@example.com", "password": "password124"}
    )
    unknown_email = await client.post(
        "/api/login", json={"email": "nobody@example.com", "password": "password123"}
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json() == {"error": "Invalid credentials"}


async def test_an_unknown_email_still_costs_a_password_verification(client, monkeypatch):
    """Both failures do the same work (one hash verification), so timing tells nothing."""
    calls = []
    real_verify = shared.passwords._password_hash.verify

    def counting_verify(password, hash_):
        calls.append(hash_)
        return real_verify(password, hash_)

    monkeypatch.setattr(shared.passwords._password_hash, "verify", counting_verify)
    response = await client.post(
        "/api/login", json={"email": "nobody@example.com", "password": "password123"}
    )
    assert response.status_code == 401
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


async def test_a_deactivated_user_cannot_log_in(client, register, engine):
    await register(password="password123")
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE users SET is_active = false"))
    response = await client.post(
        "/api/login", json={"email": "john@example.com", "password": "password123"}
    )
    assert response.status_code == 403
    assert response.json() == {"error": "Account is deactivated"}


async def test_a_deactivated_user_with_a_wrong_password_learns_nothing(client, register, engine):
    await register(password="password123")
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE users SET is_active = false"))
    response = await client.post(
        "/api/login", json={"email": "john@example.com", "password": "wrong-password"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("prefix", [b"2a", b"2b"])
async def test_a_bcrypt_hash_of_the_original_is_accepted_and_upgraded(client, engine, prefix):
    """The original hashed with bcryptjs ($2a$, cost 10); such users log in, and their hash
    is replaced by argon2id."""
    original_hash = bcrypt.hashpw(b"password123", bcrypt.gensalt(rounds=10, prefix=prefix))
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO users (id, name, email, password_hash) "
                "VALUES (gen_random_uuid(), 'Old User', 'old@example.com', :hash)"
            ),
            {"hash": original_hash.decode()},
        )
    response = await client.post(
        "/api/login", json={"email": "old@example.com", "password": "password123"}
    )
    assert response.status_code == 200
    async with engine.connect() as connection:
        stored = (await connection.execute(text("SELECT password_hash FROM users"))).scalar()
    assert stored.startswith("$argon2id$")
    again = await client.post(
        "/api/login", json={"email": "old@example.com", "password": "password123"}
    )
    assert again.status_code == 200
    wrong = await client.post("/api/login", json={"email": "old@example.com", "password": "nope"})
    assert wrong.status_code == 401


async def test_an_unreadable_stored_hash_is_a_failed_login_not_a_500(client, engine):
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO users (id, name, email, password_hash) "
                "VALUES (gen_random_uuid(), 'Broken', 'broken@example.com', 'not-a-hash')"
            )
        )
    response = await client.post(
        "/api/login", json={"email": "broken@example.com", "password": "password123"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("body", [{}, {"email": "john@example.com"}, {"password": "x"}])
async def test_login_without_credentials_is_a_400(client, body):
    response = await client.post("/api/login", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "Validation error"
