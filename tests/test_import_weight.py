"""What each process loads at start, in a fresh interpreter: what it never uses at rest is
not loaded (docs/operations.md, "Memory"). Each line is megabytes of every process."""

import json
import subprocess
import sys

import pytest

from scripts.services import ROOT
from shared.testing import TestKeys

# In the order `python -m <package>` imports them (__main__.py: the settings first).
PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1] + ".config")
app = importlib.import_module(sys.argv[1] + ".main").create_app()
print(json.dumps(sorted(sys.modules)))
"""
# Never at rest: httpx's command-line client (rich, pygments), test tools, tracing's SDK
# (OTEL_EXPORTER_OTLP_ENDPOINT unset).
NOWHERE = {"rich", "pygments", "pytest", "hypothesis", "schemathesis", "opentelemetry.sdk"}
# SQLAlchemy and asyncpg only where there is a database; the Stripe SDK at the first
# Stripe call, not at start; aiohttp (the service client's) at the first call to another
# service (the auth service never calls one).
NOT_IN = {
    "api_gateway": {"sqlalchemy", "asyncpg", "stripe"},
    "admin_console": {"sqlalchemy", "asyncpg", "stripe", "aiohttp"},
    "auth_service": {"aiohttp"},
    "payment_service": {"stripe"},
    "product_service": {"stripe"},
}


def loaded_packages(package: str, identity: str) -> set[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        **TestKeys().settings_for(identity),
        "PAYMENT_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1/unused",
        "PRODUCT_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1/unused",
        "STRIPE_SECRET_KEY": "sk_test_import_weight",
    }
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, package],
        cwd=ROOT / "tests",  # no developer's .env is read
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    modules = json.loads(probe.stdout.splitlines()[-1])
    # Packages, and the SDK of OpenTelemetry (its API is FastAPI's, loaded always).
    return {name.split(".")[0] for name in modules} | {
        name for name in modules if name.startswith("opentelemetry.sdk")
    }


@pytest.mark.parametrize(
    ("package", "identity"),
    [
        ("api_gateway", "gateway"),
        ("admin_console", "admin-console"),
        ("payment_service", "payment"),
        ("product_service", "product"),
    ],
)
def test_a_process_does_not_load_what_it_does_not_use_at_rest(package, identity):
    loaded = loaded_packages(package, identity)
    assert package in loaded  # the probe did import the app
    assert loaded & (NOWHERE | NOT_IN[package]) == set()
