"""The key user tokens are signed with: only this service holds it, it publishes the public
halves (`GET /.well-known/jwks.json`), and it can be rotated."""

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from pydantic import ValidationError

from auth_service.main import create_app
from shared.keys import generate_private_key, private_pem, public_pem, thumbprint
from shared.testing import bearer, started


@pytest.fixture
def auth_app(make_settings):
    """`async with auth_app(**settings) as client`: the service with other settings."""

    def start(**overrides):
        class Running:
            async def __aenter__(self) -> httpx.AsyncClient:
                self.app = create_app(make_settings(**overrides))
                self.lifespan = started(self.app)
                await self.lifespan.__aenter__()
                transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
                self.client = httpx.AsyncClient(transport=transport, base_url="http://auth")
                return self.client

            async def __aexit__(self, *exc) -> None:
                await self.client.aclose()
                await self.lifespan.__aexit__(*exc)

        return Running()

    return start


async def register_token(client: httpx.AsyncClient, email: str) -> str:
    response = await client.post(
        "/api/register", json={"name": "Rot Ation", "email": email, "password": "password123"}
    )
    assert response.status_code == 201, response.text
    return response.json()["token"]


async def test_the_jwks_publishes_the_signing_keys_public_half(client, register, keys):
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    public = keys.user_token_key.public_key()
    assert response.json() == keys.jwks()
    (jwk,) = response.json()["keys"]
    assert jwk["kid"] == thumbprint(public)
    assert "d" not in jwk  # the private part never leaves the service
    token = (await register())["token"]
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
    # What a client library does with it: verify the token with the published key.
    verified = jwt.PyJWKSet.from_dict(response.json())[jwk["kid"]]
    assert jwt.decode(token, verified.key, algorithms=["EdDSA"])["email"] == "john@example.com"


async def test_the_jwks_is_in_the_openapi_document(client):
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/.well-known/jwks.json"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Jwks"}


async def test_rotation_old_tokens_stay_valid_new_ones_are_signed_by_the_new_key(auth_app, keys):
    old_key = keys.user_token_key
    new_key = generate_private_key()
    async with auth_app() as before:
        old_token = await register_token(before, "rotation@example.com")

    async with auth_app(
        JWT_PRIVATE_KEY=private_pem(new_key),
        JWT_PREVIOUS_PUBLIC_KEYS=public_pem(old_key.public_key()),
    ) as after:
        assert (await after.get("/api/profile", headers=bearer(old_token))).status_code == 200
        login = await after.post(
            "/api/login", json={"email": "rotation@example.com", "password": "password123"}
        )
        new_token = login.json()["token"]
        assert jwt.get_unverified_header(new_token)["kid"] == thumbprint(new_key.public_key())
        jwt.decode(new_token, new_key.public_key(), algorithms=["EdDSA"])
        assert (await after.get("/api/profile", headers=bearer(new_token))).status_code == 200
        published = (await after.get("/.well-known/jwks.json")).json()["keys"]
        assert [jwk["kid"] for jwk in published] == [
            thumbprint(new_key.public_key()),
            thumbprint(old_key.public_key()),
        ]

    # Once the old key is retired, its tokens are refused.
    async with auth_app(JWT_PRIVATE_KEY=private_pem(new_key)) as retired:
        response = await retired.get("/api/profile", headers=bearer(old_token))
        assert response.status_code == 401
        assert response.json() == {"error": "Invalid token"}
        assert (await retired.get("/api/profile", headers=bearer(new_token))).status_code == 200


async def test_the_key_from_a_file_or_as_one_line(auth_app, keys, tmp_path):
    key_file = tmp_path / "jwt-private.pem"
    key_file.write_text(private_pem(keys.user_token_key))
    one_line = private_pem(keys.user_token_key).replace("\n", "\\n")
    for settings in (
        {"JWT_PRIVATE_KEY": "", "JWT_PRIVATE_KEY_FILE": str(key_file)},
        {"JWT_PRIVATE_KEY": one_line},
    ):
        async with auth_app(**settings) as client:
            jwks = (await client.get("/.well-known/jwks.json")).json()
            assert jwks == keys.jwks()


def _rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"JWT_PRIVATE_KEY": ""}, "JWT_PRIVATE_KEY .or JWT_PRIVATE_KEY_FILE. must be set"),
        ({"JWT_PRIVATE_KEY": "not a key"}, "JWT_PRIVATE_KEY: not a PEM private key"),
        ({"JWT_PRIVATE_KEY": _rsa_pem()}, "JWT_PRIVATE_KEY: not an Ed25519 key"),
        ({"JWT_PRIVATE_KEY_FILE": "/nonexistent/key.pem"}, "not both"),
        (
            {"JWT_PRIVATE_KEY": "", "JWT_PRIVATE_KEY_FILE": "/nonexistent/key.pem"},
            "JWT_PRIVATE_KEY_FILE: cannot read /nonexistent/key.pem",
        ),
        ({"JWT_PREVIOUS_PUBLIC_KEYS": "old key"}, "JWT_PREVIOUS_PUBLIC_KEYS: no PEM public key"),
    ],
)
def test_a_missing_or_unusable_key_stops_the_start(make_settings, settings, message):
    with pytest.raises(ValidationError, match=message):
        make_settings(ENVIRONMENT="production", **settings)


def test_a_refused_key_is_never_repeated_in_the_error(make_settings, keys):
    development_like = private_pem(keys.user_token_key).replace("PRIVATE KEY", "PUBLIC KEY")
    with pytest.raises(ValidationError) as refused:
        make_settings(ENVIRONMENT="production", JWT_PRIVATE_KEY=development_like)
    body = private_pem(keys.user_token_key).splitlines()[1]
    assert "JWT_PRIVATE_KEY" in str(refused.value)
    assert body not in str(refused.value) and body[-12:] not in str(refused.value)
