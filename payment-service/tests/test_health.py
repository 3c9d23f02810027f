from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.testing import assert_migrations_match_models

SERVICE_DIR = Path(__file__).resolve().parents[1]


async def test_health_is_the_originals_body(client):
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "OK" and body["service"] == "Payment Service"


async def test_ready_checks_the_database(client):
    assert (await client.get("/ready")).json()["status"] == "ready"


async def test_the_migrations_build_exactly_the_models(database_url):
    await assert_migrations_match_models(SERVICE_DIR, database_url)


def test_production_refuses_a_weak_callback_secret(make_settings):
    with pytest.raises(ValidationError, match="MPESA_CALLBACK_SECRET"):
        make_settings(ENVIRONMENT="production", MPESA_CALLBACK_SECRET="short")


def test_settings_lists_and_urls(make_settings):
    settings = make_settings(
        MPESA_BASE_URL="", MPESA_ENVIRONMENT="production", STRIPE_PAYMENT_METHOD_TYPES="card, link"
    )
    assert settings.daraja_base_url == "https://api.safaricom.co.ke"
    assert settings.stripe_payment_method_types == ["card", "link"]
    assert make_settings(MPESA_BASE_URL="", MPESA_ENVIRONMENT="sandbox").daraja_base_url == (
        "https://sandbox.safaricom.co.ke"
    )
