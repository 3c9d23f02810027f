"""In production the gateway refuses to start with CORS open to every origin."""

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from api_gateway.config import GatewaySettings
from shared.testing import TestKeys

# The gateway's own key and every public key: what production needs besides CORS_ORIGINS.
STRONG = TestKeys().settings_for("gateway")
REFUSAL = "CORS_ORIGINS must list the shop's front-end origins in production"


@pytest.mark.parametrize("origins", ["*", "https://shop.example.com, *", None])
def test_production_refuses_any_origin(origins):
    cors = {} if origins is None else {"CORS_ORIGINS": origins}  # unset: the default, *
    with pytest.raises(ValidationError, match=REFUSAL):
        GatewaySettings(_env_file=None, ENVIRONMENT="production", **STRONG, **cors)


def test_production_takes_listed_origins_and_development_takes_any():
    listed = GatewaySettings(
        _env_file=None,
        ENVIRONMENT="production",
        CORS_ORIGINS="https://shop.example.com,https://admin.shop.example.com",
        **STRONG,
    )
    assert listed.cors_origin_list == ["https://shop.example.com", "https://admin.shop.example.com"]
    assert GatewaySettings(_env_file=None, CORS_ORIGINS="*", **STRONG).cors_origin_list == ["*"]


def test_the_gateway_process_does_not_start_and_says_why():
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ENVIRONMENT": "production",
        "CORS_ORIGINS": "*",
        "GATEWAY_PORT": "9",
        **STRONG,
    }
    started = subprocess.run(
        [sys.executable, "-m", "api_gateway"], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode != 0
    assert REFUSAL in started.stderr
    key_body = STRONG["INTERNAL_PRIVATE_KEY"].splitlines()[1]
    assert key_body not in started.stderr + started.stdout


async def test_metrics_can_be_kept_off_the_public_port(make_client, fake_services):
    """docker-compose.prod.yml publishes the gateway's port and sets METRICS_ENABLED=false:
    /metrics is then a path like any other the gateway does not serve."""
    scraped = await (await make_client()).get("/metrics")
    assert scraped.status_code == 200
    assert "http_requests_total" in scraped.text
    hidden = await (await make_client(METRICS_ENABLED="false")).get("/metrics")
    assert hidden.status_code == 404
    assert hidden.json() == {"error": "Route not found"}
    assert fake_services.received == []
