"""The production files (`-f docker-compose.yml -f docker-compose.prod.yml`): they start
with secrets from the environment, refuse to start without them or with a placeholder,
publish only the gateway and run no simulator."""

import json
import secrets

import httpx
import pytest

from tests.compose.conftest import DEV_FILE, GATEWAY, PROD_FILE, running

SECRETS = ("JWT_SECRET", "INTERNAL_SERVICE_SECRET", "MPESA_CALLBACK_SECRET", "POSTGRES_PASSWORD")
# The seed README's example value, which people copy.
PLACEHOLDER = "your-super-secret-jwt-key-change-in-production"


def production_secrets() -> dict[str, str]:
    """The secrets, and the one setting production also requires (no * for CORS)."""
    return {
        **{name: secrets.token_hex(32) for name in SECRETS},
        "CORS_ORIGINS": "https://shop.example.com",
    }


@pytest.mark.parametrize("missing", SECRETS)
def test_production_stops_before_starting_anything_without_a_secret(project_factory, missing):
    env = {name: value for name, value in production_secrets().items() if name != missing}
    project = project_factory([DEV_FILE, PROD_FILE], **env)
    result = project.run("config", "--quiet", check=False)
    assert result.returncode != 0
    assert f"{missing} is missing a value" in result.stderr or missing in result.stderr


def test_a_production_service_refuses_a_placeholder_secret(project_factory, built_images):
    project = project_factory(
        [DEV_FILE, PROD_FILE], **{**production_secrets(), "JWT_SECRET": PLACEHOLDER}
    )
    result = project.run("run", "--rm", "--no-deps", "auth-service", check=False, timeout=120)
    assert result.returncode != 0
    assert "JWT_SECRET" in result.stdout + result.stderr
    assert PLACEHOLDER not in result.stdout + result.stderr  # a secret is never printed
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
