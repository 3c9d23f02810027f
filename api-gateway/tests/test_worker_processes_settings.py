"""WEB_CONCURRENCY > 1 at the gateway: rate limits counted in memory would be each worker
process's own (a client could make N times its limit), so Redis is required for them."""

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from api_gateway.config import GatewaySettings
from shared.testing import TestKeys

KEYS = TestKeys().settings_for("gateway")
REFUSAL = "WEB_CONCURRENCY=2 needs REDIS_URL for the rate limits"


def test_several_workers_with_rate_limits_in_memory_are_refused():
    with pytest.raises(ValidationError, match=REFUSAL):
        GatewaySettings(_env_file=None, WEB_CONCURRENCY="2", **KEYS)


@pytest.mark.parametrize(
    "values",
    [
        {"WEB_CONCURRENCY": "2", "REDIS_URL": "redis://127.0.0.1:6379/0"},
        {"WEB_CONCURRENCY": "2", "RATE_LIMIT_ENABLED": "false"},
        {"WEB_CONCURRENCY": "1"},
        {},
    ],
)
def test_shared_counters_no_limits_or_one_worker_are_taken(values):
    settings = GatewaySettings(_env_file=None, **KEYS, **values)
    assert settings.web_concurrency == int(values.get("WEB_CONCURRENCY", "1"))


def test_the_gateway_process_does_not_start_and_says_why():
    env = {"PATH": os.environ.get("PATH", ""), "WEB_CONCURRENCY": "2", "GATEWAY_PORT": "9", **KEYS}
    started = subprocess.run(
        [sys.executable, "-m", "api_gateway"], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode != 0
    assert REFUSAL in started.stderr
