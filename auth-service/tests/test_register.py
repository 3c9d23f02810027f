import pytest

from shared.testing import bearer


async def test_register_answers_the_original_envelope(client):
    response = await client.post(
        "/api/register",
        json={
            "name": "John Doe",
            "email": "john@example.com",
            "password": "password123",
            "phoneNumber": "254712345678",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "User registered successfully"
    assert body["token"].count(".") == 2
    user = body["user"]
    assert set(user) == {
        "id",
        "name",
        "email",
        "role",
        "phoneNumber",
        "isActive",
        "createdAt",
        "updatedAt",
    }
    assert user["role"] == "customer"
    assert user["isActive"] is True
    assert user["createdAt"].endswith("Z")
    assert "password" not in response.text and "argon2" not in response.text


async def test_the_registration_token_works(client, register):
    body = await register()
    profile = await client.get("/api/profile", headers=bearer(body["token"]))
    assert profile.status_code == 200
    assert profile.json()["user"]["email"] == "john@example.com"


async def test_email_is_normalised_to_lower_case(register):
    body = await register(email="  John.Doe@Example.COM ")
    assert body["user"]["email"] == "john.doe@example.com"


@pytest.mark.parametrize("email", ["john@example.com", "JOHN@EXAMPLE.COM", "John@example.com"])
async def test_duplicate_email_is_refused_whatever_its_case(client, register, email):
    await register(email="john@example.com")
    response = await client.post(
        "/api/register", json={"name": "Other", "email": email, "password": "password123"}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "User already exists"}


async def test_a_client_cannot_register_itself_as_admin(register):
    body = await register(role="admin", isActive=False)
    assert body["user"]["role"] == "customer"
    assert body["user"]["isActive"] is True


@pytest.mark.parametrize(
    ("phone", "stored"),
    [
        ("0712345678", "254712345678"),
        ("0112345678", "254112345678"),
        ("+254712345678", "254712345678"),
        ("254712345678", "254712345678"),
        ("712345678", "254712345678"),
        ("0712 345 678", "254712345678"),
        (None, None),
    ],
)
async def test_kenyan_phone_numbers_are_normalised(register, phone, stored):
    body = await register(phoneNumber=phone)
    assert body["user"]["phoneNumber"] == stored


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "x" * 101),
        ("email", "not-an-email"),
        ("email", "john@"),
        ("password", "short"),
        ("password", "x" * 129),
        ("phoneNumber", "12345"),
        ("phoneNumber", "0812345678"),
        ("phoneNumber", "+1 555 123 4567"),
    ],
)
async def test_invalid_fields_are_named_in_a_400(client, field, value):
    body = {"name": "John", "email": "john@example.com", "password": "password123", field: value}
    response = await client.post("/api/register", json=body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "Validation error"
    assert [detail["field"] for detail in payload["details"]] == [field]


@pytest.mark.parametrize("missing", ["name", "email", "password"])
async def test_missing_fields_are_a_400(client, missing):
    body = {"name": "John", "email": "john@example.com", "password": "password123"}
    del body[missing]
    response = await client.post("/api/register", json=body)
    assert response.status_code == 400
    assert response.json()["details"] == [{"field": missing, "message": "Field required"}]


async def test_malformed_json_is_a_400_not_a_500(client):
    response = await client.post(
        "/api/register", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "Validation error",
        "details": [{"field": "body", "message": "Request body is not valid JSON"}],
    }


async def test_a_refused_registration_writes_nothing(client, engine):
    from sqlalchemy import text

    await client.post("/api/register", json={"name": "", "email": "a@example.com", "password": "x"})
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM users"))).scalar() == 0
