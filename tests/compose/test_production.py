"""The production files (`-f docker-compose.yml -f docker-compose.prod.yml`): they start
with secrets and keys from the environment, refuse to start without them, with a
placeholder or with a development key, publish only the gateway and run no simulator."""

import json
import secrets

import httpx
import pytest
import yaml

from shared.keys import private_pem
from shared.testing import TestKeys
from tests.compose.conftest import DEV_FILE, GATEWAY, PROD_FILE, running

IDENTITIES = ("AUTH", "PRODUCT", "CART", "ORDER", "PAYMENT", "GATEWAY", "ADMIN_CONSOLE")
KEYS = ("JWT_PRIVATE_KEY", *(f"{name}_INTERNAL_PRIVATE_KEY" for name in IDENTITIES))
SECRETS = (*KEYS, "INTERNAL_PUBLIC_KEYS", "MPESA_CALLBACK_SECRET", "POSTGRES_PASSWORD")


def one_line(pem: str) -> str:
    return pem.strip().replace("\n", "\\n")


def production_secrets() -> dict[str, str]:
    """The secrets and keys, and the one setting production also requires (no * for
    CORS)."""
    keys = TestKeys()
    own = {
        "JWT_PRIVATE_KEY": one_line(private_pem(keys.user_token_key)),
        **{
            f"{name}_INTERNAL_PRIVATE_KEY": one_line(
                private_pem(keys.internal_keys[name.lower().replace("_", "-")])
            )
            for name in IDENTITIES
        },
    }
    return {
        **own,
        "INTERNAL_PUBLIC_KEYS": keys.internal_public_keys(),
        "MPESA_CALLBACK_SECRET": secrets.token_hex(32),
        "POSTGRES_PASSWORD": secrets.token_hex(32),
        "CORS_ORIGINS": "https://shop.example.com",
    }


def development_auth_key() -> str:
    """The auth service's key as docker-compose.yml publishes it (for development)."""
    written = yaml.safe_load(DEV_FILE.read_text())["x-keys"]["auth"]
    return written.split(":-", 1)[1].rstrip("}")


@pytest.mark.parametrize("missing", SECRETS)
def test_production_stops_before_starting_anything_without_a_secret(project_factory, missing):
    env = {name: value for name, value in production_secrets().items() if name != missing}
    project = project_factory([DEV_FILE, PROD_FILE], **env)
    result = project.run("config", "--quiet", check=False)
    assert result.returncode != 0
    assert f"{missing} is missing a value" in result.stderr or missing in result.stderr


def test_a_production_service_refuses_a_development_key(project_factory, built_images):
    development = development_auth_key()
    project = project_factory(
        [DEV_FILE, PROD_FILE],
        **{**production_secrets(), "AUTH_INTERNAL_PRIVATE_KEY": development},
    )
    result = project.run("run", "--rm", "--no-deps", "auth-service", check=False, timeout=120)
    assert result.returncode != 0
    assert "INTERNAL_PRIVATE_KEY is a development key" in result.stdout + result.stderr
    assert development.split("\\n")[1] not in result.stdout + result.stderr  # never printed
    project.down()


def test_production_starts_with_secrets_from_the_environment(project_factory, built_images):
    project = project_factory([DEV_FILE, PROD_FILE], **production_secrets())
    with running(project, figure="prod_up_wait_seconds"):
        states = [
            json.loads(line)
            for line in project.run("ps", "--format", "json").stdout.splitlines()
            if line.strip()
        ]
        running_services = {state["Service"] for state in states}
        assert "mpesa-simulator" not in running_services
        published = {
            state["Service"]
            for state in states
            for publisher in state.get("Publishers") or []
            if publisher.get("PublishedPort")
        }
        assert published == {"api-gateway"}
        env = project.exec("auth-service", "env")
        assert "ENVIRONMENT=production" in env.splitlines()
        with httpx.Client(base_url=GATEWAY, timeout=30) as client:
            assert client.get("/health").json()["status"] == "OK"
            assert client.get("/metrics").status_code == 404  # not on the public port
            registered = client.post(
                "/api/auth/register",
                json={"name": "Prod User", "email": "prod@example.com", "password": "password123"},
            )
            assert registered.status_code == 201, registered.text
            profile = client.get(
                "/api/auth/profile",
                headers={"Authorization": f"Bearer {registered.json()['token']}"},
            )
            assert profile.status_code == 200
            # The keys user tokens are verified with, through the gateway.
            keys = client.get("/.well-known/jwks.json")
            assert keys.status_code == 200 and len(keys.json()["keys"]) == 1
